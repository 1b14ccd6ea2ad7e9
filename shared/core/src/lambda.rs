//! The Lambda edge, written once: what every function's `main` does, so each `main.rs` is only
//! the choice of a router or a consumer.

use std::sync::Arc;

use crate::App;
use crate::consumer::Consumer;
use crate::queue::Queue;

/// An HTTP function: logs, `App` from the environment (once per cold start), the router behind
/// the platform layers, served by `lambda_http`.
pub async fn run_http(router: fn(App) -> axum::Router) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env_aws().await?;
    let platform = crate::http::Platform::of(&app.config);
    // Never told to stop: the container's end is the process's.
    let (_keep, never) = tokio::sync::watch::channel(false);
    crate::analytics::spawn_flusher(app.clone(), never);
    lambda_http::run(crate::http::platform_layers(router(app), platform)).await
}

/// An HTTP function whose responses stream (a function URL in `RESPONSE_STREAM` mode: API
/// Gateway cannot stream), otherwise as [`run_http`].
pub async fn run_http_streaming(router: fn(App) -> axum::Router) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env_aws().await?;
    let platform = crate::http::Platform::of(&app.config);
    let (_keep, never) = tokio::sync::watch::channel(false);
    crate::analytics::spawn_flusher(app.clone(), never);
    lambda_http::run_with_streaming_response(crate::http::platform_layers(router(app), platform))
        .await
}

/// An SQS consumer: logs, `App` from the environment, then every SQS event handled by the
/// consumer that `consumer` builds, settling messages on the queue that `queue` names
/// (partial batch failures).
pub async fn run_consumer<C: Consumer>(
    consumer: fn(App) -> C,
    queue: fn(&App) -> Arc<dyn Queue>,
) -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let app = App::from_env_aws().await?;
    let queue = queue(&app);
    crate::consumer::run_on_lambda(Arc::new(consumer(app)), queue).await
}
