//! Following a log: the entries after a cursor, then each new one as it is appended. Every live
//! transport (SSE, WebSocket) is a [`Tail`] written to a connection.

use std::collections::VecDeque;
use std::time::Duration;

use orrery::App;
use orrery::error::ApiError;
use orrery::events::EventType;
use orrery::ids::AccountId;
use tokio::sync::broadcast::error::RecvError;

use crate::log::{self, Cursor, LoggedEvent};

/// Reads an account's log from a cursor on, waiting for new entries.
pub struct Tail {
    app: App,
    account: AccountId,
    types: Vec<EventType>,
    after: Cursor,
    ready: VecDeque<LoggedEvent>,
    wake: tokio::sync::broadcast::Receiver<AccountId>,
    /// How long to wait for a wake-up before reading the log anyway (appends in another
    /// process wake nobody here).
    poll: Duration,
}

impl Tail {
    /// A tail after `after`; its first read answers a stale or bad cursor before anything is
    /// streamed (so the caller can still answer 410 or 400).
    pub async fn start(
        app: &App,
        account: &AccountId,
        after: Cursor,
        types: Vec<EventType>,
        poll: Duration,
    ) -> Result<Self, ApiError> {
        let mut tail = Self {
            wake: app.log_appended.subscribe(),
            app: app.clone(),
            account: account.clone(),
            types,
            after,
            ready: VecDeque::new(),
            poll,
        };
        tail.read().await?;
        Ok(tail)
    }

    async fn read(&mut self) -> Result<(), ApiError> {
        let page = log::read(&self.app, &self.account, self.after, &self.types, 100).await?;
        self.after = page.cursor;
        self.ready.extend(page.events);
        Ok(())
    }

    /// The next entry, waiting for one as long as it takes. An error ends the tail (the log's
    /// entries after the cursor expired while the client lagged, or the store failed).
    pub async fn next(&mut self) -> Result<LoggedEvent, ApiError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            // Subscribed before reading: an append between the read and the wait still wakes us.
            self.read().await?;
            if !self.ready.is_empty() {
                continue;
            }
            let deadline = tokio::time::Instant::now() + self.poll;
            loop {
                match tokio::time::timeout_at(deadline, self.wake.recv()).await {
                    Ok(Ok(account)) if account != self.account => continue,
                    // Ours, or wake-ups were dropped while we lagged: read the log.
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => break,
                    Ok(Err(RecvError::Closed)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                    Err(_elapsed) => break,
                }
            }
        }
    }
}
