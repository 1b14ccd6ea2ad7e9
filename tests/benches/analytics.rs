//! Benchmark: analytics reports on orrery-local (`orrery_local::run` on a durable data
//! directory), measured from the client's side over HTTP, on an account with 90 days of
//! history (5 endpoints in 3 classes, every hour: 360 usage cells a day; latency histograms for
//! every hour of the last 7 days and every day of 90): the 90-day daily and 7-day hourly usage reports,
//! latency over 24 hours and 90 days (uncached: each request names a different range end), and
//! the summary. Then a CSV export of 1,000,000 rows (an account with 463 endpoints × 2,160 hours)
//! and of 100,000 and 333,000 rows, with throughput and the process's peak RSS above its resident
//! size before each export (Linux `clear_refs`), to show the export's memory does not grow with it.
//!
//! The history is written straight into the data directory between two runs of orrery-local (as
//! the quota writes and the aggregator would have written it), since 90 days cannot be replayed.
//!
//! `cargo bench -p orrery-tests --bench analytics` prints Markdown tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use chrono::{Duration as ChronoDuration, Utc};
use orrery::analytics::cells::{self, Measure, Outcome};
use orrery::analytics::histogram;
use orrery::ids::AccountId;
use orrery::store::{Item, keyspace};
use orrery_tests::percentile;
use serde_json::{Map, Value};

const REQUESTS: usize = 300;

/// A report's URL for the n-th request (a latency report varies its range to miss the cache).
type ReportUrl<'a> = Box<dyn Fn(usize) -> String + 'a>;
const ENDPOINTS: [&str; 5] = [
    "POST /v1/charts",
    "POST /v1/charts/transits",
    "POST /v1/readings",
    "GET /v1/api-keys",
    "POST /v1/batches",
];
/// Each class's endpoints (a busy account: every endpoint used every hour).
const CLASSES: [(&str, &[&str]); 3] = [
    ("charts", &["POST /v1/charts", "POST /v1/charts/transits"]),
    ("readings", &["POST /v1/readings"]),
    ("management", &["GET /v1/api-keys", "POST /v1/batches"]),
];
/// 463 endpoints × 24 hours × 90 days = 1,000,080 rows.
const EXPORT_ENDPOINTS: usize = 463;

fn config() -> orrery::config::Config {
    orrery::config::Config {
        tiers: orrery_tests::tiers_with(&[("unlimited", "analytics", 1_000_000)]),
        ..Default::default()
    }
}

/// orrery-local on `data_dir` in a thread of its own (its own multi-threaded runtime, as the
/// binary runs), until `stop` is sent: its base URL.
async fn start(
    data_dir: std::path::PathBuf,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (address_tx, address_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let server = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        server
            .block_on(orrery_local::run(
                config(),
                "127.0.0.1:0".parse().unwrap(),
                &data_dir,
                Some(orrery_tests::ADMIN_KEY),
                async {
                    let _ = stopped.await;
                },
                move |address| {
                    let _ = address_tx.send(address);
                },
            ))
            .unwrap();
    });
    (
        format!("http://{}", address_rx.await.unwrap()),
        stop,
        thread,
    )
}

async fn new_account(client: &reqwest::Client, base: &str) -> (AccountId, String) {
    let created = orrery_tests::admin_account_created(client, base, "unlimited").await;
    (
        AccountId::parse(created["account"]["id"].as_str().unwrap()).unwrap(),
        created["api_key"]["key"].as_str().unwrap().to_owned(),
    )
}

