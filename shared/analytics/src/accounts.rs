//! `GET /v1/admin/analytics/accounts`: the heaviest accounts over a range, by quota units. The
//! accounts are enumerated from their list index (a `Query`, as the admin account list does) and
//! each one's counters of the range read with one `Query` (eight at a time): the cost grows with
//! the number of accounts, which suits an operator's report, not a hot path.

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use orrery::access::accounts::{self, Account};
use orrery::store::{Store, StoreError};
use serde::Serialize;

use crate::range::Range;
use crate::usage::each_counter;

/// How many accounts' counters are read at once.
const CONCURRENT_READS: usize = 8;

/// One account's line: its units in the range, in total and by class, and its requests.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AccountUsage {
    pub account_id: String,
    pub name: String,
    pub tier: String,
    pub units: i64,
    pub requests: i64,
    pub charts: i64,
    pub readings: i64,
    pub batch_items: i64,
    pub other: i64,
}

/// The CSV columns of an account line.
pub const COLUMNS: [&str; 9] = [
    "account_id",
    "name",
    "tier",
    "units",
    "requests",
    "charts",
    "readings",
    "batch_items",
    "other",
];

/// The `limit` accounts with the most units in `range`, heaviest first (ties by id); accounts
/// without usage are left out.
pub async fn top_accounts(
    store: Arc<dyn Store>,
    range: Range,
    limit: usize,
) -> Result<Vec<AccountUsage>, StoreError> {
    let everyone: Vec<Account> = accounts::every(store.as_ref()).await?;
    let mut lines: Vec<AccountUsage> = stream::iter(everyone)
        .map(|account| {
            let store = Arc::clone(&store);
            async move { account_usage(store.as_ref(), account, range).await }
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_filter_map(|line| async move {
            Ok(line.filter(|line| line.units > 0 || line.requests > 0))
        })
        .try_collect()
        .await?;
    lines.sort_by(|a, b| {
        b.units
            .cmp(&a.units)
            .then_with(|| a.account_id.cmp(&b.account_id))
    });
    lines.truncate(limit);
    Ok(lines)
}

async fn account_usage(
    store: &dyn Store,
    account: Account,
    range: Range,
) -> Result<Option<AccountUsage>, StoreError> {
    let query = crate::usage::UsageQuery {
        from: range.from,
        to: range.to,
        granularity: crate::usage::Granularity::Day,
        group_by: None,
    };
    let mut line = AccountUsage {
        account_id: account.id.to_string(),
        name: account.name.clone(),
        tier: account.tier.as_str().to_owned(),
        units: 0,
        requests: 0,
        charts: 0,
        readings: 0,
        batch_items: 0,
        other: 0,
    };
    let first = range.from.date_naive();
    let last = (range.to - chrono::Duration::nanoseconds(1)).date_naive();
    each_counter(store, &account.id, first, last, |day, class, item| {
        let row = crate::usage::counter_totals(&query, day, item);
        line.units += row.units;
        line.requests += row.requests;
        use orrery::access::tiers::QuotaClass;
        match class {
            QuotaClass::Charts => line.charts += row.units,
            QuotaClass::Readings => line.readings += row.units,
            QuotaClass::BatchItems => line.batch_items += row.units,
            _ => line.other += row.units,
        }
    })
    .await?;
    Ok(Some(line))
}
