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
