//! Secrets: values that must never be logged, fetched from Secrets Manager on AWS and from files
//! under the data directory locally, with an in-process cache in front of either.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

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

/// Secrets Manager; `name` is the secret id (name or ARN).
pub struct AwsSecrets {
    client: Client,
}

impl AwsSecrets {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(output) => output.secret_string.map(SecretString::new).ok_or_else(|| {
                SecretError::Backend(format!("secret {name:?} has no string value"))
            }),
            Err(err) => match err.as_service_error() {
                Some(e) if e.is_resource_not_found_exception() => {
                    Err(SecretError::NotFound(name.to_owned()))
                }
                _ => Err(SecretError::Backend(DisplayErrorContext(err).to_string())),
            },
        }
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| SecretError::Backend(DisplayErrorContext(err).to_string()))
    }
}

/// One file per secret under a directory (mode 0600), for `orrery-local`.
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretError> {
        let safe = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && !name.starts_with('.');
        if !safe {
            return Err(SecretError::NotFound(name.to_owned()));
        }
        Ok(self.dir.join(name))
    }
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let path = self.path(name)?;
        match tokio::fs::read_to_string(&path).await {
            // An emptied file is damage, not a secret: an empty pepper would make every key 401.
            Ok(value) if value.trim().is_empty() => Err(SecretError::Backend(format!(
                "the secret file {} is empty; restore it from a backup",
                path.display()
            ))),
            Ok(value) => Ok(SecretString::new(value.trim_end().to_owned())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(SecretError::NotFound(name.to_owned()))
            }
            Err(err) => Err(SecretError::Backend(err.to_string())),
        }
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.put_now(name, value)
    }
}

impl FileSecrets {
    /// Writes a secret file (a few bytes; blocking is fine): written then renamed, so a crash
    /// never leaves a half-written secret.
    pub fn put_now(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let path = self.path(name)?;
        let io = |err: std::io::Error| SecretError::Backend(err.to_string());
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, value.expose()).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        std::fs::rename(&temporary, &path).map_err(io)
    }

    /// The file that holds secret `name`.
    pub fn file_of(&self, name: &str) -> Result<PathBuf, SecretError> {
        self.path(name)
    }
}

/// Secrets in memory, for unit and handler tests.
#[derive(Default)]
pub struct MemorySecrets {
    values: Mutex<HashMap<String, SecretString>>,
}

#[async_trait]
impl Secrets for MemorySecrets {
    async fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        let values = self
            .values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        values
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let mut values = self
            .values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        values.insert(name.to_owned(), value.clone());
        Ok(())
    }
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

    #[tokio::test]
    async fn file_secrets_round_trip_and_refuse_path_tricks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = FileSecrets::new(dir.path());
        assert_eq!(
            secrets.get("admin-key").await,
            Err(SecretError::NotFound("admin-key".into()))
        );
        secrets
            .put("admin-key", &SecretString::new("v1"))
            .await
            .expect("put");
        assert_eq!(secrets.get("admin-key").await.expect("get").expose(), "v1");
        assert!(secrets.get("../etc/passwd").await.is_err());
    }
}
