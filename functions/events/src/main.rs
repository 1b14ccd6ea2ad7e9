#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::lambda::run_consumer(orrery_fn_events::EventsConsumer::new, |app| {
        app.queues.events.main.clone()
    })
    .await
}
