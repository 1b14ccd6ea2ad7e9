//! `GET /v1/events` (scope `events`, metered under `management`): the account's event log after
//! a cursor, for clients that cannot hold a connection. The cursor is the one the SSE stream and
//! the WebSocket use, so a client can move between them. The log is `orrery_realtime::log`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::ApiQuery;
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

#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
struct EventLogApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <EventLogApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/events", get(list))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Management, "events")
}
