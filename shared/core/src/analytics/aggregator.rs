//! What the metered path measures without a store write of its own: latency histograms and cache
//! hits per account × hour × endpoint, and the count moves of 5xx and 429 responses. They are
//! added up in process and flushed at most once per interval (10 s) per container, as one `ADD`
//! per item touched. A flush that fails puts its deltas back, so the next one carries them.
//!
//! What a container crash (or a Lambda container retired while idle) can lose: the unflushed
//! interval's latency samples and cache hit counts, and its 5xx/429 outcome moves. It never loses
//! `units` (quota usage), 2xx or 4xx counts: those are in the quota writes themselves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::cells::{self, Measure, Outcome};
use super::histogram::Histogram;
use crate::access::quota::{self, Window};
use crate::access::tiers::QuotaClass;
use crate::ids::AccountId;
use crate::store::{Increment, Key, Store, StoreError, keyspace};

/// The most attributes one flushed `ADD` carries (DynamoDB caps an expression at 4 KB).
const MAX_ATTRIBUTES_PER_WRITE: usize = 80;

#[derive(Debug, Default)]
struct LatencyTotals {
    histogram: Histogram,
    cache_hits: u64,
    cache_misses: u64,
}

#[derive(Debug, Default)]
struct Pending {
    /// Account → UTC hour (truncated) → endpoint → totals: nested so that a request looks its
    /// cell up by reference and allocates only for a cell's first sample.
    latency: HashMap<AccountId, HashMap<DateTime<Utc>, HashMap<String, LatencyTotals>>>,
    /// Count moves per quota counter item: attribute → delta.
    counters: HashMap<(AccountId, NaiveDate, QuotaClass), HashMap<String, i64>>,
}

/// Whether a response was served from the chart cache; handlers put it in the response's
/// extensions and the meter counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
}

/// One container's unflushed measurements.
#[derive(Debug)]
pub struct Aggregator {
    pending: Mutex<Pending>,
    interval: Duration,
    last_flush_ms: AtomicI64,
}

/// One measured request, as the meter saw it.
#[derive(Debug, Clone)]
pub struct Measured<'a> {
    pub account: &'a AccountId,
    pub class: QuotaClass,
    pub endpoint: &'a str,
    pub at: DateTime<Utc>,
    pub status: u16,
    pub elapsed: Duration,
    pub cache: Option<CacheUse>,
    /// Whether the request was admitted (took a unit); a 429 was not.
    pub admitted: bool,
}

impl Aggregator {
    pub fn new(interval: Duration) -> Self {
        Self {
            pending: Mutex::default(),
            interval,
            last_flush_ms: AtomicI64::new(crate::clock::now_millis()),
        }
    }

