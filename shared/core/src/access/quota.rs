//! Daily quotas: one atomic conditional increment per admitted request, per account × class ×
//! UTC day, on a counter item that also carries the per-key counts and last-use times (so the
//! request still makes exactly one write). Over the limit the increment changes nothing and the
//! account × class is remembered as exhausted until the day ends, so further requests are refused
//! from the cache without touching the store.
//!
//! Storage: counters table, `ACCT#<account>` / `QUOTA#<yyyy-mm-dd>#<class>`, attributes
//! `count`, `key#<key id>` (requests by that key) and `last#<key id>` (its last use), expiring
//! `USAGE_RETENTION_DAYS` after the day.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::Serialize;

use super::tiers::QuotaClass;
use crate::analytics::cells::{self, Measure, Outcome};
use crate::store::{Increment, Key, keyspace};

/// How long daily counters (and so per-key usage history and the hourly usage cells they carry)
/// are kept: the hourly analytics retention.
pub const USAGE_RETENTION_DAYS: i64 = crate::store::keyspace::HOURLY_ANALYTICS_DAYS;

pub fn counter_key(account_id: &crate::ids::AccountId, day: NaiveDate, class: QuotaClass) -> Key {
    keyspace::quota_counter(account_id, day, class.as_str())
}

/// The UTC day a request falls in, and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub day: NaiveDate,
    pub resets_at: DateTime<Utc>,
}

impl Window {
    pub fn containing(now: DateTime<Utc>) -> Self {
        Self::of_day(now.date_naive())
    }

    /// The window of a UTC `day`.
    pub fn of_day(day: NaiveDate) -> Self {
        let resets_at = (day + ChronoDuration::days(1))
            .and_hms_opt(0, 0, 0)
            .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc());
        Self { day, resets_at }
    }

    /// When the day's counters expire (unix seconds).
    pub fn expires_counter_at(&self) -> i64 {
        (self.resets_at + ChronoDuration::days(USAGE_RETENTION_DAYS)).timestamp()
    }

    pub fn seconds_left(&self, now: DateTime<Utc>) -> u64 {
        (self.resets_at - now).num_seconds().max(1) as u64
    }
}

/// The state of one quota after a request, for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaState {
    pub class: QuotaClass,
    pub limit: u32,
    pub used: u32,
    pub resets_at: DateTime<Utc>,
    pub reset_in_seconds: u64,
}

impl QuotaState {
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// The 429 of a request that needs `needed` units at once and finds fewer left.
    pub fn shortfall(&self, needed: u32) -> crate::ApiError {
        crate::ApiError::QuotaShortfall(Box::new(crate::error::Shortfall {
            policy: self.class.policy_name(),
            needed,
            available: self.remaining(),
            resets_at: self.resets_at,
            retry_after_seconds: self.reset_in_seconds,
        }))
    }

