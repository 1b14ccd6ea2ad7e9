//! Webhook deliveries to a real local HTTP receiver, verified with the official Standard
//! Webhooks library (Python `standardwebhooks`, run by the test command's venv) as well as our
//! own verifier. The receiver is on loopback, reachable only because these apps are configured
//! like local development: `allow_http` and an allow-list of 127.0.0.0/8.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use orrery::config::Config;
use orrery::webhooks::signature::WebhookSecret;
use orrery::webhooks::ssrf::UrlPolicy;
use orrery_tests::{Backend, TestApp, TestOptions};
use reqwest::Method;
use serde_json::{Value, json};

use orrery_tests::{create_account, london, serve};

/// What the receiver saw, and how it answers.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    answer: Arc<Mutex<(u16, String)>>,
    /// Sent as `Retry-After` when set.
    retry_after: Arc<Mutex<Option<String>>>,
    /// Sent as `Location` when set (a redirect).
    location: Arc<Mutex<Option<String>>>,
    /// How long to wait before answering.
    delay: Arc<Mutex<std::time::Duration>>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    receiver.received.lock().unwrap().push((headers, body));
    receiver
        .arrivals
        .lock()
        .unwrap()
        .push(std::time::Instant::now());
    let delay = *receiver.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let (status, body) = receiver.answer.lock().unwrap().clone();
    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
    if let Some(value) = receiver.retry_after.lock().unwrap().clone() {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    if let Some(value) = receiver.location.lock().unwrap().clone() {
        response
            .headers_mut()
            .insert("location", value.parse().unwrap());
    }
    response
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    *receiver.answer.lock().unwrap() = (200, "ok".into());
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    (receiver, url)
}

async fn local_development_app(kind: Backend) -> TestApp {
    local_development_app_with_retries(kind, 1.0).await
}

/// `retry_scale` shrinks the retry schedule so a test can watch every attempt.
async fn local_development_app_with_retries(kind: Backend, retry_scale: f64) -> TestApp {
    serve(
        orrery_tests::backend_with(
            kind,
            TestOptions {
                config: local_config(retry_scale),
            },
        )
        .await,
    )
    .await
}

fn local_config(retry_scale: f64) -> Config {
    Config {
        webhook_urls: UrlPolicy {
            allow_http: true,
            allowlist: vec!["127.0.0.0/8".parse().unwrap()],
        },
        webhook_retry_scale: retry_scale,
        webhook_timeout: std::time::Duration::from_millis(500),
        ..Config::default()
    }
}

/// Runs the reference verifier; `Err` carries its explanation.
fn verify_with_reference_library(
    secret: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(), String> {
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|name| {
                (
                    (*name).to_owned(),
                    Value::String(headers[*name].to_str().unwrap().to_owned()),
                )
            })
            .collect();
    let input = json!({
        "secret": secret,
        "headers": headers,
        "body": String::from_utf8(body.to_vec()).unwrap(),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/webhooks/verify.py");
    let (status, stdout) = orrery_tests::run_python(&[script], input.to_string().as_bytes());
    if status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&stdout).into_owned())
    }
}

fn verify_with_ours(secret: &str, headers: &HeaderMap, body: &Bytes) -> bool {
    let secret = WebhookSecret::parse(secret).unwrap();
    secret.verifies(
        headers["webhook-id"].to_str().unwrap(),
        headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap(),
        body,
        headers["webhook-signature"].to_str().unwrap(),
    )
}

on_both_backends!(
    events_reach_subscribed_endpoints_signed,
    failed_deliveries_are_retried_with_the_same_webhook_id,
    gone_disables_the_endpoint,
    the_last_failed_attempt_dead_letters_the_message,
    retry_after_is_honoured,
    slow_receivers_time_out_and_redirects_are_not_followed,
    endpoints_failing_for_five_days_are_disabled,
);

/// `POST /v1/webhooks/{id}/test`: the attempt's report.
async fn send_test(server: &TestApp, key: &str, endpoint_id: &str) -> Value {
    server
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{endpoint_id}/test"),
            key,
            None,
        )
        .await
        .json()
        .await
        .unwrap()
}

async fn register(server: &TestApp, key: &str, body: Value) -> Value {
    let (status, endpoint) = server.post_json("/v1/webhooks", key, body).await;
    assert_eq!(status, StatusCode::CREATED);
    endpoint
}

/// An app in local-development mode with one account whose endpoint, on a fresh receiver
/// answering `answer`, subscribes to `chart.saved`.
struct Scenario {
    server: TestApp,
    receiver: Receiver,
    account: String,
    key: String,
    endpoint: Value,
}

