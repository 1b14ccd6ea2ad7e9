//! [`Queue`] on SQS. Redrive to the dead-letter queue is SQS's own (the queue's RedrivePolicy).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

use super::{OutgoingMessage, Queue, QueueError, ReceivedMessage};

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    name: String,
}

fn backend<E: std::error::Error + 'static>(err: E) -> QueueError {
    QueueError::Backend(DisplayErrorContext(err).to_string())
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        let url = url.into();
        let name = url.rsplit('/').next().unwrap_or(&url).to_owned();
        Self { client, url, name }
    }

    fn receipt_error<E>(err: aws_sdk_sqs::error::SdkError<E>) -> QueueError
    where
        E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err.as_service_error().and_then(|e| e.code()) {
            Some("ReceiptHandleIsInvalid" | "InvalidParameterValue" | "MessageNotInflight") => {
                QueueError::InvalidReceipt
            }
            _ => backend(err),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        super::validate_outgoing(std::slice::from_ref(&message))?;
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(message.body)
            .delay_seconds(seconds(message.delay))
            .send()
            .await
            .map_err(backend)?;
        output
            .message_id
            .ok_or_else(|| QueueError::Backend("SQS returned no message id".into()))
    }

    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, QueueError> {
        super::validate_outgoing(&messages)?;
        let mut entries = Vec::with_capacity(messages.len());
        for (position, message) in messages.into_iter().enumerate() {
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(position.to_string())
                    .message_body(message.body)
                    .delay_seconds(seconds(message.delay))
                    .build()
                    .map_err(backend)?,
            );
        }
        let count = entries.len();
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(backend)?;
        if let Some(failure) = output.failed.first() {
            return Err(QueueError::Backend(format!(
                "SQS refused {} of {count} messages: {} {}",
                output.failed.len(),
                failure.code,
                failure.message.as_deref().unwrap_or_default()
            )));
        }
        let mut ids = vec![String::new(); count];
        for entry in output.successful {
            if let Some(slot) = entry.id.parse::<usize>().ok().and_then(|i| ids.get_mut(i)) {
                *slot = entry.message_id;
            }
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        super::validate_receive(max, visibility, wait)?;
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .visibility_timeout(seconds(visibility))
            .wait_time_seconds(seconds(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|attrs| {
                        attrs.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                Some(ReceivedMessage {
                    id: message.message_id?,
                    body: message.body.unwrap_or_default(),
                    receipt: message.receipt_handle?,
                    receive_count,
                })
            })
            .collect())
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        if visibility > super::MAX_VISIBILITY {
            return Err(QueueError::Invalid("visibility is at most 12 hours".into()));
        }
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility))
            .send()
            .await
            .map(|_| ())
            .map_err(Self::receipt_error)
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(Self::receipt_error)
    }

    async fn delete_batch(&self, receipts: Vec<String>) -> Vec<String> {
        let mut failed = Vec::new();
        for chunk in receipts.chunks(super::MAX_BATCH) {
            let entries: Result<Vec<_>, _> = chunk
                .iter()
                .enumerate()
                .map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                })
                .collect();
            let result = match entries {
                Ok(entries) => self
                    .client
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|err| DisplayErrorContext(err).to_string()),
                Err(err) => Err(err.to_string()),
            };
            match result {
                Ok(output) => failed.extend(output.failed().iter().filter_map(|entry| {
                    tracing::warn!(code = entry.code(), "could not delete a message");
                    entry
                        .id()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| chunk.get(i).cloned())
                })),
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete a batch of messages");
                    failed.extend(chunk.iter().cloned());
                }
            }
        }
        failed
    }
}
