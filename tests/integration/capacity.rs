//! What a warm request costs on DynamoDB, as DynamoDB Local reports it: the adapter asks for
//! `ReturnConsumedCapacity: TOTAL` on every call and the test backend's meter records the units
//! and the access pattern of each (moto reports no capacity, and the embedded store has none).
//! The cache-generation board (one strongly consistent read a second per container, whatever the
//! traffic) and the analytics flush (every ≤ 10 s per container; pushed out of the test here) are
//! amortised over every request, so they are left out of the per-request figures; the queue
//! workers (which append events to the log) are not started, so every call is the request's.

use std::time::Duration;

use orrery::config::Config;
use orrery::store::capacity::Call;
use orrery_tests::{Backend, TestOptions, create_account, london};
use reqwest::StatusCode;

/// The board every container polls, apart from any one request.
const GENERATIONS_BOARD: &str = "entities CACHE#GENERATIONS/BOARD";

fn per_request(calls: Vec<Call>) -> Vec<Call> {
    calls
        .into_iter()
        .filter(|call| !call.patterns.iter().all(|p| p == GENERATIONS_BOARD))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warm_metered_cached_chart_costs_one_write_unit_and_no_read() {
    let config = Config {
        analytics_flush_interval: Duration::from_secs(3600),
        ..Config::default()
    };
    let backend = orrery_tests::backend_with(Backend::DynamoDbLocal, TestOptions { config }).await;
    let meter = backend
        .capacity
        .clone()
        .expect("DynamoDB Local is measured");
    let server = orrery_tests::serve_without_workers(backend).await;
    let (_, key) = create_account(&server, "free").await;

    // The first call warms the container (pepper, key, account) and the chart cache.
    let (status, _) = server.post_json("/v1/charts", &key, london()).await;
    assert_eq!(status, StatusCode::OK);
    let warming = meter.take();
    assert!(
        warming.iter().all(|call| call.operation != "Scan"),
        "no Scan on a request path: {warming:?}"
    );

    for _ in 0..5 {
        let (status, _) = server.post_json("/v1/charts", &key, london()).await;
        assert_eq!(status, StatusCode::OK);
        let calls = per_request(meter.take());
        assert_eq!(
            calls.len(),
            1,
            "one DynamoDB call per warm request: {calls:?}"
        );
        let call = &calls[0];
        assert_eq!(call.operation, "UpdateItem");
        assert_eq!(call.patterns, ["counters ACCT#<>/QUOTA#<>#<>"]);
        assert!(!call.refused);
        assert_eq!(
            (call.read_units, call.write_units),
            (0.0, 1.0),
            "a metered cached chart is one write unit and no read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_quota_is_refused_without_a_dynamodb_call() {
    let config = Config {
        analytics_flush_interval: Duration::from_secs(3600),
        tiers: orrery_tests::tiers_with(&[("free", "charts", 2)]),
        ..Config::default()
    };
    let backend = orrery_tests::backend_with(Backend::DynamoDbLocal, TestOptions { config }).await;
    let meter = backend
        .capacity
        .clone()
        .expect("DynamoDB Local is measured");
    let server = orrery_tests::serve_without_workers(backend).await;
    let (_, key) = create_account(&server, "free").await;
    for _ in 0..2 {
        assert_eq!(
            server.post_json("/v1/charts", &key, london()).await.0,
            StatusCode::OK
        );
    }
    // The refused increment: one conditional write (billed by DynamoDB, reported without
    // units) and one strongly consistent read that tells "over the limit" from "expired".
    assert_eq!(
        server.post_json("/v1/charts", &key, london()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let refusal = per_request(meter.take());
    let last_two: Vec<_> = refusal
        .iter()
        .rev()
        .take(2)
        .map(|call| (call.operation, call.refused, call.read_units))
        .collect();
    assert_eq!(
        last_two,
        [("GetItem", false, 1.0), ("UpdateItem", true, 0.0)]
    );
    for _ in 0..5 {
        assert_eq!(
            server.post_json("/v1/charts", &key, london()).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let calls = per_request(meter.take());
    assert!(calls.is_empty(), "refused from the cache: {calls:?}");
}
