use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use orrery::App;
use orrery::config::Config;

/// mimalloc: glibc's malloc/free were ~15 % of the server's CPU under load (many short-lived
/// request buffers across threads); see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Orrery on one machine: the whole API on an embedded store, no AWS account needed.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ORRERY_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Directory for the database file and local secrets.
    #[arg(long, env = "ORRERY_DATA_DIR", default_value = "./.orrery")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orrery::telemetry::init();
    let args = Args::parse();
    let config = Config::from_env()?;
    let app = App::embedded(config, &args.data_dir)?
        .connect_shared_cache()
        .await?;
    let admin_key = std::env::var("ORRERY_ADMIN_KEY").ok();
    if let Some(generated) =
        orrery::access::ensure_local_secrets(&app, admin_key.as_deref()).await?
    {
        // Shown once: it is stored under the data directory, not printed again.
        println!(
            "Admin key (shown once, stored in {}): {generated}",
            args.data_dir.join("secrets").display()
        );
    }
    app.cache.warm(app.cache.config().hot_set_size).await;
    orrery_astro::warm_up();

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers = orrery_local::spawn_workers(&app, shutdown);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %args.data_dir.display(), "orrery-local listening");
    orrery_local::serve(listener, orrery_local::router(app), async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    stop.send_replace(true);
    for worker in workers {
        worker.await.ok();
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or(()),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.ok();
}
