//! The Lambda behind the API Gateway WebSocket API (`RealtimeApi` in template.yaml; route
//! selection `$request.body.action`):
//!
//! - `$connect` (`?after=&types=&channels=&token=`, or an API key header): authorises, takes
//!   a quota unit and a place under the tier's connection limit, stores the connection with
//!   its cursor and subscription. A refusal is the problem's status, so the client's handshake
//!   fails with it.
//! - `subscribe` / `unsubscribe`: change the subscription (`after` on `subscribe` moves the
//!   cursor), reply `subscribed` / `unsubscribed`, then catch the connection up: nothing can be
//!   sent during `$connect`, so a client resuming after a cursor gets the missed entries here
//!   (or with the next push, whichever comes first; never twice).
//! - `ping`: `pong`, then a catch-up and, near the 2-hour cap, the `reconnect` hint. API
//!   Gateway closes a connection idle for 10 minutes, so clients ping every few minutes.
//! - `$default`: an `error` message naming the actions.
//! - `$disconnect`: forgets the connection.
//!
//! An EventBridge schedule (every 5 minutes, under the gateway's 10-minute idle limit) invokes
//! the same function for the heartbeat sweep (`orrery_realtime::fanout::sweep`).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use axum::http::HeaderMap;
use orrery::access::QuotaClass;
use orrery::{ApiError, App};
use orrery_realtime::connections::{self, ConnectionRecord};
use orrery_realtime::fanout::{self, CatchUpError, ConnectionManagement, PostError};
use orrery_realtime::log::{self, Cursor};
use orrery_realtime::protocol::{ClientMessage, ServerMessage, Subscription};

/// Handles whatever invoked the function: a scheduled sweep (`"source": "aws.events"`) or a
/// WebSocket route.
pub async fn handle_invocation(
    app: &App,
    management: &dyn ConnectionManagement,
    payload: serde_json::Value,
) -> serde_json::Value {
    if payload.get("source").and_then(serde_json::Value::as_str) == Some("aws.events") {
        return match fanout::sweep(app, management).await {
            Ok(swept) => serde_json::to_value(swept).unwrap_or_default(),
            Err(err) => {
                tracing::error!(error = %err, "heartbeat sweep failed");
                serde_json::json!({"error": err.to_string()})
            }
        };
    }
    let response = match serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(payload) {
        Ok(request) => handle(app, management, request).await,
        Err(err) => respond(Err(ApiError::BadRequest(format!(
            "not an API Gateway WebSocket event: {err}"
        )))),
    };
    serde_json::to_value(response).unwrap_or_default()
}

/// Handles one WebSocket event.
pub async fn handle(
    app: &App,
    management: &dyn ConnectionManagement,
    request: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &request.request_context;
    let route = context.route_key.as_deref().unwrap_or("$default");
    let Some(connection_id) = context.connection_id.clone() else {
        return respond(Err(ApiError::BadRequest("no connection id".into())));
    };
    let outcome = match route {
        "$connect" => connect(app, &connection_id, &request).await,
        "$disconnect" => disconnect(app, &connection_id).await,
        _ => message(app, management, &connection_id, request.body.as_deref()).await,
    };
    respond(outcome)
}

fn respond(outcome: Result<(), ApiError>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    if let Err(err) = outcome {
        if !err.status().is_client_error() {
            tracing::error!(error = %err, "real-time route failed");
        }
        response.status_code = i64::from(err.status().as_u16());
        response.body = Some(Body::Text(
            serde_json::to_string(&err.problem()).unwrap_or_default(),
        ));
        response.headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
    }
    response
}

