//! Secrets Manager.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::{SecretError, SecretString, Secrets};

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