async fn scenario(kind: Backend, retry_scale: f64, answer: (u16, &str)) -> Scenario {
    let server = local_development_app_with_retries(kind, retry_scale).await;
    let (receiver, url) = start_receiver().await;
    *receiver.answer.lock().unwrap() = (answer.0, answer.1.to_owned());
    let (account, key) = create_account(&server, "basic").await;
    let endpoint = register(
        &server,
        &key,
        json!({"url": url, "event_types": ["chart.saved"]}),
    )
    .await;
    Scenario {
        server,
        receiver,
        account,
        key,
        endpoint,
    }
}

impl Scenario {
    /// Saves a chart: one `chart.saved` event.
    async fn save_a_chart(&self) {
        let (status, _) = self
            .server
            .post_json("/v1/charts/saved", &self.key, london())
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    fn endpoint_id(&self) -> &str {
        self.endpoint["id"].as_str().unwrap()
    }
}

/// Waits until the platform has disabled the endpoint; returns its view.
async fn disabled(server: &TestApp, key: &str, id: &str) -> Value {
    orrery_tests::eventually(std::time::Duration::from_secs(10), || async {
        let shown: Value = server
            .get_as(&format!("/v1/webhooks/{id}"), key)
            .await
            .json()
            .await
            .unwrap();
        (shown["enabled"] == false).then_some(shown)
    })
    .await
    .expect("the endpoint was disabled")
}

/// Waits until the receiver has seen `count` requests.
async fn received(
    receiver: &Receiver,
    count: usize,
    within: std::time::Duration,
) -> Vec<(HeaderMap, Bytes)> {
    orrery_tests::eventually(within, || async {
        let seen = receiver.received.lock().unwrap().clone();
        (seen.len() >= count).then_some(seen)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the receiver saw {} of {count} requests",
            receiver.received.lock().unwrap().len()
        )
    })
}

async fn events_reach_subscribed_endpoints_signed(kind: Backend) {
    let server = local_development_app(kind).await;
    let (saved_receiver, saved_url) = start_receiver().await;
    let (readings_receiver, readings_url) = start_receiver().await;
    let (_, key) = create_account(&server, "basic").await;
    let endpoint = register(
        &server,
        &key,
        json!({"url": saved_url, "event_types": ["chart.saved"]}),
    )
    .await;
    register(
        &server,
        &key,
        json!({"url": readings_url, "event_types": ["reading.generated"]}),
    )
    .await;
    // Another account's events never reach this account's endpoints.
    let (_, stranger) = create_account(&server, "basic").await;
    let other = server
        .send_as(Method::POST, "/v1/charts/saved", &stranger, Some(london()))
        .await;
    assert_eq!(other.status(), StatusCode::CREATED);

    let saved: Value = server
        .send_as(Method::POST, "/v1/charts/saved", &key, Some(london()))
        .await
        .json()
        .await
        .unwrap();
    let seen = received(&saved_receiver, 1, std::time::Duration::from_secs(20)).await;
    let (headers, body) = &seen[0];
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["type"], "chart.saved");
    assert_eq!(payload["data"]["chart_id"], saved["id"]);
    let secret = endpoint["secret"].as_str().unwrap();
    verify_with_reference_library(secret, headers, body).unwrap();
    assert!(verify_with_ours(secret, headers, body));
    // Subscribed to something else: nothing.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(readings_receiver.received.lock().unwrap().is_empty());
    assert_eq!(saved_receiver.received.lock().unwrap().len(), 1);

    // The outcome lands in the account's event log, never in a webhook.
    let outcome = outcome_in_log(&server, &key, "delivery.succeeded").await;
    assert_eq!(
        outcome["data"]["webhook_id"],
        headers["webhook-id"].to_str().unwrap()
    );
    assert_eq!(outcome["data"]["endpoint_id"], endpoint["id"]);
    assert_eq!(outcome["data"]["event_type"], "chart.saved");
    assert_eq!(outcome["data"]["status"], 200);
    let refused = server
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"url": saved_url, "event_types": ["delivery.succeeded"]})),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// The first `kind` entry of the account's event log (the events consumer appends it).
async fn outcome_in_log(server: &TestApp, key: &str, kind: &str) -> Value {
    orrery_tests::eventually(std::time::Duration::from_secs(20), || async {
        let page: Value = server
            .get_as(&format!("/v1/events?types={kind}"), key)
            .await
            .json()
            .await
            .unwrap();
        page["events"].as_array().unwrap().first().cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no {kind} in the event log"))
}

async fn failed_deliveries_are_retried_with_the_same_webhook_id(kind: Backend) {
    // 5 s × 0.01: the first retry comes 50 ms (±20 %) after the failure.
    let it = scenario(kind, 0.01, (503, "busy")).await;
    it.save_a_chart().await;
    received(&it.receiver, 1, std::time::Duration::from_secs(20)).await;
    *it.receiver.answer.lock().unwrap() = (200, "ok".into());
    let seen = received(&it.receiver, 2, std::time::Duration::from_secs(20)).await;
    assert_eq!(seen[0].0["webhook-id"], seen[1].0["webhook-id"]);
    assert_eq!(seen[0].1, seen[1].1, "the same body");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        it.receiver.received.lock().unwrap().len(),
        2,
        "delivered once it succeeded"
    );
}

async fn gone_disables_the_endpoint(kind: Backend) {
    let it = scenario(kind, 1.0, (410, "gone")).await;
    let (server, key, id) = (&it.server, &it.key, it.endpoint_id());
    // The owner listens for endpoint.disabled on another endpoint.
    let (owner_receiver, owner_url) = start_receiver().await;
    register(
        server,
        key,
        json!({"url": owner_url, "event_types": ["endpoint.disabled"]}),
    )
    .await;
    it.save_a_chart().await;
    received(&it.receiver, 1, std::time::Duration::from_secs(20)).await;
    let shown = disabled(server, key, id).await;
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));
    // The owner is told.
    let told = received(&owner_receiver, 1, std::time::Duration::from_secs(20)).await;
    let notice: Value = serde_json::from_slice(&told[0].1).unwrap();
    assert_eq!(notice["type"], "endpoint.disabled");
    assert_eq!(notice["data"]["endpoint_id"], id);
    // Disabled: later events are not delivered (only the first request ever arrived).
    it.save_a_chart().await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(it.receiver.received.lock().unwrap().len(), 1);
}

