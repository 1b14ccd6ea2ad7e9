//! The batch record (status and counts, never the items) and how the API shows it.
//!
//! Counts only grow, by the conditional transaction that settles a chunk, so they are exact
//! however often a chunk is delivered. The status is derived from them: a batch is finished
//! when every item is completed, failed or cancelled, and the one writer that then claims the
//! `finalized` counter (ceiling 1) fixes its final status and sends its event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use orrery::ids::{AccountId, BatchId, KeyId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::items::Operation;

/// Where a batch is in its life: `queued → in_progress → completed | partially_succeeded |
/// failed | cancelled | expired`, with `cancelling` while the items already running finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Queued,
    InProgress,
    Cancelling,
    Completed,
    PartiallySucceeded,
    Failed,
    Cancelled,
    Expired,
}

impl BatchStatus {
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            BatchStatus::Queued | BatchStatus::InProgress | BatchStatus::Cancelling
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Queued => "queued",
            BatchStatus::InProgress => "in_progress",
            BatchStatus::Cancelling => "cancelling",
            BatchStatus::Completed => "completed",
            BatchStatus::PartiallySucceeded => "partially_succeeded",
            BatchStatus::Failed => "failed",
            BatchStatus::Cancelled => "cancelled",
            BatchStatus::Expired => "expired",
        }
    }

    /// The event a batch ending in this status sends.
    pub fn event(self) -> Option<orrery::events::EventType> {
        use orrery::events::EventType;
        match self {
            BatchStatus::Completed | BatchStatus::PartiallySucceeded => {
                Some(EventType::BatchCompleted)
            }
            BatchStatus::Failed => Some(EventType::BatchFailed),
            BatchStatus::Cancelled => Some(EventType::BatchCancelled),
            BatchStatus::Expired => Some(EventType::BatchExpired),
            _ => None,
        }
    }
}

