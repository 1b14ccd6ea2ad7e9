#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::lambda::run_consumer(orrery_fn_webhook_delivery::DeliveryConsumer::new, |app| {
        app.queues.deliveries.main.clone()
    })
    .await
}
