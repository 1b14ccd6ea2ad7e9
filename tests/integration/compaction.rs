//! The quota counter's hourly compaction (issue #16, "bound it"): what an hour's requests wrote
//! to the day's counter moves to an hour item beside it, so the counter holds only the current
//! hour, while every total read from the day (usage, per key, the daily roll-up) stays the same,
//! and a refund racing the move is never lost.

use chrono::{DateTime, NaiveTime, Utc};
use orrery::access::compaction;
use orrery::access::quota::{self, RefundReason, Window};
use orrery::access::{QuotaClass, manage::UsageIndex};
use orrery::ids::{AccountId, KeyId};
use orrery::store::{Item, Store, keyspace};
use orrery_tests::Backend;
use serde_json::{Map, Value};

/// The trigger, through a real admission: DynamoDB Local reports the write units an `UpdateItem`
/// was billed and the embedded store applies the same size rule; moto reports none, so there
/// the trigger cannot be seen (its compaction itself is covered by the tests above).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admission_billed_past_1_kb_compacts_the_counter_embedded() {
    an_admission_billed_past_1_kb_compacts_the_counter(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_admission_billed_past_1_kb_compacts_the_counter_dynamodb_local() {
    an_admission_billed_past_1_kb_compacts_the_counter(Backend::DynamoDbLocal).await;
}

on_every_store!(
    compaction_moves_past_hours_out_of_the_counter_and_keeps_every_total,
    a_refund_racing_a_compaction_is_never_lost,
    key_usage_reads_back_to_the_last_use_and_no_further,
    a_counter_of_hundreds_of_cells_moves_in_several_transactions,
);

const CHARTS: &str = "POST /v1/charts";
const READINGS: &str = "POST /v1/readings";

/// Today at `hh:mm` UTC.
fn today_at(hh: u32, mm: u32) -> DateTime<Utc> {
    Utc::now()
        .date_naive()
        .and_time(NaiveTime::from_hms_opt(hh, mm, 0).unwrap())
        .and_utc()
}

async fn admit_at(
    store: &dyn Store,
    account: &AccountId,
    key: &KeyId,
    at: DateTime<Utc>,
    endpoint: &str,
) {
    let window = Window::containing(at);
    store
        .increment(quota::admission(
            account,
            key,
            QuotaClass::Charts,
            10_000,
            &window,
            at,
            Some(endpoint),
        ))
        .await
        .unwrap();
}

/// Every item of the day's charts counter (counter, hour items), read strongly.
async fn day_items(store: &dyn Store, account: &AccountId) -> Vec<Item> {
    let day = Utc::now().date_naive();
    let page = store
        .query(keyspace::quota_counter_and_blocks(account, day, "charts").consistent())
        .await
        .unwrap();
    assert!(page.next.is_none());
    page.items
}

/// The day's numbers as a reader adds them up over its items: every number attribute summed
/// (`moves` aside), every `last#` the latest.
fn totals(items: &[Item]) -> Map<String, Value> {
    let mut sums: std::collections::BTreeMap<String, i64> = Default::default();
    let mut latest: std::collections::BTreeMap<String, String> = Default::default();
    for item in items {
        for (name, value) in &item.attrs {
            if name == compaction::MOVES {
                continue;
            }
            if let Some(n) = value.as_i64() {
                *sums.entry(name.clone()).or_default() += n;
            } else if let (Some(text), true) = (value.as_str(), name.starts_with("last#")) {
                let slot = latest.entry(name.clone()).or_default();
                if text > slot.as_str() {
                    *slot = text.to_owned();
                }
            }
        }
    }
    let mut out = Map::new();
    for (name, n) in sums.into_iter().filter(|(_, n)| *n != 0) {
        out.insert(name, n.into());
    }
    for (name, text) in latest {
        out.insert(name, text.into());
    }
    out
}

async fn compaction_moves_past_hours_out_of_the_counter_and_keeps_every_total(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = backend.app.store.as_ref();
    let account = AccountId::generate();
    let (idle_key, busy_key) = (KeyId::generate(), KeyId::generate());
    for minute in [5, 20, 40] {
        admit_at(store, &account, &idle_key, today_at(3, minute), CHARTS).await;
    }
    admit_at(store, &account, &idle_key, today_at(4, 10), READINGS).await;
    admit_at(store, &account, &busy_key, today_at(4, 50), CHARTS).await;
    admit_at(store, &account, &busy_key, today_at(5, 10), CHARTS).await;
    // A 4xx at 03h gives its unit back and moves its cell.
    let counter = quota::counter_key(&account, Utc::now().date_naive(), QuotaClass::Charts);
    store
        .increment(quota::refund(
            counter.clone(),
            &idle_key,
            today_at(3, 40),
            Some(CHARTS),
            RefundReason::ClientError,
        ))
        .await
        .unwrap();

    let before = totals(&day_items(store, &account).await);
    let index_before = UsageIndex::load(store, &account, Utc::now().date_naive(), &[])
        .await
        .unwrap();
    let rolled_before = orrery_analytics::rollup::roll_up(store, &account, Utc::now().date_naive())
        .await
        .unwrap();
    assert!(rolled_before);
    let rollup_key = keyspace::usage_day(&account, Utc::now().date_naive());
    let rollup_before = store
        .get_consistent(&rollup_key)
        .await
        .unwrap()
        .unwrap()
        .attrs;

    let now = today_at(5, 30);
    let moved = compaction::compact(store, &account, QuotaClass::Charts, now)
        .await
        .unwrap();
    assert!(moved > 0);
    assert_eq!(
        compaction::compact(store, &account, QuotaClass::Charts, now)
            .await
            .unwrap(),
        0,
        "a second compaction in the hour finds nothing to move"
    );

    let items = day_items(store, &account).await;
    let counter_now = items.iter().find(|item| item.key == counter).unwrap();
    let mut left: Vec<&str> = counter_now.attrs.keys().map(String::as_str).collect();
    left.sort();
    let busy = busy_key.as_str();
    assert_eq!(
        left,
        [
            "05|POST /v1/charts|2xx".to_owned(),
            "05|POST /v1/charts|units".to_owned(),
            "count".to_owned(),
            format!("key#{busy}"),
            format!("last#{busy}"),
        ],
        "the counter keeps the current hour and the key used this hour"
    );
    let hours: Vec<&str> = items
        .iter()
        .filter(|item| item.key != counter)
        .map(|item| item.key.sk.rsplit('#').next().unwrap())
        .collect();
    assert_eq!(hours, ["h03", "h04"]);
    assert_eq!(totals(&items), before, "every total the same");
    let index_after = UsageIndex::load(store, &account, Utc::now().date_naive(), &[])
        .await
        .unwrap();
    assert_eq!(index_after, index_before, "per-key usage the same");
    orrery_analytics::rollup::roll_up(store, &account, Utc::now().date_naive())
        .await
        .unwrap();
    let rollup_after = store
        .get_consistent(&rollup_key)
        .await
        .unwrap()
        .unwrap()
        .attrs;
    assert_eq!(rollup_after, rollup_before, "the day's roll-up the same");
    let units: i64 = items.iter().map(quota::units_used).sum();
    assert_eq!(units, 6 - 1, "units used: six admitted, one refunded");
}

async fn a_refund_racing_a_compaction_is_never_lost(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = backend.app.store.clone();
    let account = AccountId::generate();
    let key = KeyId::generate();
    const ADMITTED: usize = 40;
    const REFUNDED: usize = 25;
    for n in 0..ADMITTED {
        admit_at(
            store.as_ref(),
            &account,
            &key,
            today_at(3, (n % 60) as u32),
            CHARTS,
        )
        .await;
    }
    let counter = quota::counter_key(&account, Utc::now().date_naive(), QuotaClass::Charts);
    let refunds: Vec<_> = (0..REFUNDED)
        .map(|_| {
            let (store, counter, key) = (store.clone(), counter.clone(), key.clone());
            tokio::spawn(async move {
                store
                    .increment(quota::refund(
                        counter,
                        &key,
                        today_at(3, 30),
                        Some(CHARTS),
                        RefundReason::ClientError,
                    ))
                    .await
                    .unwrap();
            })
        })
        .collect();
    let compactions: Vec<_> = (0..4)
        .map(|n| {
            let (store, account) = (store.clone(), account.clone());
            tokio::spawn(async move {
                // Refused after its tries when refunds keep changing the cells: fine, a later
                // one moves them.
                let _ = compaction::compact(
                    store.as_ref(),
                    &account,
                    QuotaClass::Charts,
                    today_at(4 + n, 0),
                )
                .await;
            })
        })
        .collect();
    for task in refunds.into_iter().chain(compactions) {
        task.await.unwrap();
    }
    compaction::compact(store.as_ref(), &account, QuotaClass::Charts, today_at(8, 0))
        .await
        .unwrap();
    let items = day_items(store.as_ref(), &account).await;
    let sums = totals(&items);
    let number = |name: &str| sums.get(name).and_then(Value::as_i64).unwrap_or(0);
    let (admitted, refunded) = (ADMITTED as i64, REFUNDED as i64);
    assert_eq!(
        number("03|POST /v1/charts|units"),
        admitted - refunded,
        "{sums:?}"
    );
    assert_eq!(number("03|POST /v1/charts|2xx"), admitted - refunded);
    assert_eq!(number("03|POST /v1/charts|4xx"), refunded);
    assert_eq!(
        number(&format!("key#{}", key.as_str())),
        admitted - refunded
    );
    assert_eq!(number("count"), admitted - refunded);
    let counter_now = items.iter().find(|item| item.key == counter).unwrap();
    assert!(
        counter_now.attrs.keys().all(|name| name == "count"),
        "everything else moved: {:?}",
        counter_now.attrs
    );
}

/// A key's listing reads the account's counters newest day first and stops once every listed
/// key's last use is known: a planted `last#` on an older day is never read.
async fn key_usage_reads_back_to_the_last_use_and_no_further(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = &backend.app;
    let store = app.store.as_ref();
    let created = orrery_tests::new_account_on(app, false).await;
    let account = created.account.id.clone();
    let key_id = KeyId::parse(&created.api_key.view.id).unwrap();
    let mut record = orrery::access::keys::get(store, &account, &key_id)
        .await
        .unwrap()
        .unwrap();
    let today = Utc::now().date_naive();
    let days_ago = |n: i64, hh: u32| {
        (today - chrono::Duration::days(n))
            .and_time(NaiveTime::from_hms_opt(hh, 0, 0).unwrap())
            .and_utc()
    };
    // As if the key were 60 days old, last used 10 days ago (twice) and 12 days ago.
    record.created_at = days_ago(60, 0);
    for at in [days_ago(12, 9), days_ago(10, 8), days_ago(10, 12)] {
        admit_at(store, &account, &key_id, at, CHARTS).await;
    }
    // A planted, impossible last use 40 days ago: read only by a load that went too far.
    let planted = quota::counter_key(
        &account,
        today - chrono::Duration::days(40),
        QuotaClass::Charts,
    );
    store
        .increment(
            orrery::store::Increment::new(planted, "count", 1)
                .expiring_at(Window::of_day(today).expires_counter_at())
                .also_set(
                    format!("last#{}", key_id.as_str()),
                    "2099-01-01T00:00:00Z".into(),
                ),
        )
        .await
        .unwrap();

    let index = UsageIndex::load(
        store,
        &account,
        today - chrono::Duration::days(13),
        &[&record],
    )
    .await
    .unwrap();
    let last = orrery::clock::rfc3339(days_ago(10, 12));
    assert_eq!(index.last_used.get(key_id.as_str()), Some(&last));
    let days = &index.days[key_id.as_str()];
    assert_eq!(days[&(today - chrono::Duration::days(10))]["charts"], 2);
    assert_eq!(days[&(today - chrono::Duration::days(12))]["charts"], 1);
    assert_eq!(days.len(), 2, "{days:?}");
    // Read over everything instead, the planted use shows: the early stop is what hid it.
    let never_used = orrery::access::keys::KeyRecord {
        created_at: days_ago(89, 0),
        id: KeyId::generate(),
        ..record.clone()
    };
    let everything = UsageIndex::load(store, &account, today, &[&record, &never_used])
        .await
        .unwrap();
    assert_eq!(
        everything
            .last_used
            .get(key_id.as_str())
            .map(String::as_str),
        Some("2099-01-01T00:00:00Z")
    );
}

async fn an_admission_billed_past_1_kb_compacts_the_counter(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let app = &backend.app;
    let store = app.store.as_ref();
    let now = Utc::now();
    if chrono::Timelike::hour(&now) == 0 {
        // 00h UTC: today's counter has no earlier hour to move. Nothing to see this hour.
        println!("skipped: at 00h UTC no earlier hour of today exists");
        return;
    }
    let created = orrery_tests::new_account_on(app, false).await;
    let account = created.account.id.clone();
    let key_id = KeyId::parse(&created.api_key.view.id).unwrap();
    let an_hour_ago = now - chrono::Duration::hours(1);
    for n in 0..30 {
        admit_at(
            store,
            &account,
            &key_id,
            an_hour_ago,
            &format!("GET /v1/route-{n:02}"),
        )
        .await;
    }
    let counter = quota::counter_key(&account, now.date_naive(), QuotaClass::Charts);
    let grown = store.get_consistent(&counter).await.unwrap().unwrap();
    assert!(
        grown.billed_bytes() > 1024,
        "{} bytes",
        grown.billed_bytes()
    );

    let caller = orrery::access::auth::authenticate(
        app,
        &orrery_tests::bearer_headers(&created.api_key.key),
    )
    .await
    .unwrap();
    orrery::access::admit(app, &caller, QuotaClass::Charts, CHARTS)
        .await
        .unwrap();

    let compacted = store.get_consistent(&counter).await.unwrap().unwrap();
    assert!(
        compacted.billed_bytes() < 1024,
        "{} bytes: {:?}",
        compacted.billed_bytes(),
        compacted.attrs
    );
    let hour = format!("{:02}|", chrono::Timelike::hour(&an_hour_ago));
    assert!(
        !compacted.attrs.keys().any(|name| name.starts_with(&hour)),
        "no cell of the past hour left on the counter"
    );
    let items = day_items(store, &account).await;
    assert_eq!(items.len(), 2, "the counter and one hour item");
    assert_eq!(
        items.iter().map(quota::units_used).sum::<i64>(),
        31,
        "every unit still counted"
    );
}

/// DynamoDB allows 300 operators in an expression: a counter with hundreds of past cells (the
/// first compaction after a deploy, an account calling many routes) moves in several
/// transactions, and all of it moves.
async fn a_counter_of_hundreds_of_cells_moves_in_several_transactions(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let store = backend.app.store.as_ref();
    let account = AccountId::generate();
    let key = KeyId::generate();
    for n in 0..100 {
        admit_at(
            store,
            &account,
            &key,
            today_at(2, 10),
            &format!("GET /v1/route-{n:03}"),
        )
        .await;
    }
    let before = totals(&day_items(store, &account).await);
    let moved = compaction::compact(store, &account, QuotaClass::Charts, today_at(5, 0))
        .await
        .unwrap();
    assert_eq!(
        moved,
        100 * 2 + 2,
        "200 cells, the key's count and its last use"
    );
    let items = day_items(store, &account).await;
    let counter = quota::counter_key(&account, Utc::now().date_naive(), QuotaClass::Charts);
    let left: Vec<&String> = items
        .iter()
        .find(|item| item.key == counter)
        .unwrap()
        .attrs
        .keys()
        .collect();
    assert_eq!(left, ["count"]);
    assert_eq!(totals(&items), before);
}
