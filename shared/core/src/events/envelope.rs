//! The envelope of every domain event, `{id, type, timestamp, account_id, data}`, and the
//! catalogue of event types: plain data that any module can name without depending on how
//! events are published.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{clock, ids};

/// Every event type the platform emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "chart.calculated")]
    ChartCalculated,
    #[serde(rename = "chart.saved")]
    ChartSaved,
    #[serde(rename = "reading.generated")]
    ReadingGenerated,
    #[serde(rename = "key.created")]
    KeyCreated,
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    #[serde(rename = "webhook.test")]
    WebhookTest,
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// A batch ended with every item done, some possibly failed (`status` says which).
    #[serde(rename = "batch.completed")]
    BatchCompleted,
    /// A batch ended with every item failed.
    #[serde(rename = "batch.failed")]
    BatchFailed,
    #[serde(rename = "batch.cancelled")]
    BatchCancelled,
    #[serde(rename = "batch.expired")]
    BatchExpired,
    /// A running batch's counts, at most once a second per batch.
    #[serde(rename = "batch.progress")]
    BatchProgress,
    /// An account used 80 % or 100 % of a daily quota (once per class, day and percentage).
    #[serde(rename = "usage.threshold")]
    UsageThreshold,
    /// A webhook delivery reached its endpoint (event log only).
    #[serde(rename = "delivery.succeeded")]
    DeliverySucceeded,
    /// A webhook delivery was given up: dead-lettered, or its endpoint disabled (event log only).
    #[serde(rename = "delivery.failed")]
    DeliveryFailed,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::ChartCalculated,
        EventType::ChartSaved,
        EventType::ReadingGenerated,
        EventType::KeyCreated,
        EventType::KeyRevoked,
        EventType::WebhookTest,
        EventType::EndpointDisabled,
        EventType::BatchCompleted,
        EventType::BatchFailed,
        EventType::BatchCancelled,
        EventType::BatchExpired,
        EventType::BatchProgress,
        EventType::UsageThreshold,
        EventType::DeliverySucceeded,
        EventType::DeliveryFailed,
    ];

    /// The types webhook endpoints can subscribe to: all but the delivery outcomes, which go to
    /// the event log only (delivering them by webhook would report deliveries with deliveries).
    pub const DELIVERABLE: [EventType; 13] = [
        EventType::ChartCalculated,
        EventType::ChartSaved,
        EventType::ReadingGenerated,
        EventType::KeyCreated,
        EventType::KeyRevoked,
        EventType::WebhookTest,
        EventType::EndpointDisabled,
        EventType::BatchCompleted,
        EventType::BatchFailed,
        EventType::BatchCancelled,
        EventType::BatchExpired,
        EventType::BatchProgress,
        EventType::UsageThreshold,
    ];

    /// The per-request activity events: one for every chart or reading served, published only
    /// for accounts that turn them on (`Account::activity_events`), since logging an event costs
    /// more than serving the request that raised it.
    pub const ACTIVITY: [EventType; 2] = [EventType::ChartCalculated, EventType::ReadingGenerated];

    /// Whether this is a per-request activity event (see [`Self::ACTIVITY`]).
    pub fn is_activity(self) -> bool {
        Self::ACTIVITY.contains(&self)
    }

    /// Whether webhook endpoints can receive events of this type.
    pub fn is_deliverable(self) -> bool {
        Self::DELIVERABLE.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ChartCalculated => "chart.calculated",
            EventType::ChartSaved => "chart.saved",
            EventType::ReadingGenerated => "reading.generated",
            EventType::KeyCreated => "key.created",
            EventType::KeyRevoked => "key.revoked",
            EventType::WebhookTest => "webhook.test",
            EventType::EndpointDisabled => "endpoint.disabled",
            EventType::BatchCompleted => "batch.completed",
            EventType::BatchFailed => "batch.failed",
            EventType::BatchCancelled => "batch.cancelled",
            EventType::BatchExpired => "batch.expired",
            EventType::BatchProgress => "batch.progress",
            EventType::UsageThreshold => "usage.threshold",
            EventType::DeliverySucceeded => "delivery.succeeded",
            EventType::DeliveryFailed => "delivery.failed",
        }
    }
}

/// The envelope: `{id, type, timestamp, account_id, data}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    pub account_id: crate::ids::AccountId,
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventType, account_id: &crate::ids::AccountId, data: Value) -> Self {
        Self {
            id: ids::new_id("evt"),
            kind,
            timestamp: clock::now(),
            account_id: account_id.clone(),
            data,
        }
    }
}

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_documented_shape() {
        let account = crate::ids::AccountId::generate();
        let event = Event::new(
            EventType::ChartCalculated,
            &account,
            serde_json::json!({"chart_id": "c"}),
        );
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(json["type"], "chart.calculated");
        assert_eq!(json["account_id"], account.as_str());
        assert!(json["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
        assert!(json["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        let back: Event = serde_json::from_value(json).expect("round trips");
        assert_eq!(back.kind, EventType::ChartCalculated);
    }
}
