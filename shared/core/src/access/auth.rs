//! Authentication and metering as axum layers/extractors: a function declares its quota class
//! and scope with `.route_layer(metered(&app, QuotaClass::Charts, "charts"))` and its handlers
//! take a [`Caller`].
//!
//! Per request, in a warm container: key verification and the account's tier come from the
//! cache (no store read); admission is one conditional increment (the only write); a request that
//! ends in a client error gets its unit back, so 4xx responses consume nothing. Once a quota is
//! known to be exhausted for the day, requests are refused from the cache with no write at all.

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::accounts::{self, Account, AccountStatus};
use super::hot::Taken;
use super::keys::{self, KeyMode, KeyRecord, KeyRefusal};
use super::quota::{self, QuotaState, Window};
use super::tiers::{QuotaClass, Tier};
use crate::cache::{ACCOUNTS, EXHAUSTED, KEYS};
use crate::error::ApiError;
use crate::secrets::Secrets;
use crate::store::StoreError;
use crate::{App, clock};

/// The authenticated caller of a metered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: crate::ids::AccountId,
    pub key_id: crate::ids::KeyId,
    pub tier: Tier,
    pub scopes: Vec<String>,
    pub mode: KeyMode,
    /// The account counts its requests on quota blocks (`access::hot`).
    pub hot_quota: bool,
    /// The account's requests publish activity events (`EventType::ACTIVITY`).
    pub activity_events: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Internal("route has no `metered` layer but asks for a Caller".into())
        })
    }
}

/// What the key cache holds for a key hash; unknown hashes are cached too, so guessing keys
/// cannot hammer the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum CachedKey {
    Known(Box<KeyRecord>),
    Unknown,
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    bearer.or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110
/// §11.1) and may be followed by any amount of white space.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The account behind a key, through the cache.
pub async fn cached_account(
    app: &App,
    account_id: &crate::ids::AccountId,
) -> Result<Option<Account>, StoreError> {
    app.cache
        .load(&ACCOUNTS, account_id, async || {
            // Strongly consistent, so no container caches a tier or status older than a change.
            app.store
                .get_consistent(&accounts::account_key(account_id))
                .await?
                .map(|item| item.parse::<Account>())
                .transpose()
        })
        .await
}

/// Verifies the presented key: 401 with the reason for missing, malformed, invalid, revoked or
/// expired keys; 403 for a suspended account.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let presented = presented_key(headers)
        .filter(|k| !k.is_empty())
        .ok_or(KeyRefusal::Missing)?;
    let presented = keys::parse_presented(presented)?;
    let hasher = app.key_hasher().await?;
    let hash = hasher.hash(presented);
    let cached = app
        .cache
        .load(&KEYS, &hash, async || {
            Ok::<_, StoreError>(Some(
                match keys::lookup(app.store.as_ref(), &hash).await? {
                    Some(record) => CachedKey::Known(Box::new(record)),
                    None => CachedKey::Unknown,
                },
            ))
        })
        .await?;
    let Some(CachedKey::Known(record)) = cached else {
        return Err(KeyRefusal::Invalid.into());
    };
    let record = *record;
    if !hasher.matches(presented, &record.hash) {
        return Err(KeyRefusal::Invalid.into());
    }
    caller_of(app, record).await
}

/// The caller a verified key stands for: 401 for a revoked or expired key, 403 for a suspended
/// account.
pub(super) async fn caller_of(app: &App, record: KeyRecord) -> Result<Caller, ApiError> {
    if let Some(refusal) = record.refusal(clock::now()) {
        return Err(refusal.into());
    }
    let account = cached_account(app, &record.account_id)
        .await?
        .ok_or(KeyRefusal::Invalid)?;
    if account.status == AccountStatus::Suspended {
        return Err(ApiError::Forbidden("The account is suspended.".into()));
    }
    Ok(Caller {
        account_id: account.id,
        key_id: record.id,
        tier: account.tier,
        scopes: record.scopes,
        mode: record.mode,
        hot_quota: account.hot_quota,
        activity_events: account.activity_events,
    })
}

/// Puts a key's verification into the cache (warming).
pub async fn remember_key(app: &App, record: &KeyRecord) {
    app.cache
        .put(
            &KEYS,
            &record.hash,
            &CachedKey::Known(Box::new(record.clone())),
        )
        .await;
}

/// Forgets a key's cached verification (after revoke, rotate or delete): at once here, and in
/// other containers within the cache's staleness bound.
pub async fn forget_key(app: &App, hash: &str) {
    app.cache.invalidate(&KEYS, hash).await;
}

