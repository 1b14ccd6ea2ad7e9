//! Open WebSocket connections and the per-account limit on them (`realtime_connections` in the
//! tiers file).
//!
//! In orrery-local the process holds every connection it serves, so [`LocalConnections`]
//! counts them in memory: exact, and after a crash nothing stale is left to count. On AWS, API
//! Gateway holds them; `$connect` stores a [`ConnectionRecord`] in the connections table
//! (expiring at the gateway's 2-hour cap) that the events consumer's fan-out queries, and the
//! limit counts the account's live records (the store skips expired ones, so a `$disconnect`
//! that never came cannot lock an account out past the cap).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use orrery::App;
use orrery::error::ApiError;
use orrery::ids::{AccountId, KeyId};
use orrery::store::{Condition, Item, StoreError, WriteOp, keyspace};
use serde::{Deserialize, Serialize};

use crate::protocol::Subscription;

/// API Gateway closes a WebSocket connection after this long, whatever it does.
pub const GATEWAY_LIFETIME_SECONDS: i64 = 2 * 3600;
/// …and after this long without a message either way.
pub const GATEWAY_IDLE_SECONDS: i64 = 10 * 60;

fn over_limit(limit: u32) -> ApiError {
    ApiError::RateLimited {
        detail: format!(
            "This account has {limit} real-time connections open, its tier's limit: close one first."
        ),
        retry_after_seconds: 5,
    }
}

/// The connections this process serves, per account.
#[derive(Clone, Default)]
pub struct LocalConnections {
    open: Arc<Mutex<HashMap<AccountId, u32>>>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionSlot {
    registry: LocalConnections,
    account: AccountId,
}

impl LocalConnections {
    /// A place for one more connection of `account`, or 429 when it holds `limit` already.
    pub fn open(&self, account: &AccountId, limit: u32) -> Result<ConnectionSlot, ApiError> {
        let mut open = self.lock();
        let count = open.entry(account.clone()).or_default();
        if *count >= limit {
            return Err(over_limit(limit));
        }
        *count += 1;
        Ok(ConnectionSlot {
            registry: self.clone(),
            account: account.clone(),
        })
    }

    /// How many connections `account` holds.
    pub fn count(&self, account: &AccountId) -> u32 {
        self.lock().get(account).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, u32>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.registry.lock();
        if let Some(count) = open.get_mut(&self.account) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.account);
            }
        }
    }
}

/// A WebSocket connection API Gateway holds (AWS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub connection_id: String,
    pub account_id: AccountId,
    pub key_id: KeyId,
    pub subscription: Subscription,
    /// Unix seconds.
    pub connected_at: i64,
    /// The last entry sent to it: the fan-out and a replay send only entries after it, so an
    /// entry reaches a connection once even when both send.
    pub cursor: u64,
    /// Set once a `reconnect` hint went out, so it goes out once.
    #[serde(default)]
    pub told_to_reconnect: bool,
    /// Incremented by every save, which requires the version it read: two pushes (or a push
    /// and a `subscribe`) racing on one connection cannot both claim the same entries.
    #[serde(default)]
    pub version: u64,
}

impl ConnectionRecord {
    pub fn expires_at(&self) -> i64 {
        self.connected_at + GATEWAY_LIFETIME_SECONDS
    }

    /// Whether it is time for the `reconnect` hint: within 5 minutes of the gateway's cap.
    pub fn due_for_reconnect(&self, now: i64) -> bool {
        !self.told_to_reconnect && now >= self.expires_at() - 300
    }

    fn item(&self) -> Result<Item, StoreError> {
        let shard = sweep_shard(&self.connection_id);
        Ok(Item::from_serializable(
            keyspace::realtime_connection(&self.account_id, &self.connection_id),
            self,
        )?
        .with_index(keyspace::realtime_connection_sweep_entry(
            shard,
            &self.connection_id,
        ))
        .expiring_at(self.expires_at()))
    }
}

/// The sweep index spreads connections over this many partitions.
pub const SWEEP_SHARDS: u32 = 16;

/// A connection's sweep shard (FNV-1a of its id: stable across processes).
fn sweep_shard(connection_id: &str) -> u32 {
    let hash = connection_id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % SWEEP_SHARDS
}

/// Every open connection of sweep shard `shard` (a Query of the index).
pub async fn in_shard(app: &App, shard: u32) -> Result<Vec<ConnectionRecord>, StoreError> {
    collect(
        app,
        keyspace::realtime_connections_in_shard(shard).with_limit(100),
    )
    .await
}

