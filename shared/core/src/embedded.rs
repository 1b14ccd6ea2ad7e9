//! The embedded engine for `orrery-local`: crash-safe [`redb`] files, each written by one
//! group-committing writer thread. The [`Store`](crate::store::Store) and
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
//!
//! There are two files, each with its own writer: the main one (every table but
//! [`Table::Bulk`], and the queues) and the bulk one ([`Table::Bulk`]: batch inputs and result
//! lines, hundreds of kilobytes a chunk). With one writer, a request's one small write (a quota
//! counter) waited behind the batch workers' large commits; with two, it never does. Bulk items
//! are never part of a transaction (the store refuses it), so no write needs both files.

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
pub(crate) const BULK: TableDefinition<Bytes, Bytes> = TableDefinition::new("bulk");
pub(crate) const BULK_GSI1: TableDefinition<Bytes, ()> = TableDefinition::new("bulk_gsi1");
pub(crate) const CONNECTIONS: TableDefinition<Bytes, Bytes> = TableDefinition::new("connections");
pub(crate) const CONNECTIONS_GSI1: TableDefinition<Bytes, ()> =
    TableDefinition::new("connections_gsi1");
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
        Table::Bulk => (BULK, BULK_GSI1),
        Table::Connections => (CONNECTIONS, CONNECTIONS_GSI1),
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

/// One redb file and the writer thread that commits to it.
#[derive(Clone)]
struct Engine {
    db: Arc<Database>,
    writer: Arc<Writer>,
}

/// The writer thread's channel. Dropping the last handle closes the channel and waits for the
/// thread to finish its group and let go of the file, so the file can be opened again at once.
struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Engine {
    fn open(path: &Path, name: &str) -> Result<Database, StoreError> {
        Database::create(path).map_err(|err| {
            StoreError::Backend(format!("cannot open the {name} {}: {err}", path.display()))
        })
    }

    fn in_memory() -> Result<Database, StoreError> {
        Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(backend)
    }

    /// Creates `tables_held` (and their indexes, and the queues' tables if `with_queues`) and
    /// starts the writer thread.
    fn start(
        db: Database,
        tables_held: &[Table],
        with_queues: bool,
        thread: &str,
    ) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        for table in tables_held {
            let (items, index) = tables(*table);
            txn.open_table(items).map_err(backend)?;
            txn.open_table(index).map_err(backend)?;
        }
        if with_queues {
            txn.open_table(MESSAGES).map_err(backend)?;
            txn.open_table(READY).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;

        let db = Arc::new(db);
        let (writer, jobs) = mpsc::channel::<Job>();
        let thread_db = db.clone();
        let thread = std::thread::Builder::new()
            .name(thread.into())
            .spawn(move || run_writer(&thread_db, &jobs))
            .map_err(backend)?;
        Ok(Self {
            db,
            writer: Arc::new(Writer {
                jobs: Some(writer),
                thread: Some(thread),
            }),
        })
    }

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
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Backend("the store writer has stopped".into()))?
            .send(job)
            .map_err(|_| StoreError::Backend("the store writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the store writer dropped a write".into()))?
    }

    fn read<R>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        read(&txn)
    }
}

/// The tables of the main file.
const MAIN_TABLES: [Table; 4] = [
    Table::Entities,
    Table::Counters,
    Table::Logs,
    Table::Connections,
];

/// The shared database handle; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedDb {
    main: Engine,
    bulk: Engine,
    /// Woken after every commit that made a queue message visible.
    pub(crate) queue_signal: Arc<Notify>,
}

impl EmbeddedDb {
    /// Opens (or creates) the database at `path` and its bulk file beside it
    /// ([`EmbeddedDb::bulk_path`]); repairs them after a crash if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(backend)?;
        }
        Self::start(
            Engine::open(path, "embedded database")?,
            Engine::open(&Self::bulk_path(path), "embedded bulk database")?,
        )
    }

    /// The bulk file of the database at `path`: `orrery.redb` → `orrery-bulk.redb`.
    pub fn bulk_path(path: &Path) -> std::path::PathBuf {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!("{stem}-bulk.redb"))
    }

    /// A database in memory, for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::start(Engine::in_memory()?, Engine::in_memory()?)
    }

    fn start(main: Database, bulk: Database) -> Result<Self, StoreError> {
        Ok(Self {
            main: Engine::start(main, &MAIN_TABLES, true, "orrery-store-writer")?,
            bulk: Engine::start(bulk, &[Table::Bulk], false, "orrery-bulk-writer")?,
            queue_signal: Arc::new(Notify::new()),
        })
    }

    fn engine(&self, table: Table) -> &Engine {
        match table {
            Table::Bulk => &self.bulk,
            Table::Entities | Table::Counters | Table::Logs | Table::Connections => &self.main,
        }
    }

    /// Runs `apply` inside the next group commit of the main file (tables other than
    /// [`Table::Bulk`], and the queues) and answers once that commit is durable.
    pub(crate) async fn write<R, F>(&self, apply: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        self.main.write(apply).await
    }

    /// Runs `apply` inside the next group commit of the file holding `table`.
    pub(crate) async fn write_in<R, F>(&self, table: Table, apply: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        self.engine(table).write(apply).await
    }

    /// Reads from a snapshot of the main file.
    pub(crate) fn read<R>(
        &self,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.main.read(read)
    }

    /// Reads from a snapshot of the file holding `table`.
    pub(crate) fn read_in<R>(
        &self,
        table: Table,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.engine(table).read(read)
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