async fn the_last_failed_attempt_dead_letters_the_message(kind: Backend) {
    // The whole 33 h schedule shrunk to about 10 s.
    let it = scenario(kind, 0.0001, (500, "broken")).await;
    let (server, key, receiver) = (&it.server, &it.key, &it.receiver);
    it.save_a_chart().await;
    let attempts = orrery::webhooks::schedule::MAX_ATTEMPTS as usize;
    let seen = received(receiver, attempts, std::time::Duration::from_secs(90)).await;
    let id = &seen[0].0["webhook-id"];
    assert!(seen.iter().all(|(headers, _)| headers["webhook-id"] == *id));
    let dead = orrery_tests::eventually(std::time::Duration::from_secs(20), || async {
        let messages = server
            .app()
            .queues
            .deliveries
            .dead_letters
            .receive(
                10,
                std::time::Duration::from_secs(30),
                std::time::Duration::from_secs(1),
            )
            .await
            .unwrap();
        (!messages.is_empty()).then_some(messages)
    })
    .await
    .expect("the message is in the dead-letter queue");
    let message: Value = serde_json::from_str(&dead[0].body).unwrap();
    assert_eq!(message["webhook_id"], id.to_str().unwrap());
    let given_up = outcome_in_log(server, key, "delivery.failed").await;
    assert_eq!(given_up["data"]["webhook_id"], id.to_str().unwrap());
    assert_eq!(given_up["data"]["outcome"], "dead_lettered");
    assert_eq!(given_up["data"]["status"], 500);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received.lock().unwrap().len(),
        attempts,
        "no attempt after the last"
    );

    // The log has every attempt, newest first, the last one dead-lettered.
    let endpoint_id = message["endpoint_id"].as_str().unwrap();
    let log: Value = server
        .get_as(
            &format!("/v1/webhooks/{endpoint_id}/deliveries?limit=100"),
            key,
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), attempts);
    assert_eq!(entries[0]["outcome"], "dead_lettered");
    assert_eq!(entries[0]["attempt"], attempts);
    assert_eq!(entries[0]["status"], 500);
    assert_eq!(entries[0]["response_snippet"], "broken");
    assert!(entries[1..].iter().all(|e| e["outcome"] == "retrying"));

    // Replay: the endpoint works again; the dead delivery is sent once more, same webhook-id.
    *receiver.answer.lock().unwrap() = (200, "ok".into());
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let replayed = server
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{endpoint_id}/replay"),
            key,
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["replayed"], 1);
    let seen = received(receiver, attempts + 1, std::time::Duration::from_secs(20)).await;
    assert_eq!(seen[attempts].0["webhook-id"], *id);
    // Replayed once: a second replay finds nothing.
    let again: Value = server
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{endpoint_id}/replay"),
            key,
            Some(json!({"since": since})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["replayed"], 0);
}

