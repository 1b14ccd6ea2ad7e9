//! Every partition and sort key the platform stores, in one place: this module is the code side
//! of docs/dynamodb.md's access-pattern table. Domain code asks for "the key of this API key" or
//! "the query over this account's webhooks"; nothing else formats `ACCT#…`, `KEY#…`, `WEBHOOK#…`.

use chrono::NaiveDate;

use super::{Key, Query, Table};
use crate::ids::{AccountId, ChartId, EndpointId, KeyId};

/// The partition of everything an account owns.
fn account_partition(account_id: &AccountId) -> String {
    format!("ACCT#{account_id}")
}

/// An account's own item (`entities`).
pub fn account(account_id: &AccountId) -> Key {
    Key::new(Table::Entities, account_partition(account_id), "ACCOUNT")
}

/// The index partition listing every account (admin), newest first by id.
pub const ACCOUNTS_INDEX: &str = "ACCOUNTS";

/// An API key's record under its account.
pub fn api_key(account_id: &AccountId, key_id: &KeyId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("KEY#{key_id}"),
    )
}

/// An account's API keys.
pub fn api_keys(account_id: &AccountId) -> Query {
    Query::partition(Table::Entities, account_partition(account_id)).with_prefix("KEY#")
}

/// The lookup authentication reads: the key's HMAC → its record.
pub fn api_key_by_hash(hash: &str) -> Key {
    Key::new(Table::Entities, format!("KEYHASH#{hash}"), "KEY")
}

/// An account's quota counter for one class on one UTC day (`counters`).
pub fn quota_counter(account_id: &AccountId, day: NaiveDate, class: &str) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("QUOTA#{day}#{class}"),
    )
}

/// Every quota counter of an account, oldest day first.
pub fn quota_counters(account_id: &AccountId) -> Query {
    Query::partition(Table::Counters, account_partition(account_id)).with_prefix("QUOTA#")
}

/// Reads the day and class back from a quota counter's sort key.
pub fn parse_quota_counter(sort_key: &str) -> Option<(NaiveDate, &str)> {
    let mut parts = sort_key.strip_prefix("QUOTA#")?.splitn(2, '#');
    let day = parts.next()?.parse().ok()?;
    Some((day, parts.next()?))
}

/// A claimed `Idempotency-Key` of an account.
pub fn idempotency_claim(account_id: &AccountId, idempotency_key: &str) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("IDEMP#{idempotency_key}"),
    )
}

/// A webhook endpoint under its account.
pub fn webhook(account_id: &AccountId, endpoint_id: &EndpointId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("WEBHOOK#{endpoint_id}"),
    )
}

/// An account's webhook endpoints.
pub fn webhooks(account_id: &AccountId) -> Query {
    Query::partition(Table::Entities, account_partition(account_id)).with_prefix("WEBHOOK#")
}

/// An account's endpoint counter (the limit is a ceiling on it).
pub fn webhook_count(account_id: &AccountId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        "WEBHOOKCOUNT",
    )
}

fn endpoint_partition(endpoint_id: &EndpointId) -> String {
    format!("WEBHOOK#{endpoint_id}")
}

/// One delivery attempt in an endpoint's log (`logs`), in time order.
pub fn delivery_attempt(
    endpoint_id: &EndpointId,
    at_ms: i64,
    webhook_id: &str,
    attempt: u32,
) -> Key {
    Key::new(
        Table::Logs,
        endpoint_partition(endpoint_id),
        format!("DELIVERY#{at_ms:013}#{webhook_id}#{attempt:02}"),
    )
}

/// An endpoint's delivery attempts.
pub fn delivery_attempts(endpoint_id: &EndpointId) -> Query {
    Query::partition(Table::Logs, endpoint_partition(endpoint_id)).with_prefix("DELIVERY#")
}

/// A dead-lettered delivery kept for replay.
pub fn dead_letter(endpoint_id: &EndpointId, at_ms: i64, webhook_id: &str) -> Key {
    Key::new(
        Table::Logs,
        endpoint_partition(endpoint_id),
        format!("DEAD#{at_ms:013}#{webhook_id}"),
    )
}

/// An endpoint's dead-lettered deliveries, oldest first.
pub fn dead_letters(endpoint_id: &EndpointId) -> Query {
    Query::partition(Table::Logs, endpoint_partition(endpoint_id)).with_prefix("DEAD#")
}

/// A saved chart's summary (what lists show).
pub fn saved_chart(account_id: &AccountId, chart_id: &ChartId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("CHART#{chart_id}"),
    )
}

/// A saved chart's document (input and full chart).
pub fn saved_chart_document(account_id: &AccountId, chart_id: &ChartId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("CHARTDOC#{chart_id}"),
    )
}

/// An account's saved-chart summaries (not their documents: `CHART#` sorts before `CHARTDOC#`
/// only by prefix, so the prefix includes the `#`).
pub fn saved_charts(account_id: &AccountId) -> Query {
    Query::partition(Table::Entities, account_partition(account_id)).with_prefix("CHART#")
}

/// The cache's generation board.
pub fn cache_generations() -> Key {
    Key::new(Table::Entities, "CACHE#GENERATIONS", "BOARD")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_documented_ones() {
        let (account, key) = (AccountId::generate(), KeyId::generate());
        assert_eq!(api_key(&account, &key).pk, format!("ACCT#{account}"));
        assert_eq!(api_key(&account, &key).sk, format!("KEY#{key}"));
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date");
        let counter = quota_counter(&account, day, "charts");
        assert_eq!(
            (counter.table, counter.sk.as_str()),
            (Table::Counters, "QUOTA#2026-12-01#charts")
        );
        assert_eq!(parse_quota_counter(&counter.sk), Some((day, "charts")));
        assert_eq!(parse_quota_counter("KEY#x"), None);
        assert_eq!(
            delivery_attempt(&EndpointId::generate(), 42, "msg_1", 3).sk,
            "DELIVERY#0000000000042#msg_1#03"
        );
        // The summaries' prefix never matches a document.
        assert!(
            !saved_chart_document(&account, &ChartId::generate())
                .sk
                .starts_with("CHART#")
        );
    }
}
