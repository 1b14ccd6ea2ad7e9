//! The shared HTTP behaviour through the real server: problems for every client mistake, request
//! ids, body limits. Probe routes exercise the JSON extractor until feature endpoints exist.

use axum::Json;
use axum::routing::{get, post};
use orrery::http::ApiJson;
use orrery_tests::{Backend, TestApp, TestBackend, TestOptions};
use serde::Deserialize;
use serde_json::{Value, json};

on_both_backends!(
    health_reports_version_and_backend,
    unknown_routes_and_wrong_methods_are_problems,
    malformed_json_is_400_with_the_position,
    wrong_shapes_are_422_naming_the_field,
    oversized_bodies_are_413,
    non_json_bodies_are_415,
    request_ids_are_echoed_or_generated,
    panics_become_opaque_500_problems,
);

const BODY_LIMIT: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeInput {
    name: String,
    latitude: f64,
}

async fn serve(backend: TestBackend) -> TestApp {
    // The same backend again, with a small body limit.
    let mut options = TestOptions::default();
    options.config.max_body_bytes = BODY_LIMIT;
    let backend = orrery_tests::backend_with(backend.kind, options).await;
    orrery_tests::spawn_app_with(backend, |routes| {
        routes
            .route(
                "/probe/json",
                post(|ApiJson(input): ApiJson<ProbeInput>| async move {
                    Json(json!({"name": input.name, "latitude": input.latitude}))
                }),
            )
            .route("/probe/panic", get(panicking))
    })
    .await
}

async fn panicking() -> &'static str {
    panic!("secret internals")
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], json!(status));
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://orrery.dev/problems/")
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

async fn health_reports_version_and_backend(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = orrery_tests::spawn_app_with(backend, |routes| routes).await;
    let response = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        body["backend"],
        if kind.is_aws() {
            "dynamodb"
        } else {
            "embedded"
        }
    );
}

async fn unknown_routes_and_wrong_methods_are_problems(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let missing = server
        .client
        .get(server.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
    let wrong = server
        .client
        .delete(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().contains_key("allow"));
    problem(wrong, 405).await;
}

async fn malformed_json_is_400_with_the_position(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let response = server
        .client
        .post(server.url("/probe/json"))
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",\n \"latitude\": 1.0,,}")
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("line 2, column"),
        "{body}"
    );
    let truncated = server
        .client
        .post(server.url("/probe/json"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(truncated, 400).await;
}

async fn wrong_shapes_are_422_naming_the_field(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let response = server
        .client
        .post(server.url("/probe/json"))
        .json(&json!({"name": "x", "latitude": "north"}))
        .send()
        .await
        .unwrap();
    let body = problem(response, 422).await;
    assert_eq!(body["errors"][0]["field"], "latitude");
    let unknown = server
        .client
        .post(server.url("/probe/json"))
        .json(&json!({"name": "x", "latitude": 1, "extra": true}))
        .send()
        .await
        .unwrap();
    let body = problem(unknown, 422).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("extra")
    );
    let ok = server
        .client
        .post(server.url("/probe/json"))
        .json(&json!({"name": "x", "latitude": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

async fn oversized_bodies_are_413(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let huge = json!({"name": "x".repeat(BODY_LIMIT * 2), "latitude": 0});
    let response = server
        .client
        .post(server.url("/probe/json"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    let body = problem(response, 413).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&BODY_LIMIT.to_string())
    );
}

async fn non_json_bodies_are_415(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let response = server
        .client
        .post(server.url("/probe/json"))
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(response, 415).await;
}

async fn request_ids_are_echoed_or_generated(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let generated = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert!(
        generated.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let echoed = server
        .client
        .get(server.url("/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let hostile = server
        .client
        .get(server.url("/health"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    assert_ne!(
        hostile.headers()["x-request-id"],
        "a b\tc",
        "unsafe ids are replaced"
    );
}

async fn panics_become_opaque_500_problems(kind: Backend) {
    let backend = orrery_tests::backend(kind).await;
    let server = serve(backend).await;
    let response = server
        .client
        .get(server.url("/probe/panic"))
        .send()
        .await
        .unwrap();
    let body = problem(response, 500).await;
    assert!(
        !body.to_string().contains("secret internals"),
        "no internals leak: {body}"
    );
    let after = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the server survives");
}