    /// The most time between flushes.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Adds one request's measurements.
    pub fn record(&self, request: &Measured<'_>) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let hours = match pending.latency.get_mut(request.account) {
            Some(hours) => hours,
            None => pending.latency.entry(request.account.clone()).or_default(),
        };
        let endpoints = hours.entry(hour_of(request.at)).or_default();
        let totals = match endpoints.get_mut(request.endpoint) {
            Some(totals) => totals,
            None => endpoints.entry(request.endpoint.to_owned()).or_default(),
        };
        totals
            .histogram
            .record(u64::try_from(request.elapsed.as_micros()).unwrap_or(u64::MAX));
        match request.cache {
            Some(CacheUse::Hit) => totals.cache_hits += 1,
            Some(CacheUse::Miss) => totals.cache_misses += 1,
            None => {}
        }
        let moves: &[(Outcome, i64)] = match Outcome::of_status(request.status) {
            Outcome::ServerError if request.admitted => {
                &[(Outcome::Success, -1), (Outcome::ServerError, 1)]
            }
            // A store failure before admission took no unit: only its 5xx is counted.
            Outcome::ServerError => &[(Outcome::ServerError, 1)],
            Outcome::RateLimited if !request.admitted => &[(Outcome::RateLimited, 1)],
            // 2xx and 4xx are counted by the quota writes themselves.
            _ => &[],
        };
        if moves.is_empty() {
            return;
        }
        let counter = pending
            .counters
            .entry((
                request.account.clone(),
                request.at.date_naive(),
                request.class,
            ))
            .or_default();
        for (outcome, delta) in moves {
            let name =
                cells::attribute_at(request.at, request.endpoint, Measure::Requests(*outcome));
            *counter.entry(name).or_default() += delta;
        }
    }

    /// Whether the interval since the last flush has passed; claims the flush if so (one caller
    /// per interval wins).
    pub fn flush_due(&self) -> bool {
        let now = crate::clock::now_millis();
        let last = self.last_flush_ms.load(Ordering::Relaxed);
        let interval = i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX);
        now - last >= interval
            && self
                .last_flush_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Writes everything pending: one `ADD` per item (split when it has many attributes).
    /// Deltas whose write failed go back into the pending set; the first error is returned.
    pub async fn flush(&self, store: &dyn Store) -> Result<(), StoreError> {
        let taken = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Ok(()),
        };
        let mut writes: Vec<Write> = Vec::new();
        for ((account, day, class), deltas) in taken.counters {
            let attributes = deltas.into_iter().filter(|(_, d)| *d != 0).collect();
            writes.push(Write {
                key: quota::counter_key(&account, day, class),
                expires_at: Window::of_day(day).expires_counter_at(),
                attributes,
                counter: Some((account, day, class)),
            });
        }
        let mut daily: HashMap<(AccountId, NaiveDate), Vec<(String, i64)>> = HashMap::new();
        for (account, hours) in &taken.latency {
            for (hour, endpoints) in hours {
                let attributes: Vec<(String, i64)> = endpoints
                    .iter()
                    .flat_map(|(endpoint, totals)| latency_attributes(endpoint, totals))
                    .collect();
                daily
                    .entry((account.clone(), hour.date_naive()))
                    .or_default()
                    .extend(attributes.iter().cloned());
                writes.push(Write {
                    key: keyspace::latency_hour(account, *hour),
                    expires_at: keyspace::hourly_analytics_expiry(hour.date_naive()),
                    attributes,
                    counter: None,
                });
            }
        }
        for ((account, day), attributes) in daily {
            writes.push(Write {
                key: keyspace::latency_day(&account, day),
                expires_at: keyspace::daily_analytics_expiry(day),
                attributes: merge_attributes(attributes),
                counter: None,
            });
        }
        let mut first_error = None;
        for write in writes {
            for chunk in write.attributes.chunks(MAX_ATTRIBUTES_PER_WRITE) {
                let Some(((field, by), rest)) = chunk.split_first() else {
                    continue;
                };
                let mut increment = Increment::new(write.key.clone(), field.clone(), *by)
                    .expiring_at(write.expires_at);
                for (name, delta) in rest {
                    increment = increment.also_add(name.clone(), *delta);
                }
                let Err(err) = store.increment(increment).await else {
                    continue;
                };
                tracing::warn!(error = %err, "could not flush analytics");
                first_error.get_or_insert(err);
                // Count moves go back, so usage by outcome stays exact; latency samples of a
                // failed flush are dropped (memory stays bounded; the loss is documented).
                if let (Some(counter), Ok(mut pending)) = (&write.counter, self.pending.lock()) {
                    let deltas = pending.counters.entry(counter.clone()).or_default();
                    for (name, delta) in chunk {
                        *deltas.entry(name.clone()).or_default() += delta;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// One flushed item: its attribute deltas, and for a quota counter which one (to put the
/// deltas back if the write fails).
struct Write {
    key: Key,
    expires_at: i64,
    attributes: Vec<(String, i64)>,
    counter: Option<(AccountId, NaiveDate, QuotaClass)>,
}

/// The attributes of one endpoint's latency totals: `<endpoint>|b<bucket>`, `<endpoint>|hit`,
/// `<endpoint>|miss`.
fn latency_attributes(endpoint: &str, totals: &LatencyTotals) -> Vec<(String, i64)> {
    let mut attributes: Vec<(String, i64)> = totals
        .histogram
        .buckets()
        .map(|(bucket, count)| {
            (
                format!("{endpoint}|b{bucket}"),
                i64::try_from(count).unwrap_or(i64::MAX),
            )
        })
        .collect();
    for (name, count) in [("hit", totals.cache_hits), ("miss", totals.cache_misses)] {
        if count > 0 {
            attributes.push((
                format!("{endpoint}|{name}"),
                i64::try_from(count).unwrap_or(i64::MAX),
            ));
        }
    }
    attributes
}

/// Adds up attributes named more than once (one increment may not name an attribute twice).
fn merge_attributes(attributes: Vec<(String, i64)>) -> Vec<(String, i64)> {
    let mut merged: HashMap<String, i64> = HashMap::new();
    for (name, delta) in attributes {
        *merged.entry(name).or_default() += delta;
    }
    merged.into_iter().collect()
}

fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = at.timestamp();
    DateTime::from_timestamp(seconds - seconds.rem_euclid(3600), 0).unwrap_or(at)
}
