//! Every partition and sort key the platform stores, in one place: this module is the code side
//! of docs/data-model.md's access-pattern table. Domain code asks for "the key of this API key" or
//! "the query over this account's webhooks"; nothing else formats `ACCT#…`, `KEY#…`, `WEBHOOK#…`.

use chrono::NaiveDate;

use super::{IndexKey, Key, Query, Table};
use crate::ids::{AccountId, BatchId, ChartId, EndpointId, KeyId};

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

/// A block of a hot account's quota (`counters`, beside the day's counter): units the counter
/// handed to one container, counted per request on this item instead of the counter.
pub fn quota_block(account_id: &AccountId, day: NaiveDate, class: &str, block: &str) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("QUOTA#{day}#{class}#{block}"),
    )
}

/// The hour item of a day's counter (`counters`, beside it): what the counter's compaction
/// moved out of it for hour `hour` (`access::compaction`).
pub fn quota_hour(account_id: &AccountId, day: NaiveDate, class: &str, hour: u32) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("QUOTA#{day}#{class}#h{hour:02}"),
    )
}

/// One day's counter of a class and every block of it (a strongly consistent sweep when the
/// counter has nothing left to hand out). The prefix also matches longer class names; readers
/// keep the items whose parsed class is this one.
pub fn quota_counter_and_blocks(account_id: &AccountId, day: NaiveDate, class: &str) -> Query {
    Query::partition(Table::Counters, account_partition(account_id))
        .with_prefix(format!("QUOTA#{day}#{class}"))
}

/// Reads the day and class back from a quota counter's (or one of its blocks') sort key.
pub fn parse_quota_counter(sort_key: &str) -> Option<(NaiveDate, &str)> {
    let mut parts = sort_key.strip_prefix("QUOTA#")?.splitn(3, '#');
    let day = parts.next()?.parse().ok()?;
    Some((day, parts.next()?))
}

/// How long hourly analytics (the quota counters' cells, hourly latency) are kept.
pub const HOURLY_ANALYTICS_DAYS: i64 = 90;
/// How long daily analytics (daily latency, daily usage roll-ups) are kept.
pub const DAILY_ANALYTICS_DAYS: i64 = 400;

fn days_after(day: NaiveDate, days: i64) -> i64 {
    (day + chrono::Duration::days(days + 1))
        .and_hms_opt(0, 0, 0)
        .map_or(i64::MAX, |t| t.and_utc().timestamp())
}

/// When an hourly analytics item of `day` expires (unix seconds).
pub fn hourly_analytics_expiry(day: NaiveDate) -> i64 {
    days_after(day, HOURLY_ANALYTICS_DAYS)
}

/// When a daily analytics item of `day` expires (unix seconds).
pub fn daily_analytics_expiry(day: NaiveDate) -> i64 {
    days_after(day, DAILY_ANALYTICS_DAYS)
}

/// An account's latency histograms and cache counts of one UTC hour (`counters`).
pub fn latency_hour(account_id: &AccountId, hour: chrono::DateTime<chrono::Utc>) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("LATH#{}", hour.format("%Y-%m-%dT%H")),
    )
}

/// An account's latency histograms and cache counts of one UTC day (`counters`).
pub fn latency_day(account_id: &AccountId, day: NaiveDate) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("LATD#{day}"),
    )
}

/// The mark that an account's `usage.threshold` event for a class, day and percentage was sent
/// (`counters`; written once, conditionally).
pub fn usage_threshold(account_id: &AccountId, day: NaiveDate, class: &str, percent: u32) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("THRESHOLD#{day}#{class}#{percent}"),
    )
}

/// An account's usage of one UTC day, rolled up from its quota counters (`counters`): kept for
/// the daily retention, after the counters (and their hourly cells) expire.
pub fn usage_day(account_id: &AccountId, day: NaiveDate) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("USAGED#{day}"),
    )
}

/// An account's daily usage roll-ups, oldest first.
pub fn usage_days(account_id: &AccountId) -> Query {
    Query::partition(Table::Counters, account_partition(account_id)).with_prefix("USAGED#")
}

