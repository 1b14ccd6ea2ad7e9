//! Who listens: an account's endpoints and the event types they want, each cached per account
//! (the `subscriptions` and `event-interests` namespaces), both invalidated together whenever an
//! endpoint changes. The fan-out reads the first; the publish-time interest check the second.

use super::record::{self, EndpointRecord};
use crate::App;
use crate::cache::{INTERESTS, SUBSCRIPTIONS};
use crate::events::envelope::EventType;

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
    app.cache.invalidate(&INTERESTS, account_id).await;
}

/// Whether any enabled endpoint of the account wants `kind`. Events nobody listens to are not
/// queued: most chart requests come from accounts without such a subscription, and each queued
/// event costs a send, a receive and a delete. This reads the same cache as the fan-out, so it
/// is exactly as fresh; an endpoint's creation answers only once every container must see it
/// (`settle`), so no event published after that answer is dropped. If the endpoints cannot be
/// read, the answer is yes (never drop an event that might be wanted).
pub async fn is_wanted(app: &App, account_id: &crate::ids::AccountId, kind: EventType) -> bool {
    let wanted = app
        .cache
        .load(&INTERESTS, account_id, async || {
            let records = subscriptions(app, account_id).await?;
            Ok::<_, crate::store::StoreError>(Some(
                EventType::ALL
                    .into_iter()
                    .filter(|&t| records.iter().any(|endpoint| endpoint.wants(t)))
                    .collect::<Vec<EventType>>(),
            ))
        })
        .await;
    match wanted {
        Ok(wanted) => wanted.is_some_and(|wanted| wanted.contains(&kind)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the subscriptions; publishing anyway");
            true
        }
    }
}
