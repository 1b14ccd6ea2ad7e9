//! Usage analytics: what is counted where (see `cells`), the in-process aggregator of what has
//! no write to fold into, latency histograms, and `usage.threshold` events. The reports that read
//! them are in `orrery-analytics`.

pub mod aggregator;
pub mod cells;
pub mod histogram;
pub mod thresholds;

pub use aggregator::{Aggregator, CacheUse, Measured};
pub use cells::Outcome;

use crate::App;

/// How often a container flushes its aggregated measurements at most (the bound).
pub const MAX_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Flushes the container's aggregated measurements in the background once the interval has
/// passed (called on the request path: one atomic load otherwise). On Lambda the task runs while
/// the container does; a container frozen mid-flush finishes it when it thaws.
pub fn maybe_flush(app: &App) {
    if app.analytics.flush_due() {
        let app = app.clone();
        tokio::spawn(async move {
            let _ = app.analytics.flush(app.store.as_ref()).await;
        });
    }
}

/// Flushes the container's measurements every interval until `shutdown` turns true, then once
/// more: so a quiet container's last requests are written too (on Lambda, while it is thawed).
pub fn spawn_flusher(
    app: App,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = app.analytics.interval();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
            if app.analytics.flush_due() {
                let _ = app.analytics.flush(app.store.as_ref()).await;
            }
        }
        let _ = app.analytics.flush(app.store.as_ref()).await;
    })
}
