//! Queue consumers, run the same way on both runtimes: as an SQS-triggered Lambda (partial batch
//! failures) or as an in-process worker polling the embedded queue in `orrery-local`.

use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::FutureExt as _;
use tokio::sync::watch;

use crate::queue::Queue;

/// A message as a consumer sees it, whichever runtime delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    pub id: String,
    pub body: String,
    pub receipt: String,
    pub receive_count: u32,
}

/// What to do with a message after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done: delete it.
    Done,
    /// Failed: let it reappear after the queue's visibility timeout (and reach the DLQ in the end).
    Retry,
    /// Failed: let it reappear after this delay (backoff schedules).
    RetryAfter(Duration),
}

#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn handle(&self, message: &IncomingMessage) -> Outcome;
}

/// Handles every message of a batch and settles it on `queue`; returns the ids that failed.
/// One bad message never fails the others.
pub async fn process_batch(
    consumer: &dyn Consumer,
    queue: &dyn Queue,
    messages: Vec<IncomingMessage>,
    delete_done: bool,
) -> Vec<String> {
    let mut failed = Vec::new();
    let mut done = Vec::new();
    for message in messages {
        let span = tracing::info_span!("message", consumer = consumer.name(), message_id = %message.id, receive_count = message.receive_count);
        let settle = async {
            // A panicking handler fails its message only: it stays on the queue (and reaches
            // the dead-letter queue after its receives), and the worker keeps going.
            let outcome = AssertUnwindSafe(consumer.handle(&message))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!("the consumer panicked; the message stays on the queue");
                    Outcome::Retry
                });
            match outcome {
                // Deleted together below: one store commit (or SQS call) per batch, not per message.
                Outcome::Done if delete_done => done.push(message.receipt.clone()),
                // On Lambda, SQS deletes every message not reported as failed.
                Outcome::Done => {}
                Outcome::Retry => failed.push(message.id.clone()),
                Outcome::RetryAfter(delay) => {
                    if let Err(err) = queue
                        .change_visibility(
                            &message.receipt,
                            delay.min(crate::queue::MAX_VISIBILITY),
                        )
                        .await
                    {
                        tracing::warn!(error = %err, "could not reschedule a failed message; default visibility applies");
                    }
                    failed.push(message.id.clone());
                }
            }
        };
        tracing::Instrument::instrument(settle, span).await;
    }
    if !done.is_empty() {
        let undeleted = queue.delete_batch(done).await;
        if !undeleted.is_empty() {
            tracing::warn!(
                count = undeleted.len(),
                "could not delete handled messages; they will be handled again"
            );
        }
    }
    failed
}

/// The Lambda side: SQS deletes what we do not report, so only failures are returned.
pub async fn handle_sqs_event(
    consumer: &dyn Consumer,
    queue: &dyn Queue,
    event: SqsEvent,
) -> SqsBatchResponse {
    let messages = event
        .records
        .into_iter()
        .filter_map(|record| {
            Some(IncomingMessage {
                receive_count: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1),
                id: record.message_id?,
                body: record.body.unwrap_or_default(),
                receipt: record.receipt_handle.unwrap_or_default(),
            })
        })
        .collect();
    let failed = process_batch(consumer, queue, messages, false).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    response
}

/// The Lambda runtime of a queue consumer: each SQS event is handled by `consumer`, settling
/// messages on `queue`, with partial batch failures reported.
pub async fn run_on_lambda(
    consumer: Arc<dyn Consumer>,
    queue: Arc<dyn Queue>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let (consumer, queue) = (consumer.clone(), queue.clone());
            async move {
                Ok::<SqsBatchResponse, lambda_runtime::Error>(
                    handle_sqs_event(consumer.as_ref(), queue.as_ref(), event.payload).await,
                )
            }
        },
    ))
    .await
}

/// Worker settings for the local runtime (the Lambda event source mapping's equivalent).
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub batch_size: usize,
    pub visibility: Duration,
    pub wait: Duration,
    /// After a partial batch of several messages (busy traffic), how long to let messages
    /// gather before receiving again (the event source mapping's
    /// `MaximumBatchingWindowInSeconds`). Without it a busy queue is drained one message per
    /// receive, each receive and delete a store commit of its own.
    pub batching_window: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            batch_size: 10,
            visibility: Duration::from_secs(30),
            wait: Duration::from_secs(2),
            batching_window: Duration::from_millis(20),
        }
    }
}

/// The local side: polls `queue` until `shutdown` turns true.
pub fn spawn_worker(
    consumer: Arc<dyn Consumer>,
    queue: Arc<dyn Queue>,
    settings: WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(
            consumer = consumer.name(),
            queue = queue.name(),
            "worker started"
        );
        let mut partial = false;
        while !*shutdown.borrow() {
            if partial && !settings.batching_window.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(settings.batching_window) => {}
                    _ = shutdown.changed() => break,
                }
            }
            let received = tokio::select! {
                received = queue.receive(settings.batch_size, settings.visibility, settings.wait) => received,
                _ = shutdown.changed() => break,
            };
            // Gather only when traffic is busy (more than one message came): a lone message
            // at low traffic should not wait for company.
            partial = received
                .as_ref()
                .is_ok_and(|messages| messages.len() > 1 && messages.len() < settings.batch_size);
            match received {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => {
                    let messages = messages
                        .into_iter()
                        .map(|m| IncomingMessage {
                            id: m.id,
                            body: m.body,
                            receipt: m.receipt,
                            receive_count: m.receive_count,
                        })
                        .collect();
                    process_batch(consumer.as_ref(), queue.as_ref(), messages, true).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "worker could not receive; backing off");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        tracing::info!(consumer = consumer.name(), "worker stopped");
    })
}
