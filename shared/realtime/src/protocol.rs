//! The WebSocket protocol, the same on both runtimes: JSON text frames.
//!
//! Client → server: `{"action": "subscribe" | "unsubscribe", "types": [...], "channels":
//! ["batch:<id>"], "after": "<cursor>"}` and `{"action": "ping"}`.
//! Server → client: `{"type": "event", "event": <entry>}` (the entry exactly as `GET /v1/events`
//! shows it, with its cursor), `subscribed`, `unsubscribed`, `pong`, `heartbeat`, `reconnect`
//! (before a connection's lifetime cap, with the cursor to resume from), `stale` (the entries
//! after the cursor expired; carries the 410 problem) and `error` (a bad message; carries a
//! problem, the connection stays open).

use std::collections::BTreeSet;

use orrery::error::{ApiError, Problem};
use orrery::events::EventType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::log::{Cursor, LoggedEvent};

/// A `batch:<id>` channel: the `batch.*` events of one batch.
pub const BATCH_CHANNEL: &str = "batch:";

/// Which entries a connection receives: its types (all, or some) and its channels (all, or
/// some). An entry must pass both. A connection opened without filters receives everything
/// until a `subscribe` names types or channels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    /// `None`: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<BTreeSet<String>>,
    /// `None`: every channel (and entries that belong to none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<BTreeSet<String>>,
}

/// The channel an entry belongs to, if any.
pub fn channel_of(kind: &str, data: &Value) -> Option<String> {
    if !kind.starts_with("batch.") {
        return None;
    }
    data.get("id")
        .and_then(Value::as_str)
        .map(|id| format!("{BATCH_CHANNEL}{id}"))
}

impl Subscription {
    /// The subscription a connection opens with: `?types=` and `?channels=` (comma-separated),
    /// each everything when absent.
    pub fn from_query(types: Option<&str>, channels: Option<&str>) -> Result<Self, ApiError> {
        let mut subscription = Self::default();
        if let Some(types) = types.filter(|text| !text.is_empty()) {
            subscription.types = Some(parse_types(split(types))?);
        }
        if let Some(channels) = channels.filter(|text| !text.is_empty()) {
            subscription.channels = Some(parse_channels(split(channels))?);
        }
        Ok(subscription)
    }

    pub fn matches(&self, entry: &LoggedEvent) -> bool {
        let type_ok = self
            .types
            .as_ref()
            .is_none_or(|types| types.contains(&entry.kind));
        let channel_ok = self.channels.as_ref().is_none_or(|channels| {
            channel_of(&entry.kind, &entry.data).is_some_and(|channel| channels.contains(&channel))
        });
        type_ok && channel_ok
    }

    /// Adds types and channels (`"*"` is all of them).
    pub fn subscribe(&mut self, change: &Change) -> Result<(), ApiError> {
        if let Some(types) = &change.types {
            widen(
                &mut self.types,
                parse_types(types.iter().map(String::as_str))?,
            );
        }
        if let Some(channels) = &change.channels {
            widen(
                &mut self.channels,
                parse_channels(channels.iter().map(String::as_str))?,
            );
        }
        Ok(())
    }

    /// Removes types and channels; removing some from "all" is refused (name the ones you
    /// want instead).
    pub fn unsubscribe(&mut self, change: &Change) -> Result<(), ApiError> {
        if let Some(types) = &change.types {
            narrow(
                &mut self.types,
                parse_types(types.iter().map(String::as_str))?,
                "types",
            )?;
        }
        if let Some(channels) = &change.channels {
            narrow(
                &mut self.channels,
                parse_channels(channels.iter().map(String::as_str))?,
                "channels",
            )?;
        }
        Ok(())
    }
}

const ALL: &str = "*";

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim)
}

fn parse_types<'a>(names: impl Iterator<Item = &'a str>) -> Result<BTreeSet<String>, ApiError> {
    names
        .map(|name| {
            if name == ALL {
                return Ok(ALL.to_owned());
            }
            serde_json::from_value::<EventType>(Value::String(name.to_owned()))
                .map(|kind| kind.as_str().to_owned())
                .map_err(|_| {
                    ApiError::validation("types", format!("{name:?} is not an event type"))
                })
        })
        .collect()
}

fn parse_channels<'a>(names: impl Iterator<Item = &'a str>) -> Result<BTreeSet<String>, ApiError> {
    names
        .map(|name| {
            let valid = name == ALL
                || name
                    .strip_prefix(BATCH_CHANNEL)
                    .is_some_and(|id| orrery::ids::BatchId::parse(id).is_some());
            if valid {
                Ok(name.to_owned())
            } else {
                Err(ApiError::validation(
                    "channels",
                    format!("{name:?} is not a channel: channels look like batch:batch_…"),
                ))
            }
        })
        .collect()
}

/// A `subscribe`: `"*"` is everything; naming some adds them, except to a connection that
/// still receives everything by default, which then receives just those.
fn widen(current: &mut Option<BTreeSet<String>>, added: BTreeSet<String>) {
    if added.contains(ALL) {
        *current = None;
    } else if let Some(current) = current {
        current.extend(added);
    } else if !added.is_empty() {
        *current = Some(added);
    }
}

