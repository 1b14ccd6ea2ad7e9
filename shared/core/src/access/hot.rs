//! Quota for hot accounts: one DynamoDB item takes at most 1,000 write units a second, so an
//! account metered at thousands of requests a second cannot count every request on its one
//! daily counter. For an account marked hot (`hot_quota`: by the admin API, or by this code
//! when its counter write is throttled), a container takes a **block** of units from the day's
//! counter in one write (`quota::allocation`: `ADD count :n, allocated :n` with the ceiling
//! `count <= limit`, so the blocks and the counter's own admissions never pass the limit
//! together) and then counts each request on its block (`ADD count :1` with the ceiling
//! `count <= size`), with the same per-key and per-endpoint bookkeeping as the counter.
//!
//! - Exact: the counter's ceiling bounds every unit handed out, a block's bounds every unit
//!   used from it, and a request is refused only when the counter has nothing left to hand out
//!   and a strongly consistent sweep of the day's blocks finds none with room: the units used
//!   then equal the limit. A day's usage is the counter's own admissions plus every block's
//!   (`quota::units_used` on each item).
//! - Spread: each block is written by the container that took it, so the request rate of one
//!   item is one container's, and the counter sees one write per block.
//! - What it costs: a container that stops leaves the rest of its block unused until the
//!   counter is spent and the sweep finds it (never lost: it is found). The `RateLimit`
//!   headers of a hot account are an estimate: the counter's count when this container last
//!   took a block, less the units left in its own open blocks (other containers' unused units
//!   count as used until they are used).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};

use super::quota::{self, Window};
use super::tiers::QuotaClass;
use crate::App;
use crate::ids::AccountId;
use crate::store::{Key, StoreError, keyspace};

/// One block this container may count on.
#[derive(Debug, Clone)]
struct Block {
    id: String,
    size: i64,
    /// Its count after this container's last write to it.
    used: i64,
}

#[derive(Debug, Default)]
struct Pool {
    open: Vec<Block>,
    /// The counter's count after this container's last allocation.
    counter_count: i64,
    next: usize,
}

impl Pool {
    /// The units used today as far as this container knows (see the module docs).
    fn estimate(&self) -> i64 {
        let unused: i64 = self.open.iter().map(|b| b.size - b.used).sum();
        (self.counter_count - unused).max(0)
    }
}

/// This container's open blocks, per account, day and class.
#[derive(Debug, Default)]
pub struct HotQuota {
    pools: Mutex<HashMap<(AccountId, NaiveDate, QuotaClass), Pool>>,
}

/// A unit taken from a block: the item it was counted on and the usage estimate.
#[derive(Debug)]
pub struct Taken {
    pub counter: Key,
    pub used: i64,
}

/// How many times one admission may find a block full or the counter raced before it gives up
/// with an error (each round is one write or one sweep; near the limit a few rounds are normal).
const MAX_ROUNDS: usize = 64;
/// How often taking a block from a throttled counter is tried again, and the backoff step.
const MAX_THROTTLED_ALLOCATIONS: u32 = 10;
const ALLOCATION_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

impl HotQuota {
    fn with_pool<R>(
        &self,
        slot: &(AccountId, NaiveDate, QuotaClass),
        f: impl FnOnce(&mut Pool) -> R,
    ) -> R {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Yesterday's pools are of no use: keep the map to the days in use.
        pools.retain(|(_, day, _), _| *day >= slot.1);
        f(pools.entry(slot.clone()).or_default())
    }

