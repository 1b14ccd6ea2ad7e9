//! The embedded backend for `orrery-local`: one crash-safe [`redb`] file holding every table and
//! queue.
//!
//! Why redb: pure Rust (no C toolchain, builds anywhere Rust does), a single file, ACID
//! transactions with copy-on-write B-trees and checksummed commits (a crash leaves the last
//! committed state), MVCC reads that never block the writer, and an active maintainer.
//!
//! Writes go through one writer thread that **group-commits**: it takes every write waiting in its
//! channel, applies them in one transaction, makes it durable with a single fsync and only then
//! answers each caller. A caller is answered only after its write is on disk, so nothing
//! acknowledged is lost on a crash, and concurrent requests share the cost of the fsync.
//! Each write checks its conditions before changing anything, so a refused write leaves no trace in
//! the shared transaction.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Notify, oneshot};

use crate::clock;
use crate::ids;
use crate::queue::{self, OutgoingMessage, Queue, QueueError, ReceivedMessage};
use crate::store::{
    self, Condition, Cursor, Increment, IndexKey, Item, Key, Page, Partition, Query, Store,
    StoreError, Table, WriteOp,
};

type Bytes<'a> = &'a [u8];
const ENTITIES: TableDefinition<Bytes, Bytes> = TableDefinition::new("entities");
const ENTITIES_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("entities_gsi1");
const COUNTERS: TableDefinition<Bytes, Bytes> = TableDefinition::new("counters");
const COUNTERS_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("counters_gsi1");
const LOGS: TableDefinition<Bytes, Bytes> = TableDefinition::new("logs");
const LOGS_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("logs_gsi1");
/// Queue messages by `queue \0 id`.
const MESSAGES: TableDefinition<Bytes, Bytes> = TableDefinition::new("queue_messages");
/// Receive order: `queue \0 visible_at_ms (big-endian) id` → nothing.
const READY: TableDefinition<Bytes, ()> = TableDefinition::new("queue_ready");

/// The most writes one group commit takes, so one fsync never waits on an unbounded batch.
const MAX_GROUP: usize = 512;

fn tables(
    table: Table,
) -> (
    TableDefinition<'static, Bytes<'static>, Bytes<'static>>,
    TableDefinition<'static, Bytes<'static>, ()>,
) {
    match table {
        Table::Entities => (ENTITIES, ENTITIES_GSI1),
        Table::Counters => (COUNTERS, COUNTERS_GSI1),
        Table::Logs => (LOGS, LOGS_GSI1),
    }
}

fn backend<E: std::fmt::Display>(err: E) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// What a write job hands back: called after the commit with its outcome.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write job: applies itself to the shared transaction. `Err` means a storage failure, which
/// aborts the whole group (domain refusals travel inside the completion instead).
type Job = Box<dyn FnOnce(&WriteTransaction) -> Result<Completion, String> + Send>;

/// Counts of what the engine did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    pub reads: AtomicU64,
}

/// The shared database handle; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedDb {
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    /// Woken after every commit that made a queue message visible.
    queue_signal: Arc<Notify>,
    stats: Arc<EngineStats>,
}

impl EmbeddedDb {
    /// Opens (or creates) the database file; repairs it after a crash if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(backend)?;
        }
        let db = Database::create(path).map_err(|err| {
            StoreError::Backend(format!(
                "cannot open the embedded database {}: {err}",
                path.display()
            ))
        })?;
        Self::start(db)
    }

    /// A database in memory, for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(backend)?;
        Self::start(db)
    }

    fn start(db: Database) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        for table in Table::ALL {
            let (items, index) = tables(table);
            txn.open_table(items).map_err(backend)?;
            txn.open_table(index).map_err(backend)?;
        }
        txn.open_table(MESSAGES).map_err(backend)?;
        txn.open_table(READY).map_err(backend)?;
        txn.commit().map_err(backend)?;

        let db = Arc::new(db);
        let stats = Arc::new(EngineStats::default());
        let (writer, jobs) = mpsc::channel::<Job>();
        let thread_db = db.clone();
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("orrery-store-writer".into())
            .spawn(move || run_writer(&thread_db, &jobs, &thread_stats))
            .map_err(backend)?;
        Ok(Self {
            db,
            writer,
            queue_signal: Arc::new(Notify::new()),
            stats,
        })
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Runs `apply` inside the next group commit and answers once that commit is durable.
    async fn write<R, F>(&self, apply: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |txn| {
            let outcome = apply(txn);
            if let Err(StoreError::Backend(err)) = &outcome {
                return Err(err.clone());
            }
            Ok(Box::new(move |commit: Result<(), String>| {
                let _ = reply.send(commit.map_err(StoreError::Backend).and(outcome));
            }))
        });
        self.writer
            .send(job)
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        answer
            .await
            .map_err(|_| StoreError::Backend("the store writer dropped a write".into()))?
    }

    fn read<R>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let txn = self.db.begin_read().map_err(backend)?;
        read(&txn)
    }
}

