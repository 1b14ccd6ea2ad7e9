//! Metered access: accounts and tiers, API keys, daily quotas, and the layers that apply them.

pub mod accounts;
pub mod auth;
pub mod compaction;
pub mod hot;
pub mod keys;
pub mod manage;
pub mod quota;
pub mod tiers;
pub mod tokens;

use crate::App;
use crate::secrets::{SecretError, SecretString, Secrets};

pub use auth::{Admin, Caller, Refused, admit, authenticated, give_back, metered, quota_state};
pub use tiers::{QuotaClass, Tier};

/// Makes sure the local runtime has its admin key and key pepper. The admin key is
/// `admin_key_from_env` when given (`ORRERY_ADMIN_KEY`), else the stored one, else a new one;
/// returns the key when it was generated now, so the caller can show it once. On AWS both
/// secrets come from Secrets Manager (`template.yaml` generates them).
pub async fn ensure_local_secrets(
    app: &App,
    admin_key_from_env: Option<&str>,
) -> Result<Option<String>, SecretError> {
    let secrets = &app.secrets;
    if let Err(SecretError::NotFound(_)) = secrets.get(&app.config.key_pepper_secret).await {
        secrets
            .put(
                &app.config.key_pepper_secret,
                &SecretString::new(keys::random_token("")),
            )
            .await?;
    }
    let name = &app.config.admin_key_secret;
    if let Some(key) = admin_key_from_env.map(str::trim).filter(|k| !k.is_empty()) {
        secrets
            .put(name, &SecretString::new(key.to_owned()))
            .await?;
        return Ok(None);
    }
    match secrets.get(name).await {
        Ok(_) => Ok(None),
        Err(SecretError::NotFound(_)) => {
            let key = keys::random_token("orr_admin_");
            secrets.put(name, &SecretString::new(key.clone())).await?;
            Ok(Some(key))
        }
        Err(err) => Err(err),
    }
}
