//! `GET /v1/events` (scope `events`, metered under `management`): the account's event log after
//! a cursor, for clients that cannot hold a connection. The cursor is the one the SSE stream and
//! the WebSocket use, so a client can move between them. The log is `orrery_realtime::log`.
//!
//! `POST /v1/realtime/tokens` (scope `events`) mints the short-lived token a browser puts in
//! the WebSocket's `?token=` (it cannot set headers there, and a key never goes in a URL).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use orrery::access::tokens::{self, RealtimeToken};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::{ApiJson, ApiQuery};
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App};
use orrery_realtime::log::{self, Cursor, LogPage};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// The `cursor` of the last event seen (default `0`: the start of the log).
    #[param(pattern = "^[0-9]{0,20}$")]
    after: Option<String>,
    /// Event types to keep, comma-separated (default: all).
    #[param(example = "batch.progress,batch.completed")]
    types: Option<String>,
    /// Events per response, 1 to 100 (default 100).
    #[param(value_type = Option<String>, pattern = r"^(\+?0*([1-9][0-9]?|100))?$")]
    limit: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/events", operation_id = "list_events", tag = "events", params(EventsQuery),
    responses(
        (status = 200, description = "The events after the cursor, oldest first (kept 72 h); continue with `?after=<cursor>`", body = LogPage),
        (status = 410, description = "The events after this cursor have expired; `oldest_cursor` says where the log now starts", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn list(
    State(app): State<App>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let after = Cursor::parse_optional(query.after.as_deref(), "after")?.unwrap_or_default();
    let types = log::parse_types(query.types.as_deref())?;
    let limit = orrery::http::parse_limit(query.limit.as_deref(), 100)?;
    Ok(Json(
        log::read(&app, &caller.account_id, after, &types, limit).await?,
    ))
}

/// What a token is minted for.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// Seconds the token lives, 1 to 300 (default 300).
    #[serde(default, deserialize_with = "orrery::http::whole_number")]
    #[schema(minimum = 1, maximum = 300, example = 60)]
    ttl_seconds: Option<u32>,
}

#[utoipa::path(
    post, path = "/v1/realtime/tokens", operation_id = "create_realtime_token", tag = "events",
    request_body(content = Option<TokenRequest>, description = "Optional; `{}` or no body gives a 5-minute token"),
    responses(
        (status = 201, description = "A token for `wss://…/v1/realtime?token=…`: this account only, the minting key's scopes, at most 5 minutes; revoking the key ends it", body = RealtimeToken),
        MeteredProblems
    )
)]
async fn create_token(
    State(app): State<App>,
    caller: Caller,
    body: Option<ApiJson<TokenRequest>>,
) -> Result<(StatusCode, Json<RealtimeToken>), ApiError> {
    let request = body.map(|ApiJson(request)| request).unwrap_or_default();
    let ttl = request
        .ttl_seconds
        .map_or(tokens::MAX_TTL_SECONDS, i64::from);
    Ok((
        StatusCode::CREATED,
        Json(tokens::mint(&app, &caller, ttl).await?),
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create_token))]
struct EventLogApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <EventLogApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/events", get(list))
        .route("/v1/realtime/tokens", post(create_token))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Management, "events")
}
