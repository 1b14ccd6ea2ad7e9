//! Benchmark: webhook delivery on the embedded (durable file) store with a real loopback
//! receiver. (1) The throughput of one delivery worker: N queued deliveries, each one signed
//! attempt, its log entry and a batched delete. (2) The end-to-end latency from
//! `POST /v1/charts` to the webhook arriving, through orrery-local's whole path: quota, chart,
//! event publish, the events worker's fan-out, the delivery worker, the receiver.
//!
//! `cargo bench -p orrery-tests --bench webhooks` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orrery::App;
use orrery::access::Tier;
use orrery::access::manage::{self, NewAccountRequest};
use orrery::config::Config;
use orrery::embedded::EmbeddedDb;
use orrery::queue::OutgoingMessage;
use orrery::secrets::MemorySecrets;
use orrery::webhooks::endpoints::{self, NewEndpoint};
use orrery::webhooks::fanout::DeliveryMessage;
use orrery::webhooks::ssrf::UrlPolicy;
use tokio::sync::Notify;

const DELIVERIES: usize = 3000;
const END_TO_END: usize = 300;

fn config() -> Config {
    Config {
        tiers: orrery_tests::tiers_with(&[("unlimited", "charts", 100_000_000)]),
        webhook_urls: UrlPolicy {
            allow_http: true,
            allowlist: vec!["127.0.0.0/8".parse().unwrap()],
        },
        ..Config::default()
    }
}

/// A receiver that counts requests and wakes whoever waits for the next one.
async fn receiver() -> (String, Arc<AtomicUsize>, Arc<Notify>) {
    let count = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(Notify::new());
    let (c, a) = (count.clone(), arrived.clone());
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (c, a) = (c.clone(), a.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                a.notify_one();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    (url, count, arrived)
}

async fn account_with_endpoint(
    app: &App,
    url: &str,
    event_types: Vec<String>,
) -> (orrery::ids::AccountId, orrery::ids::EndpointId, String) {
    orrery::access::ensure_local_secrets(app, Some("orr_admin_bench"))
        .await
        .unwrap();
    let created = manage::create_account(
        app,
        NewAccountRequest {
            name: "bench".into(),
            tier: Tier::Unlimited,
            key_name: None,
            activity_events: true,
        },
    )
    .await
    .unwrap();
    let account = created.account.id.clone();
    let caller = orrery::access::auth::authenticate(
        app,
        &orrery_tests::bearer_headers(&created.api_key.key),
    )
    .await
    .unwrap();
    let (endpoint, _) = endpoints::create(
        app,
        &caller,
        NewEndpoint {
            url: url.to_owned(),
            event_types,
            description: None,
            enabled: true,
        },
        None,
    )
    .await
    .unwrap();
    let endpoint = orrery::ids::EndpointId::parse(&endpoint.endpoint.id).unwrap();
    (account, endpoint, created.api_key.key)
}

async fn one_worker_throughput() -> (f64, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(&dir.path().join("bench.redb")).unwrap();
    let app = App::embedded_with(config(), db, Arc::new(MemorySecrets::default()));
    let (url, count, arrived) = receiver().await;
    let (account, endpoint, _) = account_with_endpoint(&app, &url, Vec::new()).await;
    let messages: Vec<OutgoingMessage> = (0..DELIVERIES)
        .map(|i| {
            OutgoingMessage::new(
                serde_json::to_string(&DeliveryMessage {
                    webhook_id: format!("msg_bench{i:06}"),
                    account_id: account.clone(),
                    endpoint_id: endpoint.clone(),
                    event_type: "chart.calculated".into(),
                    payload: serde_json::json!({"type": "chart.calculated", "timestamp": "2026-11-29T00:00:00Z", "data": {"i": i}}),
                })
                .unwrap(),
            )
        })
        .collect();
    for chunk in messages.chunks(10) {
        app.queues
            .deliveries
            .main
            .send_batch(chunk.to_vec())
            .await
            .unwrap();
    }
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let worker = orrery::consumer::spawn_worker(
        Arc::new(orrery_fn_webhook_delivery::DeliveryConsumer::new(
            app.clone(),
        )),
        app.queues.deliveries.main.clone(),
        orrery::consumer::WorkerSettings::default(),
        shutdown,
    );
    while count.load(Ordering::SeqCst) < DELIVERIES {
        arrived.notified().await;
    }
    let elapsed = started.elapsed();
    stop.send_replace(true);
    worker.await.unwrap();
    (DELIVERIES as f64 / elapsed.as_secs_f64(), elapsed)
}

async fn end_to_end_latency() -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(&dir.path().join("bench.redb")).unwrap();
    let app = App::embedded_with(config(), db, Arc::new(MemorySecrets::default()));
    let (url, count, arrived) = receiver().await;
    let (_, _, key) = account_with_endpoint(&app, &url, vec!["chart.calculated".into()]).await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    orrery_local::spawn_workers(&app, shutdown);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = orrery_local::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(END_TO_END);
    for i in 0..END_TO_END {
        let before = count.load(Ordering::SeqCst);
        let body = serde_json::json!({
            "datetime": format!("1990-05-17T{:02}:{:02}:00Z", i / 60 % 24, i % 60),
            "latitude": 51.5, "longitude": -0.1,
        });
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/charts"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
        while count.load(Ordering::SeqCst) <= before {
            let _ = tokio::time::timeout(Duration::from_millis(50), arrived.notified()).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    orrery_astro::warm_up();
    let (rate, elapsed) = one_worker_throughput().await;
    let latencies = end_to_end_latency().await;
    println!("| measurement | value |");
    println!("|---|---:|");
    println!(
        "| one delivery worker, {DELIVERIES} deliveries to a loopback receiver (embedded file store) | {rate:.0} deliveries/s ({:.2} s) |",
        elapsed.as_secs_f64()
    );
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        println!(
            "| `POST /v1/charts` → webhook received, {END_TO_END} sequential, {name} | {:.1} ms |",
            percentile(&latencies, p).as_secs_f64() * 1000.0
        );
    }
}
