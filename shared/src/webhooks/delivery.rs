//! Fan-out and delivery. The `events` consumer turns each domain event into one delivery
//! message per subscribed, enabled endpoint of its account; the `webhook-delivery` consumer
//! makes one attempt per receive and decides what follows: done (2xx), endpoint disabled (410,
//! or failing for 5 days), a retry on the schedule (by hiding the message), or — after the last
//! attempt — the dead-letter queue. A message is deleted only after success or once its copy is
//! in the dead-letter queue; a worker that dies mid-attempt leaves it to be received again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::client::{Attempt, ErrorClass};
use super::endpoints::{self, EndpointRecord};
use super::schedule::{NextStep, next_step, parse_retry_after};
use crate::cache::{INTERESTS, SUBSCRIPTIONS};
use crate::consumer::{IncomingMessage, Outcome};
use crate::events::{Event, EventType};
use crate::queue::OutgoingMessage;
use crate::store::{Item, Key, Table};
use crate::{App, clock};

/// An endpoint failing without a success for this long is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(5);
/// How long attempts stay in the delivery log.
pub const LOG_RETENTION_DAYS: i64 = 30;

/// One delivery to one endpoint, as queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    /// `webhook-id`: the same on every attempt (receivers deduplicate on it).
    pub webhook_id: String,
    pub account_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// The body sent: `{type, timestamp, data}`.
    pub payload: Value,
}

