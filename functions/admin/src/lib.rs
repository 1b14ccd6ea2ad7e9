//! `/v1/admin`: accounts and their tiers (the hook a billing system calls), and the cache's
//! statistics, warming and invalidation. Every route needs the admin key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use orrery::access::Admin;
use orrery::access::accounts::Account;
use orrery::access::manage::{self, AccountPatch, NewAccountRequest, NewAccountView};
use orrery::cache::{self, CacheStats};
use orrery::error::Problem;
use orrery::http::{ApiJson, ApiQuery, ListQuery, ListResponse};
use orrery::openapi::AdminProblems;
use orrery::{ApiError, App};
use serde::{Deserialize, Serialize};

#[utoipa::path(
    post, path = "/v1/admin/accounts", operation_id = "create_account", tag = "admin",
    request_body(content = NewAccountRequest, example = json!({"name": "Acme", "tier": "basic"})),
    responses(
        (status = 201, description = "The account and its first API key (shown once)", body = NewAccountView, links(
            ("get_account" = (operation_id = "get_account", parameters(("id" = "$response.body#/account/id")), description = "Read the new account")),
            ("update_account" = (operation_id = "update_account", parameters(("id" = "$response.body#/account/id")), description = "Change the new account's tier, name or status"))
        )),
        AdminProblems
    )
)]
async fn create_account(
    _: Admin,
    State(app): State<App>,
    ApiJson(request): ApiJson<NewAccountRequest>,
) -> Result<(StatusCode, Json<NewAccountView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(manage::create_account(&app, request).await?),
    ))
}

#[utoipa::path(
    get, path = "/v1/admin/accounts", operation_id = "list_accounts", tag = "admin", params(ListQuery),
    responses((status = 200, body = ListResponse<Account>), AdminProblems)
)]
async fn list_accounts(
    _: Admin,
    State(app): State<App>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<Account>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (accounts, next) = manage::list_accounts(&app, limit, cursor).await?;
    Ok(Json(ListResponse::new(accounts, next, &seal)))
}

#[utoipa::path(
    get, path = "/v1/admin/accounts/{id}", operation_id = "get_account", tag = "admin", params(("id" = String, Path, description = "Account id (`acct_…`)")),
    responses((status = 200, body = Account),  AdminProblems)
)]
async fn show_account(
    _: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(manage::get_account(&app, &id).await?))
}

#[utoipa::path(
    patch, path = "/v1/admin/accounts/{id}", operation_id = "update_account", tag = "admin", params(("id" = String, Path, description = "Account id (`acct_…`)")),
    request_body(content = AccountPatch, example = json!({"tier": "premium"})),
    responses((status = 200, description = "Takes effect at once here, everywhere within the cache bound", body = Account),
      (status = 409, description = "Changed concurrently; retry", body = Problem, content_type = "application/problem+json"), AdminProblems)
)]
async fn update_account(
    _: Admin,
    State(app): State<App>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(manage::update_account(&app, &id, patch).await?))
}