fn run_writer(db: &Database, jobs: &mpsc::Receiver<Job>, stats: &EngineStats) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // A panic inside the engine (a corrupted page) fails this group's writes, whose callers
        // get an error; the writer lives on for the next group.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_group(db, group, stats)
        }))
        .is_err()
        {
            tracing::error!("the embedded store panicked during a commit; its writes failed");
        }
    }
}

fn commit_group(db: &Database, group: Vec<Job>, stats: &EngineStats) {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(err) => {
            // The jobs are dropped unanswered; their callers see "dropped a write".
            tracing::error!(error = %err, "embedded store cannot begin a write transaction");
            return;
        }
    };
    let mut completions = Vec::with_capacity(group.len());
    let mut failure = None;
    for job in group {
        if failure.is_some() {
            break;
        }
        match job(&txn) {
            Ok(completion) => completions.push(completion),
            Err(err) => failure = Some(err),
        }
    }
    let outcome = match failure {
        Some(err) => {
            let _ = txn.abort();
            Err(err)
        }
        None => txn.commit().map_err(|err| err.to_string()),
    };
    if let Err(err) = &outcome {
        tracing::error!(error = %err, "embedded store group commit failed");
    } else {
        stats.commits.fetch_add(1, Ordering::Relaxed);
    }
    for completion in completions {
        completion(outcome.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// Store

fn item_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(pk.len() + sk.len() + 1);
    key.extend_from_slice(pk.as_bytes());
    key.push(0);
    key.extend_from_slice(sk.as_bytes());
    key
}

fn index_entry_key(index: &IndexKey, key: &Key) -> Vec<u8> {
    let mut entry = item_key(&index.pk, &index.sk);
    entry.push(0);
    entry.extend_from_slice(&item_key(&key.pk, &key.sk));
    entry
}

/// Splits an index entry back into the item's (pk, sk); keys never contain NUL.
fn split_index_entry(entry: &[u8]) -> Option<(String, String, String, String)> {
    let mut parts = entry
        .split(|b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()).ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    ))
}

#[derive(Serialize, Deserialize)]
struct StoredItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<IndexKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    attrs: Map<String, Value>,
}

fn decode_item(key: Key, bytes: &[u8]) -> Result<Item, StoreError> {
    let stored: StoredItem = serde_json::from_slice(bytes).map_err(backend)?;
    Ok(Item {
        key,
        index: stored.index,
        expires_at: stored.expires_at,
        attrs: stored.attrs,
    })
}

fn encode_item(item: &Item) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredItem {
        index: item.index.clone(),
        expires_at: item.expires_at,
        attrs: item.attrs.clone(),
    })
    .map_err(backend)
}

/// Reads an unexpired item inside a write transaction.
fn current_item(txn: &WriteTransaction, key: &Key, now: i64) -> Result<Option<Item>, StoreError> {
    let table = txn.open_table(tables(key.table).0).map_err(backend)?;
    let found = table
        .get(item_key(&key.pk, &key.sk).as_slice())
        .map_err(backend)?;
    match found {
        Some(bytes) => {
            let item = decode_item(key.clone(), bytes.value())?;
            Ok((!item.is_expired(now)).then_some(item))
        }
        None => Ok(None),
    }
}

fn write_item(txn: &WriteTransaction, item: &Item) -> Result<(), StoreError> {
    remove_item(txn, &item.key)?;
    let (items, index) = tables(item.key.table);
    let bytes = encode_item(item)?;
    txn.open_table(items)
        .map_err(backend)?
        .insert(
            item_key(&item.key.pk, &item.key.sk).as_slice(),
            bytes.as_slice(),
        )
        .map_err(backend)?;
    if let Some(index_key) = &item.index {
        txn.open_table(index)
            .map_err(backend)?
            .insert(index_entry_key(index_key, &item.key).as_slice(), ())
            .map_err(backend)?;
    }
    Ok(())
}