/// A stable id per (event, endpoint): a re-run fan-out produces the same `webhook-id`.
pub fn webhook_id(event_id: &str, endpoint_id: &str) -> String {
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

async fn subscriptions(
    app: &App,
    account_id: &str,
) -> Result<Vec<EndpointRecord>, crate::store::StoreError> {
    let records = app
        .cache
        .load(&SUBSCRIPTIONS, account_id, async || {
            endpoints::all_of(app, account_id).await.map(Some)
        })
        .await?;
    Ok(records.unwrap_or_default())
}

/// Forgets an account's cached subscriptions (after an endpoint changes): everywhere within the
/// cache's sync interval.
pub async fn forget_subscriptions(app: &App, account_id: &str) {
    app.cache.invalidate(&SUBSCRIPTIONS, account_id).await;
    app.cache.invalidate(&INTERESTS, account_id).await;
}

/// Whether any enabled endpoint of the account wants `kind`. Events nobody listens to are not
/// queued: most chart requests come from accounts without such a subscription, and each queued
/// event costs a send, a receive and a delete. This reads the same cache as the fan-out, so it
/// is exactly as fresh; an endpoint's creation answers only once every container must see it
/// (`settle`), so no event published after that answer is dropped. If the endpoints cannot be
/// read, the answer is yes (never drop an event that might be wanted).
pub async fn is_wanted(app: &App, account_id: &str, kind: EventType) -> bool {
    let wanted = app
        .cache
        .load(&INTERESTS, account_id, async || {
            let records = subscriptions(app, account_id).await?;
            Ok::<_, crate::store::StoreError>(Some(
                EventType::ALL
                    .into_iter()
                    .filter(|&t| records.iter().any(|endpoint| endpoint.wants(t)))
                    .collect::<Vec<EventType>>(),
            ))
        })
        .await;
    match wanted {
        Ok(wanted) => wanted.is_some_and(|wanted| wanted.contains(&kind)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the subscriptions; publishing anyway");
            true
        }
    }
}

/// Queues one delivery per subscribed, enabled endpoint; returns how many.
pub async fn fan_out(app: &App, event: &Event) -> Result<usize, String> {
    let targets: Vec<EndpointRecord> = subscriptions(app, &event.account_id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|endpoint| endpoint.wants(event.kind))
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

/// One line of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoggedAttempt {
    pub webhook_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub response_snippet: String,
    pub error: Option<ErrorClass>,
    pub error_detail: Option<String>,
    /// `delivered`, `retrying`, `dead_lettered` or `endpoint_disabled`.
    pub outcome: String,
    /// When the next attempt is due, if one is.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

fn log_key(endpoint_id: &str, at: DateTime<Utc>, webhook_id: &str, attempt: u32) -> Key {
    Key::new(
        Table::Logs,
        format!("WEBHOOK#{endpoint_id}"),
        format!(
            "DELIVERY#{:013}#{webhook_id}#{attempt:02}",
            at.timestamp_millis()
        ),
    )
}

async fn log_attempt(app: &App, endpoint_id: &str, entry: &LoggedAttempt) {
    let item = match Item::from_serializable(
        log_key(endpoint_id, entry.at, &entry.webhook_id, entry.attempt),
        entry,
    ) {
        Ok(item) => item.expiring_at(entry.at.timestamp() + LOG_RETENTION_DAYS * 86_400),
        Err(err) => {
            tracing::warn!(error = %err, "cannot log a delivery attempt");
            return;
        }
    };
    if let Err(err) = app.store.put(item, None).await {
        tracing::warn!(error = %err, "cannot log a delivery attempt");
    }
}

/// A uniform random number in [0, 1) for the jitter.
fn unit_random() -> f64 {
    let bytes = crate::ids::random_bytes::<8>();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// Disables an endpoint and tells its owner (`endpoint.disabled`).
async fn disable(app: &App, endpoint: &EndpointRecord, reason: String) {
    match endpoints::disable(app, endpoint, &reason).await {
        Ok(()) => {
            forget_subscriptions(app, &endpoint.account_id).await;
            crate::events::publish(
                app,
                EventType::EndpointDisabled,
                &endpoint.account_id,
                serde_json::json!({"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}),
            )
            .await;
        }
        Err(err) => tracing::warn!(error = %err, "could not disable a failing endpoint"),
    }
}

/// Handles one delivery message: one attempt and what follows it.
pub async fn deliver(app: &App, message: &IncomingMessage) -> Outcome {
    let delivery: DeliveryMessage = match serde_json::from_str(&message.body) {
        Ok(delivery) => delivery,
        Err(err) => {
            // Received again until the queue's own redrive dead-letters it.
            tracing::error!(error = %err, "undecodable delivery message");
            return Outcome::Retry;
        }
    };
    let endpoint = match endpoints::record(app, &delivery.account_id, &delivery.endpoint_id).await {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) => {
            tracing::info!(endpoint_id = %delivery.endpoint_id, "endpoint deleted; delivery dropped");
            return Outcome::Done;
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the endpoint; retrying");
            return Outcome::RetryAfter(Duration::from_secs(5));
        }
    };
    if !endpoint.enabled {
        tracing::info!(endpoint_id = %endpoint.id, "endpoint disabled; delivery dropped");
        return Outcome::Done;
    }
    let client = match app.webhook_client() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "no webhook client");
            return Outcome::RetryAfter(Duration::from_secs(5));
        }
    };
    let now = clock::now();
    let body = match serde_json::to_vec(&delivery.payload) {
        Ok(body) => body,
        Err(_) => return Outcome::Retry,
    };
    let attempt_number = message.receive_count.max(1);
    let attempt: Attempt = client
        .attempt(
            &endpoint.url,
            &delivery.webhook_id,
            now.timestamp(),
            &body,
            &endpoint.signing_secrets(now),
        )
        .await;
    let mut entry = LoggedAttempt {
        webhook_id: delivery.webhook_id.clone(),
        event_type: delivery.event_type.clone(),
        attempt: attempt_number,
        at: now,
        status: attempt.status,
        latency_ms: attempt.latency_ms,
        response_snippet: attempt.response_snippet.clone(),
        error: attempt.error,
        error_detail: attempt.error_detail.clone(),
        outcome: String::new(),
        next_attempt_at: None,
    };

    if attempt.succeeded() {
        entry.outcome = "delivered".into();
        log_attempt(app, &endpoint.id, &entry).await;
        if endpoint.failing_since.is_some()
            && let Err(err) = endpoints::mark_healthy(app, &endpoint).await
        {
            tracing::warn!(error = %err, "could not clear the endpoint's failure mark");
        }
        return Outcome::Done;
    }
    if attempt.status == Some(410) {
        entry.outcome = "endpoint_disabled".into();
        log_attempt(app, &endpoint.id, &entry).await;
        disable(app, &endpoint, "the endpoint answered 410 Gone".into()).await;
        return Outcome::Done;
    }
    let failing_since = match endpoint.failing_since {
        Some(since) => since,
        None => {
            if let Err(err) = endpoints::mark_failing(app, &endpoint, now).await {
                tracing::warn!(error = %err, "could not mark the endpoint as failing");
            }
            now
        }
    };
    if now - failing_since >= DISABLE_AFTER {
        entry.outcome = "endpoint_disabled".into();
        log_attempt(app, &endpoint.id, &entry).await;
        disable(
            app,
            &endpoint,
            format!(
                "no successful delivery since {}",
                clock::rfc3339(failing_since)
            ),
        )
        .await;
        return dead_letter(app, message, &delivery, now).await;
    }
    let retry_after = match attempt.status {
        Some(429) | Some(503) => attempt
            .retry_after
            .as_deref()
            .and_then(|value| parse_retry_after(value, now)),
        _ => None,
    };
    match next_step(attempt_number, unit_random(), None) {
        NextStep::RetryAfter(scheduled) => {
            // The scale shrinks our schedule (tests), never the receiver's own Retry-After.
            let scheduled = scheduled.mul_f64(app.config.webhook_retry_scale);
            let delay = match retry_after {
                Some(asked) if asked > scheduled => asked.min(super::schedule::MAX_DELAY),
                _ => scheduled,
            };
            entry.outcome = "retrying".into();
            entry.next_attempt_at = chrono::Duration::from_std(delay).ok().map(|d| now + d);
            log_attempt(app, &endpoint.id, &entry).await;
            Outcome::RetryAfter(delay)
        }
        NextStep::GiveUp => {
            entry.outcome = "dead_lettered".into();
            log_attempt(app, &endpoint.id, &entry).await;
            dead_letter(app, message, &delivery, now).await
        }
    }
}

/// How long a dead-lettered delivery can be replayed (the dead-letter queue's retention).
pub const REPLAYABLE_DAYS: i64 = 14;

/// A dead-lettered delivery, kept under its endpoint for `POST …/replay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeadDelivery {
    dead_at: DateTime<Utc>,
    message: DeliveryMessage,
}

