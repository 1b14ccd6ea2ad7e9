//! What happened to deliveries: the attempt log (every attempt, kept 30 days), dead-lettered
//! deliveries kept for replay (14 days, the dead-letter queue's retention), and the customer's
//! reads of both.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::ErrorClass;
use super::fanout::DeliveryMessage;
use super::record::{self, EndpointRecord};
use crate::App;
use crate::consumer::{IncomingMessage, Outcome};
use crate::queue::OutgoingMessage;
use crate::store::{Item, Key, keyspace};

/// How long attempts stay in the delivery log.
pub const LOG_RETENTION_DAYS: i64 = 30;

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

impl LoggedAttempt {
    /// The log line of an attempt, before its outcome is decided.
    pub(super) fn of(
        delivery: &DeliveryMessage,
        attempt_number: u32,
        at: DateTime<Utc>,
        attempt: &super::client::Attempt,
    ) -> Self {
        Self {
            webhook_id: delivery.webhook_id.clone(),
            event_type: delivery.event_type.clone(),
            attempt: attempt_number,
            at,
            status: attempt.status,
            latency_ms: attempt.latency_ms,
            response_snippet: attempt.response_snippet.clone(),
            error: attempt.error,
            error_detail: attempt.error_detail.clone(),
            outcome: String::new(),
            next_attempt_at: None,
        }
    }
}

fn log_key(
    endpoint_id: &crate::ids::EndpointId,
    at: DateTime<Utc>,
    webhook_id: &str,
    attempt: u32,
) -> Key {
    keyspace::delivery_attempt(endpoint_id, at.timestamp_millis(), webhook_id, attempt)
}

pub(super) async fn log_attempt(
    app: &App,
    endpoint_id: &crate::ids::EndpointId,
    entry: &LoggedAttempt,
) {
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

/// How long a dead-lettered delivery can be replayed (the dead-letter queue's retention).
pub const REPLAYABLE_DAYS: i64 = 14;

/// A dead-lettered delivery, kept under its endpoint for `POST …/replay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeadDelivery {
    dead_at: DateTime<Utc>,
    message: DeliveryMessage,
}

fn dead_key(endpoint_id: &crate::ids::EndpointId, at: DateTime<Utc>, webhook_id: &str) -> Key {
    keyspace::dead_letter(endpoint_id, at.timestamp_millis(), webhook_id)
}

/// Copies the message to the dead-letter queue and records it for replay; only once both are
/// stored is the original deleted.
pub(super) async fn dead_letter(
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
    account_id: &crate::ids::AccountId,
    endpoint_id: &str,
    limit: usize,
    cursor: Option<crate::store::Cursor>,
) -> Result<(Vec<LoggedAttempt>, Option<crate::store::Cursor>), crate::ApiError> {
    let endpoint = owned(app, account_id, endpoint_id).await?;
    Ok(app
        .store
        .query(
            keyspace::delivery_attempts(&endpoint.id)
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()?)
}

/// The caller's endpoint with the presented id (a 404 for a malformed or another's id).
async fn owned(
    app: &App,
    account_id: &crate::ids::AccountId,
    endpoint_id: &str,
) -> Result<EndpointRecord, crate::ApiError> {
    let not_found = || crate::ApiError::NotFound("No webhook endpoint with this id.".into());
    let endpoint_id = crate::ids::EndpointId::parse(endpoint_id).ok_or_else(not_found)?;
    record::record(app, account_id, &endpoint_id)
        .await?
        .ok_or_else(not_found)
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
    account_id: &crate::ids::AccountId,
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
                keyspace::dead_letters(&endpoint.id)
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
