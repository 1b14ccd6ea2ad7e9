//! In memory, for unit and handler tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SecretError, SecretString, Secrets};

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
