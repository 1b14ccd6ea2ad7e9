//! Benchmark: the WebSocket on orrery-local, measured from the client's side against a
//! server in a process of its own (this binary re-executed with `ORRERY_BENCH_SERVER_DIR`,
//! running `orrery_local::run` with orrery-local's allocator), so its memory is its own:
//!
//! - request acknowledged → its event at a WebSocket client (`POST /v1/charts` answered 200 →
//!   the `chart.calculated` message), beside the request's own round trip;
//! - 1,000 concurrent clients of one account, one event: until the last client has it;
//! - the server's resident memory per idle WebSocket connection (1,000 opened), beside an idle
//!   keep-alive HTTP connection and an idle SSE stream.
//!
//! `cargo bench -p orrery-tests --bench realtime` prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use orrery_tests::percentile;
use orrery_tests::ws::WsClient;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERVER_DIR: &str = "ORRERY_BENCH_SERVER_DIR";
const LATENCY_SAMPLES: usize = 500;
const CLIENTS: usize = 1000;
const FAN_OUT_RUNS: usize = 5;

fn chart(n: usize) -> Value {
    json!({"datetime": format!("{}-{:02}-{:02}T{:02}:{:02}Z", 1900 + n % 120, 1 + n % 12, 1 + n % 28, n % 24, (n / 24) % 60),
           "latitude": -60.0 + (n % 120) as f64, "longitude": (n % 360) as f64 - 180.0})
}

fn main() {
    if let Ok(dir) = std::env::var(SERVER_DIR) {
        serve(std::path::Path::new(&dir));
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench());
}

