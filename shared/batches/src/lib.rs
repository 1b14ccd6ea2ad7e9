//! Batch jobs: thousands of chart operations in one request.
//!
//! A submission is validated item by item ([`items`]) before anything is accepted, split into
//! chunks ([`plan`]) whose identical inputs sit together, stored, queued one message per chunk,
//! and committed in one transaction with the quota reservation (one `batch_items` unit per
//! item, all or none) and the `Idempotency-Key` claim ([`submit`]). The batch worker runs a
//! chunk, writes its result lines and settles its counts in one conditional transaction, so a
//! chunk delivered twice is counted once ([`worker`]). Results stream as JSON Lines while the
//! batch runs ([`results`]); cancel, retry, listing and status are in [`control`].
//!
//! Storage (docs/data-model.md): the batch record in `entities` under its account
//! (`ACCT#…`/`BATCH#…`); chunks, chunk states and result lines in `logs` under `BATCH#…`, all
//! expiring [`RETENTION_DAYS`] after submission.

pub mod control;
pub mod items;
pub mod plan;
pub mod record;
pub mod results;
pub mod run;
pub mod submit;
pub mod worker;

pub use items::{BatchItem, Operation};
pub use record::{BatchRecord, BatchStatus, BatchView, Counts};

/// How long a batch's record, items and results are kept.
pub const RETENTION_DAYS: i64 = 29;