/// 90 days of counters, hourly latency for 7 days and daily latency for 90, and the roll-ups of
/// the days old enough to be read from them.
async fn seed_history(app: &orrery::App, account: &AccountId) {
    let today = Utc::now().date_naive();
    let alive = Utc::now().timestamp() + 86_400;
    for back in 0..90 {
        let day = today - ChronoDuration::days(back);
        for (class, endpoints) in CLASSES {
            let mut attrs = Map::new();
            let mut count = 0;
            for hour in 0..24 {
                for endpoint in endpoints.iter().copied() {
                    let units = 1 + (hour + back as u32) % 7;
                    count += i64::from(units);
                    attrs.insert(
                        cells::attribute(hour, endpoint, Measure::Units),
                        units.into(),
                    );
                    attrs.insert(
                        cells::attribute(hour, endpoint, Measure::Requests(Outcome::Success)),
                        units.into(),
                    );
                    attrs.insert(
                        cells::attribute(hour, endpoint, Measure::Requests(Outcome::ClientError)),
                        1.into(),
                    );
                }
            }
            attrs.insert("count".into(), count.into());
            attrs.insert("key#key_bench".into(), count.into());
            let item =
                Item::new(keyspace::quota_counter(account, day, class), attrs).expiring_at(alive);
            app.store.put(item, None).await.unwrap();
        }
        let histogram_attrs = |scale: u64| {
            let mut attrs = Map::new();
            for endpoint in ENDPOINTS {
                for micros in (0..40u64).map(|i| 200 + i * i * 50) {
                    let bucket = histogram::bucket_of(micros);
                    attrs.insert(
                        format!("{endpoint}|b{bucket}"),
                        (scale * (1 + micros % 5)).into(),
                    );
                }
                attrs.insert(format!("{endpoint}|hit"), (scale * 10).into());
                attrs.insert(format!("{endpoint}|miss"), (scale * 3).into());
            }
            attrs
        };
        app.store
            .put(
                Item::new(keyspace::latency_day(account, day), histogram_attrs(24))
                    .expiring_at(alive),
                None,
            )
            .await
            .unwrap();
        if back < 7 {
            for hour in 0..24 {
                let at = day.and_hms_opt(hour, 0, 0).unwrap().and_utc();
                app.store
                    .put(
                        Item::new(keyspace::latency_hour(account, at), histogram_attrs(1))
                            .expiring_at(alive),
                        None,
                    )
                    .await
                    .unwrap();
            }
        }
        if back >= orrery_analytics::usage::ROLLED_UP_AFTER_DAYS {
            orrery_analytics::rollup::roll_up(app.store.as_ref(), account, day)
                .await
                .unwrap();
        }
    }
}

/// 90 days × 24 hours × 463 endpoints of `units` cells: 1,000,080 rows hourly by endpoint.
async fn seed_export(app: &orrery::App, account: &AccountId) {
    let today = Utc::now().date_naive();
    let alive = Utc::now().timestamp() + 86_400;
    for back in 0..90 {
        let day = today - ChronoDuration::days(back);
        let mut attrs = Map::new();
        for hour in 0..24 {
            for endpoint in 0..EXPORT_ENDPOINTS {
                let name =
                    cells::attribute(hour, &format!("GET /v1/e{endpoint:03}"), Measure::Units);
                attrs.insert(name, 1.into());
            }
        }
        attrs.insert("count".into(), (24 * EXPORT_ENDPOINTS).into());
        let item =
            Item::new(keyspace::quota_counter(account, day, "charts"), attrs).expiring_at(alive);
        app.store.put(item, None).await.unwrap();
    }
}

struct Timed {
    p50: f64,
    p99: f64,
}

