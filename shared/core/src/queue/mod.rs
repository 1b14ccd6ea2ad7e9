//! Message queues with SQS semantics: at-least-once delivery, visibility timeouts, receive
//! counts and a dead-letter queue after too many receives.
//!
//! Implementations: [`sqs::SqsQueue`] and [`embedded::EmbeddedQueue`].

pub mod embedded;
pub mod sqs;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// SQS limits, enforced by both backends.
pub const MAX_BATCH: usize = 10;
pub const MAX_DELAY: Duration = Duration::from_secs(900);
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
pub const MAX_WAIT: Duration = Duration::from_secs(20);
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    pub body: String,
    /// Opaque handle for [`Queue::delete`] and [`Queue::change_visibility`].
    pub receipt: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QueueError {
    #[error("invalid queue request: {0}")]
    Invalid(String),
    #[error("the receipt handle is not valid (message deleted or received again since)")]
    InvalidReceipt,
    #[error("queue backend error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// A name for logs and `/health`.
    fn name(&self) -> &str;
    /// Sends one message; returns its id.
    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError>;
    /// Sends up to [`MAX_BATCH`] messages; returns their ids in order. Fails as a whole when any
    /// entry is refused, so callers retry the batch (delivery is at-least-once anyway).
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, QueueError>;
    /// Up to `max` visible messages, each hidden for `visibility`; waits up to `wait` for one.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Hides a received message for `visibility` from now (zero makes it visible at once).
    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError>;
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;
    /// Deletes several received messages at once where the backend can (one group commit
    /// embedded, `DeleteMessageBatch` per 10 on SQS). Returns the receipts that were not deleted
    /// (stale or failed): those messages will be received again.
    async fn delete_batch(&self, receipts: Vec<String>) -> Vec<String> {
        let mut failed = Vec::new();
        for receipt in receipts {
            if let Err(err) = self.delete(&receipt).await {
                tracing::warn!(error = %err, "could not delete a message");
                failed.push(receipt);
            }
        }
        failed
    }
}

/// A queue and the dead-letter queue it redrives into.
#[derive(Clone)]
pub struct QueuePair {
    pub main: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
}

impl QueuePair {
    /// Moves up to `max` messages from the dead-letter queue back to the main queue: receive,
    /// send, delete. (SQS's StartMessageMoveTask does the same server-side; doing it here works
    /// on every backend and keeps each message until its copy is safely sent.)
    pub async fn redrive(&self, max: usize) -> Result<usize, QueueError> {
        let mut moved = 0;
        while moved < max {
            let batch = self
                .dead_letters
                .receive(
                    (max - moved).min(MAX_BATCH),
                    Duration::from_secs(30),
                    Duration::ZERO,
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            let outgoing = batch
                .iter()
                .map(|m| OutgoingMessage::new(m.body.clone()))
                .collect();
            self.main.send_batch(outgoing).await?;
            for message in &batch {
                self.dead_letters.delete(&message.receipt).await?;
            }
            moved += batch.len();
        }
        Ok(moved)
    }
}

pub(crate) fn validate_outgoing(messages: &[OutgoingMessage]) -> Result<(), QueueError> {
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return Err(QueueError::Invalid(format!(
            "a batch holds 1..={MAX_BATCH} messages"
        )));
    }
    for message in messages {
        if message.body.is_empty() || message.body.len() > MAX_BODY_BYTES {
            return Err(QueueError::Invalid(format!(
                "a message body is 1..={MAX_BODY_BYTES} bytes"
            )));
        }
        if message.delay > MAX_DELAY {
            return Err(QueueError::Invalid(
                "a message delay is at most 900 seconds".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn validate_receive(
    max: usize,
    visibility: Duration,
    wait: Duration,
) -> Result<(), QueueError> {
    if max == 0 || max > MAX_BATCH {
        return Err(QueueError::Invalid(format!(
            "receive takes 1..={MAX_BATCH} messages"
        )));
    }
    if visibility > MAX_VISIBILITY || wait > MAX_WAIT {
        return Err(QueueError::Invalid(
            "visibility ≤ 12 h and wait ≤ 20 s".into(),
        ));
    }
    Ok(())
}