/// Removes an item (expired or not) and its index entry; returns it.
fn remove_item(txn: &WriteTransaction, key: &Key) -> Result<Option<Item>, StoreError> {
    let (items, index) = tables(key.table);
    let previous = {
        let mut table = txn.open_table(items).map_err(backend)?;
        let removed = table
            .remove(item_key(&key.pk, &key.sk).as_slice())
            .map_err(backend)?;
        match removed {
            Some(bytes) => Some(decode_item(key.clone(), bytes.value())?),
            None => None,
        }
    };
    if let Some(index_key) = previous.as_ref().and_then(|item| item.index.as_ref()) {
        txn.open_table(index)
            .map_err(backend)?
            .remove(index_entry_key(index_key, key).as_slice())
            .map_err(backend)?;
    }
    Ok(previous)
}

fn counter_value(item: Option<&Item>, field: &str) -> Result<i64, StoreError> {
    match item.and_then(|item| item.attrs.get(field)) {
        None => Ok(0),
        Some(value) => value.as_i64().ok_or_else(|| {
            StoreError::Invalid(format!("attribute {field:?} is not an integer counter"))
        }),
    }
}

/// Applies an increment; the caller has checked nothing yet.
fn apply_increment(
    txn: &WriteTransaction,
    increment: &Increment,
    now: i64,
) -> Result<i64, StoreError> {
    let current = current_item(txn, &increment.key, now)?;
    let next = store::next_counter_value(
        counter_value(current.as_ref(), &increment.field)?,
        increment,
    )?;
    let mut item = current.unwrap_or_else(|| Item::new(increment.key.clone(), Map::new()));
    item.attrs
        .insert(increment.field.clone(), Value::from(next));
    for (field, by) in &increment.also_add {
        let value = counter_value(Some(&item), field)?.saturating_add(*by);
        item.attrs.insert(field.clone(), Value::from(value));
    }
    for (field, value) in &increment.also_set {
        item.attrs.insert(field.clone(), value.clone());
    }
    if increment.expires_at.is_some() {
        item.expires_at = increment.expires_at;
    }
    write_item(txn, &item)?;
    Ok(next)
}

fn check(condition: Option<&Condition>, current: Option<&Item>) -> Result<(), StoreError> {
    match condition {
        Some(condition) if !condition.holds(current) => Err(StoreError::ConditionFailed),
        _ => Ok(()),
    }
}

/// The embedded [`Store`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: EmbeddedDb,
}

impl EmbeddedStore {
    pub fn new(db: EmbeddedDb) -> Self {
        Self { db }
    }

    fn read_item(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let now = clock::now_unix();
        self.db.read(|txn| {
            let table = txn.open_table(tables(key.table).0).map_err(backend)?;
            match table
                .get(item_key(&key.pk, &key.sk).as_slice())
                .map_err(backend)?
            {
                Some(bytes) => {
                    let item = decode_item(key.clone(), bytes.value())?;
                    Ok((!item.is_expired(now)).then_some(item))
                }
                None => Ok(None),
            }
        })
    }

    fn query_table(&self, query: &Query, pk: &str) -> Result<Page, StoreError> {
        let now = clock::now_unix();
        let prefix = item_key(pk, query.sk_prefix.as_deref().unwrap_or(""));
        let mut upper = prefix.clone();
        upper.push(0xFF); // never part of UTF-8, so above every key with this prefix
        let cursor_key = query.cursor.as_ref().map(|c| item_key(&c.pk, &c.sk));
        let (lower, upper) = bounds(&prefix, &upper, cursor_key.as_deref(), query.descending);
        self.db.read(|txn| {
            let table = txn.open_table(tables(query.table).0).map_err(backend)?;
            let range = table.range::<&[u8]>((lower, upper)).map_err(backend)?;
            let mut items = Vec::new();
            let iter: Box<dyn Iterator<Item = _>> = if query.descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            for entry in iter {
                let (key, value) = entry.map_err(backend)?;
                let key_bytes = key.value();
                let split = key_bytes
                    .iter()
                    .position(|b| *b == 0)
                    .unwrap_or(key_bytes.len());
                let item_key = Key::new(
                    query.table,
                    String::from_utf8_lossy(&key_bytes[..split]).into_owned(),
                    String::from_utf8_lossy(key_bytes.get(split + 1..).unwrap_or_default())
                        .into_owned(),
                );
                let item = decode_item(item_key, value.value())?;
                if item.is_expired(now) {
                    continue;
                }
                items.push(item);
                if items.len() > query.limit {
                    break;
                }
            }
            Ok(Page::from_lookahead(items, query))
        })
    }