async fn time_report(client: &reqwest::Client, key: &str, url: impl Fn(usize) -> String) -> Timed {
    for n in 0..20 {
        client
            .get(url(n))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let mut millis = Vec::with_capacity(REQUESTS);
    for n in 0..REQUESTS {
        let started = Instant::now();
        let response = client
            .get(url(n + 20))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", url(n));
        response.bytes().await.unwrap();
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    Timed {
        p50: percentile(&millis, 0.50),
        p99: percentile(&millis, 0.99),
    }
}

fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Export {
    rows: usize,
    megabytes: f64,
    seconds: f64,
    peak_above_mib: f64,
}

async fn export(client: &reqwest::Client, base: &str, key: &str, days: i64) -> Export {
    let tomorrow = Utc::now().date_naive() + ChronoDuration::days(1);
    let from = tomorrow - ChronoDuration::days(days);
    let url = format!(
        "{base}/v1/analytics/usage?granularity=hour&group_by=endpoint&format=csv&from={from}&to={tomorrow}"
    );
    // Reset the peak to the resident size now, so VmHWM afterwards is this export's peak.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let mut response = client.get(url).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    Export {
        rows: lines - 1,
        megabytes: bytes as f64 / 1e6,
        seconds,
        peak_above_mib: (peak - before) / 1024.0,
    }
}

fn main() {
    // The client on a runtime of its own (one thread): orrery-local runs on its own runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    // A first run makes the data directory and the accounts; the history goes in between runs.
    let (base, stop, thread) = start(dir.path().to_owned()).await;
    let (history, history_key) = new_account(&client, &base).await;
    let (exported, export_key) = new_account(&client, &base).await;
    stop.send(()).unwrap();
    thread.join().unwrap();
    {
        let app = orrery_tests::embedded_at(dir.path());
        seed_history(&app, &history).await;
        seed_export(&app, &exported).await;
    }
    let (base, _stop, _thread) = start(dir.path().to_owned()).await;

    let today = Utc::now().date_naive();
    let tomorrow = today + ChronoDuration::days(1);
    let ninety = today - ChronoDuration::days(89);
    let week = Utc::now() - ChronoDuration::days(7);
    let reports: Vec<(&str, ReportUrl)> = vec![
        (
            "usage, 90 days daily by endpoint (5 from roll-ups)",
            Box::new(|_| {
                format!(
                    "{base}/v1/analytics/usage?granularity=day&group_by=endpoint&from={ninety}&to={tomorrow}"
                )
            }),
        ),
        (
            "usage, 7 days hourly by endpoint",
            Box::new(|_| {
                format!(
                    "{base}/v1/analytics/usage?granularity=hour&group_by=endpoint&from={}",
                    week.format("%Y-%m-%dT%H:00:00Z")
                )
            }),
        ),
        (
            "usage, 90 days daily, CSV",
            Box::new(|_| {
                format!(
                    "{base}/v1/analytics/usage?granularity=day&from={ninety}&to={tomorrow}&format=csv"
                )
            }),
        ),
        (
            "latency, 24 hours (hourly histograms), uncached",
            Box::new(|n| {
                let to = Utc::now() - ChronoDuration::milliseconds(n as i64);
                format!(
                    "{base}/v1/analytics/latency?to={}&from={}",
                    urlencode(&to.to_rfc3339()),
                    urlencode(&(to - ChronoDuration::hours(24)).to_rfc3339())
                )
            }),
        ),
        (
            "latency, 90 days (daily histograms), uncached",
            Box::new(|n| {
                let to = Utc::now() - ChronoDuration::milliseconds(n as i64);
                format!(
                    "{base}/v1/analytics/latency?from={ninety}&to={}",
                    urlencode(&to.to_rfc3339())
                )
            }),
        ),
        (
            "summary (cached ≤ 5 s)",
            Box::new(|_| format!("{base}/v1/analytics/summary")),
        ),
    ];
    println!("| report | p50 | p99 |");
    println!("|---|---:|---:|");
    for (name, url) in &reports {
        let timed = time_report(&client, &history_key, url).await;
        println!("| {name} | {:.2} ms | {:.2} ms |", timed.p50, timed.p99);
    }
    let sample: Value = client
        .get(format!(
            "{base}/v1/analytics/usage?granularity=day&from={ninety}&to={tomorrow}"
        ))
        .bearer_auth(&history_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sample["data"].as_array().unwrap().len(),
        90,
        "one row a day"
    );

    println!();
    println!(
        "| CSV export (hourly × endpoint) | rows | MB | seconds | MB/s | peak RSS above the start |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for days in [9, 30, 90] {
        let run = export(&client, &base, &export_key, days).await;
        println!(
            "| {days} days | {} | {:.1} | {:.2} | {:.1} | {:.1} MiB |",
            run.rows,
            run.megabytes,
            run.seconds,
            run.megabytes / run.seconds,
            run.peak_above_mib
        );
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
