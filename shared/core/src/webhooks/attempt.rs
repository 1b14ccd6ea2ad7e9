//! One delivery attempt per receive, and what follows it: done (2xx), endpoint disabled (410, or
//! failing for 5 days), a retry on the schedule (by hiding the message), or — after the last
//! attempt — the dead-letter queue. A message is deleted only after success or once its copy is
//! in the dead-letter queue; a worker that dies mid-attempt leaves it to be received again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::client::Attempt;
use super::endpoints;
use super::fanout::DeliveryMessage;
use super::log::{LoggedAttempt, dead_letter, log_attempt};
use super::record::{self, EndpointRecord};
use super::schedule::{MAX_DELAY, NextStep, next_step, parse_retry_after};
use super::subscriptions::forget_subscriptions;
use crate::consumer::{IncomingMessage, Outcome};
use crate::events::envelope::EventType;
use crate::{App, clock};

/// An endpoint failing without a success for this long is disabled.
pub const DISABLE_AFTER: chrono::Duration = chrono::Duration::days(5);

/// Handles one delivery message: one attempt and what follows it.
pub async fn deliver(app: &App, message: &IncomingMessage) -> Outcome {
    let (delivery, endpoint) = match target(app, message).await {
        Ok(target) => target,
        Err(outcome) => return outcome,
    };
    let now = clock::now();
    let attempt = match attempt(app, &delivery, &endpoint, now).await {
        Ok(attempt) => attempt,
        Err(outcome) => return outcome,
    };
    let entry = LoggedAttempt::of(&delivery, message.receive_count.max(1), now, &attempt);
    if attempt.succeeded() {
        return delivered(app, &endpoint, entry).await;
    }
    if attempt.status == Some(410) {
        return gone(app, &endpoint, entry).await;
    }
    failed(app, message, &delivery, &endpoint, &attempt, entry, now).await
}

/// The message's delivery and its endpoint, if there is still something to do.
async fn target(
    app: &App,
    message: &IncomingMessage,
) -> Result<(DeliveryMessage, EndpointRecord), Outcome> {
    let delivery: DeliveryMessage = serde_json::from_str(&message.body).map_err(|err| {
        // Received again until the queue's own redrive dead-letters it.
        tracing::error!(error = %err, "undecodable delivery message");
        Outcome::Retry
    })?;
    match record::record(app, &delivery.account_id, &delivery.endpoint_id).await {
        Ok(Some(endpoint)) if endpoint.enabled => Ok((delivery, endpoint)),
        Ok(Some(endpoint)) => {
            tracing::info!(endpoint_id = %endpoint.id, "endpoint disabled; delivery dropped");
            Err(Outcome::Done)
        }
        Ok(None) => {
            tracing::info!(endpoint_id = %delivery.endpoint_id, "endpoint deleted; delivery dropped");
            Err(Outcome::Done)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the endpoint; retrying");
            Err(Outcome::RetryAfter(Duration::from_secs(5)))
        }
    }
}

/// One signed POST to the endpoint.
async fn attempt(
    app: &App,
    delivery: &DeliveryMessage,
    endpoint: &EndpointRecord,
    now: DateTime<Utc>,
) -> Result<Attempt, Outcome> {
    let client = app.webhook_client().map_err(|err| {
        tracing::error!(error = %err, "no webhook client");
        Outcome::RetryAfter(Duration::from_secs(5))
    })?;
    let body = serde_json::to_vec(&delivery.payload).map_err(|_| Outcome::Retry)?;
    Ok(client
        .attempt(
            &endpoint.url,
            &delivery.webhook_id,
            now.timestamp(),
            &body,
            &endpoint.signing_secrets(now),
        )
        .await)
}

/// 2xx: logged, and the endpoint's failure mark cleared.
async fn delivered(app: &App, endpoint: &EndpointRecord, mut entry: LoggedAttempt) -> Outcome {
    entry.outcome = "delivered".into();
    log_attempt(app, &endpoint.id, &entry).await;
    report(app, EventType::DeliverySucceeded, endpoint, &entry).await;
    if endpoint.failing_since.is_some()
        && let Err(err) = endpoints::mark_healthy(app, endpoint).await
    {
        tracing::warn!(error = %err, "could not clear the endpoint's failure mark");
    }
    Outcome::Done
}

/// 410 Gone: the receiver asks us to stop; the endpoint is disabled.
async fn gone(app: &App, endpoint: &EndpointRecord, mut entry: LoggedAttempt) -> Outcome {
    entry.outcome = "endpoint_disabled".into();
    log_attempt(app, &endpoint.id, &entry).await;
    report(app, EventType::DeliveryFailed, endpoint, &entry).await;
    disable(app, endpoint, "the endpoint answered 410 Gone".into()).await;
    Outcome::Done
}

