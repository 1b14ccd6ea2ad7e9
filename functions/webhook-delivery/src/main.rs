use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use orrery::App;
use orrery::consumer::handle_sqs_event;
use orrery_webhook_delivery::DeliveryConsumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    orrery::telemetry::init();
    let app = App::from_env_aws().await?;
    let queue = app.queues.deliveries.main.clone();
    let consumer = Arc::new(DeliveryConsumer::new(app));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (consumer, queue) = (consumer.clone(), queue.clone());
        async move {
            Ok::<SqsBatchResponse, lambda_runtime::Error>(
                handle_sqs_event(consumer.as_ref(), queue.as_ref(), event.payload).await,
            )
        }
    }))
    .await
}
