//! Benchmark: the DynamoDB client as Lambda builds it (`ClientSettings::default()`: 1.5 s per
//! attempt, 4 s per call, 3 attempts, backoff from 25 ms) against the SDK's defaults (no
//! attempt timeout, standard retry with backoff from 1 s), in the same run, on DynamoDB Local
//! behind `orrery_tests::faulty`'s proxy: once with nothing injected, once with 2 % of requests
//! throttled and 0.5 % held for 3 s (a slow partition or a lost packet). Also the cold start of
//! a client: building it and its first call (a new connection) against a warm call.
//!
//! Needs DynamoDB Local (`ORRERY_TEST_DYNAMODB_LOCAL_ENDPOINT`), as the test command starts it:
//! `cargo bench -p orrery-tests --bench dynamodb_client` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use orrery::store::dynamo::{ClientSettings, DynamoStore, TableNames};
use orrery::store::{Item, Key, Store, Table};
use orrery_tests::faulty::{Fault, FaultyProxy};
use orrery_tests::percentile;

const CALLS: usize = 1000;
const COLD_STARTS: usize = 20;

fn faults(n: usize) -> Fault {
    if n % 200 == 117 {
        Fault::Delay(Duration::from_secs(3))
    } else if n % 50 == 13 {
        Fault::Throttle
    } else {
        Fault::Pass
    }
}

#[tokio::main]
async fn main() {
    let sdk = orrery_tests::dynamodb_local_sdk_config().await;
    let direct = aws_sdk_dynamodb::Client::new(&sdk);
    let name = format!("bench-{}", orrery_tests::unique_suffix());
    orrery_tests::create_table(&direct, &name, false).await;
    let tables = TableNames {
        entities: name.clone(),
        counters: name.clone(),
        logs: name.clone(),
        bulk: name.clone(),
        connections: name,
    };
    let key = Key::new(Table::Entities, "ACCT#a1", "ACCOUNT");
    let attrs = serde_json::json!({"name": "Ada", "tier": "premium"});
    DynamoStore::new(direct, tables.clone())
        .put(
            Item::new(key.clone(), attrs.as_object().cloned().unwrap()),
            None,
        )
        .await
        .unwrap();

    println!("| client | proxy | calls | failed | p50 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut p99s = Vec::new();
    for (proxy_name, plan) in [
        ("clean", (|_| Fault::Pass) as fn(usize) -> Fault),
        ("2 % throttled, 0.5 % held 3 s", faults),
    ] {
        for settings in [None, Some(ClientSettings::default())] {
            let proxy = FaultyProxy::start(&orrery_tests::dynamodb_local_endpoint(), plan).await;
            let store = store_via(&proxy, settings, &tables).await;
            let (mut times, mut failed) = (Vec::with_capacity(CALLS), 0);
            for _ in 0..CALLS {
                let started = Instant::now();
                if store.get(&key).await.is_err() {
                    failed += 1;
                }
                times.push(started.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let client = if settings.is_some() {
                "Orrery's settings"
            } else {
                "SDK defaults"
            };
            let p99 = percentile(&times, 0.99);
            p99s.push((proxy_name, client, p99));
            println!(
                "| {client} | {proxy_name} | {CALLS} | {failed} | {} | {} | {} |",
                ms(percentile(&times, 0.5)),
                ms(p99),
                ms(*times.last().unwrap())
            );
        }
    }
    for pair in p99s.chunks(2) {
        println!(
            "| p99 ratio, {}: Orrery's ÷ SDK defaults | | | | | {:.2}× | |",
            pair[0].0,
            pair[1].2 / pair[0].2
        );
    }

    // Cold start: a new client (as at a Lambda init) and its first call, which opens the
    // connection, against the warm call that follows on the same client.
    let proxy = FaultyProxy::start(&orrery_tests::dynamodb_local_endpoint(), |_| Fault::Pass).await;
    let (mut builds, mut firsts, mut warms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..COLD_STARTS {
        let started = Instant::now();
        let store = store_via(&proxy, Some(ClientSettings::default()), &tables).await;
        builds.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        store.get(&key).await.unwrap();
        firsts.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        store.get(&key).await.unwrap();
        warms.push(started.elapsed().as_secs_f64());
    }
    for values in [&mut builds, &mut firsts, &mut warms] {
        values.sort_by(f64::total_cmp);
    }
    println!();
    println!("| cold start ({COLD_STARTS} new clients) | median | max |");
    println!("|---|---:|---:|");
    for (what, values) in [
        ("SDK config load + client build", &builds),
        ("first GetItem (new connection)", &firsts),
        ("second GetItem (pooled connection)", &warms),
    ] {
        println!(
            "| {what} | {} | {} |",
            ms(percentile(values, 0.5)),
            ms(*values.last().unwrap())
        );
    }
    println!(
        "| first ÷ second call, medians | {:.2}× | |",
        percentile(&firsts, 0.5) / percentile(&warms, 0.5)
    );
}

/// A store whose client reaches DynamoDB Local through `proxy`: Orrery's settings, or the SDK's
/// defaults when `settings` is `None`.
async fn store_via(
    proxy: &FaultyProxy,
    settings: Option<ClientSettings>,
    tables: &TableNames,
) -> DynamoStore {
    let sdk = orrery_tests::sdk_config_at(&proxy.url, "us-east-1").await;
    match settings {
        Some(settings) => DynamoStore::connect(&settings, &sdk, tables.clone(), None),
        None => DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), tables.clone()),
    }
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1000.0)
}
