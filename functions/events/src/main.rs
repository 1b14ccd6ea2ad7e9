use std::sync::Arc;

use orrery::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::telemetry::init();
    let app = App::from_env_aws().await?;
    let queue = app.queues.events.main.clone();
    orrery::consumer::run_on_lambda(Arc::new(orrery_events::EventsConsumer::new(app)), queue).await
}