    fn query_index(&self, query: &Query, gsi1pk: &str) -> Result<Page, StoreError> {
        let now = clock::now_unix();
        let prefix = item_key(gsi1pk, query.sk_prefix.as_deref().unwrap_or(""));
        let mut upper = prefix.clone();
        upper.push(0xFF);
        let cursor_key = match &query.cursor {
            Some(Cursor {
                pk,
                sk,
                index: Some(index),
            }) => Some(index_entry_key(
                index,
                &Key::new(query.table, pk.clone(), sk.clone()),
            )),
            Some(_) => return Err(StoreError::InvalidCursor),
            None => None,
        };
        let (lower, upper) = bounds(&prefix, &upper, cursor_key.as_deref(), query.descending);
        self.db.read(|txn| {
            let (items_def, index_def) = tables(query.table);
            let index = txn.open_table(index_def).map_err(backend)?;
            let items_table = txn.open_table(items_def).map_err(backend)?;
            let range = index.range::<&[u8]>((lower, upper)).map_err(backend)?;
            let iter: Box<dyn Iterator<Item = _>> = if query.descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            let mut items = Vec::new();
            for entry in iter {
                let (entry, ()) = entry.map_err(backend).map(|(k, v)| (k, v.value()))?;
                let Some((_, _, pk, sk)) = split_index_entry(entry.value()) else {
                    return Err(StoreError::Backend("corrupt index entry".into()));
                };
                let Some(bytes) = items_table
                    .get(item_key(&pk, &sk).as_slice())
                    .map_err(backend)?
                else {
                    continue;
                };
                let item = decode_item(Key::new(query.table, pk, sk), bytes.value())?;
                if item.is_expired(now) {
                    continue;
                }
                items.push(item);
                if items.len() > query.limit {
                    break;
                }
            }
            Ok(Page::from_lookahead(items, query))
        })
    }
}

/// The scan bounds for a prefix, resuming after (or before, descending) the cursor.
fn bounds<'a>(
    prefix: &'a [u8],
    upper: &'a [u8],
    cursor: Option<&'a [u8]>,
    descending: bool,
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    match (cursor, descending) {
        (None, _) => (Bound::Included(prefix), Bound::Excluded(upper)),
        (Some(cursor), false) => (Bound::Excluded(cursor.max(prefix)), Bound::Excluded(upper)),
        (Some(cursor), true) => (Bound::Included(prefix), Bound::Excluded(cursor.min(upper))),
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        self.read_item(key)
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        item.validate()?;
        self.db
            .write(move |txn| {
                let now = clock::now_unix();
                check(
                    condition.as_ref(),
                    current_item(txn, &item.key, now)?.as_ref(),
                )?;
                write_item(txn, &item)
            })
            .await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        key.validate()?;
        let key = key.clone();
        self.db
            .write(move |txn| {
                let now = clock::now_unix();
                let current = current_item(txn, &key, now)?;
                check(condition.as_ref(), current.as_ref())?;
                remove_item(txn, &key)?;
                Ok(current)
            })
            .await
    }

    async fn increment(&self, increment: Increment) -> Result<i64, StoreError> {
        store::validate_increment(&increment)?;
        self.db
            .write(move |txn| apply_increment(txn, &increment, clock::now_unix()))
            .await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        store::validate_transaction(&ops)?;
        self.db
            .write(move |txn| {
                let now = clock::now_unix();
                // Check every condition first: a refused transaction writes nothing.
                let mut failed = Vec::new();
                for (position, op) in ops.iter().enumerate() {
                    let current = current_item(txn, op.key(), now)?;
                    let holds = match op {
                        WriteOp::Put { condition, .. } | WriteOp::Delete { condition, .. } => {
                            check(condition.as_ref(), current.as_ref()).is_ok()
                        }
                        WriteOp::Check { condition, .. } => condition.holds(current.as_ref()),
                        WriteOp::Increment(increment) => {
                            counter_value(current.as_ref(), &increment.field)
                                .and_then(|value| store::next_counter_value(value, increment))
                                .is_ok()
                                && increment.also_add.iter().all(|(field, _)| {
                                    counter_value(current.as_ref(), field).is_ok()
                                })
                        }
                    };
                    if !holds {
                        failed.push(position);
                    }
                }
                if !failed.is_empty() {
                    return Err(StoreError::TransactionCanceled { failed });
                }
                // Past the checks, any error is a storage failure: it aborts the whole group
                // commit, so no transaction is ever half applied.
                let apply = |op: &WriteOp| -> Result<(), StoreError> {
                    match op {
                        WriteOp::Put { item, .. } => write_item(txn, item),
                        WriteOp::Delete { key, .. } => remove_item(txn, key).map(drop),
                        WriteOp::Check { .. } => Ok(()),
                        WriteOp::Increment(increment) => {
                            apply_increment(txn, increment, now).map(drop)
                        }
                    }
                };
                for op in &ops {
                    apply(op).map_err(|err| {
                        StoreError::Backend(format!("transaction apply failed: {err}"))
                    })?;
                }
                Ok(())
            })
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        query.validate()?;
        match &query.partition {
            Partition::Table(pk) => self.query_table(&query, pk),
            Partition::Index(gsi1pk) => self.query_index(&query, gsi1pk),
        }
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

// ---------------------------------------------------------------------------------------------
// Queue

#[derive(Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    receive_count: u32,
    visible_at_ms: i64,
}