/// Forgets an account's cached tier and exhaustion marks (after a tier or status change).
pub async fn forget_account(app: &App, account_id: &crate::ids::AccountId) {
    app.cache.invalidate(&ACCOUNTS, account_id).await;
    let day = Window::containing(clock::now()).day;
    for class in QuotaClass::ALL {
        app.cache
            .invalidate(&EXHAUSTED, &exhausted_key(account_id, class, day))
            .await;
    }
}

fn exhausted_key(
    account_id: &crate::ids::AccountId,
    class: QuotaClass,
    day: chrono::NaiveDate,
) -> String {
    format!("{account_id}:{}:{day}", class.as_str())
}

#[derive(Clone)]
struct Meter {
    app: App,
    class: QuotaClass,
    scope: &'static str,
}

/// Puts every route of `router` behind authentication, the `scope` check and the daily quota of
/// `class`, with the rate-limit headers on every response.
pub fn metered(router: Router, app: &App, class: QuotaClass, scope: &'static str) -> Router {
    router.route_layer(middleware::from_fn_with_state(
        Meter {
            app: app.clone(),
            class,
            scope,
        },
        meter,
    ))
}

fn too_many(state: &QuotaState) -> Response {
    let mut response = ApiError::RateLimited {
        detail: format!(
            "The daily quota of {} {} requests is used up; it resets at {}.",
            state.limit,
            state.class.as_str(),
            clock::rfc3339(state.resets_at)
        ),
        retry_after_seconds: state.reset_in_seconds,
    }
    .into_response();
    state.apply(response.headers_mut());
    response
}

/// Authenticates the request and checks that its key holds `scope`.
async fn authorise(app: &App, headers: &HeaderMap, scope: &str) -> Result<Caller, ApiError> {
    let caller = authenticate(app, headers).await?;
    tracing::Span::current().record("account_id", caller.account_id.as_str());
    if !caller.scopes.iter().any(|s| s == scope) {
        return Err(ApiError::Forbidden(format!(
            "This API key lacks the {scope:?} scope this endpoint needs."
        )));
    }
    Ok(caller)
}

/// Puts every route of `router` behind authentication and the `scope` check only, for routes
/// whose handler takes its quota itself (a batch reserves one unit per item, all at once).
pub fn authenticated(router: Router, app: &App, scope: &'static str) -> Router {
    router.route_layer(middleware::from_fn_with_state(
        Meter {
            app: app.clone(),
            class: QuotaClass::Management,
            scope,
        },
        |State(meter): State<Meter>, mut req: Request, next: Next| async move {
            match authorise(&meter.app, req.headers(), meter.scope).await {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    next.run(req).await
                }
                Err(err) => err.into_response(),
            }
        },
    ))
}

/// The state of `class` for the caller's account now (one strongly consistent read).
pub async fn quota_state(
    app: &App,
    caller: &Caller,
    class: QuotaClass,
) -> Result<QuotaState, ApiError> {
    let now = clock::now();
    let window = Window::containing(now);
    let limit = app.config.tiers.limit(caller.tier, class);
    let used = app
        .store
        .get_consistent(&quota::counter_key(&caller.account_id, window.day, class))
        .await?
        .and_then(|item| item.attrs.get("count").and_then(serde_json::Value::as_i64))
        .unwrap_or(0);
    Ok(QuotaState {
        class,
        limit,
        used: u32::try_from(used.max(0)).unwrap_or(u32::MAX),
        resets_at: window.resets_at,
        reset_in_seconds: window.seconds_left(now),
    })
}

