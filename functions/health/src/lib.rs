//! `GET /health`: liveness, version and which backend serves this runtime.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use orrery::App;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub backend: &'static str,
}

async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        backend: app.backend,
    })
}

pub fn router(app: App) -> Router {
    Router::new().route("/health", get(health)).with_state(app)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::body::to_bytes;
    use tower::ServiceExt;

    /// Runs an API Gateway event from `events/` through the router as Lambda would.
    async fn invoke(event: &str) -> axum::response::Response {
        let app = orrery::App::in_memory().unwrap();
        let router = orrery::http::platform_layers(
            super::router(app.clone()),
            orrery::http::Platform::of(&app.config),
        );
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn health_event_answers_ok_with_a_request_id() {
        let response = invoke(include_str!("../../../events/health.json")).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await.unwrap())
                .unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["backend"], "embedded");
    }

    #[tokio::test]
    async fn unknown_path_event_is_a_404_problem_with_the_callers_request_id() {
        let response = invoke(include_str!("../../../events/not-found.json")).await;
        assert_eq!(response.status(), 404);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(response.headers()["x-request-id"], "client-trace-42");
    }
}
