//! A replica that has not caught up. DynamoDB's eventually consistent reads may miss writes of
//! the last moment; no emulator serves such a stale read on demand, so this store is a test
//! double over the real backend: eventually consistent reads do not see API keys yet (their
//! `KEYHASH#` look-ups), see an event-log head no further than `replicated_up_to`, and queries
//! see no log entry past it. Strongly consistent reads and every write go to the real store.

use std::sync::Arc;

use orrery::App;
use orrery::store::{Condition, Increment, Item, Key, Page, Query, Store, StoreError, WriteOp};

pub struct LaggingReplica {
    inner: Arc<dyn Store>,
    replicated_up_to: u64,
    /// Entries not replicated yet although later ones are (a global table replicates a
    /// transaction's items one by one).
    missing: Vec<u64>,
}

/// `app` reading through a replica `replicated_up_to` entries into every event log.
pub fn behind(app: &App, replicated_up_to: u64) -> App {
    with_replica(app, replicated_up_to, Vec::new())
}

/// `app` reading through a replica that has every entry but `missing`.
pub fn with_holes(app: &App, missing: &[u64]) -> App {
    with_replica(app, u64::MAX, missing.to_vec())
}

fn with_replica(app: &App, replicated_up_to: u64, missing: Vec<u64>) -> App {
    App::from_parts(
        (*app.config).clone(),
        Arc::new(LaggingReplica {
            inner: app.store.clone(),
            replicated_up_to,
            missing,
        }),
        app.queues.clone(),
        app.secrets.clone(),
    )
}

#[async_trait::async_trait]
impl Store for LaggingReplica {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        if key.pk.starts_with("KEYHASH#") {
            return Ok(None);
        }
        let mut item = self.inner.get(key).await?;
        if key.sk == "EVENTLOG"
            && let Some(head) = &mut item
        {
            let replicated = head
                .attrs
                .get("cursor")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
                .min(self.replicated_up_to);
            head.attrs
                .insert("cursor".into(), serde_json::json!(replicated));
        }
        Ok(item)
    }

    async fn get_consistent(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get_consistent(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }

    async fn delete(
        &self,
        key: &Key,
        condition: Option<Condition>,
    ) -> Result<Option<Item>, StoreError> {
        self.inner.delete(key, condition).await
    }

    async fn increment(&self, increment: Increment) -> Result<i64, StoreError> {
        self.inner.increment(increment).await
    }

    async fn increment_billed(&self, increment: Increment) -> Result<(i64, f64), StoreError> {
        self.inner.increment_billed(increment).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.inner.put_many(items).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let consistent = query.consistent;
        let mut page = self.inner.query(query).await?;
        if !consistent {
            page.items.retain(|item| {
                orrery::store::keyspace::parse_event_log_entry(&item.key.sk).is_none_or(|cursor| {
                    cursor <= self.replicated_up_to && !self.missing.contains(&cursor)
                })
            });
        }
        Ok(page)
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
