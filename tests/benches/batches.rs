//! Benchmark: a 10,000-chart batch on orrery-local (`orrery_local::run` on a durable data
//! directory, its two in-process batch workers), measured from the client's side:
//! submission latency, the first result line readable after the 202, the whole batch done,
//! and `GET /v1/batches/{id}` latency while it runs. In the same run, for ratios: the engine
//! alone computing the same 10,000 charts on one core, and the same 10,000 charts as single
//! `POST /v1/charts` calls over 8 connections.
//!
//! `cargo bench -p orrery-tests --bench batches` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use orrery_tests::percentile;
use serde_json::{Value, json};

const ITEMS: usize = 10_000;
const RUNS: usize = 3;
const IDLE_POLLS: usize = 1000;

fn body(n: usize, run: usize) -> Value {
    json!({"datetime": format!("{}-{:02}-{:02}T{:02}:{:02}Z", 1900 + (n + run * 7) % 120, 1 + n % 12, 1 + n % 28, n % 24, (n / 24) % 60),
           "latitude": -60.0 + (n % 120) as f64, "longitude": (n % 360) as f64 - 180.0})
}

fn main() {
    // The client on a runtime of its own (a single thread), so that what is timed is the
    // server's answer, not the client's task queued behind the server's workers: in use,
    // orrery-local is a process of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let config = orrery::config::Config {
        tiers: orrery_tests::tiers_with(&[
            ("unlimited", "batch_items", 1_000_000),
            ("unlimited", "charts", 1_000_000),
            ("unlimited", "management", 1_000_000),
        ]),
        ..Default::default()
    };
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let data_dir = dir.path().to_owned();
    // The server as orrery-local runs it on this machine: a multi-threaded runtime, one worker
    // thread per core.
    std::thread::spawn(move || {
        let server = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        server
            .block_on(orrery_local::run(
                config,
                "127.0.0.1:0".parse().unwrap(),
                &data_dir,
                Some(orrery_tests::ADMIN_KEY),
                std::future::pending(),
                move |address| {
                    let _ = address_tx.send(address);
                },
            ))
            .unwrap();
    });
    let base = format!("http://{}", address_rx.await.unwrap());
    let client = reqwest::Client::new();
    let (key, _) = orrery_tests::admin_account(&client, &base, "unlimited").await;

    // The engine alone: the same charts, one core, no IO.
    let started = Instant::now();
    for n in 0..ITEMS {
        let input = orrery_astro::ChartInput::from_value(body(n, RUNS)).unwrap();
        std::hint::black_box(orrery_astro::compute_chart(&input).unwrap().to_json());
    }
    let engine = started.elapsed().as_secs_f64();

    let mut submits = Vec::new();
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    let mut polls = Vec::new();
    let mut batch_ids = Vec::new();
    for run in 0..RUNS {
        let requests: Vec<Value> = (0..ITEMS)
            .map(|n| json!({"custom_id": format!("u{n}"), "operation": "chart", "body": body(n, run)}))
            .collect();
        let payload = serde_json::to_vec(&json!({"requests": requests})).unwrap();
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1/batches"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let accepted = Instant::now();
        submits.push((accepted - started).as_secs_f64());
        let batch: Value = response.json().await.unwrap();
        let id = batch["id"].as_str().unwrap().to_owned();
        batch_ids.push(id.clone());

        // The first result line.
        loop {
            let text = client
                .get(format!("{base}/v1/batches/{id}/results"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text.lines().next().is_some() {
                firsts.push(accepted.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Status polls until done: their latency while the batch runs.
        loop {
            let asked = Instant::now();
            let status: Value = client
                .get(format!("{base}/v1/batches/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let took = asked.elapsed().as_secs_f64();
            if status["status"] == "completed" {
                totals.push(accepted.elapsed().as_secs_f64());
                assert_eq!(status["counts"]["completed"], ITEMS as u64);
                break;
            }
            polls.push(took);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    // The same status poll with nothing running: the floor a poll pays for its durable quota
    // write on this machine's disk.
    let mut idle = Vec::new();
    let done = batch_ids.last().unwrap();
    for _ in 0..IDLE_POLLS {
        let asked = Instant::now();
        let response = client
            .get(format!("{base}/v1/batches/{done}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        idle.push(asked.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // And `GET /health` (no key, no store write): what the machine and HTTP alone cost.
    let mut health = Vec::new();
    for _ in 0..IDLE_POLLS {
        let asked = Instant::now();
        let response = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        health.push(asked.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // The same charts as single calls, 8 at a time.
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, base, key, next) =
                (client.clone(), base.clone(), key.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= ITEMS {
                        break;
                    }
                    let response = client
                        .post(format!("{base}/v1/charts"))
                        .bearer_auth(&key)
                        .json(&body(n, RUNS + 1))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    response.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let singles = started.elapsed().as_secs_f64();

    polls.sort_by(f64::total_cmp);
    idle.sort_by(f64::total_cmp);
    health.sort_by(f64::total_cmp);
    let ms = |s: f64| format!("{:.1} ms", s * 1000.0);
    let list = |values: &[f64]| values.iter().map(|v| ms(*v)).collect::<Vec<_>>().join(", ");
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    println!("| measurement ({ITEMS} distinct charts, {RUNS} runs) | value |");
    println!("|---|---:|");
    println!(
        "| `POST /v1/batches` (1.5 MB JSON) → 202 | {} |",
        list(&submits)
    );
    println!("| 202 → first result line readable | {} |", list(&firsts));
    println!("| 202 → batch `completed` | {} |", list(&totals));
    println!(
        "| `GET /v1/batches/{{id}}` while running, {} polls: p50 / p99 / max | {} / {} / {} |",
        polls.len(),
        ms(percentile(&polls, 0.5)),
        ms(percentile(&polls, 0.99)),
        ms(*polls.last().unwrap_or(&0.0))
    );
    println!(
        "| the same poll, nothing running, {} polls: p50 / p99 / max | {} / {} / {} |",
        idle.len(),
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        ms(*idle.last().unwrap_or(&0.0))
    );
    println!(
        "| `GET /health`, nothing running, {} requests: p50 / p99 / max | {} / {} / {} |",
        health.len(),
        ms(percentile(&health, 0.5)),
        ms(percentile(&health, 0.99)),
        ms(*health.last().unwrap_or(&0.0))
    );
    println!("| engine alone, same charts, one core | {} |", ms(engine));
    println!(
        "| single `POST /v1/charts` calls, 8 connections | {} |",
        ms(singles)
    );
    println!("| batch ÷ engine alone | {:.2}× |", mean(&totals) / engine);
    println!("| batch ÷ single calls | {:.2}× |", mean(&totals) / singles);
    println!(
        "| poll p99 while running ÷ idle | {:.2}× |",
        percentile(&polls, 0.99) / percentile(&idle, 0.99)
    );
}
