//! The events consumer: reads each domain event once from the events queue. Fan-out to webhook
//! endpoints and realtime connections attaches here; until then it validates, logs and
//! acknowledges, so the publish → queue → consumer path is exercised end to end.

use async_trait::async_trait;
use orrery::App;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};
use orrery::events::Event;

pub struct EventsConsumer {
    #[allow(dead_code)]
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
                tracing::info!(event_id = %event.id, event_type = event.kind.as_str(), account_id = %event.account_id, "event received");
                Outcome::Done
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
