//! The per-account event log.
//!
//! Each entry has a per-account cursor, strictly increasing without gaps: an append is one
//! conditional transaction that writes the entry at `head + 1`, moves the head from `head` to
//! `head + 1`, and marks the event id as logged. Two appenders racing for the same cursor: one
//! wins, the other reads the new head and tries again; a redelivered event finds its mark and is
//! not appended twice. Since entry `n + 1` can only commit after entry `n`, a reader that has seen
//! cursor `n` never later finds an older entry it missed. Entries are kept 72 hours; the head
//! never expires, so cursors never restart.

use orrery::App;
use orrery::error::ApiError;
use orrery::events::{Event, EventType};
use orrery::ids::AccountId;
use orrery::store::{Condition, Item, StoreError, WriteOp, keyspace};
use serde::Serialize;
use serde_json::{Value, json};

/// How long entries are kept.
pub const RETENTION_SECONDS: i64 = 72 * 3600;
const RETENTION: &str = "72 hours";
/// Appends lost to concurrent appenders before giving up (the message is retried later).
const APPEND_ATTEMPTS: usize = 20;
/// The most entries one read looks at, however few match its type filter.
const SCAN_LIMIT: usize = 1000;

/// A position in an account's log: the entry it names and everything before it are behind.
/// `0` is the start. Shown as its decimal digits (the SSE `id:`, `?after=`, a WebSocket cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// Parses a cursor as a client presents it; `field` names it in the 400.
    pub fn parse(text: &str, field: &str) -> Result<Self, ApiError> {
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::BadRequest(format!(
                "{field}: not a cursor of this event log (the `cursor` of an event)"
            )));
        }
        text.parse()
            .map(Cursor)
            .map_err(|_| ApiError::BadRequest(format!("{field}: not a cursor of this event log")))
    }
}

