//! `GET /v1/analytics/usage`: the quota counters of a day range, read as hour × endpoint cells
//! and added up by period and group. One `Query` on the account's counter partition, starting
//! at the first day (a cursor at `QUOTA#<from>`), stopping after the last.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use orrery::access::tiers::QuotaClass;
use orrery::analytics::cells::{self, Measure, Outcome};
use orrery::ids::AccountId;
use orrery::store::{Cursor, Item, Store, StoreError, keyspace};
use serde::Serialize;

/// Time buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
}

/// What a series is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Endpoint,
    Key,
    Outcome,
}

#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
    pub group_by: Option<GroupBy>,
}

/// The longest range an hourly series covers (the hourly retention).
pub const MAX_HOURLY_DAYS: i64 = orrery::store::keyspace::HOURLY_ANALYTICS_DAYS;
/// The longest range a daily series covers.
pub const MAX_DAILY_DAYS: i64 = orrery::store::keyspace::DAILY_ANALYTICS_DAYS;

/// The CSV columns of a usage row.
pub const COLUMNS: [&str; 8] = [
    "period", "group", "units", "requests", "2xx", "4xx", "429", "5xx",
];

impl UsageQuery {
    /// The query the parameters ask for; every bad parameter is a field error in `errors`.
    pub fn parse<'a>(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&'a str>,
        group_by: Option<&'a str>,
        now: DateTime<Utc>,
        errors: &mut Vec<orrery::error::FieldError>,
    ) -> Option<Self> {
        use orrery::error::FieldError;
        let present = |value: Option<&'a str>| value.map(str::trim).filter(|text| !text.is_empty());
        let (granularity, group_by) = (present(granularity), present(group_by));
        let granularity = match granularity {
            None | Some("day") => Granularity::Day,
            Some("hour") => Granularity::Hour,
            Some(_) => {
                errors.push(FieldError::new("granularity", "must be hour or day"));
                Granularity::Day
            }
        };
        let group_by = match group_by {
            None => None,
            Some("endpoint") => Some(GroupBy::Endpoint),
            Some("key") => Some(GroupBy::Key),
            Some("outcome") => Some(GroupBy::Outcome),
            Some(_) => {
                errors.push(FieldError::new(
                    "group_by",
                    "must be endpoint, key or outcome",
                ));
                None
            }
        };
        if group_by == Some(GroupBy::Key) && granularity == Granularity::Hour {
            errors.push(FieldError::new(
                "group_by",
                "key is counted per day: use granularity=day",
            ));
        }
        let (default_span, max_days) = match granularity {
            Granularity::Hour => (ChronoDuration::days(7), MAX_HOURLY_DAYS),
            Granularity::Day => (ChronoDuration::days(30), MAX_DAILY_DAYS),
        };
        let range = crate::range::parse_range(from, to, now, default_span, max_days, errors)?;
        Some(UsageQuery {
            from: range.from,
            to: range.to,
            granularity,
            group_by,
        })
    }
}

/// One row of a series: a period, the group it counts (none when not grouped), quota units
/// charged and requests by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub period: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub units: i64,
    pub requests: i64,
    #[serde(rename = "2xx")]
    pub success: i64,
    #[serde(rename = "4xx")]
    pub client_errors: i64,
    #[serde(rename = "429")]
    pub rate_limited: i64,
    #[serde(rename = "5xx")]
    pub server_errors: i64,
}

impl UsageRow {
    fn merge(&mut self, other: &UsageRow) {
        self.units += other.units;
        self.requests += other.requests;
        self.success += other.success;
        self.client_errors += other.client_errors;
        self.rate_limited += other.rate_limited;
        self.server_errors += other.server_errors;
    }

    fn add(&mut self, measure: Measure, value: i64) {
        match measure {
            Measure::Units => self.units += value,
            Measure::Requests(outcome) => {
                self.requests += value;
                match outcome {
                    Outcome::Success => self.success += value,
                    Outcome::ClientError => self.client_errors += value,
                    Outcome::RateLimited => self.rate_limited += value,
                    Outcome::ServerError => self.server_errors += value,
                }
            }
        }
    }
}

