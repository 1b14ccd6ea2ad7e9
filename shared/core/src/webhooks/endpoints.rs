//! Webhook endpoints: a customer's URLs, which events each wants, and their signing secrets.
//! Stored under the account (`ACCT#<id>/WEBHOOK#<id>`), updated with optimistic versions; a
//! rotated secret keeps signing alongside the new one for the grace period (24 h by default).
//! Secrets are stored as given to the customer (DynamoDB encrypts at rest) because they must
//! be shown again (`GET …/secret`) and used to sign.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::{EndpointRecord, MAX_ENDPOINTS, record_key};
use super::signature::WebhookSecret;
use super::ssrf::check_url;
use crate::events::envelope::EventType;
use crate::store::{Condition, Cursor, Increment, Item, Key, StoreError, keyspace};
use crate::{ApiError, App, FieldError, clock, idempotency, ids};

pub const DESCRIPTION_MAX_CHARS: usize = 500;

/// An endpoint as its owner sees it (the secret only at creation and from `…/secret`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; empty means every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&EndpointRecord> for EndpointView {
    fn from(record: &EndpointRecord) -> Self {
        Self {
            id: record.id.to_string(),
            url: record.url.clone(),
            description: record.description.clone(),
            event_types: record.event_types.clone(),
            enabled: record.enabled,
            disabled_reason: record.disabled_reason.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A new endpoint with its signing secret, shown in full here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedEndpointView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify deliveries with it (any Standard Webhooks library).
    pub secret: String,
}

/// The signing secrets of an endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecretView {
    pub secret: String,
    /// The secret replaced by the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https` URL of a public host.
    #[schema(schema_with = schema::url)]
    pub url: String,
    /// Event types to deliver (see `GET /v1/webhooks/event-types`); empty or absent: all.
    #[serde(default)]
    #[schema(schema_with = schema::event_types)]
    pub event_types: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = schema::description)]
    pub description: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(schema_with = schema::url_or_null)]
    pub url: Option<String>,
    #[schema(schema_with = schema::event_types_or_null)]
    pub event_types: Option<Vec<String>>,
    #[schema(schema_with = schema::description)]
    pub description: Option<String>,
    /// `true` re-enables an endpoint the platform disabled.
    pub enabled: Option<bool>,
}

/// One entry of the event-type catalogue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventTypeInfo {
    pub name: &'static str,
    pub description: &'static str,
    /// A per-request activity event: published only for accounts with activity events on.
    pub activity: bool,
}

/// Every event type an endpoint can subscribe to.
pub fn catalogue() -> Vec<EventTypeInfo> {
    EventType::DELIVERABLE
        .iter()
        .map(|kind| EventTypeInfo {
            name: kind.as_str(),
            activity: kind.is_activity(),
            description: match kind {
                EventType::ChartCalculated => {
                    "A chart was computed (POST /v1/charts). Activity event: only for accounts with activity events on."
                }
                EventType::ChartSaved => "A chart was saved under the account.",
                EventType::ReadingGenerated => {
                    "A natal reading was generated. Activity event: only for accounts with activity events on."
                }
                EventType::KeyCreated => "An API key was created.",
                EventType::KeyRevoked => "An API key was revoked.",
                EventType::WebhookTest => "A test delivery (POST /v1/webhooks/{id}/test).",
                EventType::EndpointDisabled => {
                    "A webhook endpoint was disabled: it answered 410 Gone, or failed for 5 days."
                }
                EventType::BatchCompleted => {
                    "A batch finished: every item is done (`status` is completed or partially_succeeded)."
                }
                EventType::BatchFailed => "A batch finished with every item failed.",
                EventType::BatchCancelled => "A batch was cancelled; its unstarted items gave their quota back.",
                EventType::BatchExpired => "A batch passed its 24 h window; its unstarted items gave their quota back.",
                EventType::BatchProgress => "A running batch's counts (at most once a second per batch).",
                EventType::UsageThreshold => {
                    "The account used 80 % or 100 % of a daily quota class (once per class, level and UTC day)."
                }
                EventType::DeliverySucceeded | EventType::DeliveryFailed => {
                    "A webhook delivery's outcome (event log only: not deliverable by webhook)."
                }
            },
        })
        .collect()
}

fn validate_url(url: &str, app: &App) -> Result<String, FieldError> {
    check_url(url.trim(), &app.config.webhook_urls)
        .map(|url| url.to_string())
        .map_err(|refusal| FieldError::new("url", refusal.to_string()))
}

