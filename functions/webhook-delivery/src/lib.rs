//! The webhook delivery consumer: one signed attempt per received message, then done, a retry
//! on the schedule (the message is hidden until then), or the dead-letter queue. The work is
//! in `orrery::webhooks::attempt`.

use async_trait::async_trait;
use orrery::App;
use orrery::consumer::{Consumer, IncomingMessage, Outcome};

pub struct DeliveryConsumer {
    app: App,
}

impl DeliveryConsumer {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[async_trait]
impl Consumer for DeliveryConsumer {
    fn name(&self) -> &'static str {
        "webhook-delivery"
    }

    async fn handle(&self, message: &IncomingMessage) -> Outcome {
        orrery::webhooks::attempt::deliver(&self.app, message).await
    }
}
