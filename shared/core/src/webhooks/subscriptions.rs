//! Who listens: an account's endpoints and the event types they want, cached per account (the
//! `subscriptions` namespace) and invalidated whenever an endpoint changes; the fan-out reads it.

use super::record::{self, EndpointRecord};
use crate::App;
use crate::cache::SUBSCRIPTIONS;

pub(super) async fn subscriptions(
    app: &App,
    account_id: &crate::ids::AccountId,
) -> Result<Vec<EndpointRecord>, crate::store::StoreError> {
    let records = app
        .cache
        .load(&SUBSCRIPTIONS, account_id, async || {
            record::all_of(app, account_id).await.map(Some)
        })
        .await?;
    Ok(records.unwrap_or_default())
}

/// Forgets an account's cached subscriptions (after an endpoint changes): everywhere within the
/// cache's sync interval.
pub async fn forget_subscriptions(app: &App, account_id: &crate::ids::AccountId) {
    app.cache.invalidate(&SUBSCRIPTIONS, account_id).await;
}
