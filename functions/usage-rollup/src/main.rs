//! The daily usage roll-up on AWS: an EventBridge schedule invokes it (the event's content is
//! not used); it rolls up the last days of every account (`orrery_analytics::rollup`). A failure
//! is the invocation's error, so the schedule's retry runs it again: every roll-up is a
//! replacement of the day's totals, safe to repeat.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::telemetry::init();
    let app = orrery::App::from_env_aws().await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let today = orrery::clock::now().date_naive();
            let run = orrery_analytics::rollup::roll_up_recent(app.store.clone(), today).await?;
            tracing::info!(
                accounts = run.accounts,
                days = run.days_written,
                "usage rolled up"
            );
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "accounts": run.accounts,
                "days_written": run.days_written,
            }))
        }
    }))
    .await
}
