//! `orrery-local`: every HTTP function's router merged into one server, every queue consumer
//! running as an in-process worker, all on the embedded store. Requests behave exactly as on
//! Lambda because they run the same routers and handlers.

use std::sync::Arc;

use axum::Router;
use orrery::App;
use orrery::consumer::{WorkerSettings, spawn_worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every function's routes, as one router without the platform layers.
pub fn routes(app: &App) -> Router {
    Router::new()
        .merge(orrery_health::router(app.clone()))
        .merge(orrery_api_keys::router(app.clone()))
        .merge(orrery_admin::router(app.clone()))
        .merge(orrery_charts_api::router(app.clone()))
        .merge(orrery_readings_api::router(app.clone()))
        .merge(orrery_webhooks_api::router(app.clone()))
        .merge(orrery_openapi::router())
}

/// Every function's routes with the platform layers: what `orrery-local` serves.
pub fn router(app: App) -> Router {
    orrery::http::platform_layers(routes(&app), app.config.max_body_bytes)
}

/// Starts one worker per queue consumer; they stop when `shutdown` turns true.
pub fn spawn_workers(app: &App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        spawn_worker(
            Arc::new(orrery_events::EventsConsumer::new(app.clone())),
            app.queues.events.main.clone(),
            WorkerSettings::default(),
            shutdown.clone(),
        ),
        spawn_worker(
            Arc::new(orrery_webhook_delivery::DeliveryConsumer::new(app.clone())),
            app.queues.deliveries.main.clone(),
            WorkerSettings {
                // An attempt may take 15 s; keep the message hidden meanwhile.
                visibility: std::time::Duration::from_secs(60),
                ..WorkerSettings::default()
            },
            shutdown,
        ),
    ]
}
