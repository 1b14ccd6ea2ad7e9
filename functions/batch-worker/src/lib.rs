//! The batch worker: one chunk of a batch per message — its items computed, its result lines
//! written, its counts settled once however often it is delivered. The work is in
//! `orrery_batches::worker`.

use async_trait::async_trait;
use orrery::App;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};
use orrery_batches::worker::BatchWorker;

pub struct BatchConsumer {
    worker: BatchWorker,
}

impl BatchConsumer {
    pub fn new(app: App) -> Self {
        Self {
            worker: BatchWorker::new(app),
        }
    }
}

#[async_trait]
impl Consumer for BatchConsumer {
    fn name(&self) -> &'static str {
        "batch-worker"
    }

    async fn handle(&self, message: &IncomingMessage) -> Outcome {
        self.worker.handle(message).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use aws_lambda_events::event::sqs::SqsEvent;

    /// The SQS event of events/sqs-batch-items.json: a chunk of a batch that never committed
    /// (its submission was refused or crashed) is dropped; only the undecodable message is
    /// reported failed, so SQS retries it alone.
    #[tokio::test]
    async fn only_the_undecodable_message_is_reported_failed() {
        let app = orrery::App::in_memory().unwrap();
        let consumer = super::BatchConsumer::new(app.clone());
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-batch-items.json")).unwrap();
        let response = orrery::consumer::handle_sqs_event(
            &consumer,
            app.queues.batch_items.main.as_ref(),
            event,
        )
        .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"]);
    }
}