/// The event types an endpoint asks for, once each. An activity event type it does not already
/// have (`kept`) is refused while the account has activity events off: the endpoint would wait
/// for events that are never published.
fn validate_event_types(
    types: &[String],
    activity_events: bool,
    kept: &[String],
) -> Result<Vec<String>, FieldError> {
    let mut accepted: Vec<String> = Vec::with_capacity(types.len());
    for name in types {
        let Some(kind) = EventType::DELIVERABLE
            .into_iter()
            .find(|kind| kind.as_str() == name)
        else {
            return Err(FieldError::new(
                "event_types",
                format!(
                    "unknown event type {name:?}; accepted: {}",
                    EventType::DELIVERABLE.map(|k| k.as_str()).join(", ")
                ),
            ));
        };
        if kind.is_activity() && !activity_events && !kept.contains(name) {
            return Err(FieldError::new(
                "event_types",
                format!(
                    "{name} is an activity event, and activity events are off for this account \
                     (the operator turns them on: `activity_events` on the account)"
                ),
            ));
        }
        if !accepted.contains(name) {
            accepted.push(name.clone());
        }
    }
    Ok(accepted)
}

fn validate_description(description: Option<&str>) -> Result<Option<String>, FieldError> {
    match description.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > DESCRIPTION_MAX_CHARS => Err(FieldError::new(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("No webhook endpoint with this id.".into())
}

/// The account's endpoint counter: admitted atomically with a ceiling, as quotas are.
fn count_key(account_id: &crate::ids::AccountId) -> Key {
    keyspace::webhook_count(account_id)
}

fn count_change(account_id: &crate::ids::AccountId, by: i64) -> crate::store::WriteOp {
    let mut change = Increment::new(count_key(account_id), "endpoints", by);
    if by > 0 {
        change.ceiling = Some(MAX_ENDPOINTS as i64);
    }
    crate::store::WriteOp::Increment(change)
}

pub async fn create(
    app: &App,
    caller: &crate::access::Caller,
    request: NewEndpoint,
    idempotency_key: Option<&str>,
) -> Result<(CreatedEndpointView, bool), ApiError> {
    let mut errors = Vec::new();
    let url = validate_url(&request.url, app)
        .map_err(|e| errors.push(e))
        .ok();
    let account_id = &caller.account_id;
    let event_types = validate_event_types(&request.event_types, caller.activity_events, &[])
        .map_err(|e| errors.push(e))
        .ok();
    let description = validate_description(request.description.as_deref())
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(url), Some(event_types), Some(description)) = (url, event_types, description) else {
        return Err(ApiError::Validation(errors));
    };
    let request_hash = format!(
        "{url}\n{event_types:?}\n{description:?}\n{}",
        request.enabled
    );
    if let Some(key) = idempotency_key
        && let Some(id) =
            idempotency::replayed_resource(app.store.as_ref(), account_id, key, &request_hash)
                .await?
    {
        let record = own(app, account_id, &id).await?;
        return Ok((
            CreatedEndpointView {
                endpoint: EndpointView::from(&record),
                secret: record.secret,
            },
            true,
        ));
    }
    let now = clock::now();
    let record = EndpointRecord {
        id: crate::ids::EndpointId::generate(),
        account_id: account_id.clone(),
        url,
        description,
        event_types,
        enabled: request.enabled,
        disabled_reason: None,
        secret: WebhookSecret::generate().expose(),
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
        failing_since: None,
    };
    // The endpoint, the counter under its ceiling and the idempotency claim: all or nothing,
    // so concurrent creations can never pass the limit.
    let mut writes = vec![
        crate::store::WriteOp::Put {
            item: Item::from_serializable(record_key(account_id, &record.id), &record)?,
            condition: Some(Condition::NotExists),
        },
        count_change(account_id, 1),
    ];
    if let Some(key) = idempotency_key {
        writes.push(idempotency::claim(
            account_id,
            key,
            &request_hash,
            &record.id,
        )?);
    }
    match app.store.transact(writes).await {
        Ok(()) => {}
        Err(StoreError::TransactionCanceled { failed }) if failed.contains(&1) => {
            return Err(ApiError::Conflict(format!(
                "An account can have at most {MAX_ENDPOINTS} webhook endpoints; delete one first."
            )));
        }
        Err(StoreError::TransactionCanceled { failed }) if failed.contains(&2) => {
            return Err(ApiError::Conflict(
                "A request with this Idempotency-Key is in progress or done; retry to get its answer.".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    super::subscriptions::forget_subscriptions(app, account_id).await;
    // Answer only once every container's interest cache must have seen the endpoint.
    app.cache.settle().await;
    Ok((
        CreatedEndpointView {
            endpoint: EndpointView::from(&record),
            secret: record.secret,
        },
        false,
    ))
}

async fn own(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<EndpointRecord, ApiError> {
    let id = crate::ids::EndpointId::parse(id).ok_or_else(not_found)?;
    let item = app
        .store
        .get_consistent(&record_key(account_id, &id))
        .await?
        .ok_or_else(not_found)?;
    Ok(item.parse()?)
}

pub async fn get(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<EndpointView, ApiError> {
    Ok(EndpointView::from(&own(app, account_id, id).await?))
}

pub async fn list(
    app: &App,
    account_id: &crate::ids::AccountId,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<EndpointView>, Option<Cursor>), ApiError> {
    let (records, next): (Vec<EndpointRecord>, _) = app
        .store
        .query(
            keyspace::webhooks(account_id)
                .with_limit(limit)
                .after(cursor)
                .descending(),
        )
        .await?
        .parse()?;
    Ok((records.iter().map(EndpointView::from).collect(), next))
}

/// Writes `record` if nobody changed it since it was read at `version`.
async fn save(app: &App, mut record: EndpointRecord) -> Result<EndpointRecord, ApiError> {
    let read_version = record.version;
    record.version += 1;
    record.updated_at = clock::now();
    app.store
        .put(
            Item::from_serializable(record_key(&record.account_id, &record.id), &record)?,
            Some(Condition::equals("version", read_version)),
        )
        .await
        .map_err(|err| match err {
            StoreError::ConditionFailed => ApiError::Conflict(
                "The endpoint was changed by another request; read it again and retry.".into(),
            ),
            other => other.into(),
        })?;
    Ok(record)
}

pub async fn update(
    app: &App,
    caller: &crate::access::Caller,
    id: &str,
    patch: EndpointPatch,
) -> Result<EndpointView, ApiError> {
    let account_id = &caller.account_id;
    let mut record = own(app, account_id, id).await?;
    let mut errors = Vec::new();
    if let Some(url) = &patch.url {
        match validate_url(url, app) {
            Ok(url) => record.url = url,
            Err(e) => errors.push(e),
        }
    }
    if let Some(types) = &patch.event_types {
        match validate_event_types(types, caller.activity_events, &record.event_types) {
            Ok(types) => record.event_types = types,
            Err(e) => errors.push(e),
        }
    }
    if let Some(description) = &patch.description {
        match validate_description(Some(description)) {
            Ok(description) => record.description = description,
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if let Some(enabled) = patch.enabled {
        record.enabled = enabled;
        if enabled {
            record.disabled_reason = None;
            record.failing_since = None;
        }
    }
    let saved = save(app, record).await?;
    super::subscriptions::forget_subscriptions(app, account_id).await;
    // New event types or a re-enabled endpoint: as at creation, answer once everyone sees it.
    app.cache.settle().await;
    Ok(EndpointView::from(&saved))
}

pub async fn delete(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<(), ApiError> {
    let id = crate::ids::EndpointId::parse(id).ok_or_else(not_found)?;
    app.store
        .transact(vec![
            crate::store::WriteOp::Delete {
                key: record_key(account_id, &id),
                condition: Some(Condition::Exists),
            },
            count_change(account_id, -1),
        ])
        .await
        .map_err(|err| match err {
            StoreError::TransactionCanceled { .. } => not_found(),
            other => other.into(),
        })?;
    super::subscriptions::forget_subscriptions(app, account_id).await;
    Ok(())
}

/// Applies `change` to the endpoint's latest version (re-reading once on a concurrent write).
async fn change(
    app: &App,
    endpoint: &EndpointRecord,
    change: impl Fn(&mut EndpointRecord),
) -> Result<(), ApiError> {
    let mut current = endpoint.clone();
    for _ in 0..2 {
        change(&mut current);
        match save(app, current.clone()).await {
            Ok(_) => return Ok(()),
            Err(ApiError::Conflict(_)) => {
                current = own(app, &endpoint.account_id, &endpoint.id).await?;
            }
            Err(err) => return Err(err),
        }
    }
    Err(ApiError::Conflict("the endpoint keeps changing".into()))
}

/// The platform disables an endpoint (410 Gone, or failing for days).
pub async fn disable(app: &App, endpoint: &EndpointRecord, reason: &str) -> Result<(), ApiError> {
    change(app, endpoint, |record| {
        record.enabled = false;
        record.disabled_reason = Some(reason.to_owned());
    })
    .await
}

/// Remembers when the endpoint started failing.
pub async fn mark_failing(
    app: &App,
    endpoint: &EndpointRecord,
    since: DateTime<Utc>,
) -> Result<(), ApiError> {
    change(app, endpoint, |record| {
        record.failing_since.get_or_insert(since);
    })
    .await
}

/// A success clears the failure mark.
pub async fn mark_healthy(app: &App, endpoint: &EndpointRecord) -> Result<(), ApiError> {
    change(app, endpoint, |record| record.failing_since = None).await
}

/// A new secret; the old one keeps signing (alongside) until the grace period ends.
pub async fn rotate_secret(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<SecretView, ApiError> {
    let mut record = own(app, account_id, id).await?;
    let grace = chrono::Duration::from_std(app.config.webhook_secret_grace)
        .unwrap_or_else(|_| chrono::Duration::hours(24));
    record.previous_secret = Some(std::mem::replace(
        &mut record.secret,
        WebhookSecret::generate().expose(),
    ));
    record.previous_secret_expires_at = Some(clock::now() + grace);
    let record = save(app, record).await?;
    Ok(secret_view(&record))
}

fn secret_view(record: &EndpointRecord) -> SecretView {
    let live = record
        .previous_secret_expires_at
        .is_some_and(|until| clock::now() < until);
    SecretView {
        secret: record.secret.clone(),
        previous_secret: record.previous_secret.clone().filter(|_| live),
        previous_secret_expires_at: record.previous_secret_expires_at.filter(|_| live),
    }
}

pub async fn secret(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<SecretView, ApiError> {
    Ok(secret_view(&own(app, account_id, id).await?))
}

/// The result of `POST /v1/webhooks/{id}/test`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestDelivery {
    /// The `webhook-id` the test was sent with.
    pub webhook_id: String,
    pub url: String,
    pub success: bool,
    #[serde(flatten)]
    pub attempt: super::client::Attempt,
}

/// Delivers a signed `webhook.test` event to the endpoint now (enabled or not) and reports the
/// receiver's answer.
pub async fn send_test(
    app: &App,
    account_id: &crate::ids::AccountId,
    id: &str,
) -> Result<TestDelivery, ApiError> {
    let record = own(app, account_id, id).await?;
    let now = clock::now();
    let webhook_id = ids::new_id("msg");
    let body = serde_json::json!({
        "type": crate::events::envelope::EventType::WebhookTest.as_str(),
        "timestamp": clock::rfc3339(now),
        "data": {
            "endpoint_id": record.id,
            "message": "A test delivery from Orrery: if its signature verifies, this endpoint is ready.",
        },
    });
    let body = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let attempt = app
        .webhook_client()?
        .attempt(
            &record.url,
            &webhook_id,
            now.timestamp(),
            &body,
            &record.signing_secrets(now),
        )
        .await;
    Ok(TestDelivery {
        webhook_id,
        url: record.url,
        success: attempt.succeeded(),
        attempt,
    })
}

/// The endpoint fields' schemas in the OpenAPI document (what derive macros cannot state).
mod schema {
    use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaFormat, Type};

    use crate::events::envelope::EventType;
    use crate::openapi::schemas::{names, nullable, text};

    fn event_type_names() -> Object {
        names(EventType::DELIVERABLE.map(|kind| kind.as_str()))
    }

    /// `event_types` of a new endpoint (empty: every type).
    pub fn event_types() -> Array {
        ArrayBuilder::new()
            .items(event_type_names())
            .description(Some(
                "Event types to deliver (see `GET /v1/webhooks/event-types`); empty or absent: all.",
            ))
            .build()
    }

    /// `event_types` of an endpoint patch: null or absent leaves them.
    pub fn event_types_or_null() -> Array {
        ArrayBuilder::new()
            .schema_type(nullable(Type::Array))
            .items(event_type_names())
            .description(Some("Event types to deliver; empty: all."))
            .build()
    }

    fn url_builder() -> ObjectBuilder {
        ObjectBuilder::new()
            .format(Some(SchemaFormat::Custom("uri".into())))
            .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]://"))
            .max_length(Some(crate::webhooks::ssrf::MAX_URL_BYTES))
            .description(Some(
                "An `https` URL of a public host: loopback, private, link-local, CGNAT, \
                 multicast and internal names are refused with a 422 (and checked again after \
                 DNS resolution at delivery).",
            ))
    }

    /// A webhook endpoint's URL.
    pub fn url() -> Object {
        url_builder().schema_type(Type::String).build()
    }

    /// A webhook endpoint's URL in a patch: null or absent leaves it.
    pub fn url_or_null() -> Object {
        url_builder().schema_type(nullable(Type::String)).build()
    }

    /// A webhook endpoint's description (empty once trimmed: none).
    pub fn description() -> Object {
        text(
            crate::openapi::TRIMMED_UP_TO_500,
            "At most 500 characters once trimmed.",
            true,
        )
    }
}
