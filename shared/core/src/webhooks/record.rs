//! What the store holds for an endpoint, and its reads: the one module both the endpoints API
//! and the subscription caches stand on (so neither needs the other).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::signature::WebhookSecret;
use crate::App;
use crate::events::envelope::EventType;
use crate::store::{Key, StoreError, keyspace};

/// Endpoints an account may have.
pub const MAX_ENDPOINTS: usize = 20;

/// What the store holds for an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: crate::ids::EndpointId,
    pub account_id: crate::ids::AccountId,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; empty means all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the platform disabled it (410 Gone, failing for days), if it did.
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// Since when every attempt has failed (cleared by a success).
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
}

impl EndpointRecord {
    /// Whether an event of `kind` goes to this endpoint.
    pub fn wants(&self, kind: EventType) -> bool {
        self.enabled
            && kind.is_deliverable()
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == kind.as_str()))
    }

    /// The secrets a delivery is signed with now: the current one, and the previous one while
    /// its grace period lasts.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<WebhookSecret> {
        let mut secrets: Vec<WebhookSecret> =
            WebhookSecret::parse(&self.secret).into_iter().collect();
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
            && now < until
            && let Ok(previous) = WebhookSecret::parse(previous)
        {
            secrets.push(previous);
        }
        secrets
    }
}

pub(super) fn record_key(account_id: &crate::ids::AccountId, id: &crate::ids::EndpointId) -> Key {
    keyspace::webhook(account_id, id)
}

/// Every endpoint of an account, for fan-out: all pages, however many there are (the limit is
/// enforced at creation; fan-out must not depend on it holding).
pub async fn all_of(
    app: &App,
    account_id: &crate::ids::AccountId,
) -> Result<Vec<EndpointRecord>, StoreError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (records, next): (Vec<EndpointRecord>, _) = app
            .store
            .query(
                keyspace::webhooks(account_id)
                    .with_limit(MAX_ENDPOINTS + 1)
                    .after(cursor),
            )
            .await?
            .parse()?;
        all.extend(records);
        cursor = next;
        if cursor.is_none() {
            return Ok(all);
        }
    }
}

/// The endpoint's current record, if it exists (for the delivery consumer).
pub async fn record(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &crate::ids::EndpointId,
) -> Result<Option<EndpointRecord>, StoreError> {
    match app
        .store
        .get_consistent(&record_key(account_id, id))
        .await?
    {
        Some(item) => Ok(Some(item.parse()?)),
        None => Ok(None),
    }
}
