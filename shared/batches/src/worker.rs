//! The batch worker: one queue message per chunk.
//!
//! A chunk's state moves `pending → running → done`, or `pending → cancelled | expired`, each
//! step a conditional write, so exactly one actor takes each step. Settling a chunk is one
//! transaction — the state `running → done`, the batch's counts, the refund of its failed
//! items — written after its result lines (deterministic keys: a rewrite is an overwrite). A
//! chunk delivered twice, or run again after a crash between the lines and the transaction,
//! therefore loses nothing and counts nothing twice. Whoever settles the last chunk claims the
//! batch's `finalized` counter (ceiling 1) and sends its one final event.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use orrery::access::QuotaClass;
use orrery::access::quota;
use orrery::consumer::{IncomingMessage, Outcome};
use orrery::ids::{AccountId, BatchId};
use orrery::store::{Condition, Increment, Item, StoreError, WriteOp, keyspace};
use orrery::{ApiError, App, clock};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::BatchItem;
use crate::plan::Chunk;
use crate::record::BatchRecord;
use crate::run::{ItemResult, run};

/// The queue message of one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub batch_id: BatchId,
    pub account_id: AccountId,
    pub chunk: u32,
    /// When the submission sent it: a message whose batch never committed is dropped later.
    pub sent_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkPhase {
    Pending,
    Running,
    Done,
    Cancelled,
    Expired,
}

impl ChunkPhase {
    fn as_str(self) -> &'static str {
        match self {
            ChunkPhase::Pending => "pending",
            ChunkPhase::Running => "running",
            ChunkPhase::Done => "done",
            ChunkPhase::Cancelled => "cancelled",
            ChunkPhase::Expired => "expired",
        }
    }
}

/// A chunk's state item (small: its transitions cost one write unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkState {
    pub state: ChunkPhase,
    /// How many items the chunk holds.
    pub items: u32,
}

impl ChunkState {
    pub fn pending(items: u32) -> Self {
        Self {
            state: ChunkPhase::Pending,
            items,
        }
    }
}

pub(crate) fn chunk_state_item(
    batch: &BatchId,
    number: u32,
    state: &ChunkState,
    keep_until: i64,
) -> Result<Item, StoreError> {
    Ok(
        Item::from_serializable(keyspace::batch_chunk_state(batch, number), state)?
            .expiring_at(keep_until),
    )
}

/// How long after its submission a chunk message may wait for its batch to appear.
const COMMIT_GRACE_MS: i64 = 60_000;
/// At most one `batch.progress` a second per batch.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Why a chunk could not be settled now: try again after this long.
#[derive(Debug)]
pub struct RetryLater(pub Duration);

impl From<ApiError> for RetryLater {
    fn from(err: ApiError) -> Self {
        tracing::warn!(error = %err, "batch chunk failed; it will be retried");
        RetryLater(Duration::from_secs(5))
    }
}

impl From<StoreError> for RetryLater {
    fn from(err: StoreError) -> Self {
        RetryLater::from(ApiError::from(err))
    }
}

/// The worker of one container: the domain side of the `batch-worker` function.
pub struct BatchWorker {
    app: App,
    /// When this container last sent a batch's progress (the store claim makes it global).
    progress_sent: Mutex<HashMap<BatchId, Instant>>,
}

impl BatchWorker {
    pub fn new(app: App) -> Self {
        Self {
            app,
            progress_sent: Mutex::new(HashMap::new()),
        }
    }

    pub async fn handle(&self, message: &IncomingMessage) -> Outcome {
        let chunk = match serde_json::from_str::<ChunkMessage>(&message.body) {
            Ok(chunk) => chunk,
            Err(err) => {
                // Not ours or corrupt: it reaches the dead-letter queue through the retries.
                tracing::error!(error = %err, "undecodable batch chunk message");
                return Outcome::Retry;
            }
        };
        match self.settle(&chunk, message.receive_count).await {
            Ok(()) => Outcome::Done,
            Err(RetryLater(delay)) => Outcome::RetryAfter(delay),
        }
    }

