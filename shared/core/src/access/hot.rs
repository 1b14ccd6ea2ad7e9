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
//!   count as used until they are used); a sweep counts exactly, and only an exact count fires
//!   a `usage.threshold` event. A block belongs to the limit it was taken under: after a tier
//!   change the day's older blocks are left unused (never more than the new limit admitted).

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
    /// The counter's count (its own admissions and every unit handed out) as last seen.
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

/// A pool serves one account, day, class and limit.
type Slot = (AccountId, NaiveDate, QuotaClass, u32);

/// This container's open blocks, per account, day, class and limit.
#[derive(Debug, Default)]
pub struct HotQuota {
    pools: Mutex<HashMap<Slot, Pool>>,
}

/// A unit taken: the item it was counted on (the counter, or a block of it), and the units used
/// today, counted exactly (`exact`: always on the counter, after a sweep on a block) or
/// estimated.
#[derive(Debug)]
pub struct Taken {
    pub counter: Key,
    pub used: i64,
    pub exact: bool,
}

/// How many times one admission may refill its pool (take a block, or sweep for blocks with
/// room) before it gives up with an error. A full block only shrinks the pool, so it is not
/// counted; near the limit, racing containers may empty a swept pool a few times.
const MAX_REFILLS: usize = 8;
/// How often taking a block from a busy counter is tried, and the backoff: doubling from the
/// first step up to the cap, ~1.9 s in all — about as long as containers that have not yet heard
/// the account is hot keep the counter busy.
const MAX_ALLOCATION_TRIES: u32 = 10;
const ALLOCATION_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);
const ALLOCATION_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(320);

/// What a refill found.
enum Refill {
    /// A block was taken or blocks with room were found (with the exact count, after a sweep).
    Opened { exact_used: Option<i64> },
    /// The day's units under this limit are all used.
    Spent,
}

impl HotQuota {
    fn with_pool<R>(&self, slot: &Slot, f: impl FnOnce(&mut Pool) -> R) -> R {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Yesterday's pools are of no use: keep the map to the days in use.
        pools.retain(|(_, day, _, _), _| *day >= slot.1);
        f(pools.entry(slot.clone()).or_default())
    }

