//! Account and key management: the operations behind `/v1/api-keys` and `/v1/admin/accounts`.
//! Every read and write is keyed by the caller's account, so another account's id is a 404.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::accounts::{self, Account, AccountStatus};
use super::auth::{Caller, forget_account, forget_key};
use super::keys::{self, KeyMode, KeyRecord, KeyStatus, NewKeyRequest};
use super::quota::USAGE_RETENTION_DAYS;
use super::tiers::Tier;
use crate::error::ApiError;
use crate::events::{EventType, publish};
use crate::store::{Cursor, Store, StoreError, keyspace};
use crate::{App, FieldError, clock};

/// A key as its owner sees it (never the key itself, except once at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub mode: KeyMode,
    pub prefix: String,
    pub scopes: Vec<String>,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub replaced_by: Option<String>,
    pub last_used_at: Option<String>,
    /// Requests made with this key today (UTC), per endpoint class.
    pub usage_today: BTreeMap<&'static str, i64>,
}

/// A new key: the view plus the full key, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedKeyView {
    #[serde(flatten)]
    pub view: KeyView,
    pub key: String,
}

/// Usage read from the account's daily counters.
#[derive(Debug, Default, PartialEq)]
pub struct UsageIndex {
    /// key id → day → class → count.
    pub days: HashMap<String, BTreeMap<NaiveDate, BTreeMap<&'static str, i64>>>,
    pub last_used: HashMap<String, String>,
}

impl UsageIndex {
    /// The usage of `keys` since `first_day` and when each was last used: the account's counters
    /// read newest day first, stopping once past `first_day` with every key's last use known
    /// (or the day before it was created), so a listing reads the recent days, not the whole
    /// 90-day retention.
    pub async fn load(
        store: &dyn Store,
        account_id: &crate::ids::AccountId,
        first_day: NaiveDate,
        keys: &[&KeyRecord],
    ) -> Result<Self, StoreError> {
        let mut index = UsageIndex::default();
        // The newest day each key's `last#` was seen on: final once an older day is reached.
        let mut last_seen_on: HashMap<&str, NaiveDate> = HashMap::new();
        let mut cursor = None;
        loop {
            let page = store
                .query(
                    keyspace::quota_counters(account_id)
                        .descending()
                        .with_limit(200)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let Some((day, class)) = keyspace::parse_quota_counter(&item.key.sk) else {
                    continue;
                };
                let settled = |key: &&KeyRecord| {
                    key.created_at.date_naive() > day
                        || last_seen_on
                            .get(key.id.as_str())
                            .is_some_and(|seen| *seen > day)
                };
                if day < first_day && keys.iter().all(settled) {
                    return Ok(index.without_zeros());
                }
                let Some(class) = super::QuotaClass::ALL
                    .into_iter()
                    .find(|c| c.as_str() == class)
                else {
                    continue;
                };
                for (name, value) in &item.attrs {
                    if let Some(key_id) = name.strip_prefix("key#") {
                        let count = value.as_i64().unwrap_or(0);
                        if day >= first_day && count != 0 {
                            // A day's counts are spread over its counter, its hour items and
                            // (hot accounts) its blocks: add up.
                            *index
                                .days
                                .entry(key_id.to_owned())
                                .or_default()
                                .entry(day)
                                .or_default()
                                .entry(class.as_str())
                                .or_default() += count;
                        }
                    } else if let (Some(key_id), Some(at)) =
                        (name.strip_prefix("last#"), value.as_str())
                    {
                        let last = index.last_used.entry(key_id.to_owned()).or_default();
                        if at > last.as_str() {
                            *last = at.to_owned();
                        }
                        if let Some(key) = keys.iter().find(|key| key.id.as_str() == key_id) {
                            last_seen_on.entry(key.id.as_str()).or_insert(day);
                        }
                    }
                }
            }
            cursor = page.next;
            if cursor.is_none() {
                return Ok(index.without_zeros());
            }
        }
    }

    /// Drops the counts that refunds brought back to zero.
    fn without_zeros(mut self) -> Self {
        for days in self.days.values_mut() {
            for counts in days.values_mut() {
                counts.retain(|_, count| *count != 0);
            }
            days.retain(|_, counts| !counts.is_empty());
        }
        self
    }

