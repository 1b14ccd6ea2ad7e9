//! AWS: pushing each appended entry to the account's open API Gateway WebSocket connections
//! (`PostToConnection`), from the events consumer. A connection the gateway reports gone is
//! forgotten; throttling is retried with backoff, and if it persists the event's message is
//! retried later (connections that got the entry have moved their cursor past it, so none
//! gets it twice).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use orrery::App;
use orrery::store::StoreError;

use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata as _;

use crate::connections::{self, ConnectionRecord};
use crate::log::{Cursor, LoggedEvent};
use crate::protocol::ServerMessage;

/// Why a post did not reach its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// The client is gone (`GoneException`): forget the connection.
    Gone,
    /// The gateway throttled us: back off and retry.
    Throttled,
    Failed(String),
}

/// API Gateway's management API, as the fan-out uses it. Behind a trait because no emulator
/// can make the gateway answer `GoneException`.
#[async_trait]
pub trait ConnectionManagement: Send + Sync {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), PostError>;
    /// Closes a connection from our side (after its `stale` message).
    async fn close(&self, connection_id: &str) -> Result<(), PostError>;
}

/// The real management API at the WebSocket stage's endpoint
/// (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
pub struct GatewayManagement {
    client: aws_sdk_apigatewaymanagement::Client,
}

/// The environment variable naming the stage's management endpoint.
pub const ENDPOINT_ENV: &str = "ORRERY_WEBSOCKET_ENDPOINT";

impl GatewayManagement {
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }

    /// The client for `ORRERY_WEBSOCKET_ENDPOINT`, when the stack has a WebSocket API.
    pub async fn from_env() -> Option<Arc<dyn ConnectionManagement>> {
        let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty())?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Some(Arc::new(Self::new(&sdk, &endpoint)))
    }
}

#[async_trait]
impl ConnectionManagement for GatewayManagement {
    async fn post(&self, connection_id: &str, message: &str) -> Result<(), PostError> {
        let sent = self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(message.as_bytes().to_vec()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(err)) => match err.err() {
                PostToConnectionError::GoneException(_) => Err(PostError::Gone),
                PostToConnectionError::LimitExceededException(_) => Err(PostError::Throttled),
                other if other.meta().code() == Some("TooManyRequestsException") => {
                    Err(PostError::Throttled)
                }
                other => Err(PostError::Failed(other.to_string())),
            },
            Err(err) => Err(PostError::Failed(err.to_string())),
        }
    }

    async fn close(&self, connection_id: &str) -> Result<(), PostError> {
        match self
            .client
            .delete_connection()
            .connection_id(connection_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("GoneException") => Err(PostError::Gone),
            Err(err) => Err(PostError::Failed(err.to_string())),
        }
    }
}

/// How often a throttled post is tried, and the first pause (doubling).
const POST_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Posts `message`, backing off while throttled.
pub async fn post_with_backoff(
    management: &dyn ConnectionManagement,
    connection_id: &str,
    message: &str,
) -> Result<(), PostError> {
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=POST_ATTEMPTS {
        match management.post(connection_id, message).await {
            Err(PostError::Throttled) if attempt < POST_ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    Err(PostError::Throttled)
}

/// What one push did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// Connections that were sent something.
    pub sent: usize,
    /// Connections found gone (and forgotten).
    pub gone: usize,
}

/// A push that could not finish: retry the event later.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("posting to connection {0} failed: {1:?}")]
    Post(String, PostError),
}

/// Brings every open connection of `entry`'s account up to `entry` (the events consumer, once
/// the entry is appended).
pub async fn push(
    app: &App,
    management: &dyn ConnectionManagement,
    entry: &LoggedEvent,
) -> Result<Pushed, PushError> {
    let Some(account) = orrery::ids::AccountId::parse(&entry.account_id) else {
        return Ok(Pushed::default());
    };
    let mut pushed = Pushed::default();
    let mut failure = None;
    for record in connections::of_account(app, &account).await? {
        match catch_up(app, management, &record, Some(entry)).await {
            Ok(0) => {}
            Ok(_) => pushed.sent += 1,
            Err(CatchUpError::Post(PostError::Gone)) => pushed.gone += 1,
            Err(CatchUpError::Post(err)) => {
                failure = Some(PushError::Post(record.connection_id.clone(), err));
            }
            Err(CatchUpError::Store(err)) => failure = Some(PushError::Store(err)),
        }
    }
    failure.map_or(Ok(pushed), Err)
}

/// Why a catch-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("post failed: {0:?}")]
    Post(PostError),
}

/// The most entries one catch-up sends (a client further behind gets the rest with the next
/// push, or resumes through `GET /v1/events`).
const CATCH_UP_PAGES: usize = 10;

