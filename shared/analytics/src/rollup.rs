//! Daily usage roll-ups. A quota counter (and the hourly cells it carries) lives 90 days; before
//! it goes, its day is rolled up into `USAGED#<day>`: the same cells without their hour, and the
//! per-key units, kept 400 days. A roll-up is a `PutItem` of the day's totals as they are, so it
//! can run any number of times; each run rolls up the last [`DAYS_REROLLED`] days, which covers
//! refunds that land after their day (a batch's items within its 24 h window).
//!
//! On AWS an EventBridge schedule runs it daily (function `usage-rollup`); orrery-local runs it
//! hourly in-process. Accounts are enumerated from their list index, not scanned.

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, NaiveDate};
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use orrery::access::accounts::{self, Account};
use orrery::analytics::cells;
use orrery::ids::AccountId;
use orrery::store::{Item, Store, StoreError, keyspace};
use serde_json::{Map, Value};

use crate::usage::each_counter;

/// How many past days each run rolls up again.
pub const DAYS_REROLLED: i64 = 3;
/// How many accounts are rolled up at once.
const CONCURRENT_ACCOUNTS: usize = 8;

/// Rolls up `account`'s `day`: whether it had any usage (no item is written otherwise).
pub async fn roll_up(
    store: &dyn Store,
    account: &AccountId,
    day: NaiveDate,
) -> Result<bool, StoreError> {
    let mut totals: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let mut any = false;
    each_counter(store, account, day, day, |_, _, item| {
        any = true;
        for (name, value) in &item.attrs {
            let Some(value) = value.as_i64() else {
                continue;
            };
            let rolled = if name.starts_with("key#") {
                Some(name.as_str())
            } else {
                cells::without_hour(name)
            };
            if let Some(rolled) = rolled {
                *totals.entry(rolled.to_owned()).or_default() += value;
            }
        }
    })
    .await?;
    if !any {
        return Ok(false);
    }
    let attrs: Map<String, Value> = totals
        .into_iter()
        .filter(|(_, value)| *value != 0)
        .map(|(name, value)| (name, Value::from(value)))
        .collect();
    let item = Item::new(keyspace::usage_day(account, day), attrs)
        .expiring_at(keyspace::daily_analytics_expiry(day));
    store.put(item, None).await?;
    Ok(true)
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupRun {
    pub accounts: usize,
    pub days_written: usize,
}

/// Rolls up the [`DAYS_REROLLED`] days before `today` of every account.
pub async fn roll_up_recent(
    store: Arc<dyn Store>,
    today: NaiveDate,
) -> Result<RollupRun, StoreError> {
    let everyone: Vec<Account> = accounts::every(store.as_ref()).await?;
    let accounts = everyone.len();
    let days_written: usize = stream::iter(everyone)
        .map(|account| {
            let store = Arc::clone(&store);
            async move {
                let mut written = 0;
                for back in 1..=DAYS_REROLLED {
                    let day = today - ChronoDuration::days(back);
                    if roll_up(store.as_ref(), &account.id, day).await? {
                        written += 1;
                    }
                }
                Ok::<usize, StoreError>(written)
            }
        })
        .buffer_unordered(CONCURRENT_ACCOUNTS)
        .try_fold(0, |sum, written| async move { Ok(sum + written) })
        .await?;
    Ok(RollupRun {
        accounts,
        days_written,
    })
}
