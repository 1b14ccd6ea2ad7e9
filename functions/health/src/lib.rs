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
