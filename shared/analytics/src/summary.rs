//! `GET /v1/analytics/summary`: the dashboard's data from today's and yesterday's counters (one
//! `Query`): totals against yesterday's, error rate, top endpoints, and per class the headroom
//! with the projected time of exhaustion at today's rate so far.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use orrery::App;
use orrery::access::quota::Window;
use orrery::access::tiers::{QuotaClass, Tier};
use orrery::analytics::cells::{self, Measure, Outcome};
use orrery::ids::AccountId;
use orrery::store::{Store, StoreError};
use serde::Serialize;

use crate::usage::each_counter;

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct DayTotals {
    pub units: i64,
    pub requests: i64,
    pub errors: i64,
    /// `(4xx + 5xx) / requests`; 429s are refusals, not errors, and are reported apart.
    pub error_rate: f64,
    pub rate_limited: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Headroom {
    pub class: String,
    pub limit: u32,
    pub used: i64,
    pub remaining: i64,
    pub resets_at: String,
    /// When the quota runs out at today's average rate so far; none when it will not before
    /// the reset (or nothing was used yet).
    pub projected_exhaustion_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EndpointUse {
    pub endpoint: String,
    pub requests: i64,
    pub units: i64,
}

/// Webhook deliveries of a day, by final outcome (and failed attempts that were retried).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Deliveries {
    pub delivered: i64,
    pub failed: i64,
    pub retried: i64,
    /// `delivered / (delivered + failed)`; none before any delivery ended.
    pub success_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub today: DayTotals,
    pub yesterday: DayTotals,
    pub top_endpoints: Vec<EndpointUse>,
    pub quotas: Vec<Headroom>,
    /// Today's webhook deliveries.
    pub deliveries: Deliveries,
    /// The batches created today, by status.
    pub batches: orrery_batches::control::BatchCounts,
}

/// How many endpoints `top_endpoints` lists.
pub const TOP_ENDPOINTS: usize = 5;

/// The dashboard of `account` (on `tier`) at `now`: two days of counters (one `Query`), today's
/// delivery outcomes (one `GetItem`) and today's batches (a `Query` newest first).
pub async fn summary(
    app: &App,
    account: &AccountId,
    tier: Tier,
    now: DateTime<Utc>,
) -> Result<Summary, StoreError> {
    let store = app.store.as_ref();
    let tiers = &app.config.tiers;
    let today = now.date_naive();
    let yesterday = today - ChronoDuration::days(1);
    let (mut on_today, mut on_yesterday) = (DayTotals::default(), DayTotals::default());
    let mut used: BTreeMap<&'static str, i64> = BTreeMap::new();
    let mut endpoints: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    each_counter(store, account, yesterday, today, |day, class, item| {
        let totals = if day == today {
            // The counter and, for a hot account, its blocks: each adds what it admitted.
            *used.entry(class.as_str()).or_default() += orrery::access::quota::units_used(item);
            &mut on_today
        } else {
            &mut on_yesterday
        };
        for (name, value) in &item.attrs {
            let (Some(cell), Some(value)) = (cells::parse(name), value.as_i64()) else {
                continue;
            };
            match cell.measure {
                Measure::Units => totals.units += value,
                Measure::Requests(outcome) => {
                    totals.requests += value;
                    match outcome {
                        Outcome::ClientError | Outcome::ServerError => totals.errors += value,
                        Outcome::RateLimited => totals.rate_limited += value,
                        Outcome::Success => {}
                    }
                }
            }
            if day == today {
                let entry = endpoints.entry(cell.endpoint.to_owned()).or_default();
                match cell.measure {
                    Measure::Units => entry.1 += value,
                    Measure::Requests(_) => entry.0 += value,
                }
            }
        }
    })
    .await?;
    for totals in [&mut on_today, &mut on_yesterday] {
        totals.error_rate = if totals.requests > 0 {
            totals.errors as f64 / totals.requests as f64
        } else {
            0.0
        };
    }
    let mut top_endpoints: Vec<EndpointUse> = endpoints
        .into_iter()
        .map(|(endpoint, (requests, units))| EndpointUse {
            endpoint,
            requests,
            units,
        })
        .collect();
    top_endpoints.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.endpoint.cmp(&b.endpoint))
    });
    top_endpoints.truncate(TOP_ENDPOINTS);
    let window = Window::containing(now);
    let quotas = QuotaClass::ALL
        .into_iter()
        .map(|class| {
            let limit = tiers.limit(tier, class);
            let used = used.get(class.as_str()).copied().unwrap_or(0);
            headroom(class, limit, used, &window, now)
        })
        .collect();
    let deliveries = deliveries(store, account, today).await?;
    let day_start = window.resets_at - ChronoDuration::days(1);
    let batches = orrery_batches::control::counts_since(app, account, day_start).await?;
    Ok(Summary {
        today: on_today,
        yesterday: on_yesterday,
        top_endpoints,
        quotas,
        deliveries,
        batches,
    })
}

async fn deliveries(
    store: &dyn Store,
    account: &AccountId,
    day: chrono::NaiveDate,
) -> Result<Deliveries, StoreError> {
    let item = store
        .get(&orrery::store::keyspace::delivery_outcomes(account, day))
        .await?;
    let count = |name: &str| {
        item.as_ref()
            .and_then(|item| item.attrs.get(name))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let (delivered, failed) = (count("delivered"), count("failed"));
    Ok(Deliveries {
        delivered,
        failed,
        retried: count("retried"),
        success_rate: (delivered + failed > 0)
            .then(|| delivered as f64 / (delivered + failed) as f64),
    })
}

/// A class's headroom and, at today's average rate so far, when it runs out.
fn headroom(
    class: QuotaClass,
    limit: u32,
    used: i64,
    window: &Window,
    now: DateTime<Utc>,
) -> Headroom {
    let remaining = (i64::from(limit) - used).max(0);
    let day_start = window.resets_at - ChronoDuration::days(1);
    let elapsed = (now - day_start).num_seconds().max(1) as f64;
    let projected = (used > 0).then(|| {
        let per_second = used as f64 / elapsed;
        now + ChronoDuration::seconds((remaining as f64 / per_second).ceil() as i64)
    });
    Headroom {
        class: class.as_str().to_owned(),
        limit,
        used,
        remaining,
        resets_at: orrery::clock::rfc3339(window.resets_at),
        projected_exhaustion_at: projected
            .filter(|at| *at < window.resets_at)
            .map(orrery::clock::rfc3339),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustion_is_projected_at_todays_rate() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let window = Window::containing(now);
        // 25 of 50 used in 6 hours: the other 25 go in 6 more.
        let half = headroom(QuotaClass::Charts, 50, 25, &window, now);
        assert_eq!(
            half.projected_exhaustion_at.as_deref(),
            Some("2026-12-02T12:00:00Z")
        );
        // 5 of 50 in 6 hours: 54 more hours, past the reset.
        let slow = headroom(QuotaClass::Charts, 50, 5, &window, now);
        assert_eq!(slow.projected_exhaustion_at, None);
        assert_eq!(slow.remaining, 45);
    }
}
