//! Domain events: one envelope, published once per event from the request path (one queue send);
//! fan-out to webhooks and connections happens in the `events` consumer.
//!
//! [`publish`] is the one way domain code emits an event. Inside an HTTP request (every router
//! runs under [`within_request`]) the event is held until the response is known and sent only
//! if the request succeeded and was not an idempotent replay: a request that ends in a 4xx or
//! 5xx, or replays an earlier creation, publishes nothing.

use std::cell::RefCell;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use serde_json::Value;

use crate::App;
use crate::queue::{OutgoingMessage, Queue, QueueError};

pub mod envelope;

pub use envelope::{Event, EventType};

tokio::task_local! {
    /// Events published by the current request, sent once its response is known.
    static HELD: RefCell<Vec<(EventPublisher, Event)>>;
}

/// Publishes an event: every event goes to the account's event log (which real-time clients
/// read), and from there to the webhook endpoints that want its type. Inside a request it is
/// held until the response (see the module docs); elsewhere (queue consumers) it is sent at
/// once. A send failure is logged, not returned: the work the event reports is done and must not
/// be reported as failed.
pub async fn publish(app: &App, kind: EventType, account_id: &crate::ids::AccountId, data: Value) {
    let event = Event::new(kind, account_id, data);
    let mut held = Some((app.events.clone(), event));
    let _ = HELD.try_with(|pending| pending.borrow_mut().extend(held.take()));
    if let Some((publisher, event)) = held {
        publisher.publish_logged(&event).await;
    }
}

/// Publishes an activity event (`EventType::ACTIVITY`) of `caller`'s request, if its account
/// has activity events on; otherwise nothing is sent.
pub async fn publish_activity(
    app: &App,
    caller: &crate::access::Caller,
    kind: EventType,
    data: impl FnOnce() -> Value,
) {
    debug_assert!(
        kind.is_activity(),
        "{} is not an activity event",
        kind.as_str()
    );
    if caller.activity_events {
        publish(app, kind, &caller.account_id, data()).await;
    }
}

/// The layer every router runs under: sends the events a request published only if it ended in
/// a 2xx that is not an idempotent replay.
pub async fn within_request(req: Request, next: Next) -> Response {
    let (response, held) = HELD
        .scope(RefCell::new(Vec::new()), async {
            let response = next.run(req).await;
            (response, HELD.with(RefCell::take))
        })
        .await;
    if response.status().is_success() && !crate::idempotency::is_replay(&response) {
        for (publisher, event) in held {
            publisher.publish_logged(&event).await;
        }
    }
    response
}

/// Publishes events to the events queue.
#[derive(Clone)]
pub struct EventPublisher {
    queue: Arc<dyn Queue>,
}

impl EventPublisher {
    pub fn new(queue: Arc<dyn Queue>) -> Self {
        Self { queue }
    }

    /// One send per event.
    #[tracing::instrument(skip_all, fields(event_type = event.kind.as_str(), event_id = %event.id))]
    pub async fn publish(&self, event: &Event) -> Result<(), QueueError> {
        let body =
            serde_json::to_string(event).map_err(|err| QueueError::Invalid(err.to_string()))?;
        self.queue.send(OutgoingMessage::new(body)).await?;
        Ok(())
    }

    async fn publish_logged(&self, event: &Event) {
        if let Err(err) = self.publish(event).await {
            tracing::error!(error = %err, event_type = event.kind.as_str(), "could not publish an event");
        }
    }
}

/// Wakes the event-log readers of this process (streams, sockets) when an account's log grows
/// here. In orrery-local the events consumer runs in the same process, so a reader hears of an
/// entry as soon as it commits; readers elsewhere (another Lambda) fall back to reading the log
/// every so often. A missed or lagging wake-up costs only latency: readers read the log itself.
#[derive(Clone)]
pub struct LogSignal {
    sender: tokio::sync::broadcast::Sender<crate::ids::AccountId>,
}

impl Default for LogSignal {
    fn default() -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

impl LogSignal {
    /// Says that `account`'s log has a new entry.
    pub fn appended(&self, account: &crate::ids::AccountId) {
        // No receiver: nobody is reading, which is fine.
        let _ = self.sender.send(account.clone());
    }

    /// A receiver of every account's wake-ups (each reader filters its own).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::ids::AccountId> {
        self.sender.subscribe()
    }
}
