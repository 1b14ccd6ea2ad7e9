//! The two-level cache.
//!
//! - **L1**: in-process (`moka`, TinyLFU admission + LRU eviction), bounded by bytes *and* entries
//!   (every entry weighs at least `max_bytes / max_entries`, so no more than `max_entries` fit),
//!   per-entry TTL.
//! - **L2**: optional, shared by every container, over the Redis protocol (ElastiCache/Valkey on
//!   AWS, `redis-server` locally). Without it the cache is L1 only — a supported configuration.
//!
//! Keys live in **namespaces** (`keys`, `accounts`, `charts`, …). Invalidation is by key, or by
//! namespace (the "pattern" `namespace/*`): a namespace has a generation number that is part of
//! every key; bumping it (in L2, shared) makes all older entries unreachable everywhere. Each
//! container re-reads generations from L2 at most every `staleness / 2`, and mutable entries never
//! live in L1 longer than `staleness`, so **any invalidation reaches every container within the
//! staleness bound** (default 30 s) and the container that invalidates sees it at once.
//! L2 failures are logged and counted, and behave as misses: the cache never fails a request.
//!
//! With a [`board::GenerationBoard`] (every `App` has one, on its own store) generations come
//! from the store instead, re-read at most once per `sync_interval` (default 1 s), and
//! invalidating a *mutable* key bumps its namespace there: a revocation, a tier change, a
//! webhook change or an admin invalidation reaches every container of every function within
//! one sync interval, with or without L2.

pub mod board;
mod l2;
mod stats;

pub use l2::{REDIS_RETRY_AFTER, RedisCache, SharedCache, SharedCacheError};
use stats::LevelCounters;
pub use stats::{CacheStats, LevelStats};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use moka::Expiry;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A cache namespace and how its entries behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespace {
    pub name: &'static str,
    pub ttl: Duration,
    /// Immutable entries (keyed by content hash) may outlive the staleness bound in L1.
    pub immutable: bool,
}

/// Key verification: hash of a presented API key → its record.
pub const KEYS: Namespace = Namespace {
    name: "keys",
    ttl: Duration::from_secs(300),
    immutable: false,
};
/// Account id → tier and status.
pub const ACCOUNTS: Namespace = Namespace {
    name: "accounts",
    ttl: Duration::from_secs(300),
    immutable: false,
};
/// Account × class × day that is known to be over quota.
/// The mark holds the limit it was reached at, so a tier change is never answered wrongly from
/// it; it lives until the quota resets (midnight UTC) in both levels.
pub const EXHAUSTED: Namespace = Namespace {
    name: "exhausted",
    ttl: Duration::from_secs(86_400),
    immutable: true,
};
/// Account × class × day × percentage whose `usage.threshold` event has been sent: remembered
/// until the day ends, so the check costs no store call once the threshold is behind.
pub const THRESHOLDS: Namespace = Namespace {
    name: "thresholds",
    ttl: Duration::from_secs(86_400),
    immutable: true,
};
/// Analytics reports (latency, summary) by account and query: a report may be this old. Usage
/// series are never cached (they are read exactly, to agree with the quota headers).
pub const REPORTS: Namespace = Namespace {
    name: "reports",
    ttl: Duration::from_secs(5),
    immutable: false,
};
/// Chart results by canonical input hash.
pub const CHARTS: Namespace = Namespace {
    name: "charts",
    ttl: Duration::from_secs(86_400),
    immutable: true,
};
/// An account's webhook endpoints, cached for fan-out (invalidated when they change).
pub const SUBSCRIPTIONS: Namespace = Namespace {
    name: "subscriptions",
    ttl: Duration::from_secs(300),
    immutable: false,
};

/// Every namespace: what warming recognises and what the admin API can invalidate.
pub const NAMESPACES: [Namespace; 6] = [KEYS, ACCOUNTS, EXHAUSTED, CHARTS, SUBSCRIPTIONS, REPORTS];

/// The namespace called `name`.
pub fn namespace(name: &str) -> Option<Namespace> {
    NAMESPACES.into_iter().find(|ns| ns.name == name)
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub max_entries: u64,
    pub max_bytes: u64,
    /// The longest a mutable entry can be served after it was invalidated elsewhere.
    pub staleness: Duration,
    /// How many hot keys L2 remembers for warming.
    pub hot_set_size: usize,
    /// How often a container re-reads the generation board: the bound on how long an
    /// invalidation takes to reach every container.
    pub sync_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_entries: 50_000,
            max_bytes: 64 * 1024 * 1024,
            staleness: Duration::from_secs(30),
            hot_set_size: 1000,
            sync_interval: Duration::from_secs(1),
        }
    }
}