/// A fresh orrery-local process: the process, its data directory and its address.
struct Server {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    address: String,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env(SERVER_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::BufRead as _;
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let line = stdout.lines().next().unwrap().unwrap();
        let address = format!("http://{}", line.trim_start_matches("listening ").trim());
        Self {
            child,
            _dir: dir,
            address,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The child: orrery-local with limits the benchmark cannot exhaust.
fn serve(dir: &std::path::Path) {
    let config = orrery::config::Config {
        tiers: orrery_tests::tiers_with(&[
            ("unlimited", "charts", 10_000_000),
            ("unlimited", "management", 10_000_000),
            ("unlimited", "realtime_connections", 10_000),
        ]),
        ..Default::default()
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(orrery_local::run(
            config,
            "127.0.0.1:0".parse().unwrap(),
            dir,
            Some(orrery_tests::ADMIN_KEY),
            std::future::pending(),
            |address| println!("listening {address}"),
        ))
        .unwrap();
}

#[derive(Clone, Copy)]
enum Kind {
    WebSocket,
    Sse,
    Http,
}

/// An idle connection of `kind`, open for as long as what it returns is held.
async fn open_idle(
    kind: Kind,
    address: &str,
    key: &str,
    client: &reqwest::Client,
) -> Box<dyn std::any::Any + Send> {
    match kind {
        Kind::WebSocket => {
            Box::new(WsClient::open(address, "/v1/realtime?types=batch.expired", Some(key)).await)
        }
        Kind::Sse => {
            let response = client
                .get(format!("{address}/v1/events/stream?types=batch.expired"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            Box::new(response)
        }
        Kind::Http => {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
                .await
                .unwrap();
            stream
                .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await.unwrap();
            Box::new(stream)
        }
    }
}

/// The server's resident growth per idle connection of `kind`, in KiB: a fresh server, 20
/// connections to warm it, then 1,000 more.
async fn memory_per_connection(kind: Kind) -> f64 {
    let server = Server::start();
    let client = reqwest::Client::new();
    let (key, _) = orrery_tests::admin_account(&client, &server.address, "unlimited").await;
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(open_idle(kind, &server.address, &key, &client).await);
    }
    let before = settled_kib(server.pid()).await;
    for _ in 0..CLIENTS {
        open.push(open_idle(kind, &server.address, &key, &client).await);
    }
    let after = settled_kib(server.pid()).await;
    drop(open);
    after.saturating_sub(before) as f64 / CLIENTS as f64
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The server's resident memory once it has settled.
async fn settled_kib(pid: u32) -> u64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    resident_kib(pid)
}

async fn bench() {
    let server = Server::start();
    let address = server.address.as_str();
    let client = reqwest::Client::new();
    let (key, _) = orrery_tests::admin_account(&client, address, "unlimited").await;
    let charts = format!("{address}/v1/charts");

    // 1. Acknowledged → at the client, beside the request's own round trip.
    let mut socket =
        WsClient::open(address, "/v1/realtime?types=chart.calculated", Some(&key)).await;
    let mut delivery = Vec::new();
    let mut round_trip = Vec::new();
    let mut head = String::new();
    let stage = Instant::now();
    for n in 0..LATENCY_SAMPLES + 50 {
        let sent = Instant::now();
        let response = client
            .post(&charts)
            .bearer_auth(&key)
            .json(&chart(n))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let acknowledged = Instant::now();
        response.bytes().await.unwrap();
        let event = socket
            .next_of("event", Duration::from_secs(10))
            .await
            .expect("the event");
        head = event["event"]["cursor"].as_str().unwrap().to_owned();
        if n >= 50 {
            // The first 50 warm the caches and connections.
            delivery.push((Instant::now() - acknowledged).as_secs_f64() * 1000.0);
            round_trip.push((acknowledged - sent).as_secs_f64() * 1000.0);
        }
    }
    socket.close().await;
    eprintln!("latency stage: {:?}", stage.elapsed());
    delivery.sort_by(f64::total_cmp);
    round_trip.sort_by(f64::total_cmp);

    // 2. One event to 1,000 connected clients: until the last has it.
    let idle = format!("/v1/realtime?types=chart.calculated&after={head}");
    let mut sockets = Vec::new();
    for _ in 0..CLIENTS {
        sockets.push(WsClient::open(address, &idle, Some(&key)).await);
    }
    let mut fan_out = Vec::new();
    for run in 0..FAN_OUT_RUNS {
        let waiting: Vec<_> = sockets
            .drain(..)
            .map(|mut socket| {
                tokio::spawn(async move {
                    let event = socket.next_of("event", Duration::from_secs(30)).await;
                    (socket, event.is_some(), Instant::now())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = client
            .post(&charts)
            .bearer_auth(&key)
            .json(&chart(100_000 + run))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let acknowledged = Instant::now();
        let mut last = acknowledged;
        for joined in join_all(waiting).await {
            let (socket, got, at) = joined.unwrap();
            assert!(got, "a client missed the event");
            last = last.max(at);
            sockets.push(socket);
        }
        fan_out.push((last - acknowledged).as_secs_f64() * 1000.0);
    }
    fan_out.sort_by(f64::total_cmp);
    drop(sockets);
    drop(server);

    // 3. Memory: each kind of idle connection on a fresh server of its own (an allocator keeps
    // what it once had, so sharing a process would hide the growth).
    let ws_kib = memory_per_connection(Kind::WebSocket).await;
    let sse_kib = memory_per_connection(Kind::Sse).await;
    let http_kib = memory_per_connection(Kind::Http).await;

    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| acknowledged → WebSocket client, p50 / p99 ({LATENCY_SAMPLES} events) | {:.2} / {:.2} ms | p99 ≤ 10 ms |",
        percentile(&delivery, 0.5),
        percentile(&delivery, 0.99)
    );
    println!(
        "| the request's own round trip, p50 / p99 (same run) | {:.2} / {:.2} ms | |",
        percentile(&round_trip, 0.5),
        percentile(&round_trip, 0.99)
    );
    println!(
        "| one event to {CLIENTS} clients, last client, median / worst of {FAN_OUT_RUNS} | {:.0} / {:.0} ms | ≤ 1000 ms |",
        percentile(&fan_out, 0.5),
        fan_out[fan_out.len() - 1]
    );
    println!("| server memory per idle WebSocket ({CLIENTS} open) | {ws_kib:.1} KiB | ≤ 20 KB |");
    println!("| … per idle SSE stream (same run) | {sse_kib:.1} KiB | |");
    println!("| … per idle keep-alive HTTP connection (same run) | {http_kib:.1} KiB | |");
    println!(
        "| ratios | delivery p99 / round-trip p99 = {:.2}; WebSocket / HTTP connection memory = {:.2} | |",
        percentile(&delivery, 0.99) / percentile(&round_trip, 0.99),
        ws_kib / http_kib.max(0.1)
    );
}