async fn retry_after_is_honoured(kind: Backend) {
    // The schedule would retry after 50 ms; the receiver asks for 2 s.
    let it = scenario(kind, 0.01, (429, "slow down")).await;
    let receiver = &it.receiver;
    *receiver.retry_after.lock().unwrap() = Some("2".into());
    it.save_a_chart().await;
    received(receiver, 1, std::time::Duration::from_secs(20)).await;
    *receiver.answer.lock().unwrap() = (200, "ok".into());
    *receiver.retry_after.lock().unwrap() = None;
    received(receiver, 2, std::time::Duration::from_secs(20)).await;
    let arrivals = receiver.arrivals.lock().unwrap().clone();
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "{waited:?}"
    );
}

async fn slow_receivers_time_out_and_redirects_are_not_followed(kind: Backend) {
    // These apps give an attempt 500 ms instead of 15 s.
    let server = local_development_app(kind).await;
    let (receiver, url) = start_receiver().await;
    *receiver.delay.lock().unwrap() = std::time::Duration::from_secs(3);
    let (_, key) = create_account(&server, "basic").await;
    let endpoint = register(&server, &key, json!({"url": url})).await;
    let started = std::time::Instant::now();
    let result = send_test(&server, &key, endpoint["id"].as_str().unwrap()).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(result["success"], false);
    assert_eq!(result["error"], "timeout");
    assert_eq!(result["status"], Value::Null);

    // Redirects are not followed: a 307 to another URL is a failed attempt, nothing more.
    *receiver.delay.lock().unwrap() = std::time::Duration::ZERO;
    *receiver.answer.lock().unwrap() = (307, String::new());
    *receiver.location.lock().unwrap() = Some(url.replace("/hook", "/elsewhere"));
    let before = receiver.received.lock().unwrap().len();
    let result = send_test(&server, &key, endpoint["id"].as_str().unwrap()).await;
    assert_eq!(result["status"], 307);
    assert_eq!(result["success"], false);
    assert_eq!(receiver.received.lock().unwrap().len(), before + 1);
}

async fn endpoints_failing_for_five_days_are_disabled(kind: Backend) {
    let it = scenario(kind, 0.01, (500, "still broken")).await;
    let (server, account, key, receiver) = (&it.server, &it.account, &it.key, &it.receiver);
    let id = it.endpoint_id();
    // Failing for six days already (as the store would show after days of failures).
    let app = server.app();
    let account_id = orrery::ids::AccountId::parse(account).unwrap();
    let endpoint_id = orrery::ids::EndpointId::parse(id).unwrap();
    let mut record = orrery::webhooks::record::record(app, &account_id, &endpoint_id)
        .await
        .unwrap()
        .unwrap();
    record.failing_since = Some(chrono::Utc::now() - chrono::Duration::days(6));
    let key_of = orrery::store::Key::new(
        orrery::store::Table::Entities,
        format!("ACCT#{account}"),
        format!("WEBHOOK#{id}"),
    );
    app.store
        .put(
            orrery::store::Item::from_serializable(key_of, &record).unwrap(),
            None,
        )
        .await
        .unwrap();
    orrery::webhooks::subscriptions::forget_subscriptions(app, &account_id).await;

    it.save_a_chart().await;
    received(receiver, 1, std::time::Duration::from_secs(20)).await;
    let shown = disabled(server, key, id).await;
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("no successful delivery since")
    );
    // Not retried: the message went to the dead-letter queue at once.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(receiver.received.lock().unwrap().len(), 1);
}

