//! Reading, listing, cancelling and retrying batches. Another account's batch is a 404, the
//! same as one that does not exist.

use axum::http::HeaderMap;
use futures_util::{StreamExt as _, stream};
use orrery::access::Caller;
use orrery::ids::{AccountId, BatchId};
use orrery::store::{Cursor, Increment, keyspace};
use orrery::{ApiError, App, clock, idempotency};

use crate::items::{BatchItem, Submission};
use crate::record::{BatchRecord, BatchView};
use crate::submit::{Submitted, create, replayed};
use crate::worker::{ChunkPhase, ChunkState, finalize, give_up};

/// The presented id as a batch id; anything else names no batch.
pub fn parse_id(text: &str) -> Result<BatchId, ApiError> {
    BatchId::parse(text).ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::NotFound("No batch with this id.".into())
}

/// The record as it is now (strongly consistent).
pub async fn load(app: &App, account: &AccountId, id: &BatchId) -> Result<BatchRecord, ApiError> {
    crate::worker::current(app, account, id).await
}

/// `GET /v1/batches/{id}`: one read (eventually consistent: a status a moment old).
pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<BatchView, ApiError> {
    let id = parse_id(id)?;
    let record: BatchRecord = app
        .store
        .get(&keyspace::batch(&caller.account_id, &id))
        .await?
        .ok_or_else(not_found)?
        .parse()?;
    Ok(record.view())
}

/// `GET /v1/batches`: newest first.
pub async fn list(
    app: &App,
    caller: &Caller,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<BatchView>, Option<Cursor>), ApiError> {
    let page = app
        .store
        .query(
            keyspace::batches(&caller.account_id)
                .descending()
                .with_limit(limit)
                .after(cursor),
        )
        .await?;
    let (records, next) = page.parse::<BatchRecord>()?;
    Ok((records.iter().map(BatchRecord::view).collect(), next))
}

/// The batches an account created since `since`, by status, and their items: the analytics
/// summary's batch counts. Reads the account's batches newest first and stops at the first
/// older one, so it costs a page per 100 batches of the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchCounts {
    pub batches: u64,
    pub items: u64,
    pub by_status: std::collections::BTreeMap<String, u64>,
}

pub async fn counts_since(
    app: &App,
    account: &AccountId,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<BatchCounts, orrery::store::StoreError> {
    let mut counts = BatchCounts::default();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(
                keyspace::batches(account)
                    .descending()
                    .with_limit(100)
                    .after(cursor),
            )
            .await?;
        let (records, next) = page.parse::<BatchRecord>()?;
        for record in &records {
            if record.created_at < since {
                return Ok(counts);
            }
            counts.batches += 1;
            counts.items += u64::from(record.total);
            *counts
                .by_status
                .entry(record.status().as_str().to_owned())
                .or_default() += 1;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(counts),
        }
    }
}

/// `POST /v1/batches/{id}/cancel`: no item starts after it returns; items already running
/// finish. Every pending chunk is given up here, so the batch settles as soon as its running
/// chunks do.
pub async fn cancel(app: &App, caller: &Caller, id: &str) -> Result<BatchView, ApiError> {
    let id = parse_id(id)?;
    let record = load(app, &caller.account_id, &id).await?;
    let status = record.status();
    if status.is_final() {
        return Err(ApiError::Conflict(format!(
            "The batch has finished ({}); there is nothing to cancel.",
            status.as_str()
        )));
    }
    if record.cancel_requested_at.is_none() {
        app.store
            .increment(
                Increment::new(
                    keyspace::batch(&caller.account_id, &id),
                    "cancel_requests",
                    1,
                )
                .also_set("cancel_requested_at", clock::rfc3339(clock::now()).into()),
            )
            .await?;
    }
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(
                keyspace::batch_chunk_states(&id)
                    .with_limit(100)
                    .after(cursor),
            )
            .await?;
        let pending: Vec<(u32, u32)> = page
            .items
            .iter()
            .filter_map(|item| {
                let state: ChunkState = item.parse().ok()?;
                let number = keyspace::parse_batch_chunk_state(&item.key.sk)?;
                (state.state == ChunkPhase::Pending).then_some((number, state.items))
            })
            .collect();
        let outcomes: Vec<Result<bool, ApiError>> = stream::iter(pending)
            .map(|(number, items)| give_up(app, &record, number, items, ChunkPhase::Cancelled))
            .buffer_unordered(8)
            .collect()
            .await;
        for outcome in outcomes {
            outcome?;
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let record = load(app, &caller.account_id, &id).await?;
    finalize(app, &record).await?;
    Ok(load(app, &caller.account_id, &id).await?.view())
}

/// `POST /v1/batches/{id}/retry`: a new batch of the failed items of a finished batch, linked
/// to it, reserving quota like any submission.
pub async fn retry(
    app: &App,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
) -> Result<Submitted, ApiError> {
    let id = parse_id(id)?;
    let parent = load(app, &caller.account_id, &id).await?;
    let idempotency_key = idempotency::from_headers(headers)?;
    let request_hash = format!("retry:{id}");
    if let Some(replay) = replayed(app, caller, idempotency_key.as_deref(), &request_hash).await? {
        return Ok(replay);
    }
    let status = parent.status();
    if !status.is_final() {
        return Err(ApiError::Conflict(format!(
            "The batch is still {}; retry its failed items once it has finished.",
            status.as_str()
        )));
    }
    if parent.failed <= 0 {
        return Err(ApiError::Conflict(
            "The batch has no failed items to retry.".into(),
        ));
    }
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(
                keyspace::batch_lines(&id, keyspace::BATCH_FAILURES_PREFIX, None)
                    .with_limit(500)
                    .after(cursor),
            )
            .await?;
        for item in &page.items {
            let request = item
                .attrs
                .get("request")
                .cloned()
                .ok_or_else(|| ApiError::internal("a failed item has no request"))?;
            let mut request: BatchItem =
                serde_json::from_value(request).map_err(ApiError::internal)?;
            request.index = items.len() as u32;
            items.push(request);
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let submission = Submission {
        items,
        metadata: parent.metadata.clone(),
    };
    create(
        app,
        caller,
        submission,
        Some(id),
        idempotency_key.map(|key| (key, request_hash)),
    )
    .await
}
