//! The two-level cache across containers: each "container" is its own `TwoLevelCache` (or `App`)
//! in this process; they share the L2 (a real `redis-server` started by the test command) and,
//! for the revocation test, the store. Cache behaviour does not depend on the store backend, so
//! these run on the embedded store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orrery::App;
use orrery::access::manage;
use orrery::cache::{CHARTS, CacheConfig, KEYS, RedisCache, SharedCache, TwoLevelCache};
use orrery::config::Config;
use orrery::embedded::EmbeddedDb;
use orrery::secrets::MemorySecrets;

const BOUND: Duration = Duration::from_secs(1);

fn redis_url() -> String {
    std::env::var("ORRERY_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("ORRERY_TEST_REDIS_URL is not set: run the README's test command, which starts redis-server")
    })
}

async fn shared_level(prefix: &str) -> Arc<dyn SharedCache> {
    Arc::new(RedisCache::connect(&redis_url(), prefix).expect("a well-formed redis URL"))
}

fn container(l2: Option<Arc<dyn SharedCache>>) -> TwoLevelCache {
    TwoLevelCache::new(
        CacheConfig {
            staleness: BOUND,
            ..CacheConfig::default()
        },
        l2,
    )
}

fn prefix() -> String {
    format!("test/{}/", orrery_tests::unique_suffix())
}

#[tokio::test]
async fn a_value_cached_by_one_container_is_an_l2_hit_for_another() {
    let prefix = prefix();
    let a = container(Some(shared_level(&prefix).await));
    let b = container(Some(shared_level(&prefix).await));
    a.put(&KEYS, "k", &"v".to_owned()).await;
    assert_eq!(b.get::<String>(&KEYS, "k").await.as_deref(), Some("v"));
    assert_eq!(b.get::<String>(&KEYS, "k").await.as_deref(), Some("v"));
    let stats = b.stats().await;
    assert_eq!(
        (stats.l1.misses, stats.l1.hits),
        (1, 1),
        "first from L2, then from L1"
    );
    assert_eq!(stats.l2.map(|l2| l2.hits), Some(1));
}

