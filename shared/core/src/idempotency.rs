//! `Idempotency-Key` for `POST`s that create things: the first request claims the key for its
//! account in the same transaction that creates the resource; a retry with the same key and the
//! same request gets the created resource again, a reuse with another request is a 422. Claims
//! expire after a day (the store's TTL).

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::store::{Condition, Item, Key, Store, StoreError, WriteOp, keyspace};
use crate::{ApiError, clock};

pub const HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a claim is remembered.
pub const TTL_SECONDS: i64 = 86_400;
const MAX_KEY_CHARS: usize = 255;

/// The `Idempotency-Key` header, if present: 1–255 visible ASCII characters.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::BadRequest(format!(
            "The Idempotency-Key header must be 1 to {MAX_KEY_CHARS} visible ASCII characters."
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text.is_empty() || text.len() > MAX_KEY_CHARS || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid());
    }
    Ok(Some(text.to_owned()))
}

/// The status of a creating request: 201, or 200 when it replays an earlier creation.
pub fn status(replayed: bool) -> axum::http::StatusCode {
    if replayed {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::CREATED
    }
}

/// Names the created resource (`Location`) and marks a replay (`Idempotent-Replayed: true`).
pub fn mark_created(
    mut response: axum::response::Response,
    location: &str,
    replayed: bool,
) -> axum::response::Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, value);
    }
    if replayed {
        response.headers_mut().insert(
            REPLAYED_HEADER,
            axum::http::HeaderValue::from_static("true"),
        );
    }
    response
}

/// Whether a response replays an earlier creation (it costs no quota and publishes nothing).
pub fn is_replay(response: &axum::response::Response) -> bool {
    response.headers().contains_key(REPLAYED_HEADER)
}

/// A remembered key: which request created which resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub request_hash: String,
    pub resource_id: String,
}

fn claim_key(account_id: &crate::ids::AccountId, idempotency_key: &str) -> Key {
    keyspace::idempotency_claim(account_id, idempotency_key)
}

/// The write that claims `idempotency_key`; it fails its condition if the key is taken.
pub fn claim(
    account_id: &crate::ids::AccountId,
    idempotency_key: &str,
    request_hash: &str,
    resource_id: &str,
) -> Result<WriteOp, StoreError> {
    let item = Item::from_serializable(
        claim_key(account_id, idempotency_key),
        &Claim {
            request_hash: request_hash.to_owned(),
            resource_id: resource_id.to_owned(),
        },
    )?
    .expiring_at(clock::now_unix() + TTL_SECONDS);
    Ok(WriteOp::Put {
        item,
        condition: Some(Condition::NotExists),
    })
}

/// The resource an earlier request with this key created, if the key is claimed; a claim by
/// a different request is a 422.
pub async fn replayed_resource(
    store: &dyn Store,
    account_id: &crate::ids::AccountId,
    idempotency_key: &str,
    request_hash: &str,
) -> Result<Option<String>, ApiError> {
    let Some(item) = store
        .get_consistent(&claim_key(account_id, idempotency_key))
        .await?
    else {
        return Ok(None);
    };
    let claim: Claim = item.parse()?;
    if claim.request_hash != request_hash {
        return Err(ApiError::validation(
            "Idempotency-Key",
            "this key was already used with a different request; use a new key for a new request",
        ));
    }
    Ok(Some(claim.resource_id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn header_values_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers).unwrap(), None);
        headers.insert(HEADER, "retry-1".parse().unwrap());
        assert_eq!(from_headers(&headers).unwrap().as_deref(), Some("retry-1"));
        headers.insert(HEADER, "has space".parse().unwrap());
        assert!(from_headers(&headers).is_err());
        headers.insert(HEADER, "x".repeat(256).parse().unwrap());
        assert!(from_headers(&headers).is_err());
    }

    #[tokio::test]
    async fn a_claim_replays_for_the_same_request_only() {
        let app = crate::App::in_memory().unwrap();
        let store = app.store.as_ref();
        let account = crate::ids::AccountId::generate();
        assert_eq!(
            replayed_resource(store, &account, "k1", "h1")
                .await
                .unwrap(),
            None
        );
        store
            .transact(vec![claim(&account, "k1", "h1", "chart_1").unwrap()])
            .await
            .unwrap();
        assert_eq!(
            replayed_resource(store, &account, "k1", "h1")
                .await
                .unwrap()
                .as_deref(),
            Some("chart_1")
        );
        assert!(matches!(
            replayed_resource(store, &account, "k1", "h2").await,
            Err(ApiError::Validation(_))
        ));
        // Keys are per account.
        assert_eq!(
            replayed_resource(store, &crate::ids::AccountId::generate(), "k1", "h1")
                .await
                .unwrap(),
            None
        );
        let again = store
            .transact(vec![claim(&account, "k1", "h1", "chart_2").unwrap()])
            .await;
        assert!(matches!(again, Err(StoreError::TransactionCanceled { .. })));
    }
}
