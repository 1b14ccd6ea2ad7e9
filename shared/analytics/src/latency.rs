//! `GET /v1/analytics/latency`: the histograms of a range merged, with p50/p90/p95/p99. Ranges
//! of up to 48 hours read the hourly items (`LATH#`); longer ones the daily items (`LATD#`) of
//! every day the range touches, so a 90-day report reads 90 items, not 2,160.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use orrery::analytics::histogram::{self, Histogram};
use orrery::ids::AccountId;
use orrery::store::{Cursor, Store, StoreError, keyspace};
use serde::Serialize;

/// Ranges up to this long are answered from hourly histograms.
pub const HOURLY_UP_TO: ChronoDuration = ChronoDuration::hours(48);

/// Percentiles of one set of requests (all of them, or one endpoint's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

/// One endpoint's line of the report (the CSV / JSON Lines rows).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EndpointLatency {
    pub endpoint: String,
    #[serde(flatten)]
    pub percentiles: Percentiles,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencyReport {
    /// Every request of the range (of `endpoint` when one was asked for).
    #[serde(flatten)]
    pub overall: Percentiles,
    /// Every non-empty bucket of the overall histogram, ascending: the latency it stands for
    /// (within 2 %) and its count.
    pub histogram: Vec<Bucket>,
    /// The same per endpoint, busiest first.
    pub endpoints: Vec<EndpointLatency>,
    /// `hour` or `day`: which histograms answered.
    pub resolution: String,
}

/// The CSV columns of the per-endpoint rows.
pub const COLUMNS: [&str; 8] = [
    "endpoint",
    "count",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "cache_hits",
    "cache_misses",
];

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Bucket {
    pub ms: f64,
    pub count: u64,
}

#[derive(Debug, Default)]
struct Totals {
    histogram: Histogram,
    hits: u64,
    misses: u64,
}

impl Totals {
    fn percentiles(&self) -> Percentiles {
        let ms = |q: f64| {
            self.histogram
                .quantile(q)
                .map(|micros| (micros / 10.0).round() / 100.0)
        };
        Percentiles {
            count: self.histogram.count(),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
            cache_hits: self.hits,
            cache_misses: self.misses,
        }
    }
}

/// The latency of `account` over `[from, to)`, for one endpoint or all.
pub async fn latency(
    store: &dyn Store,
    account: &AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    endpoint: Option<&str>,
) -> Result<LatencyReport, StoreError> {
    let hourly = to - from <= HOURLY_UP_TO;
    let end = to - ChronoDuration::nanoseconds(1);
    let (first, last) = if hourly {
        (
            keyspace::latency_hour(account, from),
            keyspace::latency_hour(account, end),
        )
    } else {
        (
            keyspace::latency_day(account, from.date_naive()),
            keyspace::latency_day(account, end.date_naive()),
        )
    };
    let mut per_endpoint: BTreeMap<String, Totals> = BTreeMap::new();
    // Inclusive of `first`: start just before it (its key one byte shorter sorts first).
    let mut cursor = Some(Cursor {
        pk: first.pk.clone(),
        sk: first.sk[..first.sk.len() - 1].to_owned(),
        index: None,
    });
    'pages: loop {
        let page = store
            .query(
                keyspace::latency_items(account, hourly)
                    .with_limit(100)
                    .after(cursor),
            )
            .await?;
        for item in &page.items {
            if item.key.sk < first.sk {
                continue;
            }
            if item.key.sk > last.sk {
                break 'pages;
            }
            for (name, value) in &item.attrs {
                let Some((cell_endpoint, measure)) = name.rsplit_once('|') else {
                    continue;
                };
                if endpoint.is_some_and(|wanted| wanted != cell_endpoint) {
                    continue;
                }
                let count = value.as_u64().unwrap_or(0);
                let totals = match per_endpoint.get_mut(cell_endpoint) {
                    Some(totals) => totals,
                    None => per_endpoint.entry(cell_endpoint.to_owned()).or_default(),
                };
                match measure {
                    "hit" => totals.hits += count,
                    "miss" => totals.misses += count,
                    bucket => {
                        if let Some(bucket) = bucket.strip_prefix('b').and_then(|b| b.parse().ok())
                        {
                            totals.histogram.add(bucket, count);
                        }
                    }
                }
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut overall = Totals::default();
    for totals in per_endpoint.values() {
        overall.histogram.merge(&totals.histogram);
        overall.hits += totals.hits;
        overall.misses += totals.misses;
    }
    let mut endpoints: Vec<EndpointLatency> = per_endpoint
        .iter()
        .map(|(endpoint, totals)| EndpointLatency {
            endpoint: endpoint.clone(),
            percentiles: totals.percentiles(),
        })
        .collect();
    endpoints.sort_by(|a, b| {
        b.percentiles
            .count
            .cmp(&a.percentiles.count)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    Ok(LatencyReport {
        overall: overall.percentiles(),
        histogram: overall
            .histogram
            .buckets()
            .map(|(bucket, count)| Bucket {
                // Microsecond precision: the bucket's value is within 2 % anyway.
                ms: (histogram::value_of(bucket)).round() / 1000.0,
                count,
            })
            .collect(),
        endpoints,
        resolution: if hourly { "hour" } else { "day" }.to_owned(),
    })
}