    /// Takes one unit of `class` for a hot account from a block. `Ok(None)`: the day's quota
    /// is used up.
    #[allow(clippy::too_many_arguments)]
    pub async fn take(
        &self,
        app: &App,
        account: &AccountId,
        key_id: &crate::ids::KeyId,
        class: QuotaClass,
        limit: u32,
        window: &Window,
        now: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Option<Taken>, StoreError> {
        let slot = (account.clone(), window.day, class);
        for _ in 0..MAX_ROUNDS {
            let chosen = self.with_pool(&slot, |pool| {
                if pool.open.is_empty() {
                    return None;
                }
                pool.next = pool.next.wrapping_add(1);
                Some(pool.open[pool.next % pool.open.len()].clone())
            });
            let Some(block) = chosen else {
                if !self.refill(app, &slot, limit, window).await? {
                    return Ok(None);
                }
                continue;
            };
            let write = quota::block_admission(
                account, key_id, class, window, now, &block.id, block.size, endpoint,
            );
            let counter = write.key.clone();
            match app.store.increment(write).await {
                Ok(used) => {
                    let estimate = self.with_pool(&slot, |pool| {
                        if let Some(open) = pool.open.iter_mut().find(|b| b.id == block.id) {
                            open.used = open.used.max(used);
                        }
                        pool.open.retain(|b| b.used < b.size);
                        pool.estimate()
                    });
                    return Ok(Some(Taken {
                        counter,
                        used: estimate,
                    }));
                }
                Err(StoreError::LimitExceeded { .. }) => {
                    self.with_pool(&slot, |pool| pool.open.retain(|b| b.id != block.id));
                }
                // This container's rate is more than one block takes: spread over another.
                Err(StoreError::Throttled(_)) => {
                    if !self.refill(app, &slot, limit, window).await? {
                        return Ok(None);
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Backend(format!(
            "no quota block settled after {MAX_ROUNDS} rounds"
        )))
    }

    /// Opens a block for this container: a new one from the counter, or, when the counter has
    /// nothing left, the blocks of others that still have room. `false`: nothing is left.
    async fn refill(
        &self,
        app: &App,
        slot: &(AccountId, NaiveDate, QuotaClass),
        limit: u32,
        window: &Window,
    ) -> Result<bool, StoreError> {
        let (account, _, class) = slot;
        let mut units = quota::block_units(limit);
        let mut throttled = 0u32;
        loop {
            match app
                .store
                .increment(quota::allocation(account, *class, limit, window, units))
                .await
            {
                Ok(count) => {
                    let id = crate::ids::new_id("b").to_ascii_lowercase();
                    let item = quota::block_item(account, *class, window, &id, units);
                    if let Err(err) = app.store.put(item, None).await {
                        // The units were taken for a block that was not written: hand them back.
                        let back = quota::allocation(account, *class, limit, window, units);
                        let _ = app
                            .store
                            .increment(crate::store::Increment {
                                by: -back.by,
                                ceiling: None,
                                also_add: vec![(quota::ALLOCATED.into(), -back.by)],
                                ..back
                            })
                            .await;
                        return Err(err);
                    }
                    self.with_pool(slot, |pool| {
                        pool.counter_count = count;
                        pool.open.push(Block {
                            id,
                            size: i64::from(units),
                            used: 0,
                        });
                    });
                    return Ok(true);
                }
                Err(StoreError::LimitExceeded { current, ceiling }) if current < ceiling => {
                    // Less than a block is left: take exactly what is.
                    units = u32::try_from(ceiling - current).unwrap_or(1);
                }
                Err(StoreError::LimitExceeded { .. }) => return self.sweep(app, slot).await,
                // The counter is still busy with requests counted on it directly (containers
                // that have not yet seen the account marked hot): a block is worth waiting for.
                Err(StoreError::Throttled(_)) if throttled < MAX_THROTTLED_ALLOCATIONS => {
                    throttled += 1;
                    tokio::time::sleep(ALLOCATION_BACKOFF * throttled).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Every block of the day with room left, read strongly (others' unused units included).
    async fn sweep(
        &self,
        app: &App,
        slot: &(AccountId, NaiveDate, QuotaClass),
    ) -> Result<bool, StoreError> {
        let (account, day, class) = slot;
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = app
                .store
                .query(
                    keyspace::quota_blocks(account, *day, class.as_str())
                        .consistent()
                        .with_limit(100)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let number = |name: &str| item.attrs.get(name).and_then(serde_json::Value::as_i64);
                let (Some(size), used) = (number("size"), number("count").unwrap_or(0)) else {
                    continue;
                };
                let Some(id) = item.key.sk.rsplit('#').next() else {
                    continue;
                };
                if used < size {
                    found.push(Block {
                        id: id.to_owned(),
                        size,
                        used,
                    });
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let any = !found.is_empty();
        self.with_pool(slot, |pool| pool.open = found);
        Ok(any)
    }
}
