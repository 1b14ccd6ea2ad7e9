//! Short-lived real-time tokens: browsers cannot set headers on a WebSocket, and an API key
//! never travels in a URL, so a key with the `events` scope mints a token (`POST
//! /v1/realtime/tokens`) that a client puts in `?token=`.
//!
//! A token is self-contained and signed with the key pepper under its own domain: `ort_`, the
//! claims (account, key, expiry) in base64url JSON, `.`, the MAC. Nothing is stored, so any
//! container verifies it; it stands for the key that minted it, so it carries that key's scopes,
//! and revoking the key (or suspending the account) ends its tokens at once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, caller_of};
use super::keys::{self, KeyRefusal};
use crate::error::ApiError;
use crate::ids::{AccountId, KeyId};
use crate::{App, clock};

/// Every token starts with this.
pub const PREFIX: &str = "ort_";
/// The longest a token lives.
pub const MAX_TTL_SECONDS: i64 = 300;
const DOMAIN: &str = "orrery-realtime-token-v1";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "acc")]
    account: AccountId,
    key: KeyId,
    #[serde(rename = "exp")]
    expires: i64,
    /// Makes two tokens minted in the same second differ.
    nonce: String,
}

/// A minted token and when it stops working.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RealtimeToken {
    /// Pass as `?token=` when opening the WebSocket (`/v1/realtime`).
    #[schema(example = "ort_eyJhY2MiOi….6l0…")]
    pub token: String,
    pub expires_at: DateTime<Utc>,
    #[schema(example = 300)]
    pub expires_in: i64,
    /// The scopes of the key that minted it, which the token carries.
    pub scopes: Vec<String>,
}

/// A token for `caller`, valid for `ttl_seconds` (1 to [`MAX_TTL_SECONDS`]).
pub async fn mint(app: &App, caller: &Caller, ttl_seconds: i64) -> Result<RealtimeToken, ApiError> {
    if !(1..=MAX_TTL_SECONDS).contains(&ttl_seconds) {
        return Err(ApiError::validation(
            "ttl_seconds",
            format!("must be between 1 and {MAX_TTL_SECONDS}"),
        ));
    }
    let now = clock::now_unix();
    let claims = Claims {
        account: caller.account_id.clone(),
        key: caller.key_id.clone(),
        expires: now + ttl_seconds,
        nonce: crate::ids::hex(&crate::ids::random_bytes::<8>()),
    };
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).map_err(|err| ApiError::Internal(err.to_string()))?);
    let signature = app.key_hasher().await?.sign(DOMAIN, payload.as_bytes());
    Ok(RealtimeToken {
        token: format!("{PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(signature)),
        expires_at: DateTime::from_timestamp(claims.expires, 0).unwrap_or_else(clock::now),
        expires_in: ttl_seconds,
        scopes: caller.scopes.clone(),
    })
}

fn refused(detail: &str) -> ApiError {
    ApiError::Unauthorized(format!("The real-time token {detail}."))
}

/// The caller a presented token stands for: 401 when it is malformed, forged, expired or its
/// key no longer works; 403 when the account is suspended.
pub async fn authenticate(app: &App, token: &str) -> Result<Caller, ApiError> {
    let body = token
        .strip_prefix(PREFIX)
        .ok_or_else(|| refused("is malformed: tokens start with ort_"))?;
    let (payload, signature) = body
        .split_once('.')
        .ok_or_else(|| refused("is malformed"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| refused("is malformed"))?;
    if !app
        .key_hasher()
        .await?
        .verify(DOMAIN, payload.as_bytes(), &signature)
    {
        return Err(refused("is not valid"));
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| refused("is not valid"))?;
    if claims.expires <= clock::now_unix() {
        return Err(refused("has expired: mint a new one"));
    }
    let record = keys::get_current(app.store.as_ref(), &claims.account, &claims.key)
        .await?
        .ok_or(KeyRefusal::Invalid)?;
    caller_of(app, record).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::access::keys::KeyMode;
    use crate::access::tiers::Tier;

    fn caller() -> Caller {
        Caller {
            hot_quota: false,
            activity_events: false,
            account_id: AccountId::generate(),
            key_id: KeyId::generate(),
            tier: Tier::Free,
            scopes: vec!["events".into()],
            mode: KeyMode::Live,
        }
    }

    #[tokio::test]
    async fn tokens_are_bounded_signed_and_unforgeable() {
        let app = App::in_memory().unwrap();
        crate::access::ensure_local_secrets(&app, Some("orr_admin_test"))
            .await
            .unwrap();
        for ttl in [0, -1, MAX_TTL_SECONDS + 1] {
            assert!(mint(&app, &caller(), ttl).await.is_err(), "{ttl}");
        }
        let minted = mint(&app, &caller(), 60).await.unwrap();
        assert!(minted.token.starts_with(PREFIX));
        assert_eq!(minted.expires_in, 60);
        // Changing one character of the claims breaks the signature.
        let (payload, signature) = minted.token[PREFIX.len()..].split_once('.').unwrap();
        let mut claims = URL_SAFE_NO_PAD.decode(payload).unwrap();
        claims[10] ^= 1;
        let forged = format!("{PREFIX}{}.{signature}", URL_SAFE_NO_PAD.encode(claims));
        for bad in [forged.as_str(), "ort_", "ort_a.b", "orr_live_x", ""] {
            let err = authenticate(&app, bad).await.unwrap_err();
            assert!(matches!(err, ApiError::Unauthorized(_)), "{bad}: {err:?}");
        }
        // A well-signed token whose key does not exist is refused too.
        let err = authenticate(&app, &minted.token).await.unwrap_err();
        assert!(matches!(err, ApiError::Unauthorized(_)), "{err:?}");
    }
}
