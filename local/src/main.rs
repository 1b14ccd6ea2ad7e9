use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
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
    let admin_key = std::env::var("ORRERY_ADMIN_KEY").ok();
    orrery_local::run(
        Config::from_env()?,
        args.addr,
        &args.data_dir,
        admin_key.as_deref(),
        shutdown_signal(),
        |_| {},
    )
    .await
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
