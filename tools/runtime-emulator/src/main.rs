//! `coldstart`: measures Lambda cold starts without AWS or Docker.
//!
//! For each run it serves the Lambda Runtime API on a loopback port, starts the function binary
//! with `AWS_LAMBDA_RUNTIME_API` pointing at it, and records:
//! - **init**: from just before the process is spawned to its first `GET /invocation/next`,
//!   i.e. everything the function does before it can take work (runtime start, config, SDK
//!   clients);
//! - **first invoke**: from handing out the event to receiving the response;
//! - **RSS**: the process's resident set (`VmRSS`) once it polls for its second event.
//!
//! Usage: `coldstart [--runs N] BINARY=EVENT.json [BINARY=EVENT.json ...]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::Notify;

#[derive(Default)]
struct Run {
    first_poll: Option<Instant>,
    event_sent: Option<Instant>,
    response: Option<(Instant, String)>,
    second_poll: Option<Instant>,
    error: Option<String>,
}

#[derive(Clone)]
struct Emulator {
    event: Arc<String>,
    run: Arc<Mutex<Run>>,
    done: Arc<Notify>,
}

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

async fn next(State(emulator): State<Emulator>) -> (HeaderMap, String) {
    let now = Instant::now();
    let first = {
        let mut run = emulator.run.lock().unwrap_or_else(|p| p.into_inner());
        if run.first_poll.is_none() {
            run.first_poll = Some(now);
            run.event_sent = Some(Instant::now());
            true
        } else {
            run.second_poll = Some(now);
            false
        }
    };
    if !first {
        emulator.done.notify_one();
        // Hold the poll open: the process is killed once measured.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static(REQUEST_ID),
    );
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(30);
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from(deadline.as_millis() as u64),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:coldstart"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"),
    );
    (headers, emulator.event.as_str().to_owned())
}

async fn response(
    State(emulator): State<Emulator>,
    Path(_id): Path<String>,
    body: String,
) -> StatusCode {
    emulator
        .run
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .response = Some((Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(emulator): State<Emulator>, body: String) -> StatusCode {
    emulator.run.lock().unwrap_or_else(|p| p.into_inner()).error = Some(body);
    emulator.done.notify_one();
    StatusCode::ACCEPTED
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Sample {
    init: Duration,
    invoke: Duration,
    rss_kib: u64,
}

async fn measure_once(binary: &PathBuf, event: Arc<String>) -> anyhow::Result<Sample> {
    let emulator = Emulator {
        event,
        run: Arc::default(),
        done: Arc::new(Notify::new()),
    };
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_SESSION_TOKEN", "test")
        .env("ORRERY_ENTITIES_TABLE", "orrery-entities")
        .env("ORRERY_COUNTERS_TABLE", "orrery-counters")
        .env("ORRERY_LOGS_TABLE", "orrery-logs")
        .env("ORRERY_BULK_TABLE", "orrery-bulk")
        .env("ORRERY_CONNECTIONS_TABLE", "orrery-connections")
        .env(
            "ORRERY_EVENTS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-fn-events",
        )
        .env(
            "ORRERY_EVENTS_DLQ_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-events-dlq",
        )
        .env(
            "ORRERY_DELIVERIES_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-deliveries",
        )
        .env(
            "ORRERY_DELIVERIES_DLQ_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-deliveries-dlq",
        )
        .env(
            "ORRERY_BATCH_ITEMS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-batch-items",
        )
        .env(
            "ORRERY_BATCH_ITEMS_DLQ_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/orrery-batch-items-dlq",
        )
        .env("ORRERY_ADMIN_KEY_SECRET", "orrery-admin-key")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let pid = child.id().context("no pid")?;
    tokio::time::timeout(Duration::from_secs(10), emulator.done.notified())
        .await
        .context("the function did not finish its first invocation within 10 s")?;
    let rss = rss_kib(pid).unwrap_or(0);
    child.kill().await.ok();
    server.abort();

    let run = emulator.run.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(error) = &run.error {
        bail!("the function reported an error: {error}");
    }
    let (first_poll, sent, (answered, _)) =
        match (run.first_poll, run.event_sent, run.response.as_ref()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => bail!("the function never answered"),
        };
    Ok(Sample {
        init: first_poll - started,
        invoke: *answered - sent,
        rss_kib: rss,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let mut runs = 20usize;
    let mut targets = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args.next().context("--runs takes a number")?.parse()?;
        } else if let Some((binary, event)) = arg.split_once('=') {
            targets.push((PathBuf::from(binary), PathBuf::from(event)));
        } else {
            bail!("usage: coldstart [--runs N] BINARY=EVENT.json ...");
        }
    }
    if targets.is_empty() {
        bail!("usage: coldstart [--runs N] BINARY=EVENT.json ...");
    }
    println!(
        "| function | binary size | init median | init p90 | first invoke median | RSS after first invoke (median) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (binary, event_path) in targets {
        let event = Arc::new(
            std::fs::read_to_string(&event_path)
                .with_context(|| format!("cannot read {}", event_path.display()))?,
        );
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        let mut inits = Vec::new();
        let mut invokes = Vec::new();
        let mut rss = Vec::new();
        // One unmeasured run warms the page cache, as Lambda's snapshot of the image would be.
        measure_once(&binary, event.clone()).await?;
        for _ in 0..runs {
            let sample = measure_once(&binary, event.clone()).await?;
            inits.push(sample.init.as_secs_f64() * 1000.0);
            invokes.push(sample.invoke.as_secs_f64() * 1000.0);
            rss.push(sample.rss_kib as f64 / 1024.0);
        }
        for series in [&mut inits, &mut invokes, &mut rss] {
            series.sort_by(|a, b| a.total_cmp(b));
        }
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "| {name} | {:.1} MB | {:.1} ms | {:.1} ms | {:.2} ms | {:.1} MB |",
            size as f64 / 1e6,
            percentile(&inits, 0.5),
            percentile(&inits, 0.9),
            percentile(&invokes, 0.5),
            percentile(&rss, 0.5)
        );
    }
    Ok(())
}
