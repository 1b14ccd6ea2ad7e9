//! Namespace generations shared through the store: how an invalidation reaches every container
//! of every function without a shared cache level (the template's default: no Redis).
//!
//! One small item (`CACHE#GENERATIONS` / `BOARD` in the entities table) holds a counter per
//! namespace. Invalidating a mutable namespace adds one to its counter (`UpdateItem ADD`); every
//! container re-reads the item (one strongly consistent `GetItem`) when its last read *started*
//! more than the sync interval ago, at the moment it next uses the cache — so a container thawed
//! after minutes refreshes before it serves anything from memory. Hence: an invalidation is
//! seen everywhere within one sync interval (default 1 s), and a writer that waits one interval
//! after its bump before answering (see [`super::TwoLevelCache::settle`]) knows that every
//! decision taken after its answer sees the change.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::{Increment, Key, Store, StoreError, keyspace};

/// Where the generations live, behind a trait so the cache does not depend on a backend.
#[async_trait]
pub trait GenerationBoard: Send + Sync + 'static {
    /// Every namespace's generation (absent namespaces are 0).
    async fn read(&self) -> Result<HashMap<String, u64>, StoreError>;
    /// Adds one to `namespace`'s generation and returns the new value.
    async fn bump(&self, namespace: &str) -> Result<u64, StoreError>;
}

/// The board as one item of the store.
pub struct StoreBoard {
    store: Arc<dyn Store>,
}

impl StoreBoard {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn key() -> Key {
        keyspace::cache_generations()
    }
}

#[async_trait]
impl GenerationBoard for StoreBoard {
    async fn read(&self) -> Result<HashMap<String, u64>, StoreError> {
        let Some(item) = self.store.get_consistent(&Self::key()).await? else {
            return Ok(HashMap::new());
        };
        Ok(item
            .attrs
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.as_u64()?)))
            .collect())
    }

    async fn bump(&self, namespace: &str) -> Result<u64, StoreError> {
        let value = self
            .store
            .increment(Increment::new(Self::key(), namespace, 1))
            .await?;
        Ok(u64::try_from(value).unwrap_or(0))
    }
}