/// Every counter item of `account` whose day lies in `[first, last]`, in day order, page by
/// page, handed to `each`.
pub async fn each_counter(
    store: &dyn Store,
    account: &AccountId,
    first: NaiveDate,
    last: NaiveDate,
    mut each: impl FnMut(NaiveDate, QuotaClass, &Item),
) -> Result<(), StoreError> {
    let mut pages = DayPages::counters(account, first, last, DAILY_PAGE);
    while let Some(items) = pages.next_page(store).await? {
        for (day, kind, item) in &items {
            if let DayItem::Counter(class) = kind {
                each(*day, *class, item);
            }
        }
    }
    Ok(())
}

/// What a day-keyed item is: a quota counter of a class, or a day's roll-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayItem {
    Counter(QuotaClass),
    Rollup,
}

/// The day-keyed items of a day range, a page at a time: one `Query` on the account's counter
/// partition from just before the first day (`QUOTA#<day>#…` sorts after `QUOTA#<day>`),
/// stopping after the last.
struct DayPages {
    query: orrery::store::Query,
    cursor: Option<Cursor>,
    prefix: &'static str,
    last: NaiveDate,
    done: bool,
}

impl DayPages {
    fn counters(account: &AccountId, first: NaiveDate, last: NaiveDate, page: usize) -> Self {
        Self::new(
            keyspace::quota_counters(account),
            "QUOTA#",
            first,
            last,
            page,
        )
    }

    fn rollups(account: &AccountId, first: NaiveDate, last: NaiveDate) -> Self {
        Self::new(
            keyspace::usage_days(account),
            "USAGED#",
            first,
            last,
            DAILY_PAGE,
        )
    }

    fn new(
        query: orrery::store::Query,
        prefix: &'static str,
        first: NaiveDate,
        last: NaiveDate,
        page: usize,
    ) -> Self {
        let pk = match &query.partition {
            orrery::store::Partition::Table(pk) | orrery::store::Partition::Index(pk) => pk.clone(),
        };
        Self {
            query: query.with_limit(page),
            // Sorts before every item of `first` (`…#<first>#…` and `…#<first>` itself).
            cursor: Some(Cursor {
                pk,
                sk: format!("{prefix}{}", first.pred_opt().unwrap_or(first)) + "~",
                index: None,
            }),
            prefix,
            last,
            done: first > last,
        }
    }

    fn parse(&self, sort_key: &str) -> Option<(NaiveDate, DayItem)> {
        if self.prefix == "QUOTA#" {
            let (day, class) = keyspace::parse_quota_counter(sort_key)?;
            Some((day, DayItem::Counter(QuotaClass::parse(class)?)))
        } else {
            let day = sort_key.strip_prefix(self.prefix)?.parse().ok()?;
            Some((day, DayItem::Rollup))
        }
    }

    async fn next_page(
        &mut self,
        store: &dyn Store,
    ) -> Result<Option<Vec<(NaiveDate, DayItem, Item)>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .query(self.query.clone().after(self.cursor.take()))
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for item in page.items {
            let Some((day, kind)) = self.parse(&item.key.sk) else {
                continue;
            };
            if day > self.last {
                self.done = true;
                break;
            }
            items.push((day, kind, item));
        }
        match page.next {
            Some(next) if !self.done => self.cursor = Some(next),
            _ => self.done = true,
        }
        Ok(Some(items))
    }
}

/// Items per page of a daily series (a day has up to six counters).
const DAILY_PAGE: usize = 32;
/// Items per page of an hourly series: hourly exports are the long ones, and a counter can carry
/// thousands of cells, so a page stays a few items (memory holds one page and one day's rows).
const HOURLY_PAGE: usize = 4;

/// Days at least this old are read from their roll-ups (the counters live 90 days; the roll-up
/// is written within 3 days of its day).
pub const ROLLED_UP_AFTER_DAYS: i64 = keyspace::HOURLY_ANALYTICS_DAYS - 5;

