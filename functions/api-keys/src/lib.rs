//! `/v1/api-keys`: a caller manages its own account's keys (scope `keys`, quota class
//! `management`). Handlers only translate HTTP; the work is in `orrery::access::manage`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use orrery::access::keys::NewKeyRequest;
use orrery::access::manage::{
    self, CreatedKeyView, KeyUsageView, KeyView, RotateRequest, RotatedKeyView,
};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::{ApiJson, ApiQuery, ListQuery, ListResponse};
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App};
use serde::Deserialize;

#[utoipa::path(
    post, path = "/v1/api-keys", operation_id = "create_api_key", tag = "api-keys",
    request_body(content = NewKeyRequest, example = json!({"name": "ci", "scopes": ["charts"], "expires_at": "2027-01-01T00:00:00Z"})),
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedKeyView, links(
            ("get_api_key" = (operation_id = "get_api_key", parameters(("id" = "$response.body#/id")), description = "Read the new key")),
            ("delete_api_key" = (operation_id = "delete_api_key", parameters(("id" = "$response.body#/id")), description = "Delete the new key")),
            ("revoke_api_key" = (operation_id = "revoke_api_key", parameters(("id" = "$response.body#/id")), description = "Revoke the new key")),
            ("rotate_api_key" = (operation_id = "rotate_api_key", parameters(("id" = "$response.body#/id")), description = "Rotate the new key")),
            ("get_api_key_usage" = (operation_id = "get_api_key_usage", parameters(("id" = "$response.body#/id")), description = "The new key's usage"))
        )),
        MeteredProblems
    )
)]
async fn create(
    State(app): State<App>,
    caller: Caller,
    ApiJson(request): ApiJson<NewKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKeyView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(manage::create_key(&app, &caller, request).await?),
    ))
}

#[utoipa::path(
    get, path = "/v1/api-keys", operation_id = "list_api_keys", tag = "api-keys", params(ListQuery),
    responses((status = 200, description = "The account's keys, newest first", body = ListResponse<KeyView>), MeteredProblems)
)]
async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<KeyView>>, ApiError> {
    let seal = app.cursor_seal().await?;
    let (limit, cursor) = query.parse(&seal)?;
    let (keys, next) = manage::list_keys(&app, &caller.account_id, limit, cursor).await?;
    Ok(Json(ListResponse::new(keys, next, &seal)))
}

#[utoipa::path(
    get, path = "/v1/api-keys/{id}", operation_id = "get_api_key", tag = "api-keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 200, body = KeyView),  MeteredProblems)
)]
async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(manage::get_key(&app, &caller.account_id, &id).await?))
}

#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", operation_id = "delete_api_key", tag = "api-keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Changed concurrently; retry", body = Problem, content_type = "application/problem+json"), MeteredProblems)
)]
async fn remove(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    manage::delete_key(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch, path = "/v1/api-keys/{id}/revoke", operation_id = "revoke_api_key", tag = "api-keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses(
        (status = 200, description = "Revoked at once here, everywhere within the cache bound", body = KeyView),
        (status = 409, description = "Changed concurrently; retry", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn revoke(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(manage::revoke_key(&app, &caller, &id).await?))
}

#[utoipa::path(
    post, path = "/v1/api-keys/{id}/rotate", operation_id = "rotate_api_key", tag = "api-keys", params(("id" = String, Path, description = "Key id (`key_…`)")),
    request_body(content = Option<RotateRequest>, description = "Optional (no body, or no `Content-Type`): the grace period of the old key"),
    responses((status = 201, description = "The new key (shown once) and the old one, valid until its grace ends", body = RotatedKeyView),
      (status = 409, description = "The key is revoked or already rotated", body = Problem, content_type = "application/problem+json"), MeteredProblems)
)]
async fn rotate(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<ApiJson<RotateRequest>>,
) -> Result<(StatusCode, Json<RotatedKeyView>), ApiError> {
    let request = body.map(|ApiJson(request)| request).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(manage::rotate_key(&app, &caller, &id, request).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UsageQuery {
    /// Days back from today (UTC), 1 to the retention of 90 days (default 7).
    #[serde(default = "seven")]
    #[param(minimum = 1, maximum = 90)]
    days: u32,
}

fn seven() -> u32 {
    7
}

#[utoipa::path(
    get, path = "/v1/api-keys/{id}/usage", operation_id = "get_api_key_usage", tag = "api-keys", params(("id" = String, Path, description = "Key id (`key_…`)"), UsageQuery),
    responses((status = 200, description = "Requests per UTC day and quota class", body = KeyUsageView),  MeteredProblems)
)]
async fn usage(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<KeyUsageView>, ApiError> {
    Ok(Json(
        manage::key_usage(&app, &caller.account_id, &id, query.days).await?,
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, remove, revoke, rotate, usage))]
struct ApiKeysApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiKeysApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/api-keys", post(create).get(list))
        .route("/v1/api-keys/{id}", get(show).delete(remove))
        .route("/v1/api-keys/{id}/revoke", patch(revoke))
        .route("/v1/api-keys/{id}/rotate", post(rotate))
        .route("/v1/api-keys/{id}/usage", get(usage))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Management, "keys")
}