#[utoipa::path(
    get, path = "/v1/admin/cache/stats", operation_id = "get_cache_stats", tag = "admin",
    responses((status = 200, description = "Hits, misses, evictions and errors per level", body = CacheStats), AdminProblems)
)]
async fn cache_stats(_: Admin, State(app): State<App>) -> Json<CacheStats> {
    app.cache.emit_metrics().await;
    Json(app.cache.stats().await)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WarmRequest {
    /// Accounts whose keys and tier to preload from the store (at most 100).
    #[serde(default)]
    #[schema(max_items = 100)]
    account_ids: Vec<String>,
    /// How many of the shared cache's hottest entries to load (at most 1000 are).
    #[serde(default = "hot_default", deserialize_with = "whole")]
    #[schema(value_type = u64, maximum = 18446744073709551615_u64)]
    hot: usize,
}

fn hot_default() -> usize {
    200
}

fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    orrery::http::whole_number(d)?
        .ok_or_else(|| serde::de::Error::custom("invalid type: null, expected a whole number"))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Warmed {
    from_shared_cache: usize,
    from_store: usize,
}

#[utoipa::path(
    post, path = "/v1/admin/cache/warm", operation_id = "warm_cache", tag = "admin",
    request_body(content = Option<WarmRequest>, description = "Optional (no body, or no `Content-Type`)"),
    responses((status = 200, description = "How many hot entries were loaded into this container's L1", body = Warmed), AdminProblems)
)]
async fn warm(
    _: Admin,
    State(app): State<App>,
    body: Option<ApiJson<WarmRequest>>,
) -> Result<Json<Warmed>, ApiError> {
    let request = body.map(|ApiJson(r)| r).unwrap_or(WarmRequest {
        account_ids: Vec::new(),
        hot: hot_default(),
    });
    if request.account_ids.len() > 100 {
        return Err(ApiError::validation(
            "account_ids",
            "at most 100 accounts per call",
        ));
    }
    let from_shared_cache = app.cache.warm(request.hot.min(1000)).await;
    let from_store = manage::warm_accounts(&app, &request.account_ids).await?;
    Ok(Json(Warmed {
        from_shared_cache,
        from_store,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InvalidateRequest {
    #[schema(schema_with = orrery::openapi::schemas::cache_namespace)]
    namespace: String,
    /// One key; without it the whole namespace (the pattern `namespace/*`).
    #[serde(default)]
    key: Option<String>,
}

#[utoipa::path(
    post, path = "/v1/admin/cache/invalidate", operation_id = "invalidate_cache", tag = "admin",
    request_body(content = InvalidateRequest, example = json!({"namespace": "charts"})),
    responses((status = 204, description = "Invalidated"), AdminProblems)
)]
async fn invalidate(
    _: Admin,
    State(app): State<App>,
    ApiJson(request): ApiJson<InvalidateRequest>,
) -> Result<StatusCode, ApiError> {
    let namespace = cache::namespace(&request.namespace).ok_or_else(|| {
        ApiError::validation(
            "namespace",
            format!(
                "must be one of {}",
                cache::NAMESPACES.map(|ns| ns.name).join(", ")
            ),
        )
    })?;
    match request.key {
        // Other containers hold immutable entries for hours: only a namespace generation
        // reaches their memory, so one key of such a namespace invalidates it everywhere.
        Some(key) if !namespace.immutable => app.cache.invalidate(&namespace, &key).await,
        _ => app.cache.invalidate_namespace(&namespace).await,
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RedriveRequest {
    /// At most this many messages (1 to 10000; default 1000).
    #[serde(default, deserialize_with = "orrery::http::whole_number")]
    #[schema(minimum = 1, maximum = 10000)]
    max: Option<usize>,
}

/// The queues with a dead-letter queue (schema only: the handler matches the path segment).
#[allow(dead_code)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum QueueName {
    Events,
    Deliveries,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct RedriveResult {
    queue: String,
    /// Messages moved from the dead-letter queue back to the queue.
    moved: usize,
}

#[utoipa::path(
    post, path = "/v1/admin/queues/{name}/redrive", operation_id = "redrive_queue", tag = "admin",
    params(("name" = inline(QueueName), Path, description = "`events` or `deliveries`")),
    request_body(content = Option<RedriveRequest>, description = "Optional (no body, or no `Content-Type`)", example = json!({"max": 100})),
    responses(
        (status = 200, description = "Moved back: each message is deleted from the dead-letter queue only after its copy is sent", body = RedriveResult),
        (status = 404, description = "No queue with this name", body = Problem, content_type = "application/problem+json"),
        AdminProblems
    )
)]
async fn redrive(
    _: Admin,
    State(app): State<App>,
    Path(name): Path<String>,
    request: Option<ApiJson<RedriveRequest>>,
) -> Result<Json<RedriveResult>, ApiError> {
    let request = request.map(|ApiJson(request)| request).unwrap_or_default();
    let max = request.max.unwrap_or(1000);
    if !(1..=10_000).contains(&max) {
        return Err(ApiError::validation("max", "must be 1 to 10000"));
    }
    let pair = match name.as_str() {
        "events" => &app.queues.events,
        "deliveries" => &app.queues.deliveries,
        "batch-items" => &app.queues.batch_items,
        _ => {
            return Err(ApiError::NotFound(
                "No queue with this name: `events`, `deliveries` or `batch-items`.".into(),
            ));
        }
    };
    let moved = pair.redrive(max).await?;
    tracing::info!(queue = %name, moved, "dead letters redriven");
    Ok(Json(RedriveResult { queue: name, moved }))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    redrive,
    create_account,
    list_accounts,
    show_account,
    update_account,
    cache_stats,
    warm,
    invalidate
))]
struct AdminApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <AdminApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/v1/admin/accounts",
            post(create_account).get(list_accounts),
        )
        .route(
            "/v1/admin/accounts/{id}",
            get(show_account).patch(update_account),
        )
        .route("/v1/admin/cache/stats", get(cache_stats))
        .route("/v1/admin/cache/warm", post(warm))
        .route("/v1/admin/cache/invalidate", post(invalidate))
        .route("/v1/admin/queues/{name}/redrive", post(redrive))
        .with_state(app)
}