fn narrow(
    current: &mut Option<BTreeSet<String>>,
    removed: BTreeSet<String>,
    field: &str,
) -> Result<(), ApiError> {
    if removed.contains(ALL) {
        *current = Some(BTreeSet::new());
        return Ok(());
    }
    match current {
        Some(current) => {
            current.retain(|name| !removed.contains(name));
            Ok(())
        }
        None if removed.is_empty() => Ok(()),
        None => Err(ApiError::validation(
            field,
            format!(
                "this connection receives all {field}: unsubscribe from \"*\", then subscribe to the ones you want"
            ),
        )),
    }
}

/// The types and channels a `subscribe` or `unsubscribe` names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// On `subscribe`: replay the entries after this cursor first (how a client resumes on
    /// AWS, where nothing can be sent before the connection is open).
    #[serde(default)]
    pub after: Option<String>,
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe(Change),
    Unsubscribe(Change),
    Ping,
}

impl ClientMessage {
    /// A text frame as a message; anything else is a 400 problem for the `error` reply.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        serde_json::from_str(text).map_err(|err| {
            ApiError::BadRequest(format!(
                "not a message: send {{\"action\": \"subscribe\" | \"unsubscribe\" | \"ping\", …}} ({err})"
            ))
        })
    }

    /// The cursor a `subscribe` asks to resume after.
    pub fn resume_after(&self) -> Result<Option<Cursor>, ApiError> {
        match self {
            ClientMessage::Subscribe(change) => {
                Cursor::parse_optional(change.after.as_deref(), "after")
            }
            _ => Ok(None),
        }
    }
}

/// A message to the client.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Event {
        event: &'a LoggedEvent,
    },
    Subscribed {
        subscription: &'a Subscription,
    },
    Unsubscribed {
        subscription: &'a Subscription,
    },
    Pong,
    /// Sent when the connection has been quiet for the heartbeat interval.
    Heartbeat {
        cursor: &'a str,
    },
    /// The connection ends soon: reconnect with `after=<cursor>`.
    Reconnect {
        cursor: &'a str,
        reason: &'a str,
    },
    Stale {
        problem: Problem,
    },
    Error {
        problem: Problem,
    },
}

impl ServerMessage<'_> {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `stale` for an expired cursor, else `error`.
    pub fn of_error(err: &ApiError) -> ServerMessage<'static> {
        if matches!(err, ApiError::CursorExpired { .. }) {
            ServerMessage::Stale {
                problem: err.problem(),
            }
        } else {
            ServerMessage::Error {
                problem: err.problem(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(kind: &str, data: Value) -> LoggedEvent {
        LoggedEvent {
            cursor: crate::log::Cursor(1),
            id: "evt_1".into(),
            kind: kind.into(),
            timestamp: "2026-12-02T00:00:00.000Z".into(),
            account_id: "acct_1".into(),
            data,
        }
    }

    fn change(types: &[&str], channels: &[&str]) -> Change {
        let list = |names: &[&str]| {
            (!names.is_empty()).then(|| names.iter().map(|n| (*n).to_owned()).collect())
        };
        Change {
            types: list(types),
            channels: list(channels),
            after: None,
        }
    }

    #[test]
    fn subscriptions_filter_by_type_and_batch_channel() {
        let batch = orrery::ids::BatchId::generate().to_string();
        let progress = entry("batch.progress", serde_json::json!({"id": batch}));
        let other = entry("batch.progress", serde_json::json!({"id": "batch_other"}));
        let chart = entry("chart.calculated", serde_json::json!({}));

        let mut all = Subscription::default();
        assert!(all.matches(&progress) && all.matches(&chart));

        all.unsubscribe(&change(&["*"], &[])).unwrap();
        assert!(!all.matches(&chart), "unsubscribed from every type");
        all.subscribe(&change(&["batch.progress"], &[&format!("batch:{batch}")]))
            .unwrap();
        assert!(all.matches(&progress));
        assert!(!all.matches(&other), "another batch's channel");
        assert!(!all.matches(&chart));

        let from_url = Subscription::from_query(Some("chart.calculated"), None).unwrap();
        assert!(from_url.matches(&chart) && !from_url.matches(&progress));

        assert!(Subscription::from_query(Some("chart.nope"), None).is_err());
        assert!(Subscription::from_query(None, Some("account:1")).is_err());
        assert!(
            Subscription::default()
                .unsubscribe(&change(&["chart.calculated"], &[]))
                .is_err()
        );
    }

    #[test]
    fn client_messages_are_strict() {
        assert_eq!(
            ClientMessage::parse(r#"{"action":"ping"}"#).unwrap(),
            ClientMessage::Ping
        );
        let subscribe = ClientMessage::parse(
            r#"{"action":"subscribe","types":["batch.progress"],"after":"7"}"#,
        )
        .unwrap();
        assert_eq!(subscribe.resume_after().unwrap(), Some(Cursor(7)));
        for bad in [
            "",
            "{}",
            r#"{"action":"shout"}"#,
            r#"{"action":"subscribe","typo":1}"#,
        ] {
            assert!(ClientMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_are_tagged() {
        let event = entry("chart.calculated", Value::Null);
        let text = ServerMessage::Event { event: &event }.to_text();
        assert!(
            text.starts_with(r#"{"type":"event","event":{"cursor":"1""#),
            "{text}"
        );
        assert_eq!(ServerMessage::Pong.to_text(), r#"{"type":"pong"}"#);
    }
}