    async fn settle(&self, message: &ChunkMessage, receive_count: u32) -> Result<(), RetryLater> {
        let app = &self.app;
        let Some(record) = committed_record(app, message, receive_count).await? else {
            return Ok(());
        };
        let state_key = keyspace::batch_chunk_state(&record.id, message.chunk);
        for _ in 0..3 {
            let Some(item) = app.store.get_consistent(&state_key).await? else {
                tracing::warn!(batch_id = %record.id, chunk = message.chunk, "a chunk has no state; dropping its message");
                return Ok(());
            };
            let state: ChunkState = item.parse()?;
            match state.state {
                ChunkPhase::Done | ChunkPhase::Cancelled | ChunkPhase::Expired => break,
                ChunkPhase::Pending if record.cancel_requested_at.is_some() => {
                    give_up(
                        app,
                        &record,
                        message.chunk,
                        state.items,
                        ChunkPhase::Cancelled,
                    )
                    .await?;
                    break;
                }
                ChunkPhase::Pending if clock::now() >= record.expires_at => {
                    give_up(
                        app,
                        &record,
                        message.chunk,
                        state.items,
                        ChunkPhase::Expired,
                    )
                    .await?;
                    break;
                }
                ChunkPhase::Pending => {
                    let running = ChunkState {
                        state: ChunkPhase::Running,
                        ..state
                    };
                    let claim = app
                        .store
                        .put(
                            chunk_state_item(
                                &record.id,
                                message.chunk,
                                &running,
                                record.keep_until(),
                            )?,
                            Some(Condition::equals("state", ChunkPhase::Pending.as_str())),
                        )
                        .await;
                    match claim {
                        Ok(()) => {
                            self.run_chunk(&record, message.chunk, receive_count)
                                .await?;
                            break;
                        }
                        // Cancelled or taken meanwhile: look again.
                        Err(StoreError::ConditionFailed) => continue,
                        Err(err) => return Err(err.into()),
                    }
                }
                // Run before and not settled (a crash, or a visibility timeout that let a second
                // worker in): running it again writes the same lines; one settle counts.
                ChunkPhase::Running => {
                    self.run_chunk(&record, message.chunk, receive_count)
                        .await?;
                    break;
                }
            }
        }
        self.after_settling(&record.account_id, &record.id).await?;
        Ok(())
    }