#[tokio::test]
async fn key_and_namespace_invalidation_reach_other_containers_within_the_bound() {
    let prefix = prefix();
    let a = container(Some(shared_level(&prefix).await));
    let b = container(Some(shared_level(&prefix).await));
    a.put(&KEYS, "one", &1).await;
    a.put(&KEYS, "two", &2).await;
    assert_eq!(b.get::<i32>(&KEYS, "one").await, Some(1));
    assert_eq!(b.get::<i32>(&KEYS, "two").await, Some(2));

    a.invalidate_namespace(&KEYS).await;
    assert_eq!(
        a.get::<i32>(&KEYS, "one").await,
        None,
        "at once where it was invalidated"
    );
    let started = Instant::now();
    while b.get::<i32>(&KEYS, "one").await.is_some() {
        assert!(
            started.elapsed() <= BOUND + Duration::from_millis(300),
            "stale beyond the bound"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        b.get::<i32>(&KEYS, "two").await,
        None,
        "the whole namespace is gone"
    );

    a.put(&KEYS, "three", &3).await;
    assert_eq!(
        b.get::<i32>(&KEYS, "three").await,
        Some(3),
        "new generation shared"
    );
    a.invalidate(&KEYS, "three").await;
    let started = Instant::now();
    while b.get::<i32>(&KEYS, "three").await.is_some() {
        assert!(
            started.elapsed() <= BOUND + Duration::from_millis(300),
            "stale beyond the bound"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cold_container_warms_from_the_hot_set() {
    let prefix = prefix();
    let a = container(Some(shared_level(&prefix).await));
    let b = container(Some(shared_level(&prefix).await));
    for i in 0..5 {
        a.put(&CHARTS, &format!("chart{i}"), &i).await;
        b.get::<i32>(&CHARTS, &format!("chart{i}")).await; // an L2 hit: counted as hot
    }
    let cold = container(Some(shared_level(&prefix).await));
    assert_eq!(cold.warm(100).await, 5);
    for i in 0..5 {
        assert_eq!(
            cold.get::<i32>(&CHARTS, &format!("chart{i}")).await,
            Some(i)
        );
    }
    let stats = cold.stats().await;
    assert_eq!(stats.l1.hits, 5, "served from L1 after warming");
    assert_eq!(stats.l2.map(|l2| l2.hits), Some(0));
}

/// A shared level that always fails: fault injection (the one test double here; a real Redis
/// cannot be made to fail on demand from inside the test).
struct FailingLevel;

#[async_trait::async_trait]
impl SharedCache for FailingLevel {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn set(
        &self,
        _: &str,
        _: &[u8],
        _: Duration,
    ) -> Result<(), orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn generation(&self, _: &str) -> Result<u64, orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn bump_generation(&self, _: &str) -> Result<u64, orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn touch_hot(&self, _: &str, _: usize) -> Result<(), orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
    async fn hottest(&self, _: usize) -> Result<Vec<String>, orrery::cache::SharedCacheError> {
        Err(orrery::cache::SharedCacheError("connection refused".into()))
    }
}

#[tokio::test]
async fn a_failing_l2_degrades_to_l1_and_counts_errors() {
    let cache = container(Some(Arc::new(FailingLevel)));
    cache.put(&KEYS, "k", &1).await;
    assert_eq!(
        cache.get::<i32>(&KEYS, "k").await,
        Some(1),
        "L1 still serves"
    );
    assert_eq!(
        cache.get::<i32>(&KEYS, "missing").await,
        None,
        "a failed L2 read is a miss, not an error"
    );
    cache.invalidate_namespace(&KEYS).await;
    assert_eq!(
        cache.get::<i32>(&KEYS, "k").await,
        None,
        "local invalidation still works"
    );
    assert!(cache.stats().await.l2.is_some_and(|l2| l2.errors > 0));
}

/// Two containers of the API over one store, optionally sharing an L2.
async fn two_containers(l2_prefix: Option<String>) -> (App, App) {
    let db = EmbeddedDb::in_memory().unwrap();
    let secrets = Arc::new(MemorySecrets::default());
    let mut config = Config::default();
    config.cache.staleness = BOUND;
    let mut containers = Vec::new();
    for _ in 0..2 {
        let l2 = match &l2_prefix {
            Some(prefix) => Some(shared_level(prefix).await),
            None => None,
        };
        let app =
            App::embedded_with(config.clone(), db.clone(), secrets.clone()).with_shared_cache(l2);
        orrery::access::ensure_local_secrets(&app, Some("orr_admin_x"))
            .await
            .unwrap();
        containers.push(app);
    }
    let second = containers.pop().unwrap();
    (containers.pop().unwrap(), second)
}

async fn revoked_key_stops_everywhere_within_the_bound(l2_prefix: Option<String>) {
    let (a, b) = two_containers(l2_prefix).await;
    let created = orrery_tests::new_free_account(&a).await;
    let headers = orrery_tests::bearer_headers(&created.api_key.key);
    let caller = orrery::access::auth::authenticate(&a, &headers)
        .await
        .unwrap();
    assert!(
        orrery::access::auth::authenticate(&b, &headers)
            .await
            .is_ok(),
        "B has it cached now"
    );

    manage::revoke_key(&a, &caller, &created.api_key.view.id)
        .await
        .unwrap();
    assert!(
        orrery::access::auth::authenticate(&a, &headers)
            .await
            .is_err(),
        "immediately in the revoking container"
    );
    let started = Instant::now();
    while orrery::access::auth::authenticate(&b, &headers)
        .await
        .is_ok()
    {
        assert!(
            started.elapsed() <= BOUND + Duration::from_millis(300),
            "B accepted a revoked key beyond the bound"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn revoked_key_stops_everywhere_within_the_bound_with_l2() {
    revoked_key_stops_everywhere_within_the_bound(Some(prefix())).await;
}

#[tokio::test]
async fn revoked_key_stops_everywhere_within_the_bound_l1_only() {
    revoked_key_stops_everywhere_within_the_bound(None).await;
}
