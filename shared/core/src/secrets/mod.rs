//! Secrets: values that must never be logged, fetched from Secrets Manager on AWS and from files
//! under the data directory locally, with an in-process cache in front of either: the trait and
//! the cache here, the implementations in [`aws`], [`file`] and [`memory`].

mod aws;
mod file;
mod memory;

pub use aws::AwsSecrets;
pub use file::FileSecrets;
pub use memory::MemorySecrets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(***)")
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SecretError {
    #[error("secret {0:?} not found")]
    NotFound(String),
    #[error("secrets backend error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Secrets: Send + Sync + 'static {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError>;
    /// Stores a new current value (the previous one stays readable by the backend's versioning).
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
}

/// Caches values for `ttl` so a warm container reads each secret once per TTL, not per request.
pub struct CachedSecrets {
    inner: Arc<dyn Secrets>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, SecretString)>>,
}

impl CachedSecrets {
    pub fn new(inner: Arc<dyn Secrets>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Drops a cached value (after a rotation this container performed itself).
    pub fn invalidate(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(name);
    }
}

#[async_trait]
impl Secrets for CachedSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((_, value)) = cache
                .get(name)
                .filter(|(fetched, _)| fetched.elapsed() < self.ttl)
            {
                return Ok(value.clone());
            }
        }
        let value = self.inner.get(name).await?;
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put(name, value).await?;
        self.invalidate(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = SecretString::new("hunter2");
        assert_eq!(format!("{secret:?}"), "SecretString(***)");
    }
}
