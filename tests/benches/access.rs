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

const SEQUENTIAL: usize = 4000;
const CONCURRENCY: usize = 32;
const CONCURRENT_TOTAL: usize = 8000;

fn config() -> Config {
    Config {
        tiers: orrery_tests::tiers_with(&[("unlimited", "management", 100_000_000)]),
        ..Config::default()
    }
}

async fn setup(db: EmbeddedDb) -> (Router, String) {
    let app = App::embedded_with(config(), db, Arc::new(MemorySecrets::default()));
    orrery::access::ensure_local_secrets(&app, Some("orr_admin_bench"))
        .await
        .unwrap();
    let created = manage::create_account(
        &app,
        NewAccountRequest {
            name: "bench".into(),
            tier: Tier::Unlimited,
            key_name: None,
        },
    )
    .await
    .unwrap();
    let probe = Router::new().route("/v1/probe", get(|| async { "ok" }));
    let routes = Router::new()
        .route("/bare", get(|| async { "ok" }))
        .merge(metered(probe, &app, QuotaClass::Management, "keys"));
    (
        orrery::http::platform_layers(routes, app.config.max_body_bytes),
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
        let stores = [
            ("embedded, in memory", EmbeddedDb::in_memory().unwrap()),
            ("embedded, file (fsync per group commit)", EmbeddedDb::open(&dir.path().join("bench.redb")).unwrap()),
        ];
        println!("| store | handler | p50 (sequential) | p99 (sequential) | req/s at {CONCURRENCY} concurrent | p50 ratio to bare |");
        println!("|---|---|---:|---:|---:|---:|");
        for (name, db) in stores {
            let (router, key) = setup(db).await;
            let bare = measure(&router, "/bare", &key).await;
            let metered = measure(&router, "/v1/probe", &key).await;
            for (label, figures) in [("bare", &bare), ("auth + quota (metered)", &metered)] {
                println!(
                    "| {name} | {label} | {} | {} | {:.0} | {:.1}× |",
                    micros(figures.p50),
                    micros(figures.p99),
                    figures.per_second,
                    figures.p50.as_secs_f64() / bare.p50.as_secs_f64()
                );
            }
        }
    });
}
