//! The DynamoDB client as Lambda uses it: timeouts and retries against a slow, stalling or
//! throttling DynamoDB, and a replica-region store that writes only to the home region.
//!
//! No emulator stalls or throttles on demand, so the faults come from `orrery_tests::faulty`,
//! a proxy in front of DynamoDB Local that forwards everything else unchanged. moto keeps one
//! backend per region, which is what the replica test needs (it does not replicate global
//! tables, so "replication" is a write the test makes itself).

use std::time::{Duration, Instant};

use orrery::store::dynamo::{ClientSettings, DynamoStore, TableNames};
use orrery::store::{Increment, Item, Key, Query, Store, Table};
use orrery_tests::faulty::{Fault, FaultyProxy};
use serde_json::json;

/// Settings small enough that a stalled attempt is given up quickly in a test.
fn quick() -> ClientSettings {
    ClientSettings {
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_millis(2_000),
        ..ClientSettings::default()
    }
}

/// One table on DynamoDB Local (every logical table named the same), and a store reaching it
/// through a proxy with `plan`.
async fn through_proxy(
    settings: ClientSettings,
    plan: impl Fn(usize) -> Fault + Send + Sync + 'static,
) -> (DynamoStore, FaultyProxy, Key) {
    let sdk = orrery_tests::dynamodb_local_sdk_config().await;
    let direct = aws_sdk_dynamodb::Client::new(&sdk);
    let name = format!("client-{}", orrery_tests::unique_suffix());
    orrery_tests::create_table(&direct, &name, false).await;
    let tables = every_table(&name);
    let key = Key::new(Table::Entities, "ACCT#a1", "ACCOUNT");
    DynamoStore::new(direct, tables.clone())
        .put(Item::new(key.clone(), attrs(json!({"name": "Ada"}))), None)
        .await
        .unwrap();

    let proxy = FaultyProxy::start(&orrery_tests::dynamodb_local_endpoint(), plan).await;
    let proxied = orrery_tests::sdk_config_at(&proxy.url, "us-east-1").await;
    let store = DynamoStore::connect(&settings, &proxied, tables, None);
    (store, proxy, key)
}

fn every_table(name: &str) -> TableNames {
    TableNames {
        entities: name.into(),
        counters: name.into(),
        logs: name.into(),
        bulk: name.into(),
        connections: name.into(),
    }
}

fn attrs(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap()
}

#[tokio::test]
async fn a_stalled_attempt_is_abandoned_at_the_attempt_timeout_and_retried() {
    let (store, proxy, key) =
        through_proxy(quick(), |n| if n == 0 { Fault::Stall } else { Fault::Pass }).await;
    let item = store
        .get(&key)
        .await
        .unwrap()
        .expect("the item, on the retry");
    assert_eq!(item.attrs["name"], "Ada");
    assert_eq!(proxy.requests(), 2, "the stalled attempt and its retry");
}

#[tokio::test]
async fn throttled_attempts_are_retried_until_one_passes() {
    let (store, proxy, key) =
        through_proxy(
            quick(),
            |n| {
                if n < 2 { Fault::Throttle } else { Fault::Pass }
            },
        )
        .await;
    let counted = store
        .increment(Increment::new(key.clone(), "visits", 1))
        .await
        .unwrap();
    assert_eq!(counted, 1);
    assert_eq!(
        proxy.requests(),
        3,
        "two throttled attempts, then the one that counted"
    );
}

#[tokio::test]
async fn throttling_past_the_attempts_is_an_error_not_a_hang() {
    let settings = quick();
    let (store, proxy, key) = through_proxy(settings, |_| Fault::Throttle).await;
    let error = store.get(&key).await.expect_err("every attempt throttled");
    assert!(
        matches!(error, orrery::store::StoreError::Backend(_)),
        "{error:?}"
    );
    assert_eq!(proxy.requests(), settings.max_attempts as usize);
}

#[tokio::test]
async fn a_dynamodb_that_never_answers_fails_the_call_at_the_operation_timeout() {
    let settings = quick();
    let (store, proxy, key) = through_proxy(settings, |_| Fault::Stall).await;
    let started = Instant::now();
    let error = store.get(&key).await.expect_err("nothing ever answers");
    // Not a speed target: the bound only shows that the call gives up (the SDK's defaults
    // have no attempt timeout, and this call would wait for ever).
    assert!(
        started.elapsed() < settings.operation_timeout + Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, orrery::store::StoreError::Backend(_)),
        "{error:?}"
    );
    assert!(
        (2..=settings.max_attempts as usize).contains(&proxy.requests()),
        "each stalled attempt was abandoned and retried: {} attempts",
        proxy.requests()
    );
}

/// A stack in a replica region (`ORRERY_DYNAMODB_WRITE_REGION` = the home region): writes and
/// strongly consistent reads go home, eventually consistent reads and queries stay local.
#[tokio::test]
async fn a_replica_region_store_writes_home_and_reads_its_own_replica() {
    let home_sdk = orrery_tests::moto_sdk_config().await;
    let local_sdk = orrery_tests::sdk_config_at(&orrery_tests::moto_endpoint(), "eu-west-1").await;
    let name = format!("replica-{}", orrery_tests::unique_suffix());
    let home_client = aws_sdk_dynamodb::Client::new(&home_sdk);
    let local_client = aws_sdk_dynamodb::Client::new(&local_sdk);
    for client in [&home_client, &local_client] {
        orrery_tests::create_table(client, &name, false).await;
    }
    let home = DynamoStore::new(home_client, every_table(&name));
    let local = DynamoStore::new(local_client, every_table(&name));
    // The container in eu-west-1, configured with us-east-1 as the write region.
    let store = DynamoStore::connect(
        &ClientSettings::default(),
        &local_sdk,
        every_table(&name),
        Some("us-east-1"),
    );

    let key = Key::new(Table::Counters, "ACCT#a1", "QUOTA#2026-12-07#charts");
    assert_eq!(
        store
            .increment(Increment::new(key.clone(), "count", 1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .increment(Increment::new(key.clone(), "count", 1))
            .await
            .unwrap(),
        2,
        "the second increment saw the first: both went to the one home copy"
    );
    assert_eq!(home.get(&key).await.unwrap().unwrap().attrs["count"], 2);
    assert!(
        local.get(&key).await.unwrap().is_none(),
        "nothing was written to the local replica"
    );
    assert_eq!(
        store.get_consistent(&key).await.unwrap().unwrap().attrs["count"],
        2,
        "a strongly consistent read goes home"
    );
    assert!(
        store.get(&key).await.unwrap().is_none(),
        "an eventually consistent read is served locally (not replicated yet here)"
    );

    // The same configuration in the home region itself is a plain store: it reads at home.
    let at_home = DynamoStore::connect(
        &ClientSettings::default(),
        &home_sdk,
        every_table(&name),
        Some("us-east-1"),
    );
    assert_eq!(at_home.get(&key).await.unwrap().unwrap().attrs["count"], 2);

    // What replication would bring: the local replica's copy.
    let replicated = home.get(&key).await.unwrap().unwrap();
    local.put(replicated, None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().attrs["count"], 2);
    let page = store
        .query(Query::partition(Table::Counters, "ACCT#a1").with_prefix("QUOTA#"))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "queries read the local replica");
}