    async fn run_chunk(
        &self,
        record: &BatchRecord,
        number: u32,
        receive_count: u32,
    ) -> Result<(), RetryLater> {
        let app = &self.app;
        let chunk: Chunk = app
            .store
            .get_consistent(&keyspace::batch_chunk_items(&record.id, number))
            .await?
            .ok_or_else(|| ApiError::internal("a running chunk has no items"))?
            .parse()?;
        let keep_until = record.keep_until();
        let last_attempt = receive_count >= orrery::app::BATCH_ITEMS_MAX_RECEIVES;
        // Identical inputs sit together in a chunk: each is computed once.
        let mut computed: HashMap<&str, ItemResult> = HashMap::new();
        for item in &chunk.items {
            if computed.contains_key(item.input_key.as_str()) {
                continue;
            }
            let result = match run(app, &record.account_id, item).await {
                Ok(result) => result,
                Err(err) if last_attempt => {
                    tracing::error!(error = %err, batch_id = %record.id, "a batch item failed on its last attempt");
                    ItemResult::Failed(ApiError::Internal(String::new()).problem())
                }
                Err(err) => {
                    tracing::warn!(error = %err, batch_id = %record.id, receive_count, "a batch item failed; the chunk will be retried");
                    return Err(RetryLater(backoff(receive_count)));
                }
            };
            computed.insert(item.input_key.as_str(), result);
            // An item is CPU work of tens of µs: let the requests sharing this runtime thread
            // (a status poll, a metered call) run between items instead of after the chunk.
            tokio::task::yield_now().await;
        }
        let mut lines = Vec::with_capacity(chunk.items.len() + 8);
        let (mut completed, mut failed) = (0u32, 0u32);
        for item in &chunk.items {
            let Some(result) = computed.get(item.input_key.as_str()) else {
                continue;
            };
            let line = result.line(&item.custom_id);
            if result.succeeded() {
                completed += 1;
            } else {
                failed += 1;
                lines.push(failure_item(&record.id, number, item, &line, keep_until)?);
            }
            lines.push(result_item(
                &record.id,
                number,
                item,
                &line,
                result.succeeded(),
                keep_until,
            )?);
            // Serialising and compressing a line costs about as much as computing a chart.
            tokio::task::yield_now().await;
        }
        app.store.put_many(lines).await?;

        let done = ChunkState {
            state: ChunkPhase::Done,
            items: chunk.items.len() as u32,
        };
        let mut ops = vec![
            WriteOp::Put {
                item: chunk_state_item(&record.id, number, &done, keep_until)?,
                condition: Some(Condition::equals("state", ChunkPhase::Running.as_str())),
            },
            WriteOp::Increment(
                Increment::new(
                    keyspace::batch(&record.account_id, &record.id),
                    "completed",
                    i64::from(completed),
                )
                .also_add("failed", i64::from(failed))
                .also_set("updated_at", clock::rfc3339(clock::now()).into()),
            ),
        ];
        if failed > 0 {
            ops.push(WriteOp::Increment(refund(app, record, failed)));
        }
        match app.store.transact(ops).await {
            Ok(()) => Ok(()),
            // Settled by another delivery of the same chunk: its counts stand.
            Err(StoreError::TransactionCanceled { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// After a chunk settles: the final status and event if it was the last, else progress.
    async fn after_settling(&self, account: &AccountId, batch: &BatchId) -> Result<(), RetryLater> {
        let record = current(&self.app, account, batch).await?;
        if record.is_settled() {
            self.forget_progress(batch);
            finalize(&self.app, &record).await?;
        } else {
            self.send_progress(&record).await?;
        }
        Ok(())
    }

    async fn send_progress(&self, record: &BatchRecord) -> Result<(), ApiError> {
        {
            let mut sent = self
                .progress_sent
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            if sent
                .get(&record.id)
                .is_some_and(|at| now.duration_since(*at) < PROGRESS_INTERVAL)
            {
                return Ok(());
            }
            sent.retain(|_, at| now.duration_since(*at) < Duration::from_secs(60));
            sent.insert(record.id.clone(), now);
        }
        // One claim per batch and second across every container.
        let second = clock::now_unix();
        let claim = Item::new(
            keyspace::batch_progress_claim(&record.id, second),
            serde_json::Map::new(),
        )
        .expiring_at(second + 3600);
        match self.app.store.put(claim, Some(Condition::NotExists)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        orrery::events::publish(
            &self.app,
            orrery::events::EventType::BatchProgress,
            &record.account_id,
            event_data(record),
        )
        .await;
        Ok(())
    }

    fn forget_progress(&self, batch: &BatchId) {
        self.progress_sent
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(batch);
    }
}

fn backoff(receive_count: u32) -> Duration {
    Duration::from_secs(match receive_count {
        0 | 1 => 1,
        2 => 5,
        3 => 15,
        _ => 30,
    })
}

/// The record, once the submission's transaction has committed; `None` drops the message (its
/// submission was refused or crashed before committing).
async fn committed_record(
    app: &App,
    message: &ChunkMessage,
    receive_count: u32,
) -> Result<Option<BatchRecord>, RetryLater> {
    let key = keyspace::batch(&message.account_id, &message.batch_id);
    // The message is sent just before the commit: wait a moment for it inline.
    for _ in 0..10 {
        if let Some(item) = app.store.get_consistent(&key).await? {
            return Ok(Some(item.parse()?));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if clock::now_millis() - message.sent_at_ms > COMMIT_GRACE_MS || receive_count >= 3 {
        tracing::info!(batch_id = %message.batch_id, "a chunk's batch was never committed; dropping the message");
        return Ok(None);
    }
    Err(RetryLater(Duration::from_secs(5)))
}

/// The record as it is now (strongly consistent).
pub(crate) async fn current(
    app: &App,
    account: &AccountId,
    batch: &BatchId,
) -> Result<BatchRecord, ApiError> {
    app.store
        .get_consistent(&keyspace::batch(account, batch))
        .await?
        .ok_or_else(|| ApiError::NotFound("No batch with this id.".into()))?
        .parse()
        .map_err(ApiError::from)
}

fn refund(app: &App, record: &BatchRecord, units: u32) -> Increment {
    quota::refund_units(
        &record.account_id,
        &record.key_id,
        QuotaClass::BatchItems,
        record.created_at,
        app.config.usage_cells_for(record.submitted_via()),
        units,
    )
}

/// Gives up a pending chunk (`cancelled` or `expired`): its items count as cancelled and give
/// their units back. Returns whether this call did it (another actor may have first).
pub(crate) async fn give_up(
    app: &App,
    record: &BatchRecord,
    number: u32,
    items: u32,
    reason: ChunkPhase,
) -> Result<bool, ApiError> {
    let keep_until = record.keep_until();
    let mut counts = Increment::new(
        keyspace::batch(&record.account_id, &record.id),
        "cancelled",
        i64::from(items),
    )
    .also_set("updated_at", clock::rfc3339(clock::now()).into());
    if reason == ChunkPhase::Expired {
        counts = counts.also_set("expired", Value::Bool(true));
    }
    let ops = vec![
        WriteOp::Put {
            item: chunk_state_item(
                &record.id,
                number,
                &ChunkState {
                    state: reason,
                    items,
                },
                keep_until,
            )?,
            condition: Some(Condition::equals("state", ChunkPhase::Pending.as_str())),
        },
        WriteOp::Increment(counts),
        WriteOp::Increment(refund(app, record, items)),
    ];
    match app.store.transact(ops).await {
        Ok(()) => Ok(true),
        Err(StoreError::TransactionCanceled { .. }) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Fixes the final status of a settled batch and sends its event, exactly once.
pub(crate) async fn finalize(app: &App, record: &BatchRecord) -> Result<(), ApiError> {
    if record.finalized > 0 || !record.is_settled() {
        return Ok(());
    }
    let status = record.settled_status();
    let now = clock::now();
    let claim = Increment::new(
        keyspace::batch(&record.account_id, &record.id),
        "finalized",
        1,
    )
    .with_ceiling(1)
    .also_set("final_status", status.as_str().into())
    .also_set("finished_at", clock::rfc3339(now).into());
    match app.store.increment(claim).await {
        Ok(_) => {}
        Err(StoreError::LimitExceeded { .. }) => return Ok(()),
        Err(err) => return Err(err.into()),
    }
    let finished = BatchRecord {
        finalized: 1,
        final_status: Some(status),
        finished_at: Some(now),
        ..record.clone()
    };
    if let Some(kind) = status.event() {
        orrery::events::publish(app, kind, &record.account_id, event_data(&finished)).await;
    }
    tracing::info!(batch_id = %record.id, status = status.as_str(), "batch finished");
    Ok(())
}

/// What `batch.*` events carry: the batch as `GET /v1/batches/{id}` shows it.
fn event_data(record: &BatchRecord) -> Value {
    serde_json::to_value(record.view()).unwrap_or(Value::Null)
}

fn result_item(
    batch: &BatchId,
    chunk: u32,
    item: &BatchItem,
    line: &str,
    succeeded: bool,
    keep_until: i64,
) -> Result<Item, StoreError> {
    let mut attrs = serde_json::Map::new();
    attrs.insert("line".into(), crate::run::pack_line(line));
    attrs.insert(
        "status".into(),
        if succeeded { "succeeded" } else { "failed" }.into(),
    );
    Ok(Item::new(keyspace::batch_result(batch, chunk, item.index), attrs).expiring_at(keep_until))
}

/// A failed item: its line (for `?status=failed`) and its request (for a retry).
fn failure_item(
    batch: &BatchId,
    chunk: u32,
    item: &BatchItem,
    line: &str,
    keep_until: i64,
) -> Result<Item, StoreError> {
    let mut attrs = serde_json::Map::new();
    attrs.insert("line".into(), crate::run::pack_line(line));
    attrs.insert("status".into(), "failed".into());
    attrs.insert(
        "request".into(),
        serde_json::to_value(item).map_err(|err| StoreError::Invalid(err.to_string()))?,
    );
    Ok(Item::new(keyspace::batch_failure(batch, chunk, item.index), attrs).expiring_at(keep_until))
}
