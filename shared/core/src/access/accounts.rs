//! Accounts: the owner of keys and resources, with a tier. Created and re-tiered by the admin API
//! (the hook a billing system calls).
//!
//! Storage: `ACCT#<id>` / `ACCOUNT` in the entities table, projected into `gsi1` as
//! `ACCOUNTS` / `<id>` so the admin list is one paginated query in creation order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::tiers::Tier;
use crate::clock;
use crate::store::{
    Condition, Cursor, IndexKey, Item, Key, Query, Store, StoreError, Table, WriteOp, keyspace,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Every key of a suspended account is refused (403).
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: crate::ids::AccountId,
    pub name: String,
    pub tier: Tier,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every update (optimistic locking, see [`save`]).
    pub version: u64,
    /// Count its metered requests on blocks of its daily counters (`access::hot`): set for an
    /// account that sustains more requests a second than one counter item takes, by the admin
    /// API or on the first throttled counter write.
    #[serde(default)]
    pub hot_quota: bool,
    /// Publish the per-request activity events (`chart.calculated`, `reading.generated`) to the
    /// event log and webhooks. Off for new accounts: logging an event costs more than the request
    /// that raised it (docs/cost.md), so it is a setting the operator turns on for an account.
    /// An account stored before the setting existed reads as on, as it then behaved: its webhooks
    /// and readers keep their events until the operator turns them off.
    #[serde(default = "as_before_the_setting")]
    pub activity_events: bool,
}

/// `activity_events` of an account stored before the setting existed: every event was published.
fn as_before_the_setting() -> bool {
    true
}

pub fn account_key(id: &crate::ids::AccountId) -> Key {
    keyspace::account(id)
}

const LIST_PARTITION: &str = keyspace::ACCOUNTS_INDEX;

impl Account {
    pub fn new(name: &str, tier: Tier) -> Self {
        let now = clock::now();
        Self {
            id: crate::ids::AccountId::generate(),
            name: name.trim().to_owned(),
            tier,
            status: AccountStatus::Active,
            created_at: now,
            updated_at: now,
            version: 0,
            hot_quota: false,
            activity_events: false,
        }
    }

    pub fn to_item(&self) -> Result<Item, StoreError> {
        Ok(Item::from_serializable(account_key(&self.id), self)?
            .with_index(IndexKey::new(LIST_PARTITION, self.id.clone())))
    }

    pub fn create_write(&self) -> Result<WriteOp, StoreError> {
        Ok(WriteOp::Put {
            item: self.to_item()?,
            condition: Some(Condition::NotExists),
        })
    }
}

pub async fn get(
    store: &dyn Store,
    id: &crate::ids::AccountId,
) -> Result<Option<Account>, StoreError> {
    store
        .get(&account_key(id))
        .await?
        .map(|item| item.parse())
        .transpose()
}

/// Replaces the account if it still exists.
/// Stores an update of `account` (as read, changed in memory) if nobody changed it since it was
/// read; returns the stored account. `ConditionFailed` means a concurrent change (or deletion).
pub async fn save(store: &dyn Store, account: &Account) -> Result<Account, StoreError> {
    let mut updated = account.clone();
    updated.version += 1;
    store
        .put(
            updated.to_item()?,
            Some(Condition::equals("version", account.version)),
        )
        .await?;
    Ok(updated)
}

/// Every account, newest first: the list index read page by page (operators' reports and the
/// daily roll-up; never a Scan).
pub async fn every(store: &dyn Store) -> Result<Vec<Account>, StoreError> {
    let mut everyone = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = list(store, 100, cursor).await?;
        everyone.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(everyone),
        }
    }
}

pub async fn list(
    store: &dyn Store,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<Account>, Option<Cursor>), StoreError> {
    store
        .query(
            Query::index(Table::Entities, LIST_PARTITION)
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_account_stored_before_activity_events_keeps_them_and_a_new_one_has_them_off() {
        let new = Account::new("Acme", Tier::Basic);
        assert!(!new.activity_events);
        let mut stored = serde_json::to_value(&new).unwrap();
        stored.as_object_mut().unwrap().remove("activity_events");
        let older: Account = serde_json::from_value(stored).unwrap();
        assert!(older.activity_events);
    }
}
