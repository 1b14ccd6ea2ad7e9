//! The shared level: the contract, and its implementation over the Redis protocol.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
#[error("shared cache error: {0}")]
pub struct SharedCacheError(pub String);

/// The L2 contract: bytes by key with a TTL, namespace generations, and a hot set.
#[async_trait]
pub trait SharedCache: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedCacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedCacheError>;
    async fn delete(&self, key: &str) -> Result<(), SharedCacheError>;
    async fn generation(&self, namespace: &str) -> Result<u64, SharedCacheError>;
    async fn bump_generation(&self, namespace: &str) -> Result<u64, SharedCacheError>;
    /// Counts one use of `key` in the hot set (kept to `keep` members).
    async fn touch_hot(&self, key: &str, keep: usize) -> Result<(), SharedCacheError>;
    /// The `count` hottest keys, hottest first.
    async fn hottest(&self, count: usize) -> Result<Vec<String>, SharedCacheError>;
}

/// L2 over the Redis protocol. It connects lazily and never fails a caller for being down: an
/// unreachable server at cold start or later is a miss, and after a failure L2 is skipped for
/// [`REDIS_RETRY_AFTER`] so a dead server costs requests no time-outs.
pub struct RedisCache {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    /// Unix ms until which the server is taken to be down.
    down_until_ms: std::sync::atomic::AtomicI64,
}

/// How long L2 is skipped after a failed call.
pub const REDIS_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Bounds on one connection attempt and one command: L2 must stay cheaper than the store.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

impl RedisCache {
    /// A cache on `url`; only a malformed URL is an error (configuration), never reachability.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, SharedCacheError> {
        let client = redis::Client::open(url).map_err(|err| SharedCacheError(err.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let connection = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|err| SharedCacheError(err.to_string()))?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
            down_until_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one call unless the server is known to be down; a failure marks it down.
    async fn call<T>(
        &self,
        run: impl AsyncFnOnce(redis::aio::ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, SharedCacheError> {
        let now = crate::clock::now_millis();
        if now < self.down_until_ms.load(Ordering::Relaxed) {
            return Err(SharedCacheError(
                "skipped: the server was unreachable".into(),
            ));
        }
        run(self.connection.clone()).await.map_err(|err| {
            if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
                self.down_until_ms.store(
                    now + REDIS_RETRY_AFTER.as_millis() as i64,
                    Ordering::Relaxed,
                );
            }
            redis_error(err)
        })
    }
}

fn redis_error(err: redis::RedisError) -> SharedCacheError {
    SharedCacheError(err.to_string())
}

#[async_trait]
impl SharedCache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedCacheError> {
        let key = self.key(key);
        self.call(async move |mut c| redis::cmd("GET").arg(key).query_async(&mut c).await)
            .await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedCacheError> {
        let key = self.key(key);
        let millis = ttl.as_millis().max(1) as u64;
        self.call(async move |mut c| {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), SharedCacheError> {
        let key = self.key(key);
        self.call(async move |mut c| redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await)
            .await
    }

    async fn generation(&self, namespace: &str) -> Result<u64, SharedCacheError> {
        let key = self.key(&format!("generation/{namespace}"));
        let value: Option<u64> = self
            .call(async move |mut c| redis::cmd("GET").arg(key).query_async(&mut c).await)
            .await?;
        Ok(value.unwrap_or(0))
    }

    async fn bump_generation(&self, namespace: &str) -> Result<u64, SharedCacheError> {
        let key = self.key(&format!("generation/{namespace}"));
        self.call(async move |mut c| redis::cmd("INCR").arg(key).query_async(&mut c).await)
            .await
    }

    async fn touch_hot(&self, key: &str, keep: usize) -> Result<(), SharedCacheError> {
        let hot = self.key("hot");
        self.call(async move |mut c| {
            redis::pipe()
                .cmd("ZINCRBY")
                .arg(&hot)
                .arg(1)
                .arg(key)
                .ignore()
                .cmd("ZREMRANGEBYRANK")
                .arg(&hot)
                .arg(0)
                .arg(-(keep as i64) - 1)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn hottest(&self, count: usize) -> Result<Vec<String>, SharedCacheError> {
        let hot = self.key("hot");
        self.call(async move |mut c| {
            redis::cmd("ZREVRANGE")
                .arg(hot)
                .arg(0)
                .arg(count.saturating_sub(1))
                .query_async(&mut c)
                .await
        })
        .await
    }
}
