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
use orrery::http::{ApiJson, ApiQuery, ListQuery, ListResponse};
use orrery::{ApiError, App};
use serde::Deserialize;

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

async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ListResponse<KeyView>>, ApiError> {
    let (limit, cursor) = query.parse()?;
    let (keys, next) = manage::list_keys(&app, &caller.account_id, limit, cursor).await?;
    Ok(Json(ListResponse::new(keys, next)))
}

async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(manage::get_key(&app, &caller.account_id, &id).await?))
}

async fn remove(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    manage::delete_key(&app, &caller.account_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        manage::revoke_key(&app, &caller.account_id, &id).await?,
    ))
}

async fn rotate(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<ApiJson<RotateRequest>>,
) -> Result<(StatusCode, Json<RotatedKeyView>), ApiError> {
    let request = body.map(|ApiJson(request)| request).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(manage::rotate_key(&app, &caller.account_id, &id, request).await?),
    ))
}

#[derive(Debug, Deserialize)]
struct UsageQuery {
    #[serde(default = "seven")]
    days: u32,
}

fn seven() -> u32 {
    7
}

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