/// What L1 holds: the value's JSON text and its time to live. Text, not bytes: every entry is
/// JSON written by serde_json or read back through it, so a hit needs no UTF-8 check.
#[derive(Clone)]
struct Entry {
    json: Arc<str>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        entry: &Entry,
        _created: Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// What L2 stores: the value with its TTL, so warming can put it back into L1 correctly.
#[derive(Serialize, Deserialize)]
struct Stored {
    ttl_ms: u64,
    immutable: bool,
    /// The value's JSON exactly as serialised (field order kept).
    value: Box<serde_json::value::RawValue>,
}

pub struct TwoLevelCache {
    l1: moka::future::Cache<String, Entry>,
    l2: Option<Arc<dyn SharedCache>>,
    config: CacheConfig,
    /// Namespace → (generation, when it was read from L2).
    generations: Mutex<HashMap<&'static str, (u64, Instant)>>,
    l1_counters: Arc<LevelCounters>,
    l2_counters: LevelCounters,
    /// When EMF metrics were last printed (Unix ms).
    last_emitted_ms: std::sync::atomic::AtomicI64,
    board: Option<Arc<dyn board::GenerationBoard>>,
    /// When the last board read started (a read that started earlier saw less).
    board_read_at: Mutex<Option<Instant>>,
    /// One board read at a time per container; the others wait for its answer.
    board_refresh: tokio::sync::Mutex<()>,
}

impl TwoLevelCache {
    pub fn new(config: CacheConfig, l2: Option<Arc<dyn SharedCache>>) -> Self {
        let floor = (config.max_bytes / config.max_entries.max(1)).max(1);
        let l1_counters = Arc::new(LevelCounters::default());
        let evictions = l1_counters.clone();
        let l1 = moka::future::Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(move |key: &String, entry: &Entry| {
                let bytes = (key.len() + entry.json.len()) as u64;
                u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .eviction_listener(move |_key, _value, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    evictions.evictions.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            l1,
            l2,
            config,
            generations: Mutex::new(HashMap::new()),
            l1_counters,
            l2_counters: LevelCounters::default(),
            last_emitted_ms: std::sync::atomic::AtomicI64::new(crate::clock::now_millis()),
            board: None,
            board_read_at: Mutex::new(None),
            board_refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Takes namespace generations from `board` (see the module docs).
    pub fn with_board(mut self, board: Arc<dyn board::GenerationBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// Re-reads the board if the last read started more than a sync interval ago.
    async fn refresh_board(&self, board: &dyn board::GenerationBoard) {
        let interval = self.config.sync_interval;
        let fresh = |at: &Mutex<Option<Instant>>| {
            at.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .is_some_and(|read| read.elapsed() < interval)
        };
        if fresh(&self.board_read_at) {
            return;
        }
        let _single = self.board_refresh.lock().await;
        if fresh(&self.board_read_at) {
            return;
        }
        let started = Instant::now();
        match board.read().await {
            Ok(remote) => {
                let mut generations = self.lock_generations();
                for namespace in NAMESPACES {
                    let shared = remote.get(namespace.name).copied().unwrap_or(0);
                    let entry = generations.entry(namespace.name).or_insert((0, started));
                    // Never backwards: a local bump whose write failed stays in force here.
                    *entry = (entry.0.max(shared), started);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the cache generations; using the last known");
            }
        }
        *self
            .board_read_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(started);
    }

    /// Waits until every container must have seen an invalidation made before this call: a
    /// writer calls it before answering when a later request elsewhere must not act on the old
    /// value (a new webhook endpoint receives every event published after its creation).
    pub async fn settle(&self) {
        if self.board.is_some() {
            tokio::time::sleep(self.config.sync_interval + Duration::from_millis(20)).await;
        }
    }

    /// The cached value, or `load`'s answer cached under the generation read *before* loading:
    /// a value read just before an invalidation is then stored where nobody looks any more.
    /// `Ok(None)` from `load` is answered and not cached.
    pub async fn load<T, E, F>(
        &self,
        namespace: &Namespace,
        key: &str,
        load: F,
    ) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: AsyncFnOnce() -> Result<Option<T>, E>,
    {
        let generation = self.generation(namespace).await;
        let full = Self::full_key(namespace, generation, key);
        if let Some(json) = self.lookup(namespace, &full).await
            && let Ok(value) = serde_json::from_str(&json)
        {
            return Ok(Some(value));
        }
        let value = load().await?;
        if let Some(value) = &value
            && let Ok(json) = serde_json::to_string(value)
        {
            self.store_at(namespace, full, Arc::from(json), namespace.ttl)
                .await;
        }
        Ok(value)
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    pub fn has_shared_level(&self) -> bool {
        self.l2.is_some()
    }

    /// The namespace's current generation: local, refreshed from L2 at most every staleness/2.
    async fn generation(&self, namespace: &Namespace) -> u64 {
        if let Some(board) = &self.board {
            self.refresh_board(board.as_ref()).await;
            return self
                .lock_generations()
                .get(namespace.name)
                .map_or(0, |(generation, _)| *generation);
        }
        let refresh_after = self.config.staleness / 2;
        let cached = self.lock_generations().get(namespace.name).copied();
        match (&self.l2, cached) {
            (_, Some((generation, read))) if read.elapsed() < refresh_after => generation,
            (None, cached) => cached.map_or(0, |(generation, _)| generation),
            (Some(l2), cached) => match l2.generation(namespace.name).await {
                Ok(generation) => {
                    // The shared value wins, even backwards (a restarted L2), so every
                    // container agrees on the current generation.
                    self.lock_generations()
                        .insert(namespace.name, (generation, Instant::now()));
                    generation
                }
                Err(err) => {
                    self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "cannot read a cache generation; using the last known");
                    cached.map_or(0, |(generation, _)| generation)
                }
            },
        }
    }

    fn lock_generations(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (u64, Instant)>> {
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn full_key(namespace: &Namespace, generation: u64, key: &str) -> String {
        format!("{}/{generation}/{key}", namespace.name)
    }

    fn l1_ttl(&self, namespace: &Namespace, ttl: Duration) -> Duration {
        if namespace.immutable {
            ttl
        } else {
            ttl.min(self.config.staleness)
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, namespace: &Namespace, key: &str) -> Option<T> {
        let json = self.get_json(namespace, key).await?;
        serde_json::from_str(&json).ok()
    }

    /// An entry's JSON text exactly as stored, without deserialising it: for values that are
    /// served verbatim (a cached chart is ~14 KB that would otherwise be parsed on every hit).
    pub async fn get_json(&self, namespace: &Namespace, key: &str) -> Option<Arc<str>> {
        let full = Self::full_key(namespace, self.generation(namespace).await, key);
        self.lookup(namespace, &full).await
    }

    /// L1, then L2, at one full key.
    async fn lookup(&self, namespace: &Namespace, full: &str) -> Option<Arc<str>> {
        if let Some(entry) = self.l1.get(full).await {
            self.l1_counters.hits.fetch_add(1, Ordering::Relaxed);
            return Some(entry.json);
        }
        self.l1_counters.misses.fetch_add(1, Ordering::Relaxed);
        let l2 = self.l2.as_ref()?;
        match l2.get(full).await {
            Ok(Some(bytes)) => {
                self.l2_counters.hits.fetch_add(1, Ordering::Relaxed);
                let stored: Stored = serde_json::from_slice(&bytes).ok()?;
                let value: Arc<str> = Arc::from(stored.value.get());
                self.insert_l1(
                    namespace,
                    full.to_owned(),
                    value.clone(),
                    Duration::from_millis(stored.ttl_ms),
                )
                .await;
                if let Err(err) = l2.touch_hot(full, self.config.hot_set_size).await {
                    tracing::debug!(error = %err, "hot set not updated");
                }
                Some(value)
            }
            Ok(None) => {
                self.l2_counters.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(err) => {
                self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "shared cache read failed; treated as a miss");
                None
            }
        }
    }

    async fn insert_l1(&self, namespace: &Namespace, full: String, json: Arc<str>, ttl: Duration) {
        self.l1
            .insert(
                full,
                Entry {
                    json,
                    ttl: self.l1_ttl(namespace, ttl),
                },
            )
            .await;
    }

    /// Stores in both levels with the namespace's TTL.
    pub async fn put<T: Serialize>(&self, namespace: &Namespace, key: &str, value: &T) {
        self.put_with_ttl(namespace, key, value, namespace.ttl)
            .await;
    }

    pub async fn put_with_ttl<T: Serialize>(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &T,
        ttl: Duration,
    ) {
        let Ok(json) = serde_json::to_string(value) else {
            return;
        };
        self.put_json_with_ttl(namespace, key, Arc::from(json), ttl)
            .await;
    }

    /// Stores JSON text as it is (field order and all), with the namespace's TTL. `json` must be
    /// valid JSON (e.g. produced by serde_json); L1 shares it without a copy.
    pub async fn put_json(&self, namespace: &Namespace, key: &str, json: Arc<str>) {
        self.put_json_with_ttl(namespace, key, json, namespace.ttl)
            .await;
    }

    async fn put_json_with_ttl(
        &self,
        namespace: &Namespace,
        key: &str,
        json: Arc<str>,
        ttl: Duration,
    ) {
        let full = Self::full_key(namespace, self.generation(namespace).await, key);
        self.store_at(namespace, full, json, ttl).await;
    }

    async fn store_at(&self, namespace: &Namespace, full: String, json: Arc<str>, ttl: Duration) {
        if let Some(l2) = &self.l2 {
            // Mutable entries live in L2 no longer than the bound either: a container that read
            // a value just before an invalidation and stores it just after cannot keep it alive.
            let l2_ttl = if namespace.immutable {
                ttl
            } else {
                ttl.min(self.config.staleness)
            };
            // The `Stored` envelope, written around the text instead of re-serialising it.
            let bytes = format!(
                r#"{{"ttl_ms":{},"immutable":{},"value":{json}}}"#,
                l2_ttl.as_millis(),
                namespace.immutable
            );
            if let Err(err) = l2.set(&full, bytes.as_bytes(), l2_ttl).await {
                self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "shared cache write failed");
            }
        }
        self.insert_l1(namespace, full, json, ttl).await;
    }

    /// Removes one key from both levels. Other containers' L1 copies age out within the
    /// staleness bound; with a board, a mutable key's whole namespace is invalidated instead,
    /// which reaches every container within the sync interval.
    pub async fn invalidate(&self, namespace: &Namespace, key: &str) {
        if self.board.is_some() && !namespace.immutable {
            return self.invalidate_namespace(namespace).await;
        }
        let full = Self::full_key(namespace, self.generation(namespace).await, key);
        self.l1.invalidate(&full).await;
        if let Some(l2) = &self.l2
            && let Err(err) = l2.delete(&full).await
        {
            self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %err, "shared cache delete failed");
        }
    }

    /// Invalidates every key of a namespace, here at once and everywhere within the bound.
    pub async fn invalidate_namespace(&self, namespace: &Namespace) {
        let local = self
            .lock_generations()
            .get(namespace.name)
            .map_or(0, |(g, _)| *g);
        let next = match (&self.board, &self.l2) {
            (Some(board), _) => match board.bump(namespace.name).await {
                Ok(shared) => shared.max(local + 1),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot bump a shared generation; invalidating locally");
                    local + 1
                }
            },
            (None, Some(l2)) => match l2.bump_generation(namespace.name).await {
                Ok(shared) => shared.max(local + 1),
                Err(err) => {
                    self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "cannot bump a shared generation; invalidating locally");
                    local + 1
                }
            },
            (None, None) => local + 1,
        };
        self.lock_generations()
            .insert(namespace.name, (next, Instant::now()));
        let prefix = format!("{}/", namespace.name);
        // Unreachable already; dropping them frees the memory now.
        let _ = self
            .l1
            .invalidate_entries_if(move |key, _| key.starts_with(&prefix));
    }

    /// Loads L2's hottest entries into L1 (cold start, or the admin endpoint). Returns how many.
    pub async fn warm(&self, count: usize) -> usize {
        let Some(l2) = &self.l2 else { return 0 };
        let keys = match l2.hottest(count).await {
            Ok(keys) => keys,
            Err(err) => {
                self.l2_counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "cannot read the hot set");
                return 0;
            }
        };
        let mut warmed = 0;
        for full in keys {
            let Some(namespace) = NAMESPACES
                .into_iter()
                .find(|ns| full.starts_with(&format!("{}/", ns.name)))
            else {
                continue;
            };
            let Some(generation) = full.split('/').nth(1).and_then(|g| g.parse::<u64>().ok())
            else {
                continue;
            };
            if generation != self.generation(&namespace).await {
                continue;
            }
            if let Ok(Some(bytes)) = l2.get(&full).await
                && let Ok(stored) = serde_json::from_slice::<Stored>(&bytes)
            {
                let ttl = Duration::from_millis(stored.ttl_ms);
                self.insert_l1(&namespace, full, Arc::from(stored.value.get()), ttl)
                    .await;
                warmed += 1;
            }
        }
        warmed
    }

    pub async fn stats(&self) -> CacheStats {
        self.l1.run_pending_tasks().await;
        CacheStats {
            l1: self.l1_counters.snapshot(),
            l2: self.l2.as_ref().map(|_| self.l2_counters.snapshot()),
            l1_entries: self.l1.entry_count(),
            l1_bytes: self.l1.weighted_size(),
            staleness_seconds: self.config.staleness.as_secs(),
        }
    }

    /// Prints the statistics as EMF lines at most once a minute per container (called on the
    /// request path; costs one atomic load otherwise).
    pub async fn maybe_emit_metrics(&self) {
        let now = crate::clock::now_millis();
        let last = self.last_emitted_ms.load(Ordering::Relaxed);
        if now - last >= 60_000
            && self
                .last_emitted_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.emit_metrics().await;
        }
    }

    /// Prints the statistics as EMF lines on stdout, where Lambda ships them to CloudWatch.
    pub async fn emit_metrics(&self) {
        for line in self.stats().await.emf_lines(crate::clock::now_millis()) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_entries: u64, max_bytes: u64) -> TwoLevelCache {
        TwoLevelCache::new(
            CacheConfig {
                max_entries,
                max_bytes,
                ..CacheConfig::default()
            },
            None,
        )
    }

    #[tokio::test]
    async fn hits_misses_and_invalidation() {
        let cache = cache(100, 1 << 20);
        assert_eq!(cache.get::<String>(&KEYS, "a").await, None);
        cache.put(&KEYS, "a", &"alpha".to_owned()).await;
        assert_eq!(
            cache.get::<String>(&KEYS, "a").await.as_deref(),
            Some("alpha")
        );
        cache.invalidate(&KEYS, "a").await;
        assert_eq!(cache.get::<String>(&KEYS, "a").await, None);
        let stats = cache.stats().await;
        assert_eq!((stats.l1.hits, stats.l1.misses), (1, 2));
        assert_eq!(stats.l2, None);
    }

    #[tokio::test]
    async fn namespace_invalidation_drops_every_key_of_the_namespace_only() {
        let cache = cache(100, 1 << 20);
        cache.put(&KEYS, "a", &1).await;
        cache.put(&KEYS, "b", &2).await;
        cache.put(&ACCOUNTS, "a", &3).await;
        cache.invalidate_namespace(&KEYS).await;
        assert_eq!(cache.get::<i32>(&KEYS, "a").await, None);
        assert_eq!(cache.get::<i32>(&KEYS, "b").await, None);
        assert_eq!(cache.get::<i32>(&ACCOUNTS, "a").await, Some(3));
    }

    #[tokio::test]
    async fn l1_is_bounded_by_entries_and_counts_evictions() {
        let cache = cache(10, 1 << 20);
        for i in 0..200 {
            cache.put(&CHARTS, &format!("k{i}"), &i).await;
            // Reading makes entries candidates under TinyLFU admission.
            let _ = cache.get::<i32>(&CHARTS, &format!("k{i}")).await;
        }
        let stats = cache.stats().await;
        assert!(stats.l1_entries <= 10, "{stats:?}");
        // Every entry that is not held was removed for size (evicted, or refused admission,
        // which moka reports the same way), and each removal was counted.
        assert_eq!(stats.l1.evictions + stats.l1_entries, 200, "{stats:?}");
    }

    #[tokio::test]
    async fn l1_is_bounded_by_bytes() {
        let cache = cache(1000, 4096);
        let big = "x".repeat(1000);
        for i in 0..50 {
            cache.put(&CHARTS, &format!("k{i}"), &big).await;
            let _ = cache.get::<String>(&CHARTS, &format!("k{i}")).await;
        }
        assert!(cache.stats().await.l1_bytes <= 4096);
    }

    #[tokio::test]
    async fn mutable_entries_never_outlive_the_staleness_bound_in_l1() {
        let cache = TwoLevelCache::new(
            CacheConfig {
                staleness: Duration::from_millis(200),
                ..CacheConfig::default()
            },
            None,
        );
        cache.put(&KEYS, "k", &1).await;
        cache.put(&CHARTS, "c", &2).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            cache.get::<i32>(&KEYS, "k").await,
            None,
            "mutable entry expired at the bound"
        );
        assert_eq!(
            cache.get::<i32>(&CHARTS, "c").await,
            Some(2),
            "immutable entry kept"
        );
    }

    #[test]
    fn emf_lines_declare_metrics() {
        let stats = CacheStats {
            l1: LevelStats {
                hits: 3,
                misses: 1,
                evictions: 0,
                errors: 0,
            },
            l2: None,
            l1_entries: 1,
            l1_bytes: 10,
            staleness_seconds: 30,
        };
        let lines = stats.emf_lines(1);
        assert_eq!(lines.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(line["CacheHits"], 3);
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Orrery");
    }
}
