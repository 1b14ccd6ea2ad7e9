//! The [`Queue`] on the embedded engine (`crate::embedded`): messages and a visibility-ordered
//! ready index in redb, long-polling receivers woken by every commit that makes a message visible,
//! and redrive to a dead-letter queue after `max_receives`, as SQS does.

use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::embedded::*;
use crate::ids;
use crate::queue::{self, OutgoingMessage, Queue, QueueError, ReceivedMessage};
use crate::store::StoreError;

#[derive(Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    receive_count: u32,
    visible_at_ms: i64,
}

fn message_key(queue: &str, id: &str) -> Vec<u8> {
    item_key(queue, id)
}

fn ready_key(queue: &str, visible_at_ms: i64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.len() + id.len() + 9);
    key.extend_from_slice(queue.as_bytes());
    key.push(0);
    key.extend_from_slice(&(visible_at_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

fn parse_receipt(receipt: &str) -> Result<(&str, u32), QueueError> {
    let (id, count) = receipt.rsplit_once(':').ok_or(QueueError::InvalidReceipt)?;
    Ok((id, count.parse().map_err(|_| QueueError::InvalidReceipt)?))
}

fn queue_backend(err: StoreError) -> QueueError {
    match err {
        StoreError::Invalid(message) => QueueError::Invalid(message),
        other => QueueError::Backend(other.to_string()),
    }
}

fn put_message(
    txn: &WriteTransaction,
    queue: &str,
    id: &str,
    message: &StoredMessage,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(message).map_err(backend)?;
    txn.open_table(MESSAGES)
        .map_err(backend)?
        .insert(message_key(queue, id).as_slice(), bytes.as_slice())
        .map_err(backend)?;
    txn.open_table(READY)
        .map_err(backend)?
        .insert(ready_key(queue, message.visible_at_ms, id).as_slice(), ())
        .map_err(backend)?;
    Ok(())
}

fn take_message(
    txn: &WriteTransaction,
    queue: &str,
    id: &str,
) -> Result<Option<StoredMessage>, StoreError> {
    let removed = {
        let mut messages = txn.open_table(MESSAGES).map_err(backend)?;
        let removed = messages
            .remove(message_key(queue, id).as_slice())
            .map_err(backend)?;
        match removed {
            Some(bytes) => {
                Some(serde_json::from_slice::<StoredMessage>(bytes.value()).map_err(backend)?)
            }
            None => None,
        }
    };
    if let Some(message) = &removed {
        txn.open_table(READY)
            .map_err(backend)?
            .remove(ready_key(queue, message.visible_at_ms, id).as_slice())
            .map_err(backend)?;
    }
    Ok(removed)
}

/// Where a queue's messages go after too many receives.
#[derive(Debug, Clone)]
pub struct DeadLetterPolicy {
    pub queue: String,
    pub max_receives: u32,
}

/// The embedded [`Queue`]: messages persist in the same file as the store.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: EmbeddedDb,
    name: String,
    dead_letters: Option<DeadLetterPolicy>,
}

impl EmbeddedQueue {
    pub fn new(
        db: EmbeddedDb,
        name: impl Into<String>,
        dead_letters: Option<DeadLetterPolicy>,
    ) -> Self {
        Self {
            db,
            name: name.into(),
            dead_letters,
        }
    }

    /// One receive attempt inside the writer; also moves over-received messages to the DLQ.
    async fn try_receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let queue = self.name.clone();
        let dead_letters = self.dead_letters.clone();
        let (received, moved) = self
            .db
            .write(move |txn| {
                let now = clock::now_millis();
                let due: Vec<(i64, String)> = {
                    let ready = txn.open_table(READY).map_err(backend)?;
                    let lower = ready_key(&queue, 0, "");
                    let upper = ready_key(&queue, now.saturating_add(1), "");
                    let mut due = Vec::new();
                    for entry in ready
                        .range::<&[u8]>(lower.as_slice()..upper.as_slice())
                        .map_err(backend)?
                    {
                        let (key, ()) = entry.map_err(backend).map(|(k, v)| (k, v.value()))?;
                        let bytes = key.value();
                        let at = queue.len() + 1;
                        let visible_at = bytes
                            .get(at..at + 8)
                            .and_then(|b| <[u8; 8]>::try_from(b).ok())
                            .map_or(0, u64::from_be_bytes)
                            as i64;
                        let id = String::from_utf8_lossy(bytes.get(at + 8..).unwrap_or_default())
                            .into_owned();
                        due.push((visible_at, id));
                        if due.len() >= max * 4 {
                            break;
                        }
                    }
                    due
                };
                let mut received = Vec::new();
                let mut moved = false;
                for (_, id) in due {
                    if received.len() >= max {
                        break;
                    }
                    let Some(mut message) = take_message(txn, &queue, &id)? else {
                        continue;
                    };
                    match &dead_letters {
                        // SQS semantics: a receive past maxReceiveCount moves the message instead.
                        Some(policy) if message.receive_count >= policy.max_receives => {
                            message.visible_at_ms = now;
                            put_message(txn, &policy.queue, &id, &message)?;
                            moved = true;
                            continue;
                        }
                        _ => {}
                    }
                    message.receive_count += 1;
                    message.visible_at_ms = now.saturating_add(visibility.as_millis() as i64);
                    put_message(txn, &queue, &id, &message)?;
                    received.push(ReceivedMessage {
                        receipt: format!("{id}:{}", message.receive_count),
                        id,
                        body: message.body,
                        receive_count: message.receive_count,
                    });
                }
                Ok((received, moved))
            })
            .await
            .map_err(queue_backend)?;
        if moved {
            self.db.queue_signal.notify_waiters();
        }
        Ok(received)
    }

    /// When the earliest hidden or delayed message of this queue becomes visible.
    fn next_visible_at(&self) -> Result<Option<i64>, QueueError> {
        let lower = ready_key(&self.name, 0, "");
        let upper = ready_key(&self.name, i64::MAX, "");
        self.db
            .read(|txn| {
                let ready = txn.open_table(READY).map_err(backend)?;
                let mut range = ready
                    .range::<&[u8]>(lower.as_slice()..upper.as_slice())
                    .map_err(backend)?;
                let Some(first) = range.next() else {
                    return Ok(None);
                };
                let (key, ()) = first.map_err(backend).map(|(k, v)| (k, v.value()))?;
                let at = self.name.len() + 1;
                Ok(key
                    .value()
                    .get(at..at + 8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| u64::from_be_bytes(b) as i64))
            })
            .map_err(queue_backend)
    }

    /// Changes visibility of the message behind `receipt`, if the receipt is current.
    async fn update_message(
        &self,
        receipt: &str,
        delete: bool,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        let (queue, id) = (self.name.clone(), id.to_owned());
        let made_visible = visibility.is_zero() && !delete;
        self.db
            .write(move |txn| {
                let Some(mut message) = take_message(txn, &queue, &id)? else {
                    // Deleting twice is not an error (as in SQS); hiding a deleted message is.
                    return if delete {
                        Ok(())
                    } else {
                        Err(StoreError::Invalid("receipt".into()))
                    };
                };
                if message.receive_count != count {
                    put_message(txn, &queue, &id, &message)?;
                    return Err(StoreError::ConditionFailed);
                }
                if !delete {
                    message.visible_at_ms =
                        clock::now_millis().saturating_add(visibility.as_millis() as i64);
                    put_message(txn, &queue, &id, &message)?;
                }
                Ok(())
            })
            .await
            .map_err(|err| match err {
                StoreError::ConditionFailed | StoreError::Invalid(_) => QueueError::InvalidReceipt,
                other => QueueError::Backend(other.to_string()),
            })?;
        if made_visible {
            self.db.queue_signal.notify_waiters();
        }
        Ok(())
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        let mut ids = self.send_batch(vec![message]).await?;
        ids.pop()
            .ok_or_else(|| QueueError::Backend("no message id".into()))
    }

    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<Vec<String>, QueueError> {
        queue::validate_outgoing(&messages)?;
        let queue = self.name.clone();
        let ids = self
            .db
            .write(move |txn| {
                let now = clock::now_millis();
                let mut ids = Vec::with_capacity(messages.len());
                for message in messages {
                    let id = ids::new_id("msg");
                    let stored = StoredMessage {
                        body: message.body,
                        receive_count: 0,
                        visible_at_ms: now.saturating_add(message.delay.as_millis() as i64),
                    };
                    put_message(txn, &queue, &id, &stored)?;
                    ids.push(id);
                }
                Ok(ids)
            })
            .await
            .map_err(queue_backend)?;
        self.db.queue_signal.notify_waiters();
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        queue::validate_receive(max, visibility, wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a send in between is not missed.
            let signal = self.db.queue_signal.clone();
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let received = self.try_receive(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            // Sleep until a send, the next hidden message reappearing, or the deadline.
            let mut wake = deadline;
            if let Some(at_ms) = self.next_visible_at()? {
                let until = Duration::from_millis((at_ms - clock::now_millis()).max(1) as u64);
                wake = wake.min(now + until);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        if visibility > queue::MAX_VISIBILITY {
            return Err(QueueError::Invalid("visibility is at most 12 hours".into()));
        }
        self.update_message(receipt, false, visibility).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.update_message(receipt, true, Duration::ZERO).await
    }

    async fn delete_batch(&self, receipts: Vec<String>) -> Vec<String> {
        let queue = self.name.clone();
        let parsed: Vec<(String, Option<(String, u32)>)> = receipts
            .iter()
            .map(|receipt| {
                let parsed = parse_receipt(receipt)
                    .ok()
                    .map(|(id, count)| (id.to_owned(), count));
                (receipt.clone(), parsed)
            })
            .collect();
        let result = self
            .db
            .write(move |txn| {
                let mut failed = Vec::new();
                for (receipt, parsed) in parsed {
                    let Some((id, count)) = parsed else {
                        failed.push(receipt);
                        continue;
                    };
                    // Gone already: deleting twice is not an error (as in SQS).
                    if let Some(message) = take_message(txn, &queue, &id)?
                        && message.receive_count != count
                    {
                        // Received again since: the receipt is stale, the message stays.
                        put_message(txn, &queue, &id, &message)?;
                        failed.push(receipt);
                    }
                }
                Ok(failed)
            })
            .await;
        match result {
            Ok(failed) => failed,
            Err(err) => {
                tracing::warn!(error = %err, "could not delete a batch of messages");
                receipts
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_delete_skips_stale_and_malformed_receipts_and_deletes_the_rest() {
        let queue = EmbeddedQueue::new(EmbeddedDb::in_memory().unwrap(), "q", None);
        queue
            .send_batch(vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")])
            .await
            .unwrap();
        let first = queue
            .receive(10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first.len(), 2);
        // Visible again at once: receiving again makes the first receipts stale.
        let second = queue
            .receive(1, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        let stale = first
            .iter()
            .find(|m| m.id == second[0].id)
            .unwrap()
            .receipt
            .clone();
        let current = first
            .iter()
            .find(|m| m.id != second[0].id)
            .unwrap()
            .receipt
            .clone();
        let failed = queue
            .delete_batch(vec![stale.clone(), current, "garbage".into()])
            .await;
        assert_eq!(failed, [stale, "garbage".to_owned()]);
        // The re-received message survives under its current receipt; the other is gone.
        assert!(
            queue
                .delete_batch(vec![second[0].receipt.clone()])
                .await
                .is_empty()
        );
        assert!(
            queue
                .receive(10, Duration::ZERO, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
