//! A fault-injecting HTTP proxy in front of an emulator, for what no emulator does by itself:
//! answer slowly, stall, or throttle. Each request is numbered from 0 in arrival order; the
//! plan says what happens to request `n`. Everything else is forwarded to the emulator as it
//! came (DynamoDB Local and moto do not check signatures, so a re-addressed request passes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    Pass,
    /// Wait this long, then forward it (a slow emulator).
    Delay(Duration),
    /// Never answer (until the client gives up and closes the connection).
    Stall,
    /// Answer as DynamoDB does when a partition or the account is over its throughput.
    Throttle,
}

/// What happens to request `n`, given its body.
type Plan = dyn Fn(usize, &[u8]) -> Fault + Send + Sync;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    plan: Arc<Plan>,
    seen: Arc<AtomicUsize>,
}

/// A running proxy; it stops when dropped.
pub struct FaultyProxy {
    pub url: String,
    seen: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream` (`http://host:port`).
    pub async fn start(
        upstream: &str,
        plan: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> Self {
        Self::start_inspecting(upstream, move |n, _| plan(n)).await
    }

    /// [`FaultyProxy::start`] with a plan that also reads each request's body.
    pub async fn start_inspecting(
        upstream: &str,
        plan: impl Fn(usize, &[u8]) -> Fault + Send + Sync + 'static,
    ) -> Self {
        let seen = Arc::new(AtomicUsize::new(0));
        let proxy = Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            plan: Arc::new(plan),
            seen: seen.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let router = axum::Router::new().fallback(forward).with_state(proxy);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, seen, task }
    }

    /// How many requests have arrived so far.
    pub fn requests(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let number = proxy.seen.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    match (proxy.plan)(number, &body) {
        Fault::Pass => {}
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::Stall => std::future::pending::<()>().await,
        Fault::Throttle => {
            return Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-requestid", format!("throttled-{number}"))
                .body(Body::from(
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
                ))
                .expect("a throttling response");
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await.expect("the emulator answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.expect("the emulator's body");
    response
        .body(Body::from(bytes))
        .expect("a forwarded response")
}

/// DynamoDB's per-item write rate, which no emulator enforces: a plan that throttles a write
/// (`PutItem`, `UpdateItem`, `DeleteItem`; read from the body's `Key`/`Item`) once its item has
/// taken `per_second` writes in the current second. Reads and transactions pass. Each write
/// counts as one unit (DynamoDB counts 1 KB units, so a larger item reaches the limit sooner).
pub struct ItemWriteLimit {
    per_second: u32,
    seconds: std::sync::Mutex<std::collections::HashMap<String, (u64, u32)>>,
    /// The most writes any one item took in one second, and how many writes were throttled.
    pub busiest: AtomicUsize,
    pub throttled: AtomicUsize,
}

impl ItemWriteLimit {
    pub fn new(per_second: u32) -> Arc<Self> {
        Arc::new(Self {
            per_second,
            seconds: std::sync::Mutex::default(),
            busiest: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
        })
    }

    /// The plan for [`FaultyProxy::start_inspecting`].
    pub fn plan(self: &Arc<Self>) -> impl Fn(usize, &[u8]) -> Fault + Send + Sync + 'static {
        let limit = self.clone();
        move |_, body| limit.judge(body)
    }

    fn judge(&self, body: &[u8]) -> Fault {
        let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Fault::Pass;
        };
        // UpdateItem has an update expression, PutItem an item, DeleteItem (as the store sends
        // it) a key with ReturnValues; GetItem only a key.
        let is_write = request.get("UpdateExpression").is_some()
            || request.get("Item").is_some()
            || (request.get("Key").is_some() && request.get("ReturnValues").is_some());
        let Some(key) = request.get("Key").or_else(|| request.get("Item")) else {
            return Fault::Pass;
        };
        if !is_write {
            return Fault::Pass;
        }
        let item = format!("{}|{}|{}", request["TableName"], key["pk"], key["sk"]);
        let second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut seconds = self
            .seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = seconds.entry(item).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        if entry.1 >= self.per_second {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Fault::Throttle;
        }
        entry.1 += 1;
        self.busiest.fetch_max(entry.1 as usize, Ordering::Relaxed);
        Fault::Pass
    }
}
