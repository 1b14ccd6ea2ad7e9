//! Submitting a batch: idempotency first, then validation of every item, then the quota.
//!
//! Order of the writes, and why:
//! 1. the chunks' items and states (invisible until the record exists; expiring);
//! 2. one queue message per chunk;
//! 3. one transaction: the record, the reservation of one `batch_items` unit per item (a
//!    ceiling: all or none) and the `Idempotency-Key` claim.
//!
//! The batch exists exactly when (3) commits, and by then every chunk is queued, so a crash at
//! any point leaves either a complete batch or nothing a caller can see (the worker drops
//! messages whose batch never appeared; stray chunk items expire). A refused submission
//! removes what (1) wrote.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use chrono::Duration as ChronoDuration;
use orrery::access::quota::{self, QuotaState, Window};
use orrery::access::{Caller, QuotaClass, quota_state};
use orrery::ids::BatchId;
use orrery::queue::OutgoingMessage;
use orrery::store::{Condition, Item, StoreError, WriteOp, keyspace};
use orrery::{ApiError, App, clock, idempotency};
use sha2::{Digest, Sha256};

use crate::items::{self, BatchItem, Submission};
use crate::plan::{self, Chunk};
use crate::record::{BatchRecord, BatchView};
use crate::worker::{ChunkMessage, ChunkState, chunk_state_item};

/// A submission's outcome.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub batch: BatchView,
    /// An earlier submission with the same `Idempotency-Key`: nothing new was reserved.
    pub replayed: bool,
    /// The `batch_items` quota after the reservation, for the rate-limit headers.
    pub quota: Option<QuotaState>,
}

/// `POST /v1/batches`: the body as JSON or JSON Lines.
pub async fn submit(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Submitted, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let request_hash = orrery::ids::hex(&Sha256::digest(
        [content_type.unwrap_or("").as_bytes(), b"\n", body].concat(),
    ));
    let idempotency_key = idempotency::from_headers(headers)?;
    if let Some(replay) = replayed(app, caller, idempotency_key.as_deref(), &request_hash).await? {
        return Ok(replay);
    }
    let submission = items::parse_submission(content_type, body, &clock::rfc3339(clock::now()))?;
    create(
        app,
        caller,
        submission,
        None,
        idempotency_key.map(|key| (key, request_hash)),
    )
    .await
}

/// The batch an earlier request with this key created, as a replay.
pub(crate) async fn replayed(
    app: &App,
    caller: &Caller,
    idempotency_key: Option<&str>,
    request_hash: &str,
) -> Result<Option<Submitted>, ApiError> {
    let Some(key) = idempotency_key else {
        return Ok(None);
    };
    let Some(id) =
        idempotency::replayed_resource(app.store.as_ref(), &caller.account_id, key, request_hash)
            .await?
    else {
        return Ok(None);
    };
    let batch = BatchId::parse(&id)
        .ok_or_else(|| ApiError::internal("an idempotency claim names no batch"))?;
    let record = crate::control::load(app, &caller.account_id, &batch).await?;
    Ok(Some(Submitted {
        batch: record.view(),
        replayed: true,
        quota: None,
    }))
}

