//! Benchmark: one account metered as fast as this machine can drive it, on DynamoDB Local behind
//! `orrery_tests::faulty`'s per-item write limit (DynamoDB takes at most 1,000 write units a
//! second on one item; no emulator enforces it, so the proxy does, counting each write as one
//! unit), with its daily counter alone and with quota blocks (`access::hot`), in the same run.
//! Each phase runs `admit` (the metered path's one store write, as a request makes it) from
//! many tasks in three containers for a fixed time, then a last phase spends a whole limit on
//! blocks to show the count exact under load.
//!
//! Needs DynamoDB Local (`ORRERY_TEST_DYNAMODB_LOCAL_ENDPOINT`) and moto
//! (`ORRERY_TEST_MOTO_ENDPOINT`) as the test command starts them:
//! `cargo bench -p orrery-tests --bench hot_account` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orrery::App;
use orrery::access::{QuotaClass, Refused, admit, quota};
use orrery::config::Config;
use orrery_tests::faulty::{FaultyProxy, ItemWriteLimit};
use orrery_tests::{Backend, TestOptions};

/// The per-item write limit the proxy enforces (DynamoDB's: 1,000 units a second).
const ITEM_WRITES_PER_SECOND: u32 = 1_000;
const PHASE: Duration = Duration::from_secs(10);
const TASKS_PER_CONTAINER: usize = 24;
const EXACT_LIMIT: u64 = 20_000;

struct Phase {
    admitted: usize,
    failed: usize,
    refused: usize,
    seconds: f64,
    busiest: usize,
    throttled: usize,
}

#[tokio::main]
async fn main() {
    println!(
        "| phase ({} containers × {TASKS_PER_CONTAINER} tasks, {} s) | admitted/s | failed (500) | busiest item, writes in one second | writes throttled |",
        3,
        PHASE.as_secs()
    );
    println!("|---|---:|---:|---:|---:|");
    for (hot, auto, name) in [
        (
            false,
            false,
            "one daily counter (not hot, `ORRERY_HOT_QUOTA_AUTO=false`)",
        ),
        (
            false,
            true,
            "not hot, marked hot by its first throttled write (the default)",
        ),
        (true, true, "hot from the start (`hot_quota: true`)"),
    ] {
        let (apps, key, limit) = setup(1_000_000_000, hot, auto).await;
        let phase = drive(&apps, &key, Some(PHASE), &limit).await;
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            phase.admitted as f64 / phase.seconds,
            phase.failed,
            phase.busiest,
            phase.throttled
        );
    }

    // Exactness under load: a whole limit spent on blocks by every task at once.
    let (apps, key, limit) = setup(EXACT_LIMIT, true, true).await;
    let phase = drive(&apps, &key, None, &limit).await;
    let caller = orrery::access::auth::authenticate(&apps[0], &orrery_tests::bearer_headers(&key))
        .await
        .unwrap();
    let used =
        orrery_tests::units_used_today(&apps[0], &caller.account_id, QuotaClass::Charts).await;
    let blocks = apps[0]
        .store
        .query(
            orrery::store::keyspace::quota_counter_and_blocks(
                &caller.account_id,
                quota::Window::containing(orrery::clock::now()).day,
                "charts",
            )
            .with_limit(1000),
        )
        .await
        .unwrap()
        .items
        .len();
    println!();
    println!("| spending a limit of {EXACT_LIMIT} on blocks, all tasks at once | value |");
    println!("|---|---:|");
    println!("| admitted | {} |", phase.admitted);
    println!("| refused (429) after the limit | {} |", phase.refused);
    println!("| failed (500) | {} |", phase.failed);
    println!("| units used, summed over the counter and its blocks | {used} |");
    println!("| blocks | {} |", blocks - 1);
    println!(
        "| admitted/s while spending | {:.0} |",
        phase.admitted as f64 / phase.seconds
    );
    println!("| busiest item, writes in one second | {} |", phase.busiest);
    assert_eq!(phase.admitted as u64, EXACT_LIMIT, "exact");
    assert_eq!(used as u64, EXACT_LIMIT, "exact");
}

/// Three containers of a DynamoDB Local backend behind a per-item write limit, and a key of an
/// account with `limit` charts a day, marked hot or not.
async fn setup(limit: u64, hot: bool, auto: bool) -> (Vec<App>, String, Arc<ItemWriteLimit>) {
    let backend = orrery_tests::backend_with(
        Backend::DynamoDbLocal,
        TestOptions {
            config: Config {
                tiers: orrery_tests::tiers_with(&[("free", "charts", limit)]),
                analytics_flush_interval: Duration::from_secs(3600),
                hot_quota_auto: auto,
                ..Config::default()
            },
        },
    )
    .await;
    let writes = ItemWriteLimit::new(ITEM_WRITES_PER_SECOND);
    let proxy =
        FaultyProxy::start_inspecting(&orrery_tests::dynamodb_local_endpoint(), writes.plan())
            .await;
    let proxied = orrery_tests::sdk_config_at(&proxy.url, "us-east-1").await;
    // The proxy lives as long as the process (each phase has its own).
    std::mem::forget(proxy);
    let resources = backend.resources.clone().unwrap();
    let config = (*backend.app.config).clone();
    let container = || {
        let store = orrery::store::dynamo::DynamoStore::connect(
            &config.dynamodb,
            &proxied,
            resources.tables.clone(),
            None,
        );
        App::aws_on(
            config.clone(),
            &resources,
            backend.sdk.as_ref().unwrap(),
            Arc::new(store),
        )
    };
    let apps = vec![container(), container(), container()];
    let created = orrery_tests::new_account_on(&apps[0], hot).await;
    std::mem::forget(backend);
    (apps, created.api_key.key, writes)
}

/// Admits from every task of every container for `time` (or until refused): the counts.
async fn drive(apps: &[App], key: &str, time: Option<Duration>, writes: &ItemWriteLimit) -> Phase {
    let (admitted, failed, refused) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for app in apps {
        for _ in 0..TASKS_PER_CONTAINER {
            let headers = orrery_tests::bearer_headers(key);
            let (app, admitted, failed, refused) = (
                app.clone(),
                admitted.clone(),
                failed.clone(),
                refused.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while time.is_none_or(|time| started.elapsed() < time) {
                    let caller = orrery::access::auth::authenticate(&app, &headers)
                        .await
                        .unwrap();
                    match admit(&app, &caller, QuotaClass::Charts, "POST /v1/charts").await {
                        Ok(_) => admitted.fetch_add(1, Ordering::Relaxed),
                        Err(Refused::Exhausted(_)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(Refused::Failed(_)) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    Phase {
        admitted: admitted.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        busiest: writes.busiest.load(Ordering::Relaxed),
        throttled: writes.throttled.load(Ordering::Relaxed),
    }
}
