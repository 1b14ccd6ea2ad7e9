#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // The ephemeris index and ΔT table are built during the cold start, not in the first chunk.
    orrery_astro::warm_up();
    orrery::lambda::run_consumer(orrery_fn_batch_worker::BatchConsumer::new, |app| {
        app.queues.batch_items.main.clone()
    })
    .await
}