impl Cursor {
    /// An optional cursor parameter: absent or empty is `None`.
    pub fn parse_optional(text: Option<&str>, field: &str) -> Result<Option<Self>, ApiError> {
        match text {
            None | Some("") => Ok(None),
            Some(text) => Self::parse(text, field).map(Some),
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// On the wire a cursor is its decimal digits as a string (20 digits exceed what JSON numbers
/// carry exactly in JavaScript).
impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One entry as every transport shows it: the event's envelope and its cursor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoggedEvent {
    /// Resume after this event with `?after=<cursor>` (or `Last-Event-ID`).
    #[schema(value_type = String, example = "42", pattern = "^[0-9]{1,20}$")]
    pub cursor: Cursor,
    #[schema(example = "evt_01JC3Q4W2F9K6P0M7N8R5T1V2X")]
    pub id: String,
    /// The event type, e.g. `chart.calculated`.
    #[serde(rename = "type")]
    #[schema(example = "chart.calculated")]
    pub kind: String,
    /// RFC 3339, milliseconds, UTC.
    pub timestamp: String,
    pub account_id: String,
    pub data: Value,
}

impl LoggedEvent {
    /// The entry `event` became at `cursor`.
    pub fn of(cursor: Cursor, event: &Event) -> Self {
        Self {
            cursor,
            id: event.id.clone(),
            kind: event.kind.as_str().to_owned(),
            timestamp: event
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            account_id: event.account_id.to_string(),
            data: event.data.clone(),
        }
    }
}

/// What a read returns: the matching entries after the cursor, and where to continue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    pub events: Vec<LoggedEvent>,
    /// Continue after this cursor: the last entry looked at (it moves past entries the type
    /// filter skipped, so a filtered poll never reads them again).
    #[schema(value_type = String, example = "42")]
    pub cursor: Cursor,
    /// Whether more entries follow right now.
    pub has_more: bool,
}

/// Appends `event` to its account's log, once however often it is delivered; returns its cursor.
pub async fn append(app: &App, event: &Event) -> Result<Cursor, StoreError> {
    let account = &event.account_id;
    let mark_key = keyspace::event_log_mark(account, &event.id);
    let keep_until = event.timestamp.timestamp() + RETENTION_SECONDS;
    let stored = serde_json::to_value(event).map_err(|err| StoreError::Invalid(err.to_string()))?;
    for _ in 0..APPEND_ATTEMPTS {
        let head = head(app, account).await?;
        let next = Cursor(head.0 + 1);
        let head_condition = if head.0 == 0 {
            Condition::NotExists
        } else {
            Condition::equals("cursor", head.0)
        };
        let ops = vec![
            WriteOp::Put {
                item: item(mark_key.clone(), json!({"cursor": next.0})).expiring_at(keep_until),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Put {
                item: item(
                    keyspace::event_log_entry(account, next.0),
                    json!({"event": stored, "type": event.kind.as_str()}),
                )
                .expiring_at(keep_until),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Put {
                item: item(keyspace::event_log_head(account), json!({"cursor": next.0})),
                condition: Some(head_condition),
            },
        ];
        match app.store.transact(ops).await {
            Ok(()) => {
                app.log_appended.appended(account);
                return Ok(next);
            }
            Err(StoreError::TransactionCanceled { failed }) if failed.contains(&0) => {
                // Logged already (a redelivery): its cursor stands.
                let mark = app.store.get(&mark_key).await?;
                let cursor = mark
                    .and_then(|mark| mark.attrs.get("cursor").and_then(Value::as_u64))
                    .unwrap_or(head.0);
                return Ok(Cursor(cursor));
            }
            // Another appender took `next` first: read the new head and try again.
            Err(StoreError::TransactionCanceled { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Backend(format!(
        "the event log of {account} stayed contended for {APPEND_ATTEMPTS} attempts"
    )))
}

fn item(key: orrery::store::Key, attrs: Value) -> Item {
    match attrs {
        Value::Object(attrs) => Item::new(key, attrs),
        _ => Item::new(key, serde_json::Map::new()),
    }
}

/// The cursor of the account's last entry (`0`: none yet).
/// The account's last cursor. Strongly consistent: a reader may hold a cursor it was handed a
/// moment ago (by a push, or another container), and a stale head would call it "ahead".
pub async fn head(app: &App, account: &AccountId) -> Result<Cursor, StoreError> {
    let head = app
        .store
        .get_consistent(&keyspace::event_log_head(account))
        .await?;
    Ok(Cursor(
        head.and_then(|head| head.attrs.get("cursor").and_then(Value::as_u64))
            .unwrap_or(0),
    ))
}

/// A cursor past the account's last event is the caller's mistake (a 400 naming the head): the
/// one check every reader of the log (polling, SSE, WebSocket) makes before it resumes. Returns
/// the head.
pub async fn ensure_not_ahead(
    app: &App,
    account: &AccountId,
    after: Cursor,
) -> Result<Cursor, ApiError> {
    let head = head(app, account).await?;
    if after > head {
        return Err(ApiError::BadRequest(format!(
            "after: cursor {after} is ahead of this log (its last event is {head})"
        )));
    }
    Ok(head)
}

/// Up to `limit` entries after `after` whose type is in `types` (all if empty). A cursor whose
/// next entries have expired is a 410 naming where the log now starts; one past the head is a
/// 400.
pub async fn read(
    app: &App,
    account: &AccountId,
    after: Cursor,
    types: &[EventType],
    limit: usize,
) -> Result<LogPage, ApiError> {
    let head = ensure_not_ahead(app, account, after).await?;
    match read_after(app, account, after, head, types, limit, false).await {
        // An eventually consistent query may not see entries the (strongly read) head already
        // counts, which looks like expiry (or a gap): only a strongly consistent read may say
        // so.
        Err(ApiError::CursorExpired { .. }) => {
            read_after(app, account, after, head, types, limit, true).await
        }
        page => page,
    }
}

/// One page of the log after `after`, given its `head`; `consistent` reads the entries strongly.
async fn read_after(
    app: &App,
    account: &AccountId,
    after: Cursor,
    head: Cursor,
    types: &[EventType],
    limit: usize,
    consistent: bool,
) -> Result<LogPage, ApiError> {
    let limit = limit.clamp(1, 100);
    let mut query = keyspace::event_log_entries(account)
        .with_limit(limit)
        .after(position(account, after));
    if consistent {
        query = query.consistent();
    }
    let mut events = Vec::new();
    let mut scanned = 0;
    let mut last = after;
    let mut first_seen = None;
    let has_more = loop {
        let page = app.store.query(query.clone()).await?;
        for entry in &page.items {
            let Some(cursor) = keyspace::parse_event_log_entry(&entry.key.sk) else {
                continue;
            };
            // A replica may hold an entry without the one before it (global tables replicate a
            // transaction's items one by one): only a strongly consistent read may skip a gap.
            if !consistent && first_seen.is_some() && cursor != last.0 + 1 {
                return Err(ApiError::CursorExpired {
                    oldest: last.to_string(),
                    retention: RETENTION.into(),
                });
            }
            first_seen.get_or_insert(cursor);
            scanned += 1;
            last = Cursor(cursor);
            let event: Event = match entry
                .attrs
                .get("event")
                .cloned()
                .map(serde_json::from_value)
            {
                Some(Ok(event)) => event,
                _ => {
                    tracing::error!(account_id = %account, cursor, "undecodable event log entry");
                    continue;
                }
            };
            if types.is_empty() || types.contains(&event.kind) {
                events.push(LoggedEvent::of(last, &event));
                if events.len() >= limit {
                    break;
                }
            }
        }
        let more = last < head;
        if events.len() >= limit || scanned >= SCAN_LIMIT || page.next.is_none() {
            break more;
        }
        query = query.after(position(account, last));
    };
    // A gap right after the cursor means those entries expired: say so, never skip silently.
    let expired = match first_seen {
        Some(first) => first > after.0 + 1,
        None => after < head,
    };
    if expired {
        let oldest = first_seen.map_or(head, |first| Cursor(first - 1));
        return Err(ApiError::CursorExpired {
            oldest: oldest.to_string(),
            retention: RETENTION.into(),
        });
    }
    Ok(LogPage {
        events,
        cursor: last,
        has_more,
    })
}

/// The store position just past entry `cursor` (`None`: the start).
fn position(account: &AccountId, cursor: Cursor) -> Option<orrery::store::Cursor> {
    (cursor.0 > 0).then(|| {
        let entry = keyspace::event_log_entry(account, cursor.0);
        orrery::store::Cursor {
            pk: entry.pk,
            sk: entry.sk,
            index: None,
        }
    })
}

/// `types=chart.calculated,batch.progress`: the event types a read keeps (empty: all).
pub fn parse_types(text: Option<&str>) -> Result<Vec<EventType>, ApiError> {
    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|name| {
            serde_json::from_value(Value::String(name.trim().to_owned())).map_err(|_| {
                ApiError::validation("types", format!("{name:?} is not an event type"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn cursors_are_decimal_and_bounded() {
        assert_eq!(Cursor::parse("0", "after").unwrap(), Cursor(0));
        assert_eq!(Cursor::parse("42", "after").unwrap(), Cursor(42));
        for bad in ["", "-1", "4 2", "abc", "1e3", "999999999999999999999"] {
            assert!(Cursor::parse(bad, "after").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_filters_name_known_types() {
        assert_eq!(
            parse_types(Some("chart.calculated, batch.progress")).unwrap(),
            [EventType::ChartCalculated, EventType::BatchProgress]
        );
        assert!(parse_types(Some("")).unwrap().is_empty());
        assert!(parse_types(Some("chart.exploded")).is_err());
    }
}
