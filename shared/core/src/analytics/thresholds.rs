//! `usage.threshold` events: at 80 % and 100 % of a daily quota, once per account, class and
//! day. A request that brings usage to a threshold writes a conditional mark
//! (`THRESHOLD#<day>#<class>#<percent>`, which only the first writer creates) and, if it created
//! it, publishes the event; every container then remembers the mark until the day ends, so the
//! check costs no store call afterwards (and none at all below the threshold).

use chrono::Duration as ChronoDuration;
use serde_json::json;

use crate::access::Caller;
use crate::access::quota::QuotaState;
use crate::cache::THRESHOLDS;
use crate::events::{self, EventType};
use crate::store::{Condition, Item, StoreError, keyspace};
use crate::{App, clock};

/// The percentages of a daily quota that raise an event.
pub const PERCENTAGES: [u32; 2] = [80, 100];

/// The usage at which `percent` of `limit` is reached.
pub fn threshold(limit: u32, percent: u32) -> u32 {
    u32::try_from((u64::from(limit) * u64::from(percent)).div_ceil(100)).unwrap_or(u32::MAX)
}

/// Publishes the `usage.threshold` events `state` (a quota right after a successful request
/// took units) reaches for the first time today.
pub async fn check(app: &App, caller: &Caller, state: &QuotaState) {
    if state.limit == 0 {
        return;
    }
    let day = (state.resets_at - ChronoDuration::days(1)).date_naive();
    for percent in PERCENTAGES {
        if state.used < threshold(state.limit, percent) {
            continue;
        }
        let mark = format!(
            "{}:{}:{day}:{percent}",
            caller.account_id,
            state.class.as_str()
        );
        if app.cache.get::<bool>(&THRESHOLDS, &mark).await.is_some() {
            continue;
        }
        let key = keyspace::usage_threshold(&caller.account_id, day, state.class.as_str(), percent);
        let mut attrs = serde_json::Map::new();
        attrs.insert("crossed_at".into(), clock::rfc3339(clock::now()).into());
        let item = Item::new(key, attrs).expiring_at(state.resets_at.timestamp() + 86_400);
        match app.store.put(item, Some(Condition::NotExists)).await {
            Ok(()) => {
                let data = json!({
                    "class": state.class.as_str(),
                    "percent": percent,
                    "limit": state.limit,
                    "used": state.used,
                    "day": day.to_string(),
                    "resets_at": clock::rfc3339(state.resets_at),
                });
                events::publish(app, EventType::UsageThreshold, &caller.account_id, data).await;
            }
            Err(StoreError::ConditionFailed) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not mark a usage threshold");
                continue;
            }
        }
        let ttl = std::time::Duration::from_secs(state.reset_in_seconds);
        app.cache.put_with_ttl(&THRESHOLDS, &mark, &true, ttl).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_round_up() {
        assert_eq!(threshold(50, 80), 40);
        assert_eq!(threshold(10, 80), 8);
        assert_eq!(threshold(7, 80), 6);
        assert_eq!(threshold(7, 100), 7);
    }
}