/// Sends one connection every entry after its cursor that its subscription wants, up to the
/// head; `latest`, when it is the very next entry, is sent without reading the log. Each range
/// is claimed (the cursor moved past it, conditionally) before it is sent, so two pushes racing
/// on a connection never send an entry twice; a range that fails to send is handed back. An
/// expired cursor gets the `stale` message and the connection is closed. Returns how many
/// entries were sent.
pub async fn catch_up(
    app: &App,
    management: &dyn ConnectionManagement,
    record: &ConnectionRecord,
    latest: Option<&LoggedEvent>,
) -> Result<usize, CatchUpError> {
    let mut record = record.clone();
    let mut sent = 0;
    for _ in 0..CATCH_UP_PAGES {
        let next = Cursor(record.cursor + 1);
        let (entries, through, more) = match latest.filter(|latest| latest.cursor == next) {
            Some(latest) => (vec![latest.clone()], next, false),
            None => {
                match crate::log::read(app, &record.account_id, Cursor(record.cursor), &[], 100)
                    .await
                {
                    Ok(page) => (page.events, page.cursor, page.has_more),
                    Err(err @ orrery::ApiError::CursorExpired { .. }) => {
                        let stale = ServerMessage::of_error(&err).to_text();
                        let _ = post_with_backoff(management, &record.connection_id, &stale).await;
                        let _ = management.close(&record.connection_id).await;
                        connections::remove(app, &record.account_id, &record.connection_id).await?;
                        return Err(CatchUpError::Post(PostError::Gone));
                    }
                    Err(err) => return Err(StoreError::Backend(err.to_string()).into()),
                }
            }
        };
        if through.0 <= record.cursor {
            break;
        }
        let from = record.cursor;
        // Claim (from, through]: whoever moves the cursor sends the range.
        let mut won = false;
        let claimed = connections::update(app, &record, |current| {
            won = current.cursor == from;
            if won {
                current.cursor = through.0;
            }
            won
        })
        .await?;
        let Some(claimed) = claimed else {
            return Ok(sent); // Disconnected meanwhile.
        };
        if !won {
            // Another push claimed this range first; continue after what it took.
            record = claimed;
            continue;
        }
        record = claimed;
        let wanted: Vec<&LoggedEvent> = entries
            .iter()
            .filter(|entry| record.subscription.matches(entry))
            .collect();
        for entry in &wanted {
            let message = ServerMessage::Event { event: entry }.to_text();
            if let Err(err) = post_with_backoff(management, &record.connection_id, &message).await {
                forget_or_hand_back(app, &record, from, through, &err).await?;
                return Err(CatchUpError::Post(err));
            }
            sent += 1;
        }
        if !more {
            break;
        }
    }
    if let Err(err) = remind_to_reconnect(app, management, &record).await {
        if err == PostError::Gone {
            connections::remove(app, &record.account_id, &record.connection_id).await?;
        }
        return Err(CatchUpError::Post(err));
    }
    Ok(sent)
}

/// After a failed post: a gone connection is forgotten; otherwise the claimed range goes back
/// (unless the connection moved on meanwhile), so the retried push sends it again.
async fn forget_or_hand_back(
    app: &App,
    record: &ConnectionRecord,
    from: u64,
    through: Cursor,
    err: &PostError,
) -> Result<(), StoreError> {
    if *err == PostError::Gone {
        return connections::remove(app, &record.account_id, &record.connection_id).await;
    }
    connections::update(app, record, |current| {
        if current.cursor == through.0 {
            current.cursor = from;
            true
        } else {
            false
        }
    })
    .await
    .map(drop)
}

/// The `reconnect` hint, once, in the last minutes before the gateway's 2-hour cap.
pub async fn remind_to_reconnect(
    app: &App,
    management: &dyn ConnectionManagement,
    record: &ConnectionRecord,
) -> Result<(), PostError> {
    if !record.due_for_reconnect(orrery::clock::now_unix()) {
        return Ok(());
    }
    let cursor = record.cursor.to_string();
    let hint = ServerMessage::Reconnect {
        cursor: &cursor,
        reason: "API Gateway closes WebSocket connections after 2 hours: reconnect with after=<cursor>",
    }
    .to_text();
    post_with_backoff(management, &record.connection_id, &hint).await?;
    connections::update(app, record, |current| {
        let first = !current.told_to_reconnect;
        current.told_to_reconnect = true;
        first
    })
    .await
    .map(drop)
    .map_err(|err| PostError::Failed(err.to_string()))
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub heartbeats: usize,
    pub gone: usize,
    pub failed: usize,
}

/// The heartbeat sweep (AWS, on a schedule): a `heartbeat` with its cursor to every open
/// connection, the `reconnect` hint to those near the gateway's cap; gone ones are forgotten.
/// A connection whose post fails otherwise is left to the next sweep.
pub async fn sweep(app: &App, management: &dyn ConnectionManagement) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    for shard in 0..connections::SWEEP_SHARDS {
        for record in connections::in_shard(app, shard).await? {
            let cursor = record.cursor.to_string();
            let beat = ServerMessage::Heartbeat { cursor: &cursor }.to_text();
            let sent = match post_with_backoff(management, &record.connection_id, &beat).await {
                Ok(()) => remind_to_reconnect(app, management, &record).await,
                Err(err) => Err(err),
            };
            match sent {
                Ok(()) => swept.heartbeats += 1,
                Err(PostError::Gone) => {
                    connections::remove(app, &record.account_id, &record.connection_id).await?;
                    swept.gone += 1;
                }
                Err(err) => {
                    tracing::warn!(connection_id = %record.connection_id, error = ?err, "heartbeat failed");
                    swept.failed += 1;
                }
            }
        }
    }
    Ok(swept)
}