    fn view(&self, record: &KeyRecord, now: DateTime<Utc>) -> KeyView {
        let today = now.date_naive();
        KeyView {
            id: record.id.to_string(),
            name: record.name.clone(),
            mode: record.mode,
            prefix: record.display_prefix.clone(),
            scopes: record.scopes.clone(),
            status: record.effective_status(now),
            created_at: record.created_at,
            expires_at: record.valid_until,
            revoked_at: record.revoked_at,
            replaced_by: record.replaced_by.as_ref().map(ToString::to_string),
            last_used_at: self.last_used.get(record.id.as_str()).cloned(),
            usage_today: self
                .days
                .get(record.id.as_str())
                .and_then(|days| days.get(&today))
                .cloned()
                .unwrap_or_default(),
        }
    }
}

fn fresh_view(record: &KeyRecord, now: DateTime<Utc>) -> KeyView {
    UsageIndex::default().view(record, now)
}

fn not_found() -> ApiError {
    ApiError::NotFound("No API key with this id.".into())
}

/// A key may manage (rotate, revoke, delete) only keys it could have created: scopes that are a
/// subset of its own, in a mode it may hold (a test key never touches a live key).
fn may_manage(caller: &Caller, target: &KeyRecord) -> Result<(), ApiError> {
    if caller.mode == KeyMode::Test && target.mode == KeyMode::Live {
        return Err(ApiError::Forbidden(
            "A test key cannot manage live keys.".into(),
        ));
    }
    if let Some(scope) = target
        .scopes
        .iter()
        .find(|scope| !caller.scopes.contains(scope))
    {
        return Err(ApiError::Forbidden(format!(
            "This API key cannot manage a key holding the {scope:?} scope, which it does not hold."
        )));
    }
    Ok(())
}

/// The caller's own key `key_id`, if the caller may manage it (404 before 403: another
/// account's id stays invisible).
async fn manageable_key(app: &App, caller: &Caller, key_id: &str) -> Result<KeyRecord, ApiError> {
    let record = own_key(app, &caller.account_id, key_id).await?;
    may_manage(caller, &record)?;
    Ok(record)
}

async fn own_key(
    app: &App,
    account_id: &crate::ids::AccountId,
    key_id: &str,
) -> Result<KeyRecord, ApiError> {
    let key_id = crate::ids::KeyId::parse(key_id).ok_or_else(not_found)?;
    keys::get(app.store.as_ref(), account_id, &key_id)
        .await?
        .ok_or_else(not_found)
}

/// Creates a key for the caller's account. A key can only hand out what it holds: at most its
/// own scopes (by default exactly those), and a test key only test keys.
pub async fn create_key(
    app: &App,
    caller: &Caller,
    mut request: NewKeyRequest,
) -> Result<CreatedKeyView, ApiError> {
    request.validate(clock::now())?;
    let account_id = &caller.account_id;
    match &request.scopes {
        Some(scopes) => {
            if let Some(scope) = scopes.iter().find(|scope| !caller.scopes.contains(scope)) {
                return Err(ApiError::Forbidden(format!(
                    "This API key cannot grant the {scope:?} scope, which it does not hold."
                )));
            }
        }
        None => request.scopes = Some(caller.scopes.clone()),
    }
    let mode = request.mode.unwrap_or(caller.mode);
    if caller.mode == KeyMode::Test && mode == KeyMode::Live {
        return Err(ApiError::Forbidden(
            "A test key cannot create live keys.".into(),
        ));
    }
    request.mode = Some(mode);
    let hasher = app.key_hasher().await?;
    let (created, writes) = keys::new_key(&hasher, account_id, &request)?;
    app.store.transact(writes).await?;
    publish(
        app,
        EventType::KeyCreated,
        account_id,
        serde_json::json!({"key_id": created.record.id, "name": created.record.name}),
    )
    .await;
    Ok(CreatedKeyView {
        view: fresh_view(&created.record, clock::now()),
        key: created.key.expose().to_owned(),
    })
}

