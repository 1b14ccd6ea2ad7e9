//! orrery-local's WebSocket: `GET /v1/realtime?after=&types=&channels=&token=`.
//!
//! Everything that can be refused is refused before the upgrade, as a problem response (bad
//! cursor or filter 400, no or bad credentials 401, scope 403, connection limit or quota 429);
//! an expired cursor is told after it, as a `stale` message, since browsers cannot read a
//! failed handshake. Then the connection receives every matching entry after its cursor,
//! live; a `heartbeat` (with the cursor to resume from) when quiet for
//! `Config::stream_heartbeat`; and answers each client message.

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orrery::access::quota::RefundReason;
use orrery::access::{Caller, QuotaClass};
use orrery::http::ApiQuery;
use orrery::{ApiError, App};
use orrery_realtime::Tail;
use orrery_realtime::connections::{ConnectionSlot, LocalConnections};
use orrery_realtime::log::Cursor;
use orrery_realtime::protocol::{ClientMessage, ServerMessage, Subscription};
use serde::Deserialize;

/// How long a connection waits for a wake-up before reading the log anyway.
const POLL: Duration = Duration::from_secs(1);
/// Per-connection socket buffers: messages are small JSON, and an idle connection should cost
/// little memory (the defaults are 128 KiB each way).
const READ_BUFFER_BYTES: usize = 4 * 1024;
const WRITE_BUFFER_BYTES: usize = 0;
/// The largest message a client may send.
const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;

#[derive(Clone)]
struct Realtime {
    app: App,
    connections: LocalConnections,
}

#[derive(Debug, Deserialize)]
struct ConnectQuery {
    after: Option<String>,
    types: Option<String>,
    channels: Option<String>,
    token: Option<String>,
}

/// The route, with the process's connection registry.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/realtime", get(connect))
        .with_state(Realtime {
            app,
            connections: LocalConnections::default(),
        })
}

async fn connect(
    State(realtime): State<Realtime>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<ConnectQuery>,
    request: axum::extract::Request,
) -> Response {
    match admit(&realtime, &headers, &query).await {
        Ok(admitted) => {
            let (mut parts, _body) = request.into_parts();
            match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(upgrade) => {
                    let quota = admitted.quota.state;
                    let mut response = upgrade
                        .read_buffer_size(READ_BUFFER_BYTES)
                        .write_buffer_size(WRITE_BUFFER_BYTES)
                        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
                        .on_upgrade(move |socket| admitted.serve(socket));
                    quota.apply(response.headers_mut());
                    response
                }
                Err(_) => {
                    admitted.give_back().await;
                    ApiError::BadRequest(
                        "This is a WebSocket endpoint: connect with Upgrade: websocket.".into(),
                    )
                    .into_response()
                }
            }
        }
        Err(refused) => refused,
    }
}

/// A connection that passed every check, with its place and quota unit taken.
struct Admitted {
    app: App,
    caller: Caller,
    quota: orrery::access::auth::Admitted,
    _slot: ConnectionSlot,
    subscription: Subscription,
    tail: Result<Tail, ApiError>,
}

async fn admit(
    realtime: &Realtime,
    headers: &HeaderMap,
    query: &ConnectQuery,
) -> Result<Admitted, Response> {
    let app = &realtime.app;
    let refuse = |err: ApiError| err.into_response();
    let after = Cursor::parse_optional(query.after.as_deref(), "after")
        .map_err(refuse)?
        .unwrap_or_default();
    let subscription = Subscription::from_query(query.types.as_deref(), query.channels.as_deref())
        .map_err(refuse)?;
    let caller = crate::authorise(app, headers, query.token.as_deref())
        .await
        .map_err(refuse)?;
    let limit = app.config.tiers.connection_limit(caller.tier);
    let slot = realtime
        .connections
        .open(&caller.account_id, limit)
        .map_err(refuse)?;
    let mut quota = orrery::access::admit(
        app,
        &caller,
        QuotaClass::Management,
        crate::REALTIME_ENDPOINT,
    )
    .await
    .map_err(IntoResponse::into_response)?;
    let tail = match Tail::start(app, &caller.account_id, after, Vec::new(), POLL).await {
        Ok(tail) => Ok(tail),
        // Told after the upgrade, as a `stale` message.
        Err(err @ ApiError::CursorExpired { .. }) => Err(err),
        Err(err) => {
            // A cursor ahead of the log (400) or a store failure: nothing was opened.
            if err.status().is_client_error() {
                orrery::access::give_back(app, &caller, &mut quota, RefundReason::ClientError)
                    .await;
            }
            return Err(err.into_response());
        }
    };
    Ok(Admitted {
        app: app.clone(),
        caller,
        quota,
        _slot: slot,
        subscription,
        tail,
    })
}