/// Any other failure: disable after days of failure, else retry on the schedule (or the
/// receiver's longer `Retry-After`), else dead-letter after the last attempt.
async fn failed(
    app: &App,
    message: &IncomingMessage,
    delivery: &DeliveryMessage,
    endpoint: &EndpointRecord,
    attempt: &Attempt,
    mut entry: LoggedAttempt,
    now: DateTime<Utc>,
) -> Outcome {
    let failing_since = failing_since(app, endpoint, now).await;
    if now - failing_since >= DISABLE_AFTER {
        entry.outcome = "endpoint_disabled".into();
        log_attempt(app, &endpoint.id, &entry).await;
        report(app, EventType::DeliveryFailed, endpoint, &entry).await;
        let reason = format!(
            "no successful delivery since {}",
            clock::rfc3339(failing_since)
        );
        disable(app, endpoint, reason).await;
        return dead_letter(app, message, delivery, now).await;
    }
    match next_step(entry.attempt, unit_random(), None) {
        NextStep::RetryAfter(scheduled) => {
            let delay = retry_delay(app, attempt, scheduled, now);
            entry.outcome = "retrying".into();
            entry.next_attempt_at = chrono::Duration::from_std(delay).ok().map(|d| now + d);
            log_attempt(app, &endpoint.id, &entry).await;
            count_outcome(app, endpoint, "retried").await;
            Outcome::RetryAfter(delay)
        }
        NextStep::GiveUp => {
            entry.outcome = "dead_lettered".into();
            log_attempt(app, &endpoint.id, &entry).await;
            report(app, EventType::DeliveryFailed, endpoint, &entry).await;
            dead_letter(app, message, delivery, now).await
        }
    }
}

/// Since when the endpoint has been failing (marking it now if this is the first failure).
async fn failing_since(app: &App, endpoint: &EndpointRecord, now: DateTime<Utc>) -> DateTime<Utc> {
    if let Some(since) = endpoint.failing_since {
        return since;
    }
    if let Err(err) = endpoints::mark_failing(app, endpoint, now).await {
        tracing::warn!(error = %err, "could not mark the endpoint as failing");
    }
    now
}

/// The schedule's delay (scaled in tests), unless a 429/503's `Retry-After` asks for longer.
fn retry_delay(app: &App, attempt: &Attempt, scheduled: Duration, now: DateTime<Utc>) -> Duration {
    let asked = match attempt.status {
        Some(429) | Some(503) => attempt
            .retry_after
            .as_deref()
            .and_then(|value| parse_retry_after(value, now)),
        _ => None,
    };
    // The scale shrinks our schedule (tests), never the receiver's own Retry-After.
    let scheduled = scheduled.mul_f64(app.config.webhook_retry_scale);
    match asked {
        Some(asked) if asked > scheduled => asked.min(MAX_DELAY),
        _ => scheduled,
    }
}

/// A uniform random number in [0, 1) for the jitter.
fn unit_random() -> f64 {
    let bytes = crate::ids::random_bytes::<8>();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// A delivery's outcome, to the account's event log (`delivery.succeeded` / `delivery.failed`;
/// never delivered by webhook). A redelivered message can report its outcome twice.
async fn report(app: &App, kind: EventType, endpoint: &EndpointRecord, entry: &LoggedAttempt) {
    let outcome = if kind == EventType::DeliverySucceeded {
        "delivered"
    } else {
        "failed"
    };
    count_outcome(app, endpoint, outcome).await;
    crate::events::publish(
        app,
        kind,
        &endpoint.account_id,
        serde_json::json!({
            "webhook_id": entry.webhook_id,
            "endpoint_id": endpoint.id,
            "event_type": entry.event_type,
            "attempt": entry.attempt,
            "status": entry.status,
            "latency_ms": entry.latency_ms,
            "outcome": entry.outcome,
        }),
    )
    .await;
}

/// Adds one to the account's delivery outcomes of the day (the analytics summary's success
/// rate). A redelivered message can count twice, as it can report twice.
async fn count_outcome(app: &App, endpoint: &EndpointRecord, outcome: &str) {
    let day = clock::now().date_naive();
    let increment = crate::store::Increment::new(
        crate::store::keyspace::delivery_outcomes(&endpoint.account_id, day),
        outcome,
        1,
    )
    .expiring_at(crate::store::keyspace::daily_analytics_expiry(day));
    if let Err(err) = app.store.increment(increment).await {
        tracing::warn!(error = %err, "could not count a delivery outcome");
    }
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
