//! The WebSocket transport of the event log, on both runtimes; the protocol (JSON text frames,
//! `subscribe` / `unsubscribe` / `ping` in, `event` / `stale` / `heartbeat` / … out) is
//! `orrery_realtime::protocol`.
//!
//! - [`local`]: orrery-local's `GET /v1/realtime`, one task per connection following the log
//!   with an `orrery_realtime::Tail`.
//! - [`gateway`]: the Lambda behind an API Gateway WebSocket API: `$connect` authorises and
//!   stores the connection, `subscribe` / `unsubscribe` / `ping` answer through the management
//!   API, `$disconnect` forgets it; the events consumer pushes new entries
//!   (`orrery_realtime::fanout`).
//!
//! Both authorise the same way: an API key in `Authorization` / `X-API-Key` (clients that can
//! set headers) or a token from `POST /v1/realtime/tokens` in `?token=` (browsers); the key (or
//! the key behind the token) needs the `events` scope. Opening a connection is metered once,
//! under `management`, and an account holds at most its tier's `realtime_connections`.

pub mod gateway;
pub mod local;

use axum::http::HeaderMap;

/// How opening a connection is counted in analytics (one management unit, either runtime).
pub const REALTIME_ENDPOINT: &str = "GET /v1/realtime";
use orrery::access::{Caller, tokens};
use orrery::{ApiError, App};

/// The scope a connection needs.
pub const SCOPE: &str = "events";

/// The caller of a connection: the token when one is given (a key in the URL is refused, so it
/// never lands in a log), else the key in the headers.
pub async fn authorise(
    app: &App,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<Caller, ApiError> {
    let caller = match token {
        Some(token) if token.starts_with("orr_") => {
            return Err(ApiError::Unauthorized(
                "An API key never goes in a URL: mint a token with POST /v1/realtime/tokens and pass that as ?token=.".into(),
            ));
        }
        Some(token) => tokens::authenticate(app, token).await?,
        None => orrery::access::auth::authenticate(app, headers).await?,
    };
    if !caller.scopes.iter().any(|scope| scope == SCOPE) {
        return Err(ApiError::Forbidden(format!(
            "This API key lacks the {SCOPE:?} scope real-time connections need."
        )));
    }
    Ok(caller)
}