/// A usage series read as it is sent: the counters arrive in day order, so a day's rows are
/// complete once a later day (or the end) is seen. Memory holds one page and one day's rows,
/// whatever the range.
pub struct UsageRows {
    store: Arc<dyn Store>,
    query: UsageQuery,
    /// The roll-ups of days too old for their counters (daily series only), read first.
    rollups: Option<DayPages>,
    pages: DayPages,
    day: Option<NaiveDate>,
    rows: BTreeMap<(String, Option<String>), UsageRow>,
}

impl UsageRows {
    pub fn new(store: Arc<dyn Store>, account: &AccountId, query: &UsageQuery) -> Self {
        let first = query.from.date_naive();
        let last = (query.to - ChronoDuration::nanoseconds(1)).date_naive();
        let oldest_counter =
            orrery::clock::now().date_naive() - ChronoDuration::days(ROLLED_UP_AFTER_DAYS);
        let (rollups, first_counter) = match query.granularity {
            Granularity::Day if first < oldest_counter => (
                Some(DayPages::rollups(
                    account,
                    first,
                    last.min(oldest_counter - ChronoDuration::days(1)),
                )),
                oldest_counter,
            ),
            _ => (None, first),
        };
        Self {
            store,
            query: query.clone(),
            rollups,
            pages: DayPages::counters(
                account,
                first_counter.max(first),
                last,
                match query.granularity {
                    Granularity::Hour => HOURLY_PAGE,
                    Granularity::Day => DAILY_PAGE,
                },
            ),
            day: None,
            rows: BTreeMap::new(),
        }
    }

    /// The next rows in order (possibly none while a day is still being read), or `None` at
    /// the end.
    pub async fn next_rows(&mut self) -> Result<Option<Vec<UsageRow>>, StoreError> {
        let store = Arc::clone(&self.store);
        let page = match &mut self.rollups {
            Some(rollups) => match rollups.next_page(store.as_ref()).await? {
                Some(page) => Some(page),
                None => {
                    self.rollups = None;
                    self.pages.next_page(store.as_ref()).await?
                }
            },
            None => self.pages.next_page(store.as_ref()).await?,
        };
        let Some(items) = page else {
            if self.rows.is_empty() {
                return Ok(None);
            }
            return Ok(Some(self.take_rows()));
        };
        let mut ready = Vec::new();
        for (day, kind, item) in &items {
            if self.day.is_some_and(|current| current != *day) {
                ready.extend(self.take_rows());
            }
            self.day = Some(*day);
            match kind {
                DayItem::Counter(_) => add_counter(&mut self.rows, &self.query, *day, item),
                DayItem::Rollup => add_rollup(&mut self.rows, &self.query, *day, item),
            }
        }
        Ok(Some(ready))
    }

