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

type Plan = dyn Fn(usize) -> Fault + Send + Sync;

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
    match (proxy.plan)(number) {
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
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
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