    /// Takes one unit of `class` for a hot account from a block: `None` when the day's quota
    /// is used up. `counter_spent`: the counter just refused a
    /// unit, so look for blocks with room before asking it for a block.
    #[allow(clippy::too_many_arguments)]
    pub async fn take(
        &self,
        counter_spent: bool,
        app: &App,
        account: &AccountId,
        key_id: &crate::ids::KeyId,
        class: QuotaClass,
        limit: u32,
        window: &Window,
        now: DateTime<Utc>,
        endpoint: Option<&str>,
    ) -> Result<Option<Taken>, StoreError> {
        let slot = (account.clone(), window.day, class, limit);
        let mut refills = 0;
        let mut exact = None;
        let mut sweep_first = counter_spent;
        loop {
            let chosen = self.with_pool(&slot, |pool| {
                if pool.open.is_empty() {
                    return None;
                }
                pool.next = pool.next.wrapping_add(1);
                Some(pool.open[pool.next % pool.open.len()].clone())
            });
            let Some(block) = chosen else {
                refills += 1;
                if refills > MAX_REFILLS {
                    return Err(StoreError::Backend(format!(
                        "no quota block settled after {MAX_REFILLS} refills"
                    )));
                }
                let refilled = if std::mem::take(&mut sweep_first) {
                    self.sweep(app, &slot).await?
                } else {
                    self.refill(app, &slot, window).await?
                };
                match refilled {
                    Refill::Opened { exact_used } => exact = exact_used.or(exact),
                    Refill::Spent => return Ok(None),
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
                    return Ok(Some(match exact {
                        // Counted a moment ago, before this unit.
                        Some(counted) => Taken {
                            counter,
                            used: counted + 1,
                            exact: true,
                        },
                        None => Taken {
                            counter,
                            used: estimate,
                            exact: false,
                        },
                    }));
                }
                Err(StoreError::LimitExceeded { .. }) => {
                    self.with_pool(&slot, |pool| pool.open.retain(|b| b.id != block.id));
                }
                // This container's rate is more than one block takes: spread over another.
                Err(StoreError::Throttled(_)) => {
                    refills += 1;
                    match self.refill(app, &slot, window).await? {
                        Refill::Opened { exact_used } => exact = exact_used.or(exact),
                        Refill::Spent => return Ok(None),
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Opens a block for this container: a new one from the counter, or, when the counter has
    /// nothing left to hand out, the blocks (of this limit) that still have room.
    async fn refill(&self, app: &App, slot: &Slot, window: &Window) -> Result<Refill, StoreError> {
        let (account, _, class, limit) = slot;
        let mut units = quota::block_units(*limit);
        for attempt in 1..=MAX_ALLOCATION_TRIES {
            match app
                .store
                .increment(quota::allocation(account, *class, *limit, window, units))
                .await
            {
                Ok(count) => {
                    let id = crate::ids::new_id("b").to_ascii_lowercase();
                    let item = quota::block_item(account, *class, window, &id, units, *limit);
                    // A failed write may still have been applied: the units stay allocated
                    // (at worst one block unused today), never handed out twice.
                    app.store.put(item, None).await?;
                    self.with_pool(slot, |pool| {
                        pool.counter_count = count;
                        pool.open.push(Block {
                            id,
                            size: i64::from(units),
                            used: 0,
                        });
                    });
                    return Ok(Refill::Opened { exact_used: None });
                }
                Err(StoreError::LimitExceeded { current, ceiling }) if current < ceiling => {
                    // Less than a block is left: take exactly what is.
                    units = u32::try_from(ceiling - current).unwrap_or(1);
                }
                Err(StoreError::LimitExceeded { current, .. }) => {
                    self.with_pool(slot, |pool| pool.counter_count = current);
                    return self.sweep(app, slot).await;
                }
                // The counter is still busy with requests counted on it directly (containers
                // that have not yet seen the account marked hot): a block is worth waiting for.
                Err(StoreError::Throttled(_)) if attempt < MAX_ALLOCATION_TRIES => {
                    let backoff = ALLOCATION_BACKOFF * 2u32.pow((attempt - 1).min(8));
                    tokio::time::sleep(backoff.min(ALLOCATION_BACKOFF_CAP)).await;
                }
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Backend(
            "the quota counter did not hand out a block".into(),
        ))
    }

    /// Reads the day's counter and every block of it strongly: the exact units used, and the
    /// blocks taken under this limit that still have room.
    async fn sweep(&self, app: &App, slot: &Slot) -> Result<Refill, StoreError> {
        let (account, day, class, limit) = slot;
        let mut found = Vec::new();
        let mut used = 0;
        let mut cursor = None;
        loop {
            let page = app
                .store
                .query(
                    keyspace::quota_counter_and_blocks(account, *day, class.as_str())
                        .consistent()
                        .with_limit(100)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                if keyspace::parse_quota_counter(&item.key.sk) != Some((*day, class.as_str())) {
                    continue;
                }
                used += quota::units_used(item);
                let number = |name: &str| item.attrs.get(name).and_then(serde_json::Value::as_i64);
                let (Some(size), Some(taken_under)) = (number("size"), number("limit")) else {
                    continue;
                };
                let count = number("count").unwrap_or(0);
                if taken_under == i64::from(*limit)
                    && count < size
                    && let Some(id) = item.key.sk.rsplit('#').next()
                {
                    found.push(Block {
                        id: id.to_owned(),
                        size,
                        used: count,
                    });
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if found.is_empty() || used >= i64::from(*limit) {
            return Ok(Refill::Spent);
        }
        self.with_pool(slot, |pool| {
            // Start at a different block in every container.
            pool.next = usize::try_from(crate::clock::now_unix()).unwrap_or(0) % found.len();
            pool.open = found;
        });
        Ok(Refill::Opened {
            exact_used: Some(used),
        })
    }
}