async fn connect(
    app: &App,
    connection_id: &str,
    request: &ApiGatewayWebsocketProxyRequest,
) -> Result<(), ApiError> {
    let query = &request.query_string_parameters;
    let after = Cursor::parse_optional(query.first("after"), "after")?.unwrap_or_default();
    let subscription = Subscription::from_query(query.first("types"), query.first("channels"))?;
    let headers: HeaderMap = request.headers.clone();
    let caller = crate::authorise(app, &headers, query.first("token")).await?;
    log::ensure_not_ahead(app, &caller.account_id, after).await?;
    let record = ConnectionRecord {
        connection_id: connection_id.to_owned(),
        account_id: caller.account_id.clone(),
        key_id: caller.key_id.clone(),
        subscription,
        connected_at: orrery::clock::now_unix(),
        cursor: after.0,
        told_to_reconnect: false,
        version: 0,
    };
    let limit = app.config.tiers.connection_limit(caller.tier);
    // The limit before the quota: a refused connection costs no unit.
    connections::register(app, &record, limit).await?;
    if let Err(refused) = orrery::access::admit(
        app,
        &caller,
        QuotaClass::Management,
        crate::REALTIME_ENDPOINT,
    )
    .await
    {
        connections::remove(app, &caller.account_id, connection_id).await?;
        return Err(match refused {
            orrery::access::Refused::Exhausted(quota) => ApiError::RateLimited {
                detail: "The daily management quota, which opening a connection counts against, is used up.".into(),
                retry_after_seconds: quota.reset_in_seconds,
            },
            orrery::access::Refused::Failed(err) => err,
        });
    }
    Ok(())
}

async fn disconnect(app: &App, connection_id: &str) -> Result<(), ApiError> {
    if let Some(record) = connections::find(app, connection_id).await? {
        connections::remove(app, &record.account_id, connection_id).await?;
    }
    Ok(())
}

/// A client message: an error is answered as an `error` message (the route itself succeeds).
async fn message(
    app: &App,
    management: &dyn ConnectionManagement,
    connection_id: &str,
    body: Option<&str>,
) -> Result<(), ApiError> {
    let Some(record) = connections::find(app, connection_id).await? else {
        // Gone already ($disconnect raced the message).
        return Ok(());
    };
    let reply = |message: ServerMessage<'_>| message.to_text();
    let answer = match apply(app, &record, body.unwrap_or_default()).await {
        Ok(Applied::Pong) => reply(ServerMessage::Pong),
        Ok(Applied::Changed(updated, subscribed)) => {
            let subscription = &updated.subscription;
            if subscribed {
                reply(ServerMessage::Subscribed { subscription })
            } else {
                reply(ServerMessage::Unsubscribed { subscription })
            }
        }
        Err(err) => reply(ServerMessage::of_error(&err)),
    };
    match fanout::post_with_backoff(management, connection_id, &answer).await {
        Ok(()) => {}
        Err(PostError::Gone) => {
            connections::remove(app, &record.account_id, connection_id).await?;
            return Ok(());
        }
        Err(err) => return Err(ApiError::Internal(format!("reply failed: {err:?}"))),
    }
    let Some(current) = connections::find(app, connection_id).await? else {
        return Ok(());
    };
    match fanout::catch_up(app, management, &current, None).await {
        Ok(_) | Err(CatchUpError::Post(PostError::Gone)) => Ok(()),
        Err(err) => Err(ApiError::Internal(err.to_string())),
    }
}

enum Applied {
    Pong,
    /// The saved connection, and whether it was a `subscribe`.
    Changed(ConnectionRecord, bool),
}

async fn apply(app: &App, record: &ConnectionRecord, body: &str) -> Result<Applied, ApiError> {
    let message = ClientMessage::parse(body)?;
    let resume = message.resume_after()?;
    if let Some(after) = resume {
        log::ensure_not_ahead(app, &record.account_id, after).await?;
    }
    let (change, subscribing) = match &message {
        ClientMessage::Ping => return Ok(Applied::Pong),
        ClientMessage::Subscribe(change) => (change, true),
        ClientMessage::Unsubscribe(change) => (change, false),
    };
    // Checked once before the store is touched, so a bad change is an `error`, not a retry.
    let mut checked = record.subscription.clone();
    if subscribing {
        checked.subscribe(change)?;
    } else {
        checked.unsubscribe(change)?;
    }
    let updated = connections::update(app, record, |current| {
        let applied = if subscribing {
            current.subscription.subscribe(change)
        } else {
            current.subscription.unsubscribe(change)
        };
        if let Some(after) = resume {
            current.cursor = after.0;
        }
        applied.is_ok()
    })
    .await?
    .ok_or_else(|| ApiError::NotFound("This connection is closed.".into()))?;
    Ok(Applied::Changed(updated, subscribing))
}
