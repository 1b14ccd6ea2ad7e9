//! Where usage counts live: in the quota counter item of the day and class
//! (`ACCT#<id>/QUOTA#<day>#<class>`), as one attribute per hour × endpoint × measure, so that the
//! write that takes (or gives back) a quota unit also counts the request. The attribute is
//! `<HH>|<METHOD> <route>|<measure>`, e.g. `13|POST /v1/charts|2xx`.
//!
//! Measures: `units` (quota units charged; every change to `count` carries the same delta to one
//! `units` cell, so the cells of a counter always sum to it exactly) and the request outcomes
//! `2xx`, `4xx`, `429`, `5xx`. Admission books `units +1, 2xx +1`; the refund of a client error
//! books `units −1, 2xx −1, 4xx +1` in its one write; a replayed creation `units −1` (it still
//! answered 2xx). A 5xx (`2xx −1, 5xx +1`) and a 429 (`429 +1`) have no write of their own to fold
//! into and go through the in-process aggregator instead.

use chrono::{DateTime, Timelike, Utc};

/// A request's outcome class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Outcome {
    #[serde(rename = "2xx")]
    Success,
    #[serde(rename = "4xx")]
    ClientError,
    #[serde(rename = "429")]
    RateLimited,
    #[serde(rename = "5xx")]
    ServerError,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::RateLimited,
        Outcome::ServerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "2xx",
            Outcome::ClientError => "4xx",
            Outcome::RateLimited => "429",
            Outcome::ServerError => "5xx",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// The outcome of a response status (1xx and 3xx count as success: the request was served).
    pub fn of_status(status: u16) -> Self {
        match status {
            429 => Outcome::RateLimited,
            400..=499 => Outcome::ClientError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::Success,
        }
    }
}

/// What a cell counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    Units,
    Requests(Outcome),
}

impl Measure {
    fn as_str(self) -> &'static str {
        match self {
            Measure::Units => "units",
            Measure::Requests(outcome) => outcome.as_str(),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "units" => Some(Measure::Units),
            other => Outcome::parse(other).map(Measure::Requests),
        }
    }
}

/// The attribute of one hour × endpoint × measure.
pub fn attribute(hour: u32, endpoint: &str, measure: Measure) -> String {
    format!("{hour:02}|{endpoint}|{}", measure.as_str())
}

/// The attribute of `at`'s hour.
pub fn attribute_at(at: DateTime<Utc>, endpoint: &str, measure: Measure) -> String {
    attribute(at.hour(), endpoint, measure)
}

/// A parsed cell attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell<'a> {
    pub hour: u32,
    pub endpoint: &'a str,
    pub measure: Measure,
}

/// Reads a cell attribute back; other attributes of the counter (`count`, `key#…`) are `None`.
pub fn parse(attribute: &str) -> Option<Cell<'_>> {
    let (hour, rest) = attribute.split_once('|')?;
    let (endpoint, measure) = rest.rsplit_once('|')?;
    let hour: u32 = hour.parse().ok().filter(|h| *h < 24 && hour.len() == 2)?;
    Some(Cell {
        hour,
        endpoint,
        measure: Measure::parse(measure)?,
    })
}

/// The label of an endpoint: method and route template, e.g. `GET /v1/charts/{id}`.
/// A counter cell's name without its hour (`<endpoint>|<measure>`): the attribute of a day's
/// roll-up, which adds up the day's hours.
pub fn without_hour(attribute: &str) -> Option<&str> {
    parse(attribute)?;
    attribute.split_once('|').map(|(_, rest)| rest)
}

/// Reads a roll-up attribute (`<endpoint>|<measure>`) back.
pub fn parse_daily(attribute: &str) -> Option<(&str, Measure)> {
    let (endpoint, measure) = attribute.rsplit_once('|')?;
    Some((endpoint, Measure::parse(measure)?))
}

pub fn endpoint_label(method: &axum::http::Method, route: &str) -> String {
    format!("{} {route}", method.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_back_and_other_attributes_do_not() {
        let name = attribute(
            7,
            "POST /v1/charts",
            Measure::Requests(Outcome::RateLimited),
        );
        assert_eq!(name, "07|POST /v1/charts|429");
        assert_eq!(
            parse(&name),
            Some(Cell {
                hour: 7,
                endpoint: "POST /v1/charts",
                measure: Measure::Requests(Outcome::RateLimited)
            })
        );
        for other in [
            "count",
            "key#key_1",
            "last#key_1",
            "24|x|units",
            "7|x|units",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::of_status(201), Outcome::Success);
        assert_eq!(Outcome::of_status(304), Outcome::Success);
        assert_eq!(Outcome::of_status(404), Outcome::ClientError);
        assert_eq!(Outcome::of_status(429), Outcome::RateLimited);
        assert_eq!(Outcome::of_status(503), Outcome::ServerError);
    }
}