/// Creates a batch of valid items (a submission, or the failed items of a retried batch).
pub(crate) async fn create(
    app: &App,
    caller: &Caller,
    submission: Submission,
    parent_id: Option<BatchId>,
    idempotency: Option<(String, String)>,
) -> Result<Submitted, ApiError> {
    let Submission { items, metadata } = submission;
    check_scopes(caller, &items)?;
    let total = items.len() as u32;
    // A shortfall is answered before anything is written.
    let before = quota_state(app, caller, QuotaClass::BatchItems).await?;
    if before.remaining() < total {
        return Err(before.shortfall(total));
    }

    let now = clock::now();
    let id = BatchId::generate();
    let expires_at =
        now + ChronoDuration::from_std(app.config.batch_window).unwrap_or(ChronoDuration::days(1));
    let keep_until = (now + ChronoDuration::days(crate::RETENTION_DAYS)).timestamp();
    let unique_inputs = plan::unique_inputs(&items) as u32;
    let mut operations: BTreeMap<_, u32> = BTreeMap::new();
    for item in &items {
        *operations.entry(item.operation).or_default() += 1;
    }
    let chunks = plan::chunks(items);
    let stored = chunk_items(&id, &chunks, keep_until)?;
    let stored_keys: Vec<_> = stored.iter().map(|item| item.key.clone()).collect();
    app.store.put_many(stored).await?;

    let outcome = async {
        enqueue(app, caller, &id, &chunks).await?;
        let window = Window::containing(now);
        let record = BatchRecord {
            id: id.clone(),
            account_id: caller.account_id.clone(),
            key_id: caller.key_id.clone(),
            total,
            completed: 0,
            failed: 0,
            cancelled: 0,
            chunks: chunks.len() as u32,
            unique_inputs,
            operations,
            created_at: now,
            expires_at,
            quota_day: window.day,
            metadata,
            parent_id,
            updated_at: None,
            cancel_requested_at: None,
            expired: None,
            finalized: 0,
            final_status: None,
            finished_at: None,
        };
        let mut ops = vec![
            WriteOp::Put {
                item: Item::from_serializable(keyspace::batch(&caller.account_id, &id), &record)?
                    .expiring_at(keep_until),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Increment(quota::reservation(
                &caller.account_id,
                &caller.key_id,
                QuotaClass::BatchItems,
                before.limit,
                &window,
                now,
                total,
                app.config.usage_cells_for(record.submitted_via()),
            )),
        ];
        if let Some((key, hash)) = &idempotency {
            ops.push(idempotency::claim(&caller.account_id, key, hash, &id)?);
        }
        match app.store.transact(ops).await {
            Ok(()) => Ok(record),
            Err(StoreError::TransactionCanceled { failed }) if failed.contains(&1) => {
                let now_state = quota_state(app, caller, QuotaClass::BatchItems).await?;
                Err(now_state.shortfall(total))
            }
            Err(StoreError::TransactionCanceled { failed }) if failed.contains(&2) => {
                Err(ApiError::Conflict(
                    "A request with this Idempotency-Key is being handled; retry.".into(),
                ))
            }
            Err(err) => Err(ApiError::from(err)),
        }
    }
    .await;
    match outcome {
        Ok(record) => {
            let quota = QuotaState {
                used: before.used.saturating_add(total),
                ..before
            };
            // A reservation can cross 80 % or 100 % of the day's batch_items at once.
            orrery::analytics::thresholds::check(app, caller, &quota).await;
            Ok(Submitted {
                batch: record.view(),
                replayed: false,
                quota: Some(quota),
            })
        }
        Err(err) => {
            // Nothing of a refused submission stays behind (queued chunks find no batch and
            // are dropped by the worker).
            for key in stored_keys {
                if let Err(cleanup) = app.store.delete(&key, None).await {
                    tracing::warn!(error = %cleanup, "could not remove a refused batch's chunk");
                }
            }
            Err(err)
        }
    }
}

/// A batch item computes what its single-item endpoint computes: the key needs that scope too.
fn check_scopes(caller: &Caller, items: &[BatchItem]) -> Result<(), ApiError> {
    let mut missing: Vec<&str> = items
        .iter()
        .map(|item| item.operation.scope())
        .filter(|scope| !caller.scopes.iter().any(|held| held == scope))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "This API key lacks the {} scope{} that items of this batch need.",
            missing
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" and "),
            if missing.len() == 1 { "" } else { "s" }
        )))
    }
}

fn chunk_items(id: &BatchId, chunks: &[Chunk], keep_until: i64) -> Result<Vec<Item>, ApiError> {
    let mut stored = Vec::with_capacity(chunks.len() * 2);
    for chunk in chunks {
        stored.push(
            Item::from_serializable(keyspace::batch_chunk_items(id, chunk.number), chunk)?
                .expiring_at(keep_until),
        );
        stored.push(chunk_state_item(
            id,
            chunk.number,
            &ChunkState::pending(chunk.items.len() as u32),
            keep_until,
        )?);
    }
    Ok(stored)
}

async fn enqueue(
    app: &App,
    caller: &Caller,
    id: &BatchId,
    chunks: &[Chunk],
) -> Result<(), ApiError> {
    let sent_at_ms = clock::now_millis();
    let messages: Vec<OutgoingMessage> = chunks
        .iter()
        .map(|chunk| {
            serde_json::to_string(&ChunkMessage {
                batch_id: id.clone(),
                account_id: caller.account_id.clone(),
                chunk: chunk.number,
                sent_at_ms,
            })
            .map(OutgoingMessage::new)
            .map_err(ApiError::internal)
        })
        .collect::<Result<_, _>>()?;
    for group in messages.chunks(orrery::queue::MAX_BATCH) {
        app.queues
            .batch_items
            .main
            .send_batch(group.to_vec())
            .await?;
    }
    Ok(())
}