/// The stored record: `entities`, `ACCT#<account>` / `BATCH#<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub id: BatchId,
    pub account_id: AccountId,
    /// The key that submitted it: refunds go back to its per-key count.
    pub key_id: KeyId,
    pub total: u32,
    #[serde(default)]
    pub completed: i64,
    #[serde(default)]
    pub failed: i64,
    #[serde(default)]
    pub cancelled: i64,
    pub chunks: u32,
    pub unique_inputs: u32,
    pub operations: BTreeMap<Operation, u32>,
    pub created_at: DateTime<Utc>,
    /// The end of the window (`expires_at` in the API; the store owns that attribute name).
    #[serde(rename = "window_ends_at")]
    pub expires_at: DateTime<Utc>,
    /// The UTC day whose `batch_items` counter holds the reservation.
    pub quota_day: chrono::NaiveDate,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub parent_id: Option<BatchId>,
    /// The last time a chunk settled.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Set when unstarted items were given up because the window passed.
    #[serde(default)]
    pub expired: Option<bool>,
    /// 1 once the final status is fixed (a counter with ceiling 1: one writer wins).
    #[serde(default)]
    pub finalized: i64,
    #[serde(default)]
    pub final_status: Option<BatchStatus>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl BatchRecord {
    /// The endpoint whose request reserved this batch's units (its usage cells are booked
    /// there, refunds included).
    pub fn submitted_via(&self) -> &'static str {
        if self.parent_id.is_some() {
            "POST /v1/batches/{id}/retry"
        } else {
            "POST /v1/batches"
        }
    }

    /// When the record, its chunks and its results expire (unix seconds).
    pub fn keep_until(&self) -> i64 {
        (self.created_at + chrono::Duration::days(crate::RETENTION_DAYS)).timestamp()
    }

    pub fn settled(&self) -> i64 {
        self.completed + self.failed + self.cancelled
    }

    pub fn is_settled(&self) -> bool {
        self.settled() >= i64::from(self.total)
    }

    /// The status once every item is settled.
    pub fn settled_status(&self) -> BatchStatus {
        if self.cancelled > 0 && self.expired == Some(true) {
            BatchStatus::Expired
        } else if self.cancelled > 0 {
            BatchStatus::Cancelled
        } else if self.failed >= i64::from(self.total) {
            BatchStatus::Failed
        } else if self.failed > 0 {
            BatchStatus::PartiallySucceeded
        } else {
            BatchStatus::Completed
        }
    }

    pub fn status(&self) -> BatchStatus {
        if let Some(status) = self.final_status {
            return status;
        }
        if self.is_settled() {
            return self.settled_status();
        }
        if self.cancel_requested_at.is_some() {
            BatchStatus::Cancelling
        } else if self.settled() > 0 {
            BatchStatus::InProgress
        } else {
            BatchStatus::Queued
        }
    }

    pub fn view(&self) -> BatchView {
        let status = self.status();
        let done = self.completed + self.failed;
        let running = !status.is_final() && status != BatchStatus::Queued;
        let elapsed = self
            .updated_at
            .map(|at| (at - self.created_at).num_milliseconds() as f64 / 1000.0)
            .filter(|seconds| *seconds > 0.0);
        let items_per_second = match elapsed {
            Some(seconds) if done > 0 => Some(round2(done as f64 / seconds)),
            _ => None,
        };
        let eta_seconds = match items_per_second {
            Some(rate) if running && rate > 0.0 => {
                let left = (i64::from(self.total) - self.settled()).max(0) as f64;
                Some((left / rate).ceil() as u64)
            }
            _ if status.is_final() => Some(0),
            _ => None,
        };
        BatchView {
            id: self.id.clone(),
            status,
            counts: Counts {
                total: self.total,
                completed: self.completed.max(0) as u32,
                failed: self.failed.max(0) as u32,
                cancelled: self.cancelled.max(0) as u32,
            },
            unique_inputs: self.unique_inputs,
            operations: self.operations.clone(),
            created_at: orrery::clock::rfc3339(self.created_at),
            expires_at: orrery::clock::rfc3339(self.expires_at),
            cancel_requested_at: self.cancel_requested_at.map(orrery::clock::rfc3339),
            finished_at: self.finished_at.map(orrery::clock::rfc3339),
            items_per_second,
            eta_seconds,
            metadata: self.metadata.clone(),
            parent_id: self.parent_id.clone(),
            results_url: format!("/v1/batches/{}/results", self.id),
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Items by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub total: u32,
    pub completed: u32,
    pub failed: u32,
    /// Never started: the batch was cancelled or passed its window.
    pub cancelled: u32,
}

/// A batch as the API shows it (never its items or results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchView {
    #[schema(value_type = String, pattern = "^batch_[0-9a-hjkmnp-tv-z]{26}$")]
    pub id: BatchId,
    pub status: BatchStatus,
    pub counts: Counts,
    /// Distinct inputs among the items: identical inputs are computed once.
    pub unique_inputs: u32,
    /// Items per operation.
    #[schema(value_type = Object)]
    pub operations: BTreeMap<Operation, u32>,
    pub created_at: String,
    /// The end of the 24 h window: items not started by then are cancelled (`expired`).
    pub expires_at: String,
    pub cancel_requested_at: Option<String>,
    pub finished_at: Option<String>,
    /// Items completed or failed per second since submission.
    pub items_per_second: Option<f64>,
    /// Seconds until every item is settled at the current rate (0 once finished).
    pub eta_seconds: Option<u64>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// The batch this one retries.
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<BatchId>,
    /// Where the results stream (JSON Lines), available while the batch runs.
    pub results_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(total: u32, completed: i64, failed: i64, cancelled: i64) -> BatchRecord {
        let now = orrery::clock::now();
        BatchRecord {
            id: BatchId::generate(),
            account_id: AccountId::generate(),
            key_id: KeyId::generate(),
            total,
            completed,
            failed,
            cancelled,
            chunks: 1,
            unique_inputs: total,
            operations: BTreeMap::new(),
            created_at: now,
            expires_at: now,
            quota_day: now.date_naive(),
            metadata: Map::new(),
            parent_id: None,
            updated_at: None,
            cancel_requested_at: None,
            expired: None,
            finalized: 0,
            final_status: None,
            finished_at: None,
        }
    }

    #[test]
    fn the_status_follows_the_counts() {
        assert_eq!(record(10, 0, 0, 0).status(), BatchStatus::Queued);
        assert_eq!(record(10, 3, 1, 0).status(), BatchStatus::InProgress);
        assert_eq!(record(10, 10, 0, 0).status(), BatchStatus::Completed);
        assert_eq!(
            record(10, 9, 1, 0).status(),
            BatchStatus::PartiallySucceeded
        );
        assert_eq!(record(10, 0, 10, 0).status(), BatchStatus::Failed);
        assert_eq!(record(10, 4, 0, 6).status(), BatchStatus::Cancelled);
        let mut expired = record(10, 4, 0, 6);
        expired.expired = Some(true);
        assert_eq!(expired.status(), BatchStatus::Expired);
        let mut cancelling = record(10, 4, 0, 0);
        cancelling.cancel_requested_at = Some(orrery::clock::now());
        assert_eq!(cancelling.status(), BatchStatus::Cancelling);
    }
}