/// Stores a new connection, unless its account holds its tier's `limit` already (429).
pub async fn register(app: &App, record: &ConnectionRecord, limit: u32) -> Result<(), ApiError> {
    let now = orrery::clock::now_unix();
    let live = of_account(app, &record.account_id).await?;
    if live.iter().filter(|other| other.expires_at() > now).count() >= limit as usize {
        return Err(over_limit(limit));
    }
    let owner = Item::new(
        keyspace::realtime_connection_owner(&record.connection_id),
        serde_json::Map::from_iter([(
            "account_id".to_owned(),
            serde_json::Value::String(record.account_id.to_string()),
        )]),
    )
    .expiring_at(record.expires_at());
    app.store
        .transact(vec![
            WriteOp::Put {
                item: record.item()?,
                condition: None,
            },
            WriteOp::Put {
                item: owner,
                condition: None,
            },
        ])
        .await?;
    Ok(())
}

/// The connection `connection_id`, if it is still open.
pub async fn find(app: &App, connection_id: &str) -> Result<Option<ConnectionRecord>, StoreError> {
    let Some(owner) = app
        .store
        .get_consistent(&keyspace::realtime_connection_owner(connection_id))
        .await?
    else {
        return Ok(None);
    };
    let Some(account) = owner
        .attrs
        .get("account_id")
        .and_then(serde_json::Value::as_str)
        .and_then(AccountId::parse)
    else {
        return Ok(None);
    };
    app.store
        .get_consistent(&keyspace::realtime_connection(&account, connection_id))
        .await?
        .map(|item| item.parse())
        .transpose()
}

/// How often [`update`] re-reads a connection another writer changed meanwhile.
const UPDATE_ATTEMPTS: usize = 8;

/// Changes a connection with `change` (which says whether it changed anything) and saves it,
/// re-reading and re-applying when another writer saved first. `None`: the connection is gone.
pub async fn update(
    app: &App,
    record: &ConnectionRecord,
    mut change: impl FnMut(&mut ConnectionRecord) -> bool,
) -> Result<Option<ConnectionRecord>, StoreError> {
    let mut current = record.clone();
    for _ in 0..UPDATE_ATTEMPTS {
        let mut next = current.clone();
        if !change(&mut next) {
            return Ok(Some(next));
        }
        next.version = current.version + 1;
        let condition = Condition::equals("version", current.version);
        match app.store.put(next.item()?, Some(condition)).await {
            Ok(()) => return Ok(Some(next)),
            Err(StoreError::ConditionFailed) => {
                match app
                    .store
                    .get_consistent(&keyspace::realtime_connection(
                        &record.account_id,
                        &record.connection_id,
                    ))
                    .await?
                {
                    Some(item) => current = item.parse()?,
                    None => return Ok(None),
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Backend(format!(
        "connection {} stayed contended for {UPDATE_ATTEMPTS} attempts",
        record.connection_id
    )))
}

/// Forgets a connection (its `$disconnect`, or the gateway said it is gone).
pub async fn remove(app: &App, account: &AccountId, connection_id: &str) -> Result<(), StoreError> {
    app.store
        .transact(vec![
            WriteOp::Delete {
                key: keyspace::realtime_connection(account, connection_id),
                condition: None,
            },
            WriteOp::Delete {
                key: keyspace::realtime_connection_owner(connection_id),
                condition: None,
            },
        ])
        .await
}

/// The account's open connections (a Query of its partition).
pub async fn of_account(
    app: &App,
    account: &AccountId,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    collect(app, keyspace::realtime_connections(account).with_limit(100)).await
}

async fn collect(
    app: &App,
    mut query: orrery::store::Query,
) -> Result<Vec<ConnectionRecord>, StoreError> {
    let mut records = Vec::new();
    loop {
        let page = app.store.query(query.clone()).await?;
        for item in &page.items {
            match item.parse::<ConnectionRecord>() {
                Ok(record) => records.push(record),
                Err(err) => tracing::error!(error = %err, "undecodable connection record"),
            }
        }
        match page.next {
            Some(next) => query = query.after(Some(next)),
            None => return Ok(records),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn local_slots_hold_the_limit_and_free_on_drop() {
        let registry = LocalConnections::default();
        let account = AccountId::generate();
        let first = registry.open(&account, 2).unwrap();
        let _second = registry.open(&account, 2).unwrap();
        let refused = registry.open(&account, 2).err().unwrap();
        assert!(matches!(refused, ApiError::RateLimited { .. }));
        // Another account has its own count.
        assert!(registry.open(&AccountId::generate(), 2).is_ok());
        drop(first);
        assert_eq!(registry.count(&account), 1);
        assert!(registry.open(&account, 2).is_ok());
    }
}
