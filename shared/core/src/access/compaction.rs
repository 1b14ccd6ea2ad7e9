//! Keeps a day's quota counter small. Every admission adds to the counter's hour × endpoint cells
//! (`analytics::cells`) and sets its key's `key#<id>` / `last#<id>`; left there all day, a busy
//! account's counter passes 1 KB and each of its increments is billed 2–3 write units, since
//! DynamoDB bills an `UpdateItem` on the larger of the item before and after.
//!
//! So when an admission is billed more than one write unit (the counter passed 1 KB), the
//! container moves — at most once an hour per account × class — what no current write touches — the cells of past hours, and the key fields of keys not used this
//! hour — out of the counter into hour items beside it (`QUOTA#<day>#<class>#h<HH>`), in one
//! transaction: the counter's attributes are removed only if each still holds the value read
//! (a late refund in between cancels it, and it is read and tried again), and the hour items
//! ADD them. Every reader already adds up all the items of a day and class (counter, blocks and
//! hour items), so usage, analytics and the roll-up read the same totals before and after.
//!
//! The counter then holds `count`, `allocated`, the current hour's cells and the key fields of
//! the keys used this hour: at most 5 cells per route the account called this hour and 2 fields
//! per key it used this hour, whatever the time of day.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use serde_json::Value;

use super::tiers::QuotaClass;
use crate::analytics::cells;
use crate::ids::AccountId;
use crate::store::{Increment, Store, StoreError, WriteOp, keyspace};

/// How often a compaction is read and tried again when concurrent writes keep changing what it
/// moves (each try is one strongly consistent read and one transaction).
const TRIES: usize = 3;

/// The attribute every hour item counts its moves in (its increment needs one number).
pub const MOVES: &str = "moves";

/// Which account × class this container already compacted in the current hour.
#[derive(Debug, Default)]
pub struct CompactionMarks {
    done: Mutex<HashMap<(AccountId, QuotaClass), i64>>,
}

/// Entries kept before the marks of past hours are dropped.
const MARKS_KEPT: usize = 10_000;

impl CompactionMarks {
    /// Whether this is the container's first admission for `account` × `class` in `now`'s hour
    /// (and so whether to compact); it is then marked.
    pub fn first_in_hour(
        &self,
        account: &AccountId,
        class: QuotaClass,
        now: DateTime<Utc>,
    ) -> bool {
        let hour = now.timestamp().div_euclid(3600);
        let Ok(mut done) = self.done.lock() else {
            return false;
        };
        if done.get(&(account.clone(), class)) == Some(&hour) {
            return false;
        }
        if done.len() >= MARKS_KEPT {
            done.retain(|_, marked| *marked == hour);
        }
        done.insert((account.clone(), class), hour);
        true
    }
}

/// After an admission on the counter at `now` that was billed more than one write unit: compacts
/// the counter, unless this container already did this hour for the account × class (what is
/// left is then the current hour's, which no compaction moves). A failure is logged, never the
/// request's.
pub async fn after_admission(
    app: &crate::App,
    account: &AccountId,
    class: QuotaClass,
    now: DateTime<Utc>,
) {
    // At 00h the day's counter is new: nothing of an earlier hour is on it.
    if now.hour() == 0 || !app.compaction_marks.first_in_hour(account, class, now) {
        return;
    }
    if let Err(err) = compact(app.store.as_ref(), account, class, now).await {
        tracing::warn!(error = %err, %account, class = class.as_str(), "could not compact the quota counter");
    }
}

/// How many attributes one transaction moves at most: each is a condition term and an ADD term,
/// and DynamoDB allows 300 operators in an expression (the aggregator's flush keeps to 80).
const MOVES_PER_TRANSACTION: usize = 60;