impl Admitted {
    async fn give_back(mut self) {
        orrery::access::give_back(
            &self.app,
            &self.caller,
            &mut self.quota,
            RefundReason::ClientError,
        )
        .await;
    }

    async fn serve(self, socket: WebSocket) {
        let Admitted {
            app,
            caller,
            subscription,
            tail,
            _slot,
            ..
        } = self;
        let mut session = Session {
            app,
            account: caller.account_id,
            subscription,
            socket,
            cursor: Cursor::default(),
        };
        match tail {
            Ok(tail) => session.run(tail).await,
            Err(err) => session.end_with(&err).await,
        }
    }
}

struct Session {
    app: App,
    account: orrery::ids::AccountId,
    subscription: Subscription,
    socket: WebSocket,
    /// The last entry looked at: where a reconnect resumes.
    cursor: Cursor,
}

/// What the loop does next.
enum Step {
    Continue,
    Stop,
}

impl Session {
    async fn run(&mut self, mut tail: Tail) {
        let heartbeat = self.app.config.stream_heartbeat;
        let mut quiet_until = tokio::time::Instant::now() + heartbeat;
        loop {
            let step = tokio::select! {
                entry = tail.next() => match entry {
                    Ok(entry) => {
                        self.cursor = entry.cursor;
                        if self.subscription.matches(&entry) {
                            quiet_until = tokio::time::Instant::now() + heartbeat;
                            self.send(&ServerMessage::Event { event: &entry }).await
                        } else {
                            Step::Continue
                        }
                    }
                    Err(err) => {
                        self.end_with(&err).await;
                        Step::Stop
                    }
                },
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => self.answer(&text, &mut tail).await,
                    Some(Ok(Message::Binary(_))) => {
                        let err = ApiError::BadRequest("Send JSON text frames.".into());
                        self.send(&ServerMessage::of_error(&err)).await
                    }
                    // Pings are answered by the socket itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Step::Continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => Step::Stop,
                },
                () = tokio::time::sleep_until(quiet_until) => {
                    quiet_until = tokio::time::Instant::now() + heartbeat;
                    let cursor = self.cursor.to_string();
                    self.send(&ServerMessage::Heartbeat { cursor: &cursor }).await
                }
            };
            if matches!(step, Step::Stop) {
                return;
            }
        }
    }

    async fn answer(&mut self, text: &str, tail: &mut Tail) -> Step {
        let message = match ClientMessage::parse(text) {
            Ok(message) => message,
            Err(err) => return self.send(&ServerMessage::of_error(&err)).await,
        };
        let changed = match &message {
            ClientMessage::Ping => return self.send(&ServerMessage::Pong).await,
            ClientMessage::Subscribe(change) => {
                let mut next = self.subscription.clone();
                next.subscribe(change).map(|()| next)
            }
            ClientMessage::Unsubscribe(change) => {
                let mut next = self.subscription.clone();
                next.unsubscribe(change).map(|()| next)
            }
        };
        let resume = match message.resume_after() {
            Ok(resume) => resume,
            Err(err) => return self.send(&ServerMessage::of_error(&err)).await,
        };
        let subscription = match changed {
            Ok(subscription) => subscription,
            Err(err) => return self.send(&ServerMessage::of_error(&err)).await,
        };
        if let Some(after) = resume {
            match Tail::start(&self.app, &self.account, after, Vec::new(), POLL).await {
                Ok(resumed) => *tail = resumed,
                Err(err @ ApiError::CursorExpired { .. }) => {
                    self.end_with(&err).await;
                    return Step::Stop;
                }
                Err(err) => return self.send(&ServerMessage::of_error(&err)).await,
            }
        }
        self.subscription = subscription;
        let reply = if matches!(message, ClientMessage::Subscribe(_)) {
            ServerMessage::Subscribed {
                subscription: &self.subscription,
            }
        } else {
            ServerMessage::Unsubscribed {
                subscription: &self.subscription,
            }
        };
        let text = reply.to_text();
        self.send_text(text).await
    }

    async fn send(&mut self, message: &ServerMessage<'_>) -> Step {
        self.send_text(message.to_text()).await
    }

    async fn send_text(&mut self, text: String) -> Step {
        match self.socket.send(Message::Text(text.into())).await {
            Ok(()) => Step::Continue,
            Err(_) => Step::Stop,
        }
    }

    /// The last message (`stale` for an expired cursor, else `error`), then a close frame.
    async fn end_with(&mut self, err: &ApiError) {
        let code = if matches!(err, ApiError::CursorExpired { .. }) {
            4410
        } else {
            1011
        };
        let _ = self
            .socket
            .send(Message::Text(ServerMessage::of_error(err).to_text().into()))
            .await;
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static("see the last message"),
            })))
            .await;
    }
}