async fn meter(State(meter): State<Meter>, mut req: Request, next: Next) -> Response {
    let app = &meter.app;
    let started = std::time::Instant::now();
    let caller = match authorise(app, req.headers(), meter.scope).await {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let endpoint = endpoint_of(&req);
    let mut admitted = match admit(app, &caller, meter.class, &endpoint).await {
        Ok(admitted) => admitted,
        Err(refused) => {
            let refused = refused.into_response();
            measure(
                app,
                &caller,
                meter.class,
                &endpoint,
                &refused,
                started,
                false,
            );
            return refused;
        }
    };
    req.extensions_mut().insert(caller.clone());
    let mut response = next.run(req).await;
    // A client error consumes nothing, and neither does a replay of an earlier creation.
    if response.status().is_client_error() {
        give_back(
            app,
            &caller,
            &mut admitted,
            quota::RefundReason::ClientError,
        )
        .await;
    } else if crate::idempotency::is_replay(&response) {
        give_back(app, &caller, &mut admitted, quota::RefundReason::Replay).await;
    } else if response.status().is_success() && admitted.exact {
        crate::analytics::thresholds::check(app, &caller, &admitted.state).await;
    }
    admitted.state.apply(response.headers_mut());
    measure(
        app,
        &caller,
        meter.class,
        &endpoint,
        &response,
        started,
        true,
    );
    app.cache.maybe_emit_metrics().await;
    response
}

/// The endpoint's label for analytics: method and route template (`POST /v1/charts`).
fn endpoint_of(req: &Request) -> String {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("other", axum::extract::MatchedPath::as_str);
    crate::analytics::cells::endpoint_label(req.method(), route)
}

/// Hands the request's latency, cache use and (for 5xx and 429) outcome to the analytics
/// aggregator, which flushes them at most once per interval.
fn measure(
    app: &App,
    caller: &Caller,
    class: QuotaClass,
    endpoint: &str,
    response: &Response,
    started: std::time::Instant,
    admitted: bool,
) {
    if !app.config.analytics {
        return;
    }
    app.analytics.record(&crate::analytics::Measured {
        account: &caller.account_id,
        class,
        endpoint,
        at: clock::now(),
        status: response.status().as_u16(),
        elapsed: started.elapsed(),
        cache: response
            .extensions()
            .get::<crate::analytics::CacheUse>()
            .copied(),
        admitted,
    });
    crate::analytics::maybe_flush(app);
}

/// A unit taken for a request: the quota after it, and when and where it was taken (a refund
/// books its cells in the same hour and endpoint).
#[derive(Debug, Clone)]
pub struct Admitted {
    pub state: QuotaState,
    pub at: chrono::DateTime<chrono::Utc>,
    pub endpoint: String,
    /// The item the unit was counted on: the day's counter, or a block of it.
    pub counter: crate::store::Key,
    /// Whether `state.used` is exact (always on the counter; on a hot account's block, only
    /// right after a sweep counted it). Only an exact count fires a usage threshold.
    pub exact: bool,
}

/// Why [`admit`] took no unit.
#[derive(Debug)]
pub enum Refused {
    /// The day's quota is used up (the state says how far and when it resets).
    Exhausted(QuotaState),
    /// The store failed.
    Failed(ApiError),
}

impl IntoResponse for Refused {
    /// A 429 with the rate-limit headers, or the store failure's problem.
    fn into_response(self) -> Response {
        match self {
            Refused::Exhausted(state) => too_many(&state),
            Refused::Failed(err) => err.into_response(),
        }
    }
}

/// Takes one unit of `class` for `caller`'s account, counted for `endpoint`: the quota state
/// after it, or why not.
pub async fn admit(
    app: &App,
    caller: &Caller,
    class: QuotaClass,
    endpoint: &str,
) -> Result<Admitted, Refused> {
    let now = clock::now();
    let window = Window::containing(now);
    let limit = app.config.tiers.limit(caller.tier, class);
    let mut state = QuotaState {
        class,
        limit,
        used: limit,
        resets_at: window.resets_at,
        reset_in_seconds: window.seconds_left(now),
    };
    // Exhausted at this limit already today: refuse without a write. (A tier upgrade raises the
    // limit above the remembered one, which lets the request through to the counter again.)
    let exhausted = exhausted_key(&caller.account_id, class, window.day);
    if app
        .cache
        .get::<u32>(&EXHAUSTED, &exhausted)
        .await
        .is_some_and(|at| at >= limit)
    {
        return Err(Refused::Exhausted(state));
    }
    let cells = app.config.usage_cells_for(endpoint);
    // A batch reserves many units in one transaction with its record: always on the counter.
    let blocks_allowed = class != QuotaClass::BatchItems;
    let taken = if caller.hot_quota && blocks_allowed {
        take_from_block(app, caller, class, limit, &window, now, cells, false).await
    } else {
        let admission = quota::admission(
            &caller.account_id,
            &caller.key_id,
            class,
            limit,
            &window,
            now,
            cells,
        );
        let counter = admission.key.clone();
        match app.store.increment_billed(admission).await {
            Err(StoreError::Throttled(reason)) if app.config.hot_quota_auto && blocks_allowed => {
                // More requests a second than the counter item takes: from now on this
                // account counts on blocks, everywhere (the account cache is invalidated).
                tracing::warn!(account_id = %caller.account_id, %reason, "quota counter throttled: the account now counts on quota blocks");
                super::manage::mark_hot(app, &caller.account_id).await;
                take_from_block(app, caller, class, limit, &window, now, cells, false).await
            }
            // The counter handed its last units to blocks (the account was marked hot and this
            // container has not heard yet): they may still have room.
            Err(StoreError::LimitExceeded { .. }) if blocks_allowed => {
                take_from_block(app, caller, class, limit, &window, now, cells, true).await
            }
            Ok((used, write_units)) => {
                if write_units > 1.0 {
                    // The counter passed 1 KB: move its earlier hours out (once an hour).
                    super::compaction::after_admission(app, &caller.account_id, class, now).await;
                }
                Ok(Some(Taken {
                    counter,
                    used,
                    exact: true,
                }))
            }
            Err(err) => Err(err),
        }
    };
    let Taken {
        counter,
        used,
        exact,
    } = match taken {
        Ok(Some(taken)) => taken,
        Ok(None) | Err(StoreError::LimitExceeded { .. }) => {
            let ttl = std::time::Duration::from_secs(state.reset_in_seconds);
            app.cache
                .put_with_ttl(&EXHAUSTED, &exhausted, &limit, ttl)
                .await;
            return Err(Refused::Exhausted(state));
        }
        Err(err) => return Err(Refused::Failed(ApiError::from(err))),
    };
    state.used = u32::try_from(used.max(0)).unwrap_or(limit).min(limit);
    Ok(Admitted {
        state,
        at: now,
        endpoint: endpoint.to_owned(),
        counter,
        exact,
    })
}

/// One unit from a quota block of a hot account; `None` when the day's quota is used up.
#[allow(clippy::too_many_arguments)]
async fn take_from_block(
    app: &App,
    caller: &Caller,
    class: QuotaClass,
    limit: u32,
    window: &Window,
    now: chrono::DateTime<chrono::Utc>,
    cells: Option<&str>,
    counter_spent: bool,
) -> Result<Option<Taken>, StoreError> {
    app.hot_quota
        .take(
            counter_spent,
            app,
            &caller.account_id,
            &caller.key_id,
            class,
            limit,
            window,
            now,
            cells,
        )
        .await
}

/// Gives back the unit [`admit`] took (the request ended in a client error, or replayed).
pub async fn give_back(
    app: &App,
    caller: &Caller,
    admitted: &mut Admitted,
    reason: quota::RefundReason,
) {
    let state = &mut admitted.state;
    let refund = quota::refund(
        admitted.counter.clone(),
        &caller.key_id,
        admitted.at,
        app.config.usage_cells_for(&admitted.endpoint),
        reason,
    );
    match app.store.increment(refund).await {
        Ok(_) => {
            state.used = state.used.saturating_sub(1);
            // The unit is free again: requests refused meanwhile must not stay refused.
            let exhausted =
                exhausted_key(&caller.account_id, state.class, admitted.at.date_naive());
            app.cache.invalidate(&EXHAUSTED, &exhausted).await;
        }
        Err(err) => tracing::warn!(error = %err, "could not refund a quota unit"),
    }
}

/// The admin API's caller: holds the admin key (Secrets Manager on AWS; `ORRERY_ADMIN_KEY` or a
/// generated key locally), presented as `Authorization: Bearer` or `X-Admin-Key`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get("x-admin-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| presented_key(&parts.headers))
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "The admin API needs the admin key (`Authorization: Bearer <admin key>`)."
                        .into(),
                )
            })?;
        let expected = app.secrets.get(&app.config.admin_key_secret).await?;
        if constant_time_equal(presented.trim(), expected.expose()) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized("The admin key is not valid.".into()))
        }
    }
}

/// Compares through HMAC tags so the time taken does not depend on where the inputs differ.
fn constant_time_equal(a: &str, b: &str) -> bool {
    let tag = |text: &str| {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(b"orrery-compare").expect("any key length");
        mac.update(text.as_bytes());
        mac
    };
    tag(a).verify_slice(&tag(b).finalize().into_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_either_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert("x-api-key", "orr_live_x".parse().expect("header"));
        assert_eq!(presented_key(&headers), Some("orr_live_x"));
        headers.insert(
            "authorization",
            "Bearer orr_test_y".parse().expect("header"),
        );
        assert_eq!(
            presented_key(&headers),
            Some("orr_test_y"),
            "Authorization wins"
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer k",
            "bearer k",
            "BEARER k",
            "bEaReR   k ",
            "Bearer\tk",
        ] {
            assert_eq!(bearer_token(value), Some("k"), "{value:?}");
        }
        assert_eq!(bearer_token("Basic k"), None);
        assert_eq!(bearer_token("Bearerk"), None);
    }

    #[test]
    fn constant_time_comparison_is_exact() {
        assert!(constant_time_equal("abc", "abc"));
        assert!(!constant_time_equal("abc", "abd"));
        assert!(!constant_time_equal("abc", "abcd"));
    }
}