pub async fn list_keys(
    app: &App,
    account_id: &crate::ids::AccountId,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<KeyView>, Option<Cursor>), ApiError> {
    let now = clock::now();
    let (records, next) = keys::list(app.store.as_ref(), account_id, limit, cursor).await?;
    let listed: Vec<&KeyRecord> = records.iter().collect();
    let usage = UsageIndex::load(app.store.as_ref(), account_id, now.date_naive(), &listed).await?;
    Ok((
        records
            .iter()
            .map(|record| usage.view(record, now))
            .collect(),
        next,
    ))
}

pub async fn get_key(
    app: &App,
    account_id: &crate::ids::AccountId,
    key_id: &str,
) -> Result<KeyView, ApiError> {
    let record = own_key(app, account_id, key_id).await?;
    let now = clock::now();
    let usage =
        UsageIndex::load(app.store.as_ref(), account_id, now.date_naive(), &[&record]).await?;
    Ok(usage.view(&record, now))
}

/// Per-day, per-class counts of one key over the last `days` days (at most the retention).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyUsageView {
    pub key_id: String,
    pub last_used_at: Option<String>,
    pub days: Vec<DayUsage>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayUsage {
    pub date: NaiveDate,
    pub counts: BTreeMap<&'static str, i64>,
}

pub async fn key_usage(
    app: &App,
    account_id: &crate::ids::AccountId,
    key_id: &str,
    days: u32,
) -> Result<KeyUsageView, ApiError> {
    if !(1..=USAGE_RETENTION_DAYS as u32).contains(&days) {
        return Err(ApiError::validation(
            "days",
            format!("must be 1..={USAGE_RETENTION_DAYS}"),
        ));
    }
    let record = own_key(app, account_id, key_id).await?;
    let first_day = clock::now().date_naive() - ChronoDuration::days(i64::from(days) - 1);
    let mut usage = UsageIndex::load(app.store.as_ref(), account_id, first_day, &[&record]).await?;
    let days = usage.days.remove(record.id.as_str()).unwrap_or_default();
    Ok(KeyUsageView {
        last_used_at: usage.last_used.remove(record.id.as_str()),
        key_id: record.id.to_string(),
        days: days
            .into_iter()
            .rev()
            .map(|(date, counts)| DayUsage { date, counts })
            .collect(),
    })
}

pub async fn revoke_key(app: &App, caller: &Caller, key_id: &str) -> Result<KeyView, ApiError> {
    let account_id = &caller.account_id;
    let mut record = manageable_key(app, caller, key_id).await?;
    if record.status == KeyStatus::Revoked {
        return Ok(fresh_view(&record, clock::now()));
    }
    record.status = KeyStatus::Revoked;
    record.revoked_at = Some(clock::now());
    app.store.transact(keys::update_writes(&record)?).await?;
    forget_key(app, &record.hash).await;
    publish(
        app,
        EventType::KeyRevoked,
        account_id,
        serde_json::json!({"key_id": record.id}),
    )
    .await;
    Ok(fresh_view(&record, clock::now()))
}