    fn take_rows(&mut self) -> Vec<UsageRow> {
        std::mem::take(&mut self.rows)
            .into_iter()
            .map(|((period, group), mut row)| {
                row.period = period;
                row.group = group;
                row
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl crate::export::RowSource for UsageRows {
    type Row = UsageRow;
    async fn next_rows(&mut self) -> Result<Option<Vec<UsageRow>>, StoreError> {
        UsageRows::next_rows(self).await
    }
}

/// The whole series of `query` for `account` (what the stream sends, collected).
pub async fn usage(
    store: Arc<dyn Store>,
    account: &AccountId,
    query: &UsageQuery,
) -> Result<Vec<UsageRow>, StoreError> {
    let mut reader = UsageRows::new(store, account, query);
    let mut rows = Vec::new();
    while let Some(more) = reader.next_rows().await? {
        rows.extend(more);
    }
    Ok(rows)
}

/// One counter's cells within the query's range, added up into one row (no period or group).
pub fn counter_totals(query: &UsageQuery, day: NaiveDate, item: &Item) -> UsageRow {
    let ungrouped = UsageQuery {
        group_by: None,
        granularity: Granularity::Day,
        ..query.clone()
    };
    let mut rows = BTreeMap::new();
    add_counter(&mut rows, &ungrouped, day, item);
    rows.into_values()
        .fold(UsageRow::default(), |mut total, row| {
            total.merge(&row);
            total
        })
}

/// A day's roll-up into the rows of a daily series: the whole day counts when it starts inside
/// the range (its hours are gone).
fn add_rollup(
    rows: &mut BTreeMap<(String, Option<String>), UsageRow>,
    query: &UsageQuery,
    day: NaiveDate,
    item: &Item,
) {
    let Some(start) = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
        return;
    };
    if start < query.from || start >= query.to {
        return;
    }
    let period = day.to_string();
    for (name, value) in &item.attrs {
        let Some(value) = value.as_i64() else {
            continue;
        };
        if let Some(key) = name.strip_prefix("key#") {
            if query.group_by == Some(GroupBy::Key) {
                rows.entry((period.clone(), Some(key.to_owned())))
                    .or_default()
                    .units += value;
            }
            continue;
        }
        let Some((endpoint, measure)) = cells::parse_daily(name) else {
            continue;
        };
        let group = match query.group_by {
            Some(GroupBy::Key) => continue,
            Some(GroupBy::Endpoint) => Some(endpoint.to_owned()),
            Some(GroupBy::Outcome) => match measure {
                Measure::Requests(outcome) => Some(outcome.as_str().to_owned()),
                Measure::Units => continue,
            },
            None => None,
        };
        rows.entry((period.clone(), group))
            .or_default()
            .add(measure, value);
    }
}

fn add_counter(
    rows: &mut BTreeMap<(String, Option<String>), UsageRow>,
    query: &UsageQuery,
    day: NaiveDate,
    item: &Item,
) {
    if query.group_by == Some(GroupBy::Key) {
        // Per-key counts are daily (`key#<id>`); the period is the day.
        let Some(start) = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
            return;
        };
        if start + ChronoDuration::days(1) <= query.from || start >= query.to {
            return;
        }
        for (name, value) in &item.attrs {
            if let (Some(key), Some(value)) = (name.strip_prefix("key#"), value.as_i64()) {
                let row = rows
                    .entry((day.to_string(), Some(key.to_owned())))
                    .or_default();
                row.units += value;
            }
        }
        return;
    }
    // Added up under borrowed keys first: one owned row key per distinct period and group, not
    // one per cell (a day's counter holds hundreds of cells).
    let mut local: std::collections::HashMap<(u32, Option<&str>), UsageRow> =
        std::collections::HashMap::new();
    for (name, value) in &item.attrs {
        let (Some(cell), Some(value)) = (cells::parse(name), value.as_i64()) else {
            continue;
        };
        let Some(hour_start) = day.and_hms_opt(cell.hour, 0, 0).map(|t| t.and_utc()) else {
            continue;
        };
        if hour_start < query.from || hour_start >= query.to {
            continue;
        }
        let slot = match query.granularity {
            Granularity::Hour => cell.hour,
            Granularity::Day => 0,
        };
        let group = match query.group_by {
            Some(GroupBy::Endpoint) => Some(cell.endpoint),
            Some(GroupBy::Outcome) => match cell.measure {
                Measure::Requests(outcome) => Some(outcome.as_str()),
                // Units are charged by 2xx and 5xx requests; grouped by outcome they are not a
                // group of their own.
                Measure::Units => continue,
            },
            Some(GroupBy::Key) | None => None,
        };
        local
            .entry((slot, group))
            .or_default()
            .add(cell.measure, value);
    }
    for ((slot, group), row) in local {
        let period = match query.granularity {
            Granularity::Hour => day.and_hms_opt(slot, 0, 0).map_or_else(
                || day.to_string(),
                |at| orrery::clock::rfc3339(at.and_utc()),
            ),
            Granularity::Day => day.to_string(),
        };
        rows.entry((period, group.map(str::to_owned)))
            .or_default()
            .merge(&row);
    }
}
