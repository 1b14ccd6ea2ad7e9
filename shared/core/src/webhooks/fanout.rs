//! Fan-out: the `events` consumer turns each domain event into one delivery message per
//! subscribed, enabled endpoint of its account, each with a `webhook-id` stable per (event,
//! endpoint), so a repeated fan-out repeats the same ids.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::record::EndpointRecord;
use super::subscriptions::subscriptions;
use crate::events::envelope::Event;
use crate::queue::OutgoingMessage;
use crate::{App, clock};

/// One delivery to one endpoint, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    /// `webhook-id`: the same on every attempt (receivers deduplicate on it).
    pub webhook_id: String,
    pub account_id: crate::ids::AccountId,
    pub endpoint_id: crate::ids::EndpointId,
    pub event_type: String,
    /// The body sent: `{type, timestamp, data}`.
    pub payload: Value,
}

/// A stable id per (event, endpoint): a re-run fan-out produces the same `webhook-id`.
pub fn webhook_id(event_id: &str, endpoint_id: &crate::ids::EndpointId) -> String {
    let digest = Sha256::digest(format!("{event_id}/{endpoint_id}"));
    format!("msg_{}", crate::ids::hex(&digest[..13]))
}

/// The Standard Webhooks body of an event.
pub fn payload_of(event: &Event) -> Value {
    serde_json::json!({
        "type": event.kind.as_str(),
        "timestamp": clock::rfc3339(event.timestamp),
        "data": event.data,
    })
}

/// Queues one delivery per subscribed, enabled endpoint; returns how many. An endpoint hears
/// the events that happen once it exists: not one queued before it was registered and fanned
/// out after.
pub async fn fan_out(app: &App, event: &Event) -> Result<usize, String> {
    let targets: Vec<EndpointRecord> = subscriptions(app, &event.account_id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|endpoint| endpoint.wants(event.kind) && endpoint.created_at <= event.timestamp)
        .collect();
    let payload = payload_of(event);
    let messages: Vec<OutgoingMessage> = targets
        .iter()
        .map(|endpoint| {
            let message = DeliveryMessage {
                webhook_id: webhook_id(&event.id, &endpoint.id),
                account_id: event.account_id.clone(),
                endpoint_id: endpoint.id.clone(),
                event_type: event.kind.as_str().to_owned(),
                payload: payload.clone(),
            };
            serde_json::to_string(&message)
                .map(OutgoingMessage::new)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let count = messages.len();
    for chunk in messages.chunks(crate::queue::MAX_BATCH) {
        app.queues
            .deliveries
            .main
            .send_batch(chunk.to_vec())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(count)
}