fn message_key(queue: &str, id: &str) -> Vec<u8> {
    item_key(queue, id)
}

fn ready_key(queue: &str, visible_at_ms: i64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.len() + id.len() + 9);
    key.extend_from_slice(queue.as_bytes());
    key.push(0);
    key.extend_from_slice(&(visible_at_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

fn parse_receipt(receipt: &str) -> Result<(&str, u32), QueueError> {
    let (id, count) = receipt.rsplit_once(':').ok_or(QueueError::InvalidReceipt)?;
    Ok((id, count.parse().map_err(|_| QueueError::InvalidReceipt)?))
}

fn queue_backend(err: StoreError) -> QueueError {
    match err {
        StoreError::Invalid(message) => QueueError::Invalid(message),
        other => QueueError::Backend(other.to_string()),
    }
}

fn put_message(
    txn: &WriteTransaction,
    queue: &str,
    id: &str,
    message: &StoredMessage,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(message).map_err(backend)?;
    txn.open_table(MESSAGES)
        .map_err(backend)?
        .insert(message_key(queue, id).as_slice(), bytes.as_slice())
        .map_err(backend)?;
    txn.open_table(READY)
        .map_err(backend)?
        .insert(ready_key(queue, message.visible_at_ms, id).as_slice(), ())
        .map_err(backend)?;
    Ok(())
}

fn take_message(
    txn: &WriteTransaction,
    queue: &str,
    id: &str,
) -> Result<Option<StoredMessage>, StoreError> {
    let removed = {
        let mut messages = txn.open_table(MESSAGES).map_err(backend)?;
        let removed = messages
            .remove(message_key(queue, id).as_slice())
            .map_err(backend)?;
        match removed {
            Some(bytes) => {
                Some(serde_json::from_slice::<StoredMessage>(bytes.value()).map_err(backend)?)
            }
            None => None,
        }
    };
    if let Some(message) = &removed {
        txn.open_table(READY)
            .map_err(backend)?
            .remove(ready_key(queue, message.visible_at_ms, id).as_slice())
            .map_err(backend)?;
    }
    Ok(removed)
}

/// Where a queue's messages go after too many receives.
#[derive(Debug, Clone)]
pub struct DeadLetterPolicy {
    pub queue: String,
    pub max_receives: u32,
}

/// The embedded [`Queue`]: messages persist in the same file as the store.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    name: String,
    dead_letters: Option<DeadLetterPolicy>,
}

impl EmbeddedQueue {
    pub fn new(
        db: EmbeddedDb,
        name: impl Into<String>,
        dead_letters: Option<DeadLetterPolicy>,
    ) -> Self {
        Self {
            db,
            name: name.into(),
            dead_letters,
        }
    }

    /// One receive attempt inside the writer; also moves over-received messages to the DLQ.
    async fn try_receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let queue = self.name.clone();
        let dead_letters = self.dead_letters.clone();
        let (received, moved) = self
            .db
            .write(move |txn| {
                let now = clock::now_millis();
                let due: Vec<(i64, String)> = {
                    let ready = txn.open_table(READY).map_err(backend)?;
                    let lower = ready_key(&queue, 0, "");
                    let upper = ready_key(&queue, now.saturating_add(1), "");
                    let mut due = Vec::new();
                    for entry in ready
                        .range::<&[u8]>(lower.as_slice()..upper.as_slice())
                        .map_err(backend)?
                    {
                        let (key, ()) = entry.map_err(backend).map(|(k, v)| (k, v.value()))?;
                        let bytes = key.value();
                        let at = queue.len() + 1;
                        let visible_at = bytes
                            .get(at..at + 8)
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map_or(0, u64::from_be_bytes)
                            as i64;
                        let id = String::from_utf8_lossy(bytes.get(at + 8..).unwrap_or_default())
                            .into_owned();
                        due.push((visible_at, id));
                        if due.len() >= max * 4 {
                            break;
                        }
                    }
                    due
                };
                let mut received = Vec::new();
                let mut moved = false;
                for (_, id) in due {
                    if received.len() >= max {
                        break;
                    }
                    let Some(mut message) = take_message(txn, &queue, &id)? else {
                        continue;
                    };
                    match &dead_letters {
                        // SQS semantics: a receive past maxReceiveCount moves the message instead.
                        Some(policy) if message.receive_count >= policy.max_receives => {
                            message.visible_at_ms = now;
                            put_message(txn, &policy.queue, &id, &message)?;
                            moved = true;
                            continue;
                        }
                        _ => {}
                    }
                    message.receive_count += 1;
                    message.visible_at_ms = now.saturating_add(visibility.as_millis() as i64);
                    put_message(txn, &queue, &id, &message)?;
                    received.push(ReceivedMessage {
                        receipt: format!("{id}:{}", message.receive_count),
                        id,
                        body: message.body,
                        receive_count: message.receive_count,
                    });
                }
                Ok((received, moved))
            })
            .await
            .map_err(queue_backend)?;
        if moved {
            self.db.queue_signal.notify_waiters();
        }
        Ok(received)
    }

    /// When the earliest hidden or delayed message of this queue becomes visible.
    fn next_visible_at(&self) -> Result<Option<i64>, QueueError> {
        let lower = ready_key(&self.name, 0, "");
        let upper = ready_key(&self.name, i64::MAX, "");
        self.db
            .read(|txn| {
                let ready = txn.open_table(READY).map_err(backend)?;
                let mut range = ready
                    .range::<&[u8]>(lower.as_slice()..upper.as_slice())
                    .map_err(backend)?;
                let Some(first) = range.next() else {
                    return Ok(None);
                };
                let (key, ()) = first.map_err(backend).map(|(k, v)| (k, v.value()))?;
                let at = self.name.len() + 1;
                Ok(key
                    .value()
                    .get(at..at + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| u64::from_be_bytes(b) as i64))
            })
            .map_err(queue_backend)
    }

    /// Changes visibility of the message behind `receipt`, if the receipt is current.
    async fn update_message(
        &self,
        receipt: &str,
        delete: bool,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let (queue, id) = (self.name.clone(), id.to_owned());
        let made_visible = visibility.is_zero() && !delete;
        self.db
            .write(move |txn| {
                let Some(mut message) = take_message(txn, &queue, &id)? else {
                    // Deleting twice is not an error (as in SQS); hiding a deleted message is.
                    return if delete {
                        Ok(())
                    } else {
                        Err(StoreError::Invalid("receipt".into()))
                    };
                };
                if message.receive_count != count {
                    put_message(txn, &queue, &id, &message)?;
                    return Err(StoreError::ConditionFailed);
                }
                if !delete {
                    message.visible_at_ms =
                        clock::now_millis().saturating_add(visibility.as_millis() as i64);
                    put_message(txn, &queue, &id, &message)?;
                }
                Ok(())
            })
            .await
            .map_err(|err| match err {
                StoreError::ConditionFailed | StoreError::Invalid(_) => QueueError::InvalidReceipt,
                other => QueueError::Backend(other.to_string()),
            })?;
        if made_visible {
            self.db.queue_signal.notify_waiters();
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        let mut ids = self.send_batch(vec![message]).await?;
        ids.pop()
            .ok_or_else(|| QueueError::Backend("no message id".into()))
    }

    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, QueueError> {
        queue::validate_outgoing(&messages)?;
        let queue = self.name.clone();
        let ids = self
            .db
            .write(move |txn| {
                let now = clock::now_millis();
                let mut ids = Vec::with_capacity(messages.len());
                for message in messages {
                    let id = ids::new_id("msg");
                    let stored = StoredMessage {
                        body: message.body,
                        receive_count: 0,
                        visible_at_ms: now.saturating_add(message.delay.as_millis() as i64),
                    };
                    put_message(txn, &queue, &id, &stored)?;
                    ids.push(id);
                }
                Ok(ids)
            })
            .await
            .map_err(queue_backend)?;
        self.db.queue_signal.notify_waiters();
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        queue::validate_receive(max, visibility, wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a send in between is not missed.
            let signal = self.db.queue_signal.clone();
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let received = self.try_receive(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            // Sleep until a send, the next hidden message reappearing, or the deadline.
            let mut wake = deadline;
            if let Some(at_ms) = self.next_visible_at()? {
                let until = Duration::from_millis((at_ms - clock::now_millis()).max(1) as u64);
                wake = wake.min(now + until);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        if visibility > queue::MAX_VISIBILITY {
            return Err(QueueError::Invalid("visibility is at most 12 hours".into()));
        }
        self.update_message(receipt, false, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.update_message(receipt, true, Duration::ZERO).await
    }

    async fn delete_batch(&self, receipts: Vec<String>) -> Vec<String> {
        let queue = self.name.clone();
        let parsed: Vec<(String, Option<(String, u32)>)> = receipts
            .iter()
            .map(|receipt| {
                let parsed = parse_receipt(receipt)
                    .ok()
                    .map(|(id, count)| (id.to_owned(), count));
                (receipt.clone(), parsed)
            })
            .collect();
        let result = self
            .db
            .write(move |txn| {
                let mut failed = Vec::new();
                for (receipt, parsed) in parsed {
                    let Some((id, count)) = parsed else {
                        failed.push(receipt);
                        continue;
                    };
                    // Gone already: deleting twice is not an error (as in SQS).
                    if let Some(message) = take_message(txn, &queue, &id)?
                        && message.receive_count != count
                    {
                        // Received again since: the receipt is stale, the message stays.
                        put_message(txn, &queue, &id, &message)?;
                        failed.push(receipt);
                    }
                }
                Ok(failed)
            })
            .await;
        match result {
            Ok(failed) => failed,
            Err(err) => {
                tracing::warn!(error = %err, "could not delete a batch of messages");
                receipts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_batch_delete_skips_stale_and_malformed_receipts_and_deletes_the_rest() {
        let queue = EmbeddedQueue::new(EmbeddedDb::in_memory().unwrap(), "q", None);
        queue
            .send_batch(vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")])
            .await
            .unwrap();
        let first = queue
            .receive(10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first.len(), 2);
        // Visible again at once: receiving again makes the first receipts stale.
        let second = queue
            .receive(1, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        let stale = first
            .iter()
            .find(|m| m.id == second[0].id)
            .unwrap()
            .receipt
            .clone();
        let current = first
            .iter()
            .find(|m| m.id != second[0].id)
            .unwrap()
            .receipt
            .clone();
        let failed = queue
            .delete_batch(vec![stale.clone(), current, "garbage".into()])
            .await;
        assert_eq!(failed, [stale, "garbage".to_owned()]);
        // The re-received message survives under its current receipt; the other is gone.
        assert!(
            queue
                .delete_batch(vec![second[0].receipt.clone()])
                .await
                .is_empty()
        );
        assert!(
            queue
                .receive(10, Duration::ZERO, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_transaction_failing_while_applying_leaves_no_trace() {
        let store = EmbeddedStore::new(EmbeddedDb::in_memory().unwrap());
        let counter = Key::new(Table::Counters, "a", "counter");
        let mut attrs = Map::new();
        attrs.insert("count".into(), json!(1));
        attrs.insert("key#x".into(), json!("not a number"));
        store
            .put(Item::new(counter.clone(), attrs), None)
            .await
            .unwrap();
        let other = Item::new(Key::new(Table::Entities, "a", "other"), Map::new());
        let result = store
            .transact(vec![
                WriteOp::Put {
                    item: other.clone(),
                    condition: None,
                },
                WriteOp::Increment(Increment::new(counter, "count", 1).also_add("key#x", 1)),
            ])
            .await;
        assert!(result.is_err());
        assert_eq!(
            store.get(&other.key).await.unwrap(),
            None,
            "the put of the failed transaction was not committed"
        );
    }
}
