//! `GET /v1/events/stream` (scope `events`, metered once per connection under `management`):
//! the account's event log as Server-Sent Events. `id:` is the log cursor, so a reconnecting
//! browser (`Last-Event-ID`) or client (`?after=`) resumes exactly after the last event it got,
//! and the same cursor works with `GET /v1/events` and the WebSocket. A comment line every 15 s
//! (`Config::stream_heartbeat`) keeps proxies from closing an idle stream. On AWS this runs behind a function URL with
//! response streaming (HTTP APIs cannot stream); a stream ends with the function's timeout and
//! the client reconnects with its cursor.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use orrery::access::{Caller, QuotaClass, metered};
use orrery::error::Problem;
use orrery::http::ApiQuery;
use orrery::openapi::MeteredProblems;
use orrery::{ApiError, App};
use orrery_realtime::Tail;
use orrery_realtime::log::{self, Cursor};
use serde::Deserialize;

/// How long a stream waits for a wake-up before reading the log anyway (appends made by
/// another process wake nobody here).
const POLL: Duration = Duration::from_secs(1);
/// How soon a disconnected client should reconnect (the SSE `retry:` field).
const RECONNECT: Duration = Duration::from_secs(1);

/// One message of the stream, as an SSE parser hands it over.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct StreamMessage {
    /// The entry's cursor (absent on `stale` and `error`).
    #[schema(pattern = "^[0-9]{1,20}$")]
    id: Option<String>,
    /// The event type, or `stale` / `error` for the stream's last message.
    event: Option<String>,
    /// The entry (or the problem) as JSON text.
    data: String,
    /// Milliseconds to wait before reconnecting (on the first message).
    retry: Option<u64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamQuery {
    /// Start after this cursor (default `0`: the start of the log). `Last-Event-ID` wins.
    #[param(pattern = "^[0-9]{0,20}$")]
    after: Option<String>,
    /// Event types to keep, comma-separated (default: all).
    #[param(example = "batch.progress,batch.completed")]
    types: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/events/stream", operation_id = "stream_events", tag = "events",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,20}$", description = "The `id:` of the last event received: resume after it")),
    responses(
        (status = 200, description = "`text/event-stream`, described here by one message: each event's `id:` is its cursor, `event:` its type, `data:` the entry as `GET /v1/events` shows it (JSON); a `: heartbeat` comment every 15 s. If the client falls so far behind that the entries after its cursor expire, a final `event: stale` carries the 410 problem.", content_type = "text/event-stream", body = StreamMessage),
        (status = 410, description = "The events after this cursor have expired; `oldest_cursor` says where the log now starts", body = Problem, content_type = "application/problem+json"),
        MeteredProblems
    )
)]
async fn stream(
    State(app): State<App>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    // Both are checked; a reconnecting browser's `Last-Event-ID` wins over the URL it reuses.
    let from_query = Cursor::parse_optional(query.after.as_deref(), "after")?;
    let from_header = match headers.get("last-event-id") {
        // Present but empty is malformed, unlike an absent header.
        Some(value) => Some(Cursor::parse(
            value.to_str().unwrap_or_default(),
            "Last-Event-ID",
        )?),
        None => None,
    };
    let after = from_header.or(from_query).unwrap_or_default();
    let types = log::parse_types(query.types.as_deref())?;
    // A stale or bad cursor is answered here, as a problem, before anything streams.
    let tail = Tail::start(&app, &caller.account_id, after, types, POLL).await?;
    let events = futures_util::stream::unfold(Some((tail, true)), |state| async move {
        let (mut tail, first) = state?;
        let event = match tail.next().await {
            Ok(entry) => {
                let event = SseEvent::default()
                    .id(entry.cursor.to_string())
                    .event(entry.kind.clone())
                    .json_data(&entry)
                    .unwrap_or_default();
                let event = if first { event.retry(RECONNECT) } else { event };
                return Some((Ok(event), Some((tail, false))));
            }
            Err(err) => SseEvent::default()
                .event(if matches!(err, ApiError::CursorExpired { .. }) {
                    "stale"
                } else {
                    "error"
                })
                .json_data(err.problem())
                .unwrap_or_default(),
        };
        // The last message of this stream.
        Some((Ok(event), None))
    });
    let heartbeat = KeepAlive::new()
        .interval(app.config.stream_heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(heartbeat))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(stream))]
struct EventStreamApi;

/// The OpenAPI paths of this function.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <EventStreamApi as utoipa::OpenApi>::openapi()
}

pub fn router(app: App) -> Router {
    let routes = Router::new()
        .route("/v1/events/stream", get(stream))
        .with_state(app.clone());
    metered(routes, &app, QuotaClass::Management, "events")
}
