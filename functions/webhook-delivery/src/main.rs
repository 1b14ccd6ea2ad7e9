use std::sync::Arc;

use orrery::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::telemetry::init();
    let app = App::from_env_aws().await?;
    let queue = app.queues.deliveries.main.clone();
    orrery::consumer::run_on_lambda(
        Arc::new(orrery_webhook_delivery::DeliveryConsumer::new(app)),
        queue,
    )
    .await
}