    /// IETF httpapi RateLimit headers (draft-11 syntax) and the familiar X-RateLimit-* ones.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let policy = self.class.policy_name();
        let pairs = [
            (
                "ratelimit-policy",
                format!("\"{policy}\";q={};w=86400", self.limit),
            ),
            (
                "ratelimit",
                format!(
                    "\"{policy}\";r={};t={}",
                    self.remaining(),
                    self.reset_in_seconds
                ),
            ),
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining().to_string()),
            ("x-ratelimit-reset", self.resets_at.timestamp().to_string()),
            ("x-ratelimit-used", self.used.to_string()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

/// The single write of an admitted request: the unit, and (unless analytics are off: `None`)
/// the request counted as a 2xx of `endpoint` in this hour (the refund of a client error moves
/// it; see `analytics::cells`).
pub fn admission(
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
    class: QuotaClass,
    limit: u32,
    window: &Window,
    now: DateTime<Utc>,
    endpoint: Option<&str>,
) -> Increment {
    reservation(account_id, key_id, class, limit, window, now, 1, endpoint)
}

/// Takes `units` at once, all or none (a batch reserves one per item at submission), for one
/// request of `endpoint`.
#[allow(clippy::too_many_arguments)]
pub fn reservation(
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
    class: QuotaClass,
    limit: u32,
    window: &Window,
    now: DateTime<Utc>,
    units: u32,
    endpoint: Option<&str>,
) -> Increment {
    let increment = Increment::new(
        counter_key(account_id, window.day, class),
        "count",
        i64::from(units),
    )
    .with_ceiling(i64::from(limit))
    .expiring_at(window.expires_counter_at())
    .also_add(format!("key#{key_id}"), i64::from(units))
    .also_set(
        format!("last#{key_id}"),
        serde_json::Value::from(crate::clock::rfc3339(now)),
    );
    match endpoint {
        Some(endpoint) => increment
            .also_add(
                cells::attribute_at(now, endpoint, Measure::Units),
                i64::from(units),
            )
            .also_add(
                cells::attribute_at(now, endpoint, Measure::Requests(Outcome::Success)),
                1,
            ),
        None => increment,
    }
}

/// Units a counter hands to a container at once for a hot account (see `access::hot`): at least
/// 50, and a 2,000th of the day's limit above 100,000 (so a day has at most ~2,000 blocks).
pub fn block_units(limit: u32) -> u32 {
    (limit / 2_000).max(50)
}

/// Takes `units` from the day's counter for a block, all or none (up to the limit), and books
/// them as `allocated`: the counter's `count` always holds what it admitted itself plus what it
/// handed out, so its ceiling bounds both.
pub fn allocation(
    account_id: &crate::ids::AccountId,
    class: QuotaClass,
    limit: u32,
    window: &Window,
    units: u32,
) -> Increment {
    Increment::new(
        counter_key(account_id, window.day, class),
        "count",
        i64::from(units),
    )
    .with_ceiling(i64::from(limit))
    .expiring_at(window.expires_counter_at())
    .also_add(ALLOCATED, i64::from(units))
}

/// The attribute of a counter that says how many of its units were handed to blocks.
pub const ALLOCATED: &str = "allocated";

/// The item of a new block of `units` (`size`), none used yet, taken under `limit` (a block
/// serves only that limit: after a tier change the day's older blocks are left unused).
pub fn block_item(
    account_id: &crate::ids::AccountId,
    class: QuotaClass,
    window: &Window,
    block: &str,
    units: u32,
    limit: u32,
) -> crate::store::Item {
    let mut attrs = serde_json::Map::new();
    attrs.insert("size".into(), units.into());
    attrs.insert("count".into(), 0.into());
    attrs.insert("limit".into(), limit.into());
    crate::store::Item::new(
        keyspace::quota_block(account_id, window.day, class.as_str(), block),
        attrs,
    )
    .expiring_at(window.expires_counter_at())
}

/// One request's write on a block of `size` units: the same bookkeeping as [`admission`], on
/// the block instead of the counter.
#[allow(clippy::too_many_arguments)]
pub fn block_admission(
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
    class: QuotaClass,
    window: &Window,
    now: DateTime<Utc>,
    block: &str,
    size: i64,
    endpoint: Option<&str>,
) -> Increment {
    let mut increment = admission(account_id, key_id, class, u32::MAX, window, now, endpoint);
    increment.key = keyspace::quota_block(account_id, window.day, class.as_str(), block);
    increment.ceiling = Some(size);
    increment
}

/// The units a counter item (or a block) stands for: what it admitted, not what it handed on.
/// A day's usage of a class is the sum over its counter and blocks.
pub fn units_used(item: &crate::store::Item) -> i64 {
    let number = |name: &str| {
        item.attrs
            .get(name)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    number("count") - number(ALLOCATED)
}

/// Why a unit is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// The request ended in a client error: it is counted as a 4xx instead of a 2xx.
    ClientError,
    /// The request replayed an earlier creation: still a 2xx, but free.
    Replay,
}

/// Gives back the unit an admission at `taken_at` took (a request refused after admission, e.g.
/// 404 or 422, or a replay), moving its outcome cell in the same write.
/// `counter` is the item the admission wrote: the day's counter, or a block of it.
pub fn refund(
    counter: Key,
    key_id: &crate::ids::KeyId,
    taken_at: DateTime<Utc>,
    endpoint: Option<&str>,
    reason: RefundReason,
) -> Increment {
    let refund = refund_on(counter, key_id, taken_at, endpoint, 1);
    match (reason, endpoint) {
        (RefundReason::Replay, _) | (_, None) => refund,
        (RefundReason::ClientError, Some(endpoint)) => refund
            .also_add(
                cells::attribute_at(taken_at, endpoint, Measure::Requests(Outcome::Success)),
                -1,
            )
            .also_add(
                cells::attribute_at(taken_at, endpoint, Measure::Requests(Outcome::ClientError)),
                1,
            ),
    }
}

/// Gives `units` back to the counter of the day they were taken (`taken_at`, which for a batch
/// item may be before today), and to the `units` cell of that hour and `endpoint`. The counter
/// keeps its expiry, so a refund that arrives after the counter expired does not leave an item
/// behind for good.
pub fn refund_units(
    account_id: &crate::ids::AccountId,
    key_id: &crate::ids::KeyId,
    class: QuotaClass,
    taken_at: DateTime<Utc>,
    endpoint: Option<&str>,
    units: u32,
) -> Increment {
    let counter = counter_key(account_id, taken_at.date_naive(), class);
    refund_on(counter, key_id, taken_at, endpoint, units)
}

fn refund_on(
    counter: Key,
    key_id: &crate::ids::KeyId,
    taken_at: DateTime<Utc>,
    endpoint: Option<&str>,
    units: u32,
) -> Increment {
    let day: NaiveDate = taken_at.date_naive();
    let refund = Increment::new(counter, "count", -i64::from(units))
        .expiring_at(Window::of_day(day).expires_counter_at())
        .also_add(format!("key#{key_id}"), -i64::from(units));
    match endpoint {
        Some(endpoint) => refund.also_add(
            cells::attribute_at(taken_at, endpoint, Measure::Units),
            -i64::from(units),
        ),
        None => refund,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_days() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T23:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let window = Window::containing(now);
        assert_eq!(window.day.to_string(), "2026-11-29");
        assert_eq!(window.resets_at.to_rfc3339(), "2026-11-30T00:00:00+00:00");
        assert_eq!(window.seconds_left(now), 3600);
    }

    #[test]
    fn headers_follow_the_ietf_draft_and_the_x_convention() {
        let state = QuotaState {
            class: QuotaClass::Charts,
            limit: 200,
            used: 143,
            resets_at: DateTime::from_timestamp(1_795_996_800, 0).expect("time"),
            reset_in_seconds: 3600,
        };
        let mut headers = HeaderMap::new();
        state.apply(&mut headers);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"charts-daily\";q=200;w=86400"
        );
        assert_eq!(headers["ratelimit"], "\"charts-daily\";r=57;t=3600");
        assert_eq!(headers["x-ratelimit-limit"], "200");
        assert_eq!(headers["x-ratelimit-remaining"], "57");
        assert_eq!(headers["x-ratelimit-used"], "143");
        assert_eq!(headers["x-ratelimit-reset"], "1795996800");
    }
}
