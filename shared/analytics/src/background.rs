//! orrery-local's analytics chores: the daily usage roll-ups, run hourly in-process (on AWS an
//! EventBridge schedule runs function `usage-rollup`).

use std::time::Duration;

use orrery::App;
use tokio::sync::watch;

/// How often orrery-local rolls up the recent days.
pub const ROLLUP_EVERY: Duration = Duration::from_secs(3600);

/// Rolls up the recent days now and every [`ROLLUP_EVERY`] until `shutdown` turns true.
pub fn spawn_rollups(app: App, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let today = orrery::clock::now().date_naive();
            match crate::rollup::roll_up_recent(app.store.clone(), today).await {
                Ok(run) => tracing::debug!(
                    accounts = run.accounts,
                    days = run.days_written,
                    "usage rolled up"
                ),
                Err(err) => tracing::warn!(error = %err, "usage roll-up failed; retried next hour"),
            }
            tokio::select! {
                _ = tokio::time::sleep(ROLLUP_EVERY) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    })
}