fn dead_key(endpoint_id: &str, at: DateTime<Utc>, webhook_id: &str) -> Key {
    Key::new(
        Table::Logs,
        format!("WEBHOOK#{endpoint_id}"),
        format!("DEAD#{:013}#{webhook_id}", at.timestamp_millis()),
    )
}

/// Copies the message to the dead-letter queue and records it for replay; only once both are
/// stored is the original deleted.
async fn dead_letter(
    app: &App,
    message: &IncomingMessage,
    delivery: &DeliveryMessage,
    now: DateTime<Utc>,
) -> Outcome {
    let record = DeadDelivery {
        dead_at: now,
        message: delivery.clone(),
    };
    let item = Item::from_serializable(
        dead_key(&delivery.endpoint_id, now, &delivery.webhook_id),
        &record,
    )
    .map(|item| item.expiring_at(now.timestamp() + REPLAYABLE_DAYS * 86_400));
    let stored = match item {
        Ok(item) => app.store.put(item, None).await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let sent = app
        .queues
        .deliveries
        .dead_letters
        .send(OutgoingMessage::new(message.body.clone()))
        .await
        .map_err(|e| e.to_string());
    match (stored, sent) {
        (Ok(()), Ok(_)) => Outcome::Done,
        (stored, sent) => {
            tracing::error!(
                ?stored,
                ?sent,
                "cannot dead-letter a delivery; it stays queued"
            );
            Outcome::RetryAfter(Duration::from_secs(60))
        }
    }
}

/// The endpoint's delivery attempts, newest first.
pub async fn attempts(
    app: &App,
    account_id: &str,
    endpoint_id: &str,
    limit: usize,
    cursor: Option<crate::store::Cursor>,
) -> Result<(Vec<LoggedAttempt>, Option<crate::store::Cursor>), crate::ApiError> {
    owned(app, account_id, endpoint_id).await?;
    Ok(app
        .store
        .query(
            crate::store::Query::partition(Table::Logs, format!("WEBHOOK#{endpoint_id}"))
                .with_prefix("DELIVERY#")
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()?)
}

async fn owned(
    app: &App,
    account_id: &str,
    endpoint_id: &str,
) -> Result<EndpointRecord, crate::ApiError> {
    if !crate::ids::is_valid("wh", endpoint_id) {
        return Err(crate::ApiError::NotFound(
            "No webhook endpoint with this id.".into(),
        ));
    }
    endpoints::record(app, account_id, endpoint_id)
        .await?
        .ok_or_else(|| crate::ApiError::NotFound("No webhook endpoint with this id.".into()))
}

/// What a replay did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// Dead-lettered deliveries queued again (with their original `webhook-id`).
    pub replayed: usize,
}

/// Queues again every delivery to this endpoint that was dead-lettered at or after `since`.
pub async fn replay(
    app: &App,
    account_id: &str,
    endpoint_id: &str,
    since: DateTime<Utc>,
) -> Result<Replayed, crate::ApiError> {
    let endpoint = owned(app, account_id, endpoint_id).await?;
    if !endpoint.enabled {
        return Err(crate::ApiError::Conflict(
            "The endpoint is disabled; enable it (PATCH {\"enabled\": true}) before replaying."
                .into(),
        ));
    }
    let mut replayed = 0;
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(
                crate::store::Query::partition(Table::Logs, format!("WEBHOOK#{endpoint_id}"))
                    .with_prefix("DEAD#")
                    .with_limit(100)
                    .after(cursor),
            )
            .await?;
        let next = page.next.clone();
        for item in &page.items {
            let dead: DeadDelivery = item.parse()?;
            if dead.dead_at < since {
                continue;
            }
            let body = serde_json::to_string(&dead.message).map_err(crate::ApiError::internal)?;
            app.queues
                .deliveries
                .main
                .send(OutgoingMessage::new(body))
                .await?;
            // Queued again: it is no longer waiting for a replay.
            app.store.delete(&item.key, None).await?;
            replayed += 1;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(Replayed { replayed })
}
