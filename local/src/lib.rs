//! `orrery-local`: every HTTP function's router merged into one server, every queue consumer
//! running as an in-process worker, all on the embedded store. Requests behave exactly as on
//! Lambda because they run the same routers and handlers.

use std::sync::Arc;

use axum::Router;
use orrery::App;
use orrery::consumer::{WorkerSettings, spawn_worker};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the `orrery-local` binary runs: the embedded app on `data_dir` (made if new, refused if
/// damaged), its admin key (`admin_key`, else the stored one, else a new one printed once),
/// every router and worker, until `shutdown` completes. `listening` hears the bound address.
pub async fn run(
    config: orrery::config::Config,
    addr: std::net::SocketAddr,
    data_dir: &std::path::Path,
    admin_key: Option<&str>,
    shutdown: impl std::future::Future<Output = ()>,
    listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let app = App::embedded(config, data_dir)?
        .connect_shared_cache()
        .await?;
    if let Some(generated) = orrery::access::ensure_local_secrets(&app, admin_key).await? {
        // Shown once: it is stored under the data directory, not printed again.
        println!(
            "Admin key (shown once, stored in {}): {generated}",
            data_dir.join("secrets").display()
        );
    }
    app.cache.warm(app.cache.config().hot_set_size).await;
    orrery_astro::warm_up();

    let (stop, workers_shutdown) = watch::channel(false);
    let workers = spawn_workers(&app, workers_shutdown);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, data_dir = %data_dir.display(), "orrery-local listening");
    listening(bound);
    serve(listener, router(app), async {
        shutdown.await;
        tracing::info!("shutting down");
    })
    .await;
    stop.send_replace(true);
    for worker in workers {
        worker.await.ok();
    }
    Ok(())
}

/// Every function's routes, as one router without the platform layers.
pub fn routes(app: &App) -> Router {
    Router::new()
        .merge(orrery_fn_health::router(app.clone()))
        .merge(orrery_fn_api_keys::router(app.clone()))
        .merge(orrery_fn_admin::router(app.clone()))
        .merge(orrery_fn_charts::router(app.clone()))
        .merge(orrery_fn_readings::router(app.clone()))
        .merge(orrery_fn_webhooks::router(app.clone()))
        .merge(orrery_fn_batches::router(app.clone()))
        .merge(orrery_fn_analytics::router(app.clone()))
        .merge(orrery_fn_event_log::router(app.clone()))
        .merge(orrery_fn_event_stream::router(app.clone()))
        .merge(orrery_fn_realtime::local::router(app.clone()))
        .merge(orrery_fn_openapi::router())
        .merge(orrery_fn_portal::router(
            orrery_fn_portal::PortalConfig::default(),
        ))
}

/// Every function's routes with the platform layers: what `orrery-local` serves.
pub fn router(app: App) -> Router {
    orrery::http::platform_layers(routes(&app), orrery::http::Platform::of(&app.config))
}

/// hyper's own limits on a request head, set far above the API's (`orrery::http::MAX_*`): a
/// request over the API's limits gets its 414/431 problem from the platform layers instead of
/// hyper's bare status line. (hyper still answers by itself past these, and for a request target
/// over 64 KiB, which it never parses.)
const HEAD_BUFFER_BYTES: usize = 1024 * 1024;
const HEAD_FIELDS: usize = 1000;

/// Serves `router` on `listener` (HTTP/1.1) until `shutdown` completes, then lets open requests
/// finish (at most 10 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    // Graceful shutdown by hand: hyper-util's `GracefulShutdown` cannot watch a connection
    // that allows upgrades.
    let (closing, closing_watch) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .max_buf_size(HEAD_BUFFER_BYTES)
            .max_headers(HEAD_FIELDS)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(router.clone()),
            )
            // WebSocket (`/v1/realtime`) upgrades.
            .with_upgrades();
        let mut closing = closing_watch.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                _ = closing.wait_for(|closing| *closing) => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    closing.send_replace(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drained)
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within 10 s");
    }
}

/// Starts one worker per queue consumer; they stop when `shutdown` turns true.
pub fn spawn_workers(app: &App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut workers = vec![
        spawn_worker(
            Arc::new(orrery_fn_events::EventsConsumer::new(app.clone())),
            app.queues.events.main.clone(),
            WorkerSettings::default(),
            shutdown.clone(),
        ),
        spawn_worker(
            Arc::new(orrery_fn_webhook_delivery::DeliveryConsumer::new(
                app.clone(),
            )),
            app.queues.deliveries.main.clone(),
            WorkerSettings {
                // An attempt may take 15 s; keep the message hidden meanwhile.
                visibility: std::time::Duration::from_secs(60),
                ..WorkerSettings::default()
            },
            shutdown.clone(),
        ),
    ];
    // Two batch workers: a chunk is CPU-bound, and this machine class has two cores.
    for _ in 0..BATCH_WORKERS {
        workers.push(spawn_worker(
            Arc::new(orrery_fn_batch_worker::BatchConsumer::new(app.clone())),
            app.queues.batch_items.main.clone(),
            WorkerSettings {
                // A chunk runs in milliseconds; a crashed worker's chunk comes back after this.
                visibility: std::time::Duration::from_secs(10),
                batch_size: 2,
                ..WorkerSettings::default()
            },
            shutdown.clone(),
        ));
    }
    // Analytics: the aggregator's flush every interval (and once more at shutdown), the roll-ups.
    workers.push(orrery::analytics::spawn_flusher(
        app.clone(),
        shutdown.clone(),
    ));
    workers.push(orrery_analytics::background::spawn_rollups(
        app.clone(),
        shutdown,
    ));
    workers
}

/// In-process batch workers.
const BATCH_WORKERS: usize = 2;