pub async fn delete_key(app: &App, caller: &Caller, key_id: &str) -> Result<(), ApiError> {
    let account_id = &caller.account_id;
    let record = manageable_key(app, caller, key_id).await?;
    keys::delete(app.store.as_ref(), &record)
        .await
        .map_err(|err| match err {
            StoreError::TransactionCanceled { .. } => not_found(),
            other => other.into(),
        })?;
    forget_key(app, &record.hash).await;
    if record.status == KeyStatus::Active {
        publish(
            app,
            EventType::KeyRevoked,
            account_id,
            serde_json::json!({"key_id": record.id, "deleted": true}),
        )
        .await;
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old key keeps working, at most 604800 (7 days); default from configuration
    /// (24 h).
    #[serde(default, deserialize_with = "crate::http::whole_number")]
    #[schema(maximum = 604800)]
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedKeyView {
    #[serde(flatten)]
    pub key: CreatedKeyView,
    pub previous_key: KeyView,
}

pub async fn rotate_key(
    app: &App,
    caller: &Caller,
    key_id: &str,
    request: RotateRequest,
) -> Result<RotatedKeyView, ApiError> {
    let grace = match request.grace_seconds {
        Some(seconds) if seconds > 7 * 86_400 => {
            return Err(ApiError::validation(
                "grace_seconds",
                "must be at most 604800 (7 days)",
            ));
        }
        Some(seconds) => ChronoDuration::seconds(seconds as i64),
        None => ChronoDuration::from_std(app.config.key_rotation_grace)
            .unwrap_or_else(|_| ChronoDuration::days(1)),
    };
    let account_id = &caller.account_id;
    let mut old = manageable_key(app, caller, key_id).await?;
    let now = clock::now();
    if old.refusal(now).is_some() || old.replaced_by.is_some() {
        return Err(ApiError::Conflict(
            "Only an active key that was not rotated already can be rotated.".into(),
        ));
    }
    let hasher = app.key_hasher().await?;
    let request = NewKeyRequest {
        name: old.name.clone(),
        expires_at: old.valid_until,
        scopes: Some(old.scopes.clone()),
        mode: Some(old.mode),
    };
    let (created, mut writes) = keys::new_key(&hasher, account_id, &request)?;
    let grace_end = now + grace;
    old.valid_until = Some(
        old.valid_until
            .map_or(grace_end, |until| until.min(grace_end)),
    );
    old.replaced_by = Some(created.record.id.clone());
    writes.extend(keys::update_writes(&old)?);
    app.store.transact(writes).await?;
    forget_key(app, &old.hash).await;
    publish(
        app,
        EventType::KeyCreated,
        account_id,
        serde_json::json!({"key_id": created.record.id, "rotated_from": old.id}),
    )
    .await;
    Ok(RotatedKeyView {
        key: CreatedKeyView {
            view: fresh_view(&created.record, now),
            key: created.key.expose().to_owned(),
        },
        previous_key: fresh_view(&old, now),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    #[schema(schema_with = account_name_schema)]
    pub name: String,
    #[serde(default = "default_tier")]
    pub tier: Tier,
    /// Name of the first API key.
    #[serde(default)]
    #[schema(schema_with = first_key_name_schema)]
    pub key_name: Option<String>,
    /// Publish the per-request activity events (`chart.calculated`, `reading.generated`); off
    /// unless set.
    #[serde(default)]
    pub activity_events: bool,
}

fn default_tier() -> Tier {
    Tier::Free
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewAccountView {
    pub account: Account,
    pub api_key: CreatedKeyView,
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    let length = name.trim().chars().count();
    if length == 0 || length > 200 {
        return Err(ApiError::validation("name", "must be 1 to 200 characters"));
    }
    Ok(())
}

pub async fn create_account(
    app: &App,
    request: NewAccountRequest,
) -> Result<NewAccountView, ApiError> {
    validate_name(&request.name)?;
    let account = Account {
        activity_events: request.activity_events,
        ..Account::new(&request.name, request.tier)
    };
    let key_request = NewKeyRequest {
        name: request.key_name.unwrap_or_else(|| "default".into()),
        ..NewKeyRequest::default()
    };
    key_request
        .validate(clock::now())
        .map_err(|err| match err {
            ApiError::Validation(errors) => ApiError::Validation(
                errors
                    .into_iter()
                    .map(|e| FieldError::new("key_name", e.message))
                    .collect(),
            ),
            other => other,
        })?;
    let hasher = app.key_hasher().await?;
    let (created, mut writes) = keys::new_key(&hasher, &account.id, &key_request)?;
    writes.insert(0, account.create_write()?);
    app.store.transact(writes).await?;
    publish(
        app,
        EventType::KeyCreated,
        &account.id,
        serde_json::json!({"key_id": created.record.id, "name": created.record.name}),
    )
    .await;
    Ok(NewAccountView {
        api_key: CreatedKeyView {
            view: fresh_view(&created.record, clock::now()),
            key: created.key.expose().to_owned(),
        },
        account,
    })
}

pub async fn get_account(app: &App, id: &str) -> Result<Account, ApiError> {
    let id = crate::ids::AccountId::parse(id)
        .ok_or_else(|| ApiError::NotFound("No account with this id.".into()))?;
    accounts::get(app.store.as_ref(), &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("No account with this id.".into()))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default)]
    #[schema(schema_with = account_name_or_null_schema)]
    pub name: Option<String>,
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub status: Option<AccountStatus>,
    /// Count this account's metered requests on quota blocks (for thousands of requests a
    /// second; see docs/data-model.md, "Hot accounts").
    #[serde(default)]
    pub hot_quota: Option<bool>,
    /// Publish the per-request activity events (`chart.calculated`, `reading.generated`) to the
    /// event log and webhooks (see docs/cost.md for what each costs).
    #[serde(default)]
    pub activity_events: Option<bool>,
}

/// Changes an account (the billing hook): takes effect at once in this container and within the
/// cache staleness bound everywhere.
pub async fn update_account(app: &App, id: &str, patch: AccountPatch) -> Result<Account, ApiError> {
    if let Some(name) = &patch.name {
        validate_name(name)?;
    }
    let mut account = get_account(app, id).await?;
    if let Some(name) = patch.name {
        account.name = name.trim().to_owned();
    }
    if let Some(tier) = patch.tier {
        account.tier = tier;
    }
    if let Some(status) = patch.status {
        account.status = status;
    }
    if let Some(hot) = patch.hot_quota {
        account.hot_quota = hot;
    }
    if let Some(activity) = patch.activity_events {
        account.activity_events = activity;
    }
    account.updated_at = clock::now();
    // A concurrent change makes this a 409 (`ConditionFailed` → Conflict): retry with fresh data.
    let account = accounts::save(app.store.as_ref(), &account).await?;
    forget_account(app, &account.id).await;
    Ok(account)
}

/// Marks an account hot (its counter write was throttled): its requests count on quota blocks
/// from now on, here at once and in every container within the cache's sync interval. A
/// concurrent change of the account only means another container marked it first.
pub async fn mark_hot(app: &App, account_id: &crate::ids::AccountId) {
    let marked = async {
        let mut account = get_account(app, account_id.as_str()).await?;
        // Already hot (another container was first): nothing to tell the others.
        if !account.hot_quota {
            account.hot_quota = true;
            account.updated_at = clock::now();
            accounts::save(app.store.as_ref(), &account).await?;
            forget_account(app, account_id).await;
        }
        Ok::<_, ApiError>(())
    };
    if let Err(err) = marked.await {
        tracing::warn!(error = %err, %account_id, "could not mark the account hot");
    }
}

pub async fn list_accounts(
    app: &App,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<Account>, Option<Cursor>), ApiError> {
    Ok(accounts::list(app.store.as_ref(), limit, cursor).await?)
}

/// Preloads key verifications and account tiers of the given accounts into the cache (the admin
/// warm endpoint; L2's hot set is warmed separately).
pub async fn warm_accounts(app: &App, account_ids: &[String]) -> Result<usize, ApiError> {
    let mut warmed = 0;
    // Ids that are not account ids name no account: skipped, like unknown ones.
    for account_id in account_ids
        .iter()
        .filter_map(|id| crate::ids::AccountId::parse(id))
    {
        let Some(account) = accounts::get(app.store.as_ref(), &account_id).await? else {
            continue;
        };
        app.cache
            .put(&crate::cache::ACCOUNTS, &account.id, &account)
            .await;
        warmed += 1;
        let mut cursor = None;
        loop {
            let (records, next) = keys::list(app.store.as_ref(), &account_id, 100, cursor).await?;
            for record in records
                .into_iter()
                .filter(|r| r.status == KeyStatus::Active)
            {
                super::auth::remember_key(app, &record).await;
                warmed += 1;
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(warmed)
}

/// An account's name, as the OpenAPI document states it.
fn account_name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::schemas::text(
        crate::openapi::TRIMMED_1_TO_200,
        "1 to 200 characters once trimmed.",
        false,
    )
}

/// An account's name in a patch: null or absent leaves it.
fn account_name_or_null_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::schemas::text(
        crate::openapi::TRIMMED_1_TO_200,
        "1 to 200 characters once trimmed.",
        true,
    )
}

/// The name of an account's first key.
fn first_key_name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::schemas::text(
        crate::openapi::TRIMMED_1_TO_100,
        "Name of the first API key: 1 to 100 characters once trimmed (default `default`).",
        true,
    )
}
