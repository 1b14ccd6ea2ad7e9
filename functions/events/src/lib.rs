//! The events consumer: reads each domain event from the events queue, appends it to its
//! account's event log (`orrery_realtime::log`: once, however often it is delivered), then fans
//! it out — one delivery message per subscribed, enabled webhook endpoint of the account
//! (subscriptions cached). On AWS it also pushes the entry to the account's open WebSocket
//! connections (`orrery_realtime::fanout`); orrery-local's WebSocket follows the log itself.

use std::sync::Arc;

use async_trait::async_trait;
use orrery::App;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};
use orrery::events::Event;

use orrery_realtime::fanout::{ConnectionManagement, GatewayManagement};
use tokio::sync::OnceCell;

pub struct EventsConsumer {
    app: App,
    /// API Gateway's management API, when the stack has a WebSocket API (read from
    /// `ORRERY_WEBSOCKET_ENDPOINT` on first use).
    websockets: OnceCell<Option<Arc<dyn ConnectionManagement>>>,
}

impl EventsConsumer {
    pub fn new(app: App) -> Self {
        Self {
            app,
            websockets: OnceCell::new(),
        }
    }

    /// A consumer that pushes to WebSocket connections through `management`.
    pub fn with_websockets(app: App, management: Arc<dyn ConnectionManagement>) -> Self {
        Self {
            app,
            websockets: OnceCell::new_with(Some(Some(management))),
        }
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
                let cursor = match orrery_realtime::log::append(&self.app, &event).await {
                    Ok(cursor) => cursor,
                    Err(err) => {
                        // Before the fan-out: a retried message is appended once (its mark) and
                        // fanned out with the same webhook-ids.
                        tracing::warn!(event_id = %event.id, error = %err, "appending to the event log failed; retrying");
                        return Outcome::RetryAfter(std::time::Duration::from_secs(1));
                    }
                };
                let pushed = self.push(&event, cursor).await;
                match self.fan_out(&event).await {
                    Outcome::Done => pushed,
                    retry => retry,
                }
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
    /// The entry to the account's WebSocket connections (AWS); a connection that missed it
    /// gets it with the retried message, and none gets it twice.
    async fn push(&self, event: &Event, cursor: orrery_realtime::Cursor) -> Outcome {
        let management = self
            .websockets
            .get_or_init(GatewayManagement::from_env)
            .await;
        let Some(management) = management else {
            return Outcome::Done;
        };
        let entry = orrery_realtime::LoggedEvent::of(cursor, event);
        match orrery_realtime::fanout::push(&self.app, management.as_ref(), &entry).await {
            Ok(pushed) => {
                tracing::debug!(event_id = %event.id, sent = pushed.sent, gone = pushed.gone, "pushed to WebSocket connections");
                Outcome::Done
            }
            Err(err) => {
                tracing::warn!(event_id = %event.id, error = %err, "WebSocket push failed; retrying");
                Outcome::RetryAfter(std::time::Duration::from_secs(2))
            }
        }
    }

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