/// A worker that dies between receiving a delivery and deleting it loses nothing: the message
/// becomes visible again and the next worker delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_survives_a_worker_dying_mid_attempt() {
    let backend = orrery_tests::backend_with(
        Backend::Embedded,
        TestOptions {
            config: local_config(1.0),
        },
    )
    .await;
    let app = backend.app.clone();
    let server = {
        orrery::access::ensure_local_secrets(&app, Some(orrery_tests::ADMIN_KEY))
            .await
            .unwrap();
        orrery_tests::spawn_app_without_workers(backend).await
    };
    let (receiver, url) = start_receiver().await;
    let (_, key) = create_account(&server, "basic").await;
    register(
        &server,
        &key,
        json!({"url": url, "event_types": ["chart.saved"]}),
    )
    .await;
    server
        .send_as(Method::POST, "/v1/charts/saved", &key, Some(london()))
        .await;
    // Fan out by hand: the event becomes one delivery message.
    let events = app
        .queues
        .events
        .main
        .receive(
            10,
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
    let saved = events
        .iter()
        .map(|m| serde_json::from_str::<orrery::events::Event>(&m.body).unwrap())
        .find(|e| e.kind == orrery::events::EventType::ChartSaved)
        .unwrap();
    assert_eq!(
        orrery::webhooks::fanout::fan_out(&app, &saved)
            .await
            .unwrap(),
        1
    );
    // A worker receives it (hidden for 1 s) and dies before attempting or deleting.
    let taken = app
        .queues
        .deliveries
        .main
        .receive(
            10,
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    drop(taken);
    // A new worker starts: the message comes back and is delivered, then deleted.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let worker = orrery::consumer::spawn_worker(
        Arc::new(orrery_fn_webhook_delivery::DeliveryConsumer::new(
            app.clone(),
        )),
        app.queues.deliveries.main.clone(),
        orrery::consumer::WorkerSettings::default(),
        shutdown,
    );
    let seen = received(&receiver, 1, std::time::Duration::from_secs(10)).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].1).unwrap()["type"],
        "chart.saved"
    );
    stop.send_replace(true);
    worker.await.unwrap();
    assert!(
        app.queues
            .deliveries
            .main
            .receive(
                10,
                std::time::Duration::from_secs(1),
                std::time::Duration::ZERO
            )
            .await
            .unwrap()
            .is_empty(),
        "deleted after the success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_deliveries_are_signed_for_the_reference_verifier_embedded() {
    test_deliveries_are_signed_for_the_reference_verifier(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_deliveries_are_signed_for_the_reference_verifier_moto() {
    test_deliveries_are_signed_for_the_reference_verifier(Backend::Moto).await;
}

async fn test_deliveries_are_signed_for_the_reference_verifier(kind: Backend) {
    let server = local_development_app(kind).await;
    let (receiver, url) = start_receiver().await;
    let (_, key) = create_account(&server, "basic").await;
    let created: Value = server
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"url": url})),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let first_secret = created["secret"].as_str().unwrap().to_owned();

    let response = server
        .send_as(Method::POST, &format!("/v1/webhooks/{id}/test"), &key, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"webhook-tests-daily\";q=100;w=86400"
    );
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["status"], 200);
    assert_eq!(result["response_snippet"], "ok");
    assert!(result["latency_ms"].as_u64().is_some());

    let (headers, body) = receiver.received.lock().unwrap()[0].clone();
    assert_eq!(
        headers["webhook-id"],
        result["webhook_id"].as_str().unwrap()
    );
    assert_eq!(headers["content-type"], "application/json");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "webhook.test");
    assert_eq!(payload["data"]["endpoint_id"], id);
    assert!(payload["timestamp"].as_str().is_some());
    assert!(verify_with_ours(&first_secret, &headers, &body));
    verify_with_reference_library(&first_secret, &headers, &body).unwrap();
    // A wrong secret fails in the reference library too: the check can fail.
    let stranger = WebhookSecret::generate().expose();
    assert!(verify_with_reference_library(&stranger, &headers, &body).is_err());

    // After a rotation both secrets sign, and each verifies on its own.
    let rotated: Value = server
        .send_as(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &key,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    server
        .send_as(Method::POST, &format!("/v1/webhooks/{id}/test"), &key, None)
        .await;
    let (headers, body) = receiver.received.lock().unwrap()[1].clone();
    assert_eq!(
        headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    for secret in [&first_secret, &second_secret] {
        assert!(verify_with_ours(secret, &headers, &body));
        verify_with_reference_library(secret, &headers, &body).unwrap();
    }

    // A failing receiver: its status and the first kilobyte of its answer are reported.
    *receiver.answer.lock().unwrap() = (500, "x".repeat(5000));
    let result = send_test(&server, &key, id).await;
    assert_eq!(result["success"], false);
    assert_eq!(result["status"], 500);
    assert_eq!(result["response_snippet"].as_str().unwrap().len(), 1024);

    // Nobody listening: a connection error, not a 5xx of ours.
    let (_, dead_url) = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        ((), url)
    };
    let dead: Value = server
        .send_as(
            Method::POST,
            "/v1/webhooks",
            &key,
            Some(json!({"url": dead_url})),
        )
        .await
        .json()
        .await
        .unwrap();
    let result = send_test(&server, &key, dead["id"].as_str().unwrap()).await;
    assert_eq!(result["success"], false);
    assert_eq!(result["status"], Value::Null);
    assert_eq!(result["error"], "connect");
}