/// An account's webhook delivery outcomes of one UTC day (`counters`): `delivered`, `failed`
/// (given up or the endpoint disabled) and `retried` (a failed attempt that will be retried).
pub fn delivery_outcomes(account_id: &AccountId, day: NaiveDate) -> Key {
    Key::new(
        Table::Counters,
        account_partition(account_id),
        format!("DELIVERIES#{day}"),
    )
}

/// An account's hourly (`LATH#`) or daily (`LATD#`) latency items, oldest first.
pub fn latency_items(account_id: &AccountId, hourly: bool) -> Query {
    Query::partition(Table::Counters, account_partition(account_id)).with_prefix(if hourly {
        "LATH#"
    } else {
        "LATD#"
    })
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

/// A batch job's record under its account: status and counts, never the items.
pub fn batch(account_id: &AccountId, batch_id: &BatchId) -> Key {
    Key::new(
        Table::Entities,
        account_partition(account_id),
        format!("BATCH#{batch_id}"),
    )
}

/// An account's batches (ids sort by creation time: `descending` is newest first).
pub fn batches(account_id: &AccountId) -> Query {
    Query::partition(Table::Entities, account_partition(account_id)).with_prefix("BATCH#")
}

/// The partition of one batch's chunks and results (`logs`: everything in it expires).
fn batch_partition(batch_id: &BatchId) -> String {
    format!("BATCH#{batch_id}")
}

/// The items of one chunk of a batch, as submitted (immutable).
pub fn batch_chunk_items(batch_id: &BatchId, chunk: u32) -> Key {
    Key::new(
        Table::Bulk,
        batch_partition(batch_id),
        format!("CHUNKITEMS#{chunk:05}"),
    )
}

/// The state of one chunk (`pending`, `running`, `done`, `cancelled`, `expired`): small, so
/// its conditional transitions cost one write unit.
pub fn batch_chunk_state(batch_id: &BatchId, chunk: u32) -> Key {
    Key::new(
        Table::Logs,
        batch_partition(batch_id),
        format!("CHUNK#{chunk:05}"),
    )
}

/// The chunk number of a chunk state's sort key.
pub fn parse_batch_chunk_state(sort_key: &str) -> Option<u32> {
    sort_key.strip_prefix("CHUNK#")?.parse().ok()
}

/// A batch's chunk states, in chunk order.
pub fn batch_chunk_states(batch_id: &BatchId) -> Query {
    Query::partition(Table::Logs, batch_partition(batch_id)).with_prefix("CHUNK#")
}

/// The sort-key prefix of a batch's result lines.
pub const BATCH_RESULTS_PREFIX: &str = "RESULT#";
/// The sort-key prefix of a batch's failed items (their result lines and requests).
pub const BATCH_FAILURES_PREFIX: &str = "FAILED#";

/// The result line of item `index`, written by chunk `chunk` (lines are read a settled chunk
/// at a time, so they sort by chunk first).
pub fn batch_result(batch_id: &BatchId, chunk: u32, index: u32) -> Key {
    Key::new(
        Table::Bulk,
        batch_partition(batch_id),
        format!("{BATCH_RESULTS_PREFIX}{chunk:05}#{index:05}"),
    )
}

/// A failed item of a batch: its line again (for `?status=failed`) and its request (for retry).
pub fn batch_failure(batch_id: &BatchId, chunk: u32, index: u32) -> Key {
    Key::new(
        Table::Bulk,
        batch_partition(batch_id),
        format!("{BATCH_FAILURES_PREFIX}{chunk:05}#{index:05}"),
    )
}

/// The lines under `prefix` ([`BATCH_RESULTS_PREFIX`] or [`BATCH_FAILURES_PREFIX`]) of one
/// chunk, or of the whole batch with `chunk` `None`, in item order.
pub fn batch_lines(batch_id: &BatchId, prefix: &str, chunk: Option<u32>) -> Query {
    let query = Query::partition(Table::Bulk, batch_partition(batch_id));
    match chunk {
        Some(chunk) => query.with_prefix(format!("{prefix}{chunk:05}#")),
        None => query.with_prefix(prefix),
    }
}

/// The partition key of a batch's chunks and lines (cursors into it are checked against it).
pub fn batch_lines_partition(batch_id: &BatchId) -> String {
    batch_partition(batch_id)
}

/// The claim of one second's `batch.progress` event of a batch (at most one per second).
pub fn batch_progress_claim(batch_id: &BatchId, unix_second: i64) -> Key {
    Key::new(
        Table::Logs,
        batch_partition(batch_id),
        format!("PROGRESS#{unix_second}"),
    )
}

/// An account's event log head: the cursor of its last entry (`entities`; never expires, so
/// cursors only ever grow).
pub fn event_log_head(account_id: &AccountId) -> Key {
    Key::new(Table::Entities, account_partition(account_id), "EVENTLOG")
}

fn event_log_partition(account_id: &AccountId) -> String {
    format!("EVENTS#{account_id}")
}

/// Entry `cursor` of an account's event log (`logs`, expiring).
pub fn event_log_entry(account_id: &AccountId, cursor: u64) -> Key {
    Key::new(
        Table::Logs,
        event_log_partition(account_id),
        format!("SEQ#{cursor:020}"),
    )
}

/// The entries of an account's event log, oldest first.
pub fn event_log_entries(account_id: &AccountId) -> Query {
    Query::partition(Table::Logs, event_log_partition(account_id)).with_prefix("SEQ#")
}

/// The cursor of an event log entry's sort key.
pub fn parse_event_log_entry(sort_key: &str) -> Option<u64> {
    sort_key.strip_prefix("SEQ#")?.parse().ok()
}

/// The mark that event `event_id` is in the account's log (a redelivered event is appended once).
pub fn event_log_mark(account_id: &AccountId, event_id: &str) -> Key {
    Key::new(
        Table::Logs,
        event_log_partition(account_id),
        format!("EVT#{event_id}"),
    )
}

/// An open WebSocket connection under its account (`connections`, expiring at the gateway's
/// lifetime cap): what the fan-out queries.
pub fn realtime_connection(account_id: &AccountId, connection_id: &str) -> Key {
    Key::new(
        Table::Connections,
        account_partition(account_id),
        format!("WSCONN#{connection_id}"),
    )
}

/// An account's open WebSocket connections.
pub fn realtime_connections(account_id: &AccountId) -> Query {
    Query::partition(Table::Connections, account_partition(account_id)).with_prefix("WSCONN#")
}

/// A connection's place in the sweep index (`gsi1`): every connection, in 16 shards, for the
/// heartbeat sweep.
pub fn realtime_connection_sweep_entry(shard: u32, connection_id: &str) -> IndexKey {
    IndexKey::new(format!("WSCONNS#{shard:02}"), connection_id)
}

/// Every open connection of one sweep shard.
pub fn realtime_connections_in_shard(shard: u32) -> Query {
    Query::index(Table::Connections, format!("WSCONNS#{shard:02}"))
}

/// Which account a connection belongs to: `$disconnect` and the routes name only the
/// connection.
pub fn realtime_connection_owner(connection_id: &str) -> Key {
    Key::new(
        Table::Connections,
        format!("WSCONN#{connection_id}"),
        "OWNER",
    )
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
        let block = quota_block(&account, day, "charts", "b01");
        assert_eq!(block.sk, "QUOTA#2026-12-01#charts#b01");
        assert_eq!(parse_quota_counter(&block.sk), Some((day, "charts")));
        assert_eq!(
            delivery_attempt(&EndpointId::generate(), 42, "msg_1", 3).sk,
            "DELIVERY#0000000000042#msg_1#03"
        );
        let batch = BatchId::generate();
        assert_eq!(batch_result(&batch, 2, 7).sk, "RESULT#00002#00007");
        assert_eq!(batch_chunk_state(&batch, 3).sk, "CHUNK#00003");
        assert!(!batch_chunk_items(&batch, 3).sk.starts_with("CHUNK#"));
        // The summaries' prefix never matches a document.
        assert!(
            !saved_chart_document(&account, &ChartId::generate())
                .sk
                .starts_with("CHART#")
        );
    }
}
