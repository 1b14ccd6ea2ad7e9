//! Benchmark: the auth + quota path per request next to a bare handler, through the real router
//! and platform layers, in-process (no network), on the embedded store — in memory (the access
//! layer's own cost) and on a file (with the durable group-committed write).
//!
//! `cargo bench -p orrery-tests --bench access` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use orrery::App;
use orrery::access::manage::{self, NewAccountRequest};
use orrery::access::{QuotaClass, Tier, metered};
use orrery::config::Config;
use orrery::embedded::EmbeddedDb;
use orrery::secrets::MemorySecrets;
use tower::ServiceExt;

/// Opens a benchmark database by name.
type OpenDb<'a> = Box<dyn Fn(&str) -> EmbeddedDb + 'a>;

const SEQUENTIAL: usize = 4000;
const CONCURRENCY: usize = 32;
const CONCURRENT_TOTAL: usize = 8000;
/// Alternating requests of the analytics-off and -on metered path, each.
const INTERLEAVED: usize = 10_000;

fn config(analytics: bool) -> Config {
    Config {
        tiers: orrery_tests::tiers_with(&[("unlimited", "management", 100_000_000)]),
        analytics,
        ..Config::default()
    }
}

async fn setup(db: EmbeddedDb, analytics: bool) -> (Router, String) {
    let app = App::embedded_with(config(analytics), db, Arc::new(MemorySecrets::default()));
    orrery::access::ensure_local_secrets(&app, Some("orr_admin_bench"))
        .await
        .unwrap();
    let created = manage::create_account(
        &app,
        NewAccountRequest {
            name: "bench".into(),
            tier: Tier::Unlimited,
            key_name: None,
            activity_events: true,
        },
    )
    .await
    .unwrap();
    let probe = Router::new().route("/v1/probe", get(|| async { "ok" }));
    let routes = Router::new()
        .route("/bare", get(|| async { "ok" }))
        .merge(metered(probe, &app, QuotaClass::Management, "keys"));
    (
        orrery::http::platform_layers(routes, orrery::http::Platform::of(&app.config)),
        created.api_key.key,
    )
}

async fn call(router: &Router, path: &str, key: &str) {
    let request = axum::http::Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

async fn measure(router: &Router, path: &'static str, key: &str) -> Figures {
    for _ in 0..200 {
        call(router, path, key).await;
    }
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        call(router, path, key).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (router, key) = (router.clone(), key.to_owned());
            tokio::spawn(async move {
                for _ in 0..CONCURRENT_TOTAL / CONCURRENCY {
                    call(&router, path, &key).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Figures {
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
        per_second: CONCURRENT_TOTAL as f64 / started.elapsed().as_secs_f64(),
    }
}

/// The p50s of the two metered paths, their requests alternating.
async fn interleaved_p50s(
    router_off: &Router,
    key_off: &str,
    router_on: &Router,
    key_on: &str,
) -> (Duration, Duration) {
    let (mut off, mut on) = (
        Vec::with_capacity(INTERLEAVED),
        Vec::with_capacity(INTERLEAVED),
    );
    for _ in 0..INTERLEAVED {
        let started = Instant::now();
        call(router_off, "/v1/probe", key_off).await;
        off.push(started.elapsed());
        let started = Instant::now();
        call(router_on, "/v1/probe", key_on).await;
        on.push(started.elapsed());
    }
    off.sort();
    on.sort();
    (off[INTERLEAVED / 2], on[INTERLEAVED / 2])
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let stores: [(&str, OpenDb); 2] = [
            ("embedded, in memory", Box::new(|_| EmbeddedDb::in_memory().unwrap())),
            (
                "embedded, file (fsync per group commit)",
                Box::new(|name| EmbeddedDb::open(&dir.path().join(format!("{name}.redb"))).unwrap()),
            ),
        ];
        println!("| store | handler | p50 (sequential) | p99 (sequential) | req/s at {CONCURRENCY} concurrent | p50 ratio to bare |");
        println!("|---|---|---:|---:|---:|---:|");
        let mut analytics_ratios = Vec::new();
        for (name, open) in &stores {
            // Analytics off is the metered path as it was before usage cells and the aggregator:
            // the same write without the two cells. Requests alternate off, on, off, on, … so
            // that drift in the machine's speed falls on both alike (separate runs of either
            // differ by ±15 % here, far more than the difference measured).
            //
            // Both on one database (two containers of one store): one writer thread serves both,
            // so its wake-ups, which dominate the in-memory figures, fall on both alike.
            let db = open("bench");
            let (router_off, key_off) = setup(db.clone(), false).await;
            let (router_on, key_on) = setup(db, true).await;
            let bare = measure(&router_off, "/bare", &key_off).await;
            let off = measure(&router_off, "/v1/probe", &key_off).await;
            let on = measure(&router_on, "/v1/probe", &key_on).await;
            let (off_p50, on_p50) = interleaved_p50s(&router_off, &key_off, &router_on, &key_on).await;
            analytics_ratios.push((*name, off_p50, on_p50));
            for (label, figures) in [
                ("bare", &bare),
                ("auth + quota (metered), analytics off", &off),
                ("auth + quota (metered), analytics on", &on),
            ] {
                println!(
                    "| {name} | {label} | {} | {} | {:.0} | {:.1}× |",
                    micros(figures.p50),
                    micros(figures.p99),
                    figures.per_second,
                    figures.p50.as_secs_f64() / bare.p50.as_secs_f64()
                );
            }
        }
        println!();
        println!("| store | metered p50, analytics off | metered p50, analytics on | ratio on/off ({INTERLEAVED} requests each, alternating) |");
        println!("|---|---:|---:|---:|");
        for (name, off, on) in analytics_ratios {
            println!(
                "| {name} | {} | {} | {:.3} |",
                micros(off),
                micros(on),
                on.as_secs_f64() / off.as_secs_f64()
            );
        }
    });
}
