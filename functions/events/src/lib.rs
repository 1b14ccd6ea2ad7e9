//! The events consumer: reads each domain event from the events queue, appends it to its
//! account's event log (`orrery_realtime::log`: once, however often it is delivered), then fans
//! it out — one delivery message per subscribed, enabled webhook endpoint of the account
//! (subscriptions cached).

use async_trait::async_trait;
use orrery::App;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};
use orrery::events::Event;

pub struct EventsConsumer {
    app: App,
}

impl EventsConsumer {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[async_trait]
impl Consumer for EventsConsumer {
    fn name(&self) -> &'static str {
        "events"
    }

    async fn handle(&self, message: &IncomingMessage) -> Outcome {
        match serde_json::from_str::<Event>(&message.body) {
            Ok(event) => {
                if let Err(err) = orrery_realtime::log::append(&self.app, &event).await {
                    // Before the fan-out: a retried message is appended once (its mark) and
                    // fanned out with the same webhook-ids.
                    tracing::warn!(event_id = %event.id, error = %err, "appending to the event log failed; retrying");
                    return Outcome::RetryAfter(std::time::Duration::from_secs(1));
                }
                self.fan_out(&event).await
            }
            Err(err) => {
                // Not ours or corrupt: retrying cannot fix it, but dropping it silently would hide
                // a bug, so it goes to the dead-letter queue through the normal retry path.
                tracing::error!(error = %err, "undecodable event");
                Outcome::Retry
            }
        }
    }
}

impl EventsConsumer {
    async fn fan_out(&self, event: &Event) -> Outcome {
        match orrery::webhooks::fanout::fan_out(&self.app, event).await {
            Ok(deliveries) => {
                tracing::debug!(event_id = %event.id, event_type = event.kind.as_str(), account_id = %event.account_id, deliveries, "event logged and fanned out");
                Outcome::Done
            }
            Err(err) => {
                // Nothing is lost: the event is received again, and a repeated fan-out
                // repeats the same webhook-ids, which receivers deduplicate.
                tracing::warn!(event_id = %event.id, error = %err, "fan-out failed; retrying");
                Outcome::RetryAfter(std::time::Duration::from_secs(5))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use aws_lambda_events::event::sqs::SqsEvent;

    #[tokio::test]
    async fn sqs_event_reports_only_the_undecodable_message_as_failed() {
        let app = orrery::App::in_memory().unwrap();
        let consumer = super::EventsConsumer::new(app.clone());
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-events.json")).unwrap();
        let response =
            orrery::consumer::handle_sqs_event(&consumer, app.queues.events.main.as_ref(), event)
                .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["9f8c1e33-8d2b-4f7e-9a53-0c2b8d1e4f11"]);
    }
}