/// Moves the attributes of `now`'s day counter that belong to earlier hours into the hour items,
/// in transactions of at most [`MOVES_PER_TRANSACTION`], each read afresh: how many moved.
pub async fn compact(
    store: &dyn Store,
    account: &AccountId,
    class: QuotaClass,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let window = super::quota::Window::containing(now);
    let counter = super::quota::counter_key(account, window.day, class);
    let mut moved = 0;
    let mut failures = 0;
    loop {
        let Some(item) = store.get_consistent(&counter).await? else {
            return Ok(moved);
        };
        let mut moves = plan(&item.attrs, now);
        if moves.is_empty() {
            return Ok(moved);
        }
        moves.truncate(MOVES_PER_TRANSACTION);
        let count = moves.len();
        match store
            .transact(transaction(&counter, account, class, &window, moves))
            .await
        {
            Ok(()) => moved += count,
            // A refund changed a moved value (cancelled), or an admission held the counter at
            // that moment (a conflict): read again and retry, a few times.
            Err(StoreError::TransactionCanceled { .. } | StoreError::Throttled(_))
                if failures + 1 < TRIES =>
            {
                failures += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// One transaction: the moved attributes removed from the counter if unchanged, and added to
/// their hour items.
fn transaction(
    counter: &crate::store::Key,
    account: &AccountId,
    class: QuotaClass,
    window: &super::quota::Window,
    moves: Vec<Move>,
) -> Vec<WriteOp> {
    let mut into_hours: BTreeMap<u32, Vec<(String, Moved)>> = BTreeMap::new();
    let mut removed = Vec::with_capacity(moves.len());
    for Move {
        name,
        read,
        hour,
        moved,
    } in moves
    {
        if let Some(moved) = moved {
            into_hours
                .entry(hour)
                .or_default()
                .push((name.clone(), moved));
        }
        removed.push((name, read));
    }
    let mut ops = vec![WriteOp::RemoveUnchanged {
        key: counter.clone(),
        attributes: removed,
    }];
    for (hour, into) in into_hours {
        let mut increment = Increment::new(
            keyspace::quota_hour(account, window.day, class.as_str(), hour),
            MOVES,
            1,
        )
        .expiring_at(window.expires_counter_at());
        for (name, value) in into {
            increment = match value {
                Moved::Add(by) => increment.also_add(name, by),
                Moved::Set(value) => increment.also_set(name, value),
            };
        }
        ops.push(WriteOp::Increment(increment));
    }
    ops
}

/// What one attribute adds to its hour item.
#[derive(Debug, Clone, PartialEq)]
enum Moved {
    Add(i64),
    Set(Value),
}

/// One attribute leaving the counter: its value as read (the removal's condition), the hour
/// item it goes to, and what it adds there (nothing for a zero).
#[derive(Debug, Clone, PartialEq)]
struct Move {
    name: String,
    read: Value,
    hour: u32,
    moved: Option<Moved>,
}

/// What of the counter's attributes belongs to an earlier hour, and where each goes. A key's
/// `key#` and `last#` are next to each other, so a transaction's cut never parts them far.
fn plan(attrs: &serde_json::Map<String, Value>, now: DateTime<Utc>) -> Vec<Move> {
    let hour_start = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let this_hour = now.hour();
    let previous_hour = this_hour.saturating_sub(1);
    let mut plan = Vec::new();
    let mut receive = |hour: u32, name: &str, value: &Value, moved: Option<Moved>| {
        plan.push(Move {
            name: name.to_owned(),
            read: value.clone(),
            hour,
            moved,
        });
    };
    // A number moves by ADD; a zero is only removed.
    let added = |value: &Value| value.as_i64().filter(|n| *n != 0).map(Moved::Add);
    for (name, value) in attrs {
        if let Some(cell) = cells::parse(name) {
            if cell.hour < this_hour && value.is_i64() {
                receive(cell.hour, name, value, added(value));
            }
            continue;
        }
        if let Some(key_id) = name.strip_prefix("key#") {
            let last = attrs
                .get(&format!("last#{key_id}"))
                .and_then(Value::as_str)
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc));
            match last {
                // Used this hour: its fields change with every request. Left in place.
                Some(at) if at >= hour_start => {}
                Some(at) => {
                    let hour = if at.date_naive() == hour_start.date_naive() {
                        at.hour()
                    } else {
                        0
                    };
                    receive(hour, name, value, added(value));
                    let last_name = format!("last#{key_id}");
                    if let Some(last_value) = attrs.get(&last_name) {
                        receive(
                            hour,
                            &last_name,
                            last_value,
                            Some(Moved::Set(last_value.clone())),
                        );
                    }
                }
                // A refund after an earlier move re-created the count alone.
                None if value.is_i64() => receive(previous_hour, name, value, added(value)),
                None => {}
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn past_hours_and_idle_keys_move_the_current_hour_stays() {
        let attrs = json!({
            "count": 9, "allocated": 0,
            "03|POST /v1/charts|units": 4, "03|POST /v1/charts|2xx": 4,
            "03|POST /v1/charts|4xx": 0,
            "05|POST /v1/charts|units": 5,
            "key#k_old": 4, "last#k_old": "2026-12-07T03:59:00Z",
            "key#k_busy": 5, "last#k_busy": "2026-12-07T05:00:10Z",
            "key#k_refunded": -1,
        });
        let plan = plan(attrs.as_object().unwrap(), at("2026-12-07T05:30:00Z"));
        let mut removed: Vec<&str> = plan.iter().map(|m| m.name.as_str()).collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                "03|POST /v1/charts|2xx",
                "03|POST /v1/charts|4xx",
                "03|POST /v1/charts|units",
                "key#k_old",
                "key#k_refunded",
                "last#k_old"
            ]
        );
        let into = |name: &str| {
            let m = plan.iter().find(|m| m.name == name).unwrap();
            (m.hour, m.moved.clone())
        };
        assert_eq!(into("03|POST /v1/charts|units"), (3, Some(Moved::Add(4))));
        assert_eq!(
            into("key#k_old"),
            (3, Some(Moved::Add(4))),
            "to its last use's hour"
        );
        assert_eq!(
            into("03|POST /v1/charts|4xx"),
            (3, None),
            "a zero is removed, not added"
        );
        assert_eq!(
            into("key#k_refunded"),
            (4, Some(Moved::Add(-1))),
            "an orphan to the last hour"
        );
    }

    #[test]
    fn a_large_counter_moves_in_transactions_a_dynamodb_expression_takes() {
        let mut attrs = serde_json::Map::new();
        for n in 0..150 {
            attrs.insert(format!("02|GET /v1/route-{n:03}|units"), json!(1));
        }
        let mut moves = plan(&attrs, at("2026-12-07T05:30:00Z"));
        assert_eq!(moves.len(), 150);
        moves.truncate(MOVES_PER_TRANSACTION);
        let account = AccountId::generate();
        let window = super::super::quota::Window::containing(at("2026-12-07T05:30:00Z"));
        let counter = super::super::quota::counter_key(&account, window.day, QuotaClass::Charts);
        let ops = transaction(&counter, &account, QuotaClass::Charts, &window, moves);
        let WriteOp::RemoveUnchanged { attributes, .. } = &ops[0] else {
            panic!("the removal comes first")
        };
        assert_eq!(attributes.len(), MOVES_PER_TRANSACTION);
        assert_eq!(ops.len(), 2, "one hour item");
    }

    #[test]
    fn a_container_compacts_once_an_hour_per_account_and_class() {
        let marks = CompactionMarks::default();
        let account = AccountId::generate();
        let now = at("2026-12-07T05:30:00Z");
        assert!(marks.first_in_hour(&account, QuotaClass::Charts, now));
        assert!(!marks.first_in_hour(&account, QuotaClass::Charts, now));
        assert!(marks.first_in_hour(&account, QuotaClass::Readings, now));
        assert!(marks.first_in_hour(&account, QuotaClass::Charts, at("2026-12-07T06:00:00Z")));
    }
}
