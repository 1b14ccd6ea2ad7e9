//! The embedded engine for `orrery-local`: one crash-safe [`redb`] file holding every table and
//! queue, written by one group-committing writer thread. The [`Store`](crate::store::Store) and
//! [`Queue`](crate::queue::Queue) on it are `store::embedded` and `queue::embedded`.
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

use std::path::Path;
use std::sync::Arc;

use std::sync::mpsc;

use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};
use tokio::sync::{Notify, oneshot};

use crate::store::{StoreError, Table};

pub(crate) type Bytes<'a> = &'a [u8];
pub(crate) const ENTITIES: TableDefinition<Bytes, Bytes> = TableDefinition::new("entities");
pub(crate) const ENTITIES_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("entities_gsi1");
pub(crate) const COUNTERS: TableDefinition<Bytes, Bytes> = TableDefinition::new("counters");
pub(crate) const COUNTERS_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("counters_gsi1");
pub(crate) const LOGS: TableDefinition<Bytes, Bytes> = TableDefinition::new("logs");
pub(crate) const LOGS_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("logs_gsi1");
/// Queue messages by `queue \0 id`.
pub(crate) const MESSAGES: TableDefinition<Bytes, Bytes> = TableDefinition::new("queue_messages");
/// Receive order: `queue \0 visible_at_ms (big-endian) id` → nothing.
pub(crate) const READY: TableDefinition<Bytes, ()> = TableDefinition::new("queue_ready");

/// The most writes one group commit takes, so one fsync never waits on an unbounded batch.
const MAX_GROUP: usize = 512;

pub(crate) fn tables(
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

pub(crate) fn backend<E: std::fmt::Display>(err: E) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// What a write job hands back: called after the commit with its outcome.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write job: applies itself to the shared transaction. `Err` means a storage failure, which
/// aborts the whole group (domain refusals travel inside the completion instead).
type Job = Box<dyn FnOnce(&WriteTransaction) -> Result<Completion, String> + Send>;

/// The shared database handle; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedDb {
    db: Arc<Database>,
    writer: mpsc::Sender<Job>,
    /// Woken after every commit that made a queue message visible.
    pub(crate) queue_signal: Arc<Notify>,
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
        let (writer, jobs) = mpsc::channel::<Job>();
        let thread_db = db.clone();
        std::thread::Builder::new()
            .name("orrery-store-writer".into())
            .spawn(move || run_writer(&thread_db, &jobs))
            .map_err(backend)?;
        Ok(Self {
            db,
            writer,
            queue_signal: Arc::new(Notify::new()),
        })
    }

    /// Runs `apply` inside the next group commit and answers once that commit is durable.
    pub(crate) async fn write<R, F>(&self, apply: F) -> Result<R, StoreError>
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
        answer
            .await
            .map_err(|_| StoreError::Backend("the store writer dropped a write".into()))?
    }

    pub(crate) fn read<R>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        read(&txn)
    }
}

fn run_writer(db: &Database, jobs: &mpsc::Receiver<Job>) {
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
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit_group(db, group)))
            .is_err()
        {
            tracing::error!("the embedded store panicked during a commit; its writes failed");
        }
    }
}

fn commit_group(db: &Database, group: Vec<Job>) {
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
    }
    for completion in completions {
        completion(outcome.clone());
    }
}

pub(crate) fn item_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(pk.len() + sk.len() + 1);
    key.extend_from_slice(pk.as_bytes());
    key.push(0);
    key.extend_from_slice(sk.as_bytes());
    key
}
