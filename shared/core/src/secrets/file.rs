//! Files under the data directory, for `orrery-local`.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{SecretError, SecretString, Secrets};

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

#[cfg(test)]
mod tests {
    use super::*;

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
