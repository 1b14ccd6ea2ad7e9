//! Typed errors; the HTTP layer maps each to 422 with [`AstroError::field`].

use thiserror::Error;

use crate::houses::HouseSystem;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AstroError {
    #[error("invalid datetime: {message}")]
    InvalidDatetime { message: String },

    #[error(
        "{local} occurs twice in {timezone} (clocks went back): it is either {earlier} or {later}; \
         pass \"dst\": \"earlier\" or \"later\" to choose"
    )]
    AmbiguousLocalTime {
        local: String,
        timezone: String,
        earlier: String,
        later: String,
    },

    #[error(
        "{local} does not exist in {timezone} (clocks went forward): the wall clock maps to {earlier} \
         or {later}; pass \"dst\": \"earlier\" or \"later\" to choose"
    )]
    NonexistentLocalTime {
        local: String,
        timezone: String,
        earlier: String,
        later: String,
    },

    #[error("unknown IANA time zone {given:?} (e.g. \"Europe/London\", \"America/New_York\")")]
    UnknownTimezone { given: String },

    #[error("invalid utc_offset {given:?}: expected \"+HH:MM\" or \"-HH:MM\" (at most ±18:00)")]
    InvalidUtcOffset { given: String },

    #[error(
        "a local datetime needs `timezone` (IANA name) or `utc_offset` (\"+HH:MM\"), or give an RFC 3339 instant with Z or an offset"
    )]
    MissingTimezone,

    #[error("{message}")]
    ConflictingTimezone { message: String },

    #[error("{given} is outside the supported range {start} (inclusive) to {end} (exclusive)")]
    DateOutOfRange {
        given: String,
        start: String,
        end: String,
    },

    #[error("latitude {value} is out of range: expected -90 to 90 degrees")]
    LatitudeOutOfRange { value: f64 },

    #[error("longitude {value} is out of range: expected -180 to 180 degrees (east positive)")]
    LongitudeOutOfRange { value: f64 },

    #[error(
        "unknown house system {given:?}; accepted: {}",
        HouseSystem::accepted_names()
    )]
    UnknownHouseSystem { given: String },

    #[error("{}", polar_message(system, *latitude, *limit, *date_dependent))]
    PolarHouses {
        system: &'static str,
        latitude: f64,
        limit: f64,
        /// Placidus' and Koch's limit moves with the obliquity; the pole's limit is fixed.
        date_dependent: bool,
    },

    #[error("unknown zodiac {given:?}; accepted: tropical, sidereal")]
    UnknownZodiac { given: String },

    #[error(
        "unknown or missing ayanamsa {given:?}; accepted: {}",
        crate::zodiac::Ayanamsa::accepted_names()
    )]
    UnknownAyanamsa { given: String },

    #[error(
        "unknown point {given:?}; accepted: {}",
        crate::points::PointKind::accepted_names()
    )]
    UnknownPoint { given: String },

    #[error(
        "unknown aspect {given:?}; accepted: {}",
        crate::aspects::AspectKind::accepted_names()
    )]
    UnknownAspect { given: String },

    #[error("orb for {aspect} must be between 0 and 15 degrees, got {value}")]
    InvalidOrb { aspect: String, value: f64 },

    #[error("invalid dst {given:?}: accepted \"earlier\" or \"later\"")]
    InvalidDst { given: String },

    #[error("unknown field {name:?}; accepted: {accepted}")]
    UnknownField { name: String, accepted: String },

    #[error("invalid request: {message}")]
    InvalidRequest {
        field: Option<&'static str>,
        message: String,
    },
}

impl AstroError {
    /// The JSON input field at fault, for RFC 9457 `errors[].field`.
    pub fn field(&self) -> Option<&str> {
        use AstroError::*;
        match self {
            InvalidDatetime { .. }
            | AmbiguousLocalTime { .. }
            | NonexistentLocalTime { .. }
            | DateOutOfRange { .. } => Some("datetime"),
            UnknownTimezone { .. } | MissingTimezone | ConflictingTimezone { .. } => {
                Some("timezone")
            }
            InvalidUtcOffset { .. } => Some("utc_offset"),
            LatitudeOutOfRange { .. } | PolarHouses { .. } => Some("latitude"),
            LongitudeOutOfRange { .. } => Some("longitude"),
            UnknownHouseSystem { .. } => Some("house_system"),
            UnknownZodiac { .. } => Some("zodiac"),
            UnknownAyanamsa { .. } => Some("ayanamsa"),
            UnknownPoint { .. } => Some("points"),
            UnknownAspect { .. } => Some("aspects"),
            InvalidOrb { .. } => Some("orbs"),
            UnknownField { name, .. } => Some(name),
            InvalidDst { .. } => Some("dst"),
            InvalidRequest { field, .. } => *field,
        }
    }
}

/// Why a house system fails near a pole, and only the systems that do work there.
fn polar_message(system: &str, latitude: f64, limit: f64, date_dependent: bool) -> String {
    let (why, alternatives): (&str, &[&str]) = if date_dependent {
        (
            "at this date, where the ecliptic can be circumpolar",
            &[
                "porphyry",
                "equal",
                "whole_sign",
                "campanus",
                "regiomontanus",
                "morinus",
            ],
        )
    } else {
        (
            "a fixed limit: the horizon is undefined at the pole",
            &["morinus"],
        )
    };
    let alternatives: Vec<&str> = alternatives
        .iter()
        .copied()
        .filter(|name| *name != system)
        .collect();
    format!(
        "the {system} house system is undefined at latitude {latitude}° (limit ±{limit:.4}°, {why}); use {}",
        alternatives.join(", ")
    )
}
