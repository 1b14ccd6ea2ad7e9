//! Chart requests as the API takes them: the engine's input plus an optional display name,
//! parsed with every invalid field reported at once, and identified by a canonical hash that
//! ignores how the same input was written.

use orrery::FieldError;
use orrery_astro::{AstroError, ChartInput, DATA_VERSION, ENGINE_VERSION, PointKind};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The longest display name a chart may carry, in characters.
pub const NAME_MAX_CHARS: usize = 200;

/// A valid chart request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRequest {
    pub name: Option<String>,
    pub input: ChartInput,
    /// Hex SHA-256 of the canonical input: equal for every spelling of the same chart.
    pub input_hash: String,
}

/// `field` inside the object found at `path` (`""` for the body itself).
pub fn field_path(path: &str, field: &str) -> String {
    match (path.is_empty(), field.is_empty()) {
        (true, true) => String::new(),
        (true, false) => field.to_owned(),
        (false, true) => path.to_owned(),
        (false, false) => format!("{path}.{field}"),
    }
}

/// An engine error as a field error of the object at `path`.
pub fn field_error(path: &str, error: &AstroError) -> FieldError {
    FieldError::new(
        field_path(path, error.field().unwrap_or("")),
        error.to_string(),
    )
}

impl ChartRequest {
    /// Parses the chart request object at `path` of the body, removing `extra_fields` it may
    /// share with its envelope (e.g. a reading's `chart_id`) — those are the caller's to read.
    pub fn from_object(
        mut object: Map<String, Value>,
        path: &str,
    ) -> Result<ChartRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = match object.remove("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => {
                let trimmed = name.trim();
                if trimmed.chars().count() > NAME_MAX_CHARS {
                    errors.push(FieldError::new(
                        field_path(path, "name"),
                        format!("must be at most {NAME_MAX_CHARS} characters"),
                    ));
                }
                (!trimmed.is_empty()).then(|| trimmed.to_owned())
            }
            Some(_) => {
                errors.push(FieldError::new(
                    field_path(path, "name"),
                    "must be a string",
                ));
                None
            }
        };
        let input = match ChartInput::from_value(Value::Object(object)) {
            Ok(input) => Some(input),
            Err(engine_errors) => {
                errors.extend(engine_errors.iter().map(|e| field_error(path, e)));
                None
            }
        };
        match input {
            Some(input) if errors.is_empty() => {
                let input_hash = canonical_hash(&input).map_err(|e| vec![field_error(path, &e)])?;
                Ok(ChartRequest {
                    name,
                    input,
                    input_hash,
                })
            }
            _ => Err(errors),
        }
    }

    /// Parses a whole JSON value that must be a chart request object.
    pub fn from_value(value: Value, path: &str) -> Result<ChartRequest, Vec<FieldError>> {
        match value {
            Value::Object(object) => ChartRequest::from_object(object, path),
            _ => Err(vec![FieldError::new(
                field_path(path, ""),
                "must be a JSON object holding a chart request",
            )]),
        }
    }
}

/// Everything that decides a chart's result, in one fixed spelling.
#[derive(Serialize)]
struct Canonical<'a> {
    engine: &'a str,
    data: &'a str,
    /// The resolved UTC instant: local time + zone, offsets and `Z` forms of it agree here.
    utc: String,
    latitude: f64,
    longitude: f64,
    house_system: &'a str,
    zodiac: &'a orrery_astro::ZodiacKind,
    ayanamsa: Option<&'a str>,
    points: Vec<PointKind>,
    /// Effective aspect kinds and orbs (defaults filled in).
    orbs: Vec<(&'static str, f64)>,
}

/// Hex SHA-256 of the canonical form of `input` (which must be valid).
pub fn canonical_hash(input: &ChartInput) -> Result<String, AstroError> {
    let (instant, _) = input.resolve_instant()?;
    let mut points = input
        .points
        .clone()
        .unwrap_or_else(|| PointKind::ALL.to_vec());
    points.sort();
    points.dedup();
    let config = input.aspect_config()?;
    let canonical = Canonical {
        engine: ENGINE_VERSION,
        data: DATA_VERSION,
        utc: format!("{}T{:.6}", instant.date, instant.second_of_day),
        // -0.0 and 0.0 are the same place.
        latitude: input.latitude + 0.0,
        longitude: input.longitude + 0.0,
        house_system: input.house_system.as_str(),
        zodiac: &input.zodiac,
        ayanamsa: input.ayanamsa.map(|a| a.as_str()),
        points,
        orbs: config
            .orbs
            .iter()
            .map(|(kind, orb)| (kind.as_str(), *orb))
            .collect(),
    };
    let bytes = serde_json::to_vec(&canonical).map_err(|e| AstroError::InvalidRequest {
        field: None,
        message: e.to_string(),
    })?;
    Ok(orrery::ids::hex(&Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ChartRequest, Vec<FieldError>> {
        ChartRequest::from_value(value, "")
    }

    #[test]
    fn the_same_chart_spelled_differently_has_one_hash() {
        let spellings = [
            json!({"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1}),
            json!({"datetime": "1990-05-17T14:30:00", "utc_offset": "+01:00", "latitude": 51.50, "longitude": -0.10, "house_system": "placidus"}),
            json!({"longitude": -0.1, "latitude": 51.5, "datetime": "1990-05-17T13:30:00Z", "name": "  Ada  ",
                   "points": ["part_of_fortune", "mean_node", "true_node", "mean_south_node", "true_south_node", "mean_lilith", "mean_node"],
                   "orbs": {"conjunction": 8.0}}),
        ];
        let hashes: Vec<String> = spellings
            .into_iter()
            .map(|v| parse(v).unwrap().input_hash)
            .collect();
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[0], hashes[2]);
        let other =
            parse(json!({"datetime": "1990-05-17T13:30:01Z", "latitude": 51.5, "longitude": -0.1}))
                .unwrap();
        assert_ne!(other.input_hash, hashes[0]);
        let other_system = parse(json!({"datetime": "1990-05-17T13:30:00Z", "latitude": 51.5, "longitude": -0.1, "house_system": "koch"}))
            .unwrap();
        assert_ne!(other_system.input_hash, hashes[0]);
    }

    #[test]
    fn every_invalid_field_is_reported_with_its_path() {
        let errors = ChartRequest::from_value(
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 91, "longitude": -181,
                   "house_system": "topocentric", "name": 7, "colour": "red"}),
            "first",
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for expected in ["first.name", "first.colour", "first.house_system"] {
            assert!(fields.contains(&expected), "{fields:?}");
        }
        let errors =
            parse(json!({"datetime": "1990-05-17T14:30Z", "latitude": 91, "longitude": -181}))
                .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["latitude", "longitude"]);
        assert!(
            errors[0].message.contains("-90 to 90"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        let long = "x".repeat(NAME_MAX_CHARS + 1);
        let errors = parse(
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 1, "longitude": 1, "name": long}),
        )
        .unwrap_err();
        assert_eq!(errors[0].field, "name");
        let ok = parse(
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 1, "longitude": 1, "name": " "}),
        )
        .unwrap();
        assert_eq!(ok.name, None);
    }
}
