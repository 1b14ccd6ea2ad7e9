//! A submission as the API takes it — `{"requests": [...], "metadata": {...}}` as JSON, or the
//! same items as JSON Lines — checked item by item with the validation of the single-item
//! endpoints, every bad item reported at once.
//!
//! Validation here is everything that can be known from the input itself: shapes, fields,
//! ranges, time zones. What needs the computation or stored state (houses undefined at a polar
//! latitude, a `chart_id` that names no saved chart) fails that item when it runs, with the
//! problem the single-item endpoint would give.

use std::collections::HashSet;

use orrery::error::ItemProblem;
use orrery::{ApiError, FieldError};
use orrery_charts::relations::{SynastryRequest, TransitsRequest};
use orrery_charts::request::field_path;
use orrery_charts::{ChartRef, ChartRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The most items one batch holds.
pub const MAX_ITEMS: usize = 10_000;
/// The longest `custom_id`, in characters.
pub const MAX_CUSTOM_ID_CHARS: usize = 128;
/// The largest submission body: Lambda's 6 MB payload limit, less room for the event envelope.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// Field errors reported per item at most (the count says how many more there were).
const MAX_ERRORS_PER_ITEM: usize = 20;

pub const NDJSON: &str = "application/x-ndjson";

/// What an item asks for: the single-item endpoint it stands for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `POST /v1/charts` (JSON).
    Chart,
    /// `POST /v1/charts?format=svg`: the wheel; the body may add `theme`.
    ChartSvg,
    /// `POST /v1/charts/transits`.
    Transits,
    /// `POST /v1/charts/synastry`.
    Synastry,
    /// `POST /v1/readings`.
    Reading,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Chart,
        Operation::ChartSvg,
        Operation::Transits,
        Operation::Synastry,
        Operation::Reading,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chart => "chart",
            Operation::ChartSvg => "chart_svg",
            Operation::Transits => "transits",
            Operation::Synastry => "synastry",
            Operation::Reading => "reading",
        }
    }

    /// The key scope the single-item endpoint needs; a batch item needs it too.
    pub fn scope(self) -> &'static str {
        match self {
            Operation::Reading => "readings",
            _ => "charts",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

/// One item of a submission (the OpenAPI schema; validation is [`parse_submission`]).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchItemBody {
    /// Your id for the item (1 to 128 characters, unique in the batch): results carry it.
    #[schema(min_length = 1, max_length = 128)]
    pub custom_id: String,
    pub operation: Operation,
    /// The body the operation's single-item endpoint takes (`chart_svg` may add `theme`).
    #[schema(value_type = Object)]
    pub body: Value,
}

/// `POST /v1/batches` as JSON (or the items alone as JSON Lines).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchSubmissionBody {
    /// 1 to 10,000 items; operations may be mixed.
    #[schema(min_items = 1, max_items = 10000)]
    pub requests: Vec<BatchItemBody>,
    /// Up to 16 string values, kept with the batch.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// One valid item as stored: the caller's id, the operation, the body as validated (a
/// `transits` item without `moment` is fixed to the submission time, so a retried chunk
/// computes the same result), and the key that identical inputs share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Position in the submission, from 0: the order of the results.
    pub index: u32,
    pub custom_id: String,
    pub operation: Operation,
    pub body: Value,
    /// Equal for items whose results are equal (the chart cache's canonical hash inside).
    pub input_key: String,
}

/// A valid submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub items: Vec<BatchItem>,
    pub metadata: Map<String, Value>,
}

/// Metadata: at most 16 string values, keys ≤ 64 and values ≤ 512 characters (as peers do).
const MAX_METADATA_KEYS: usize = 16;

/// Parses and validates a submission body of `content_type` at `moment` (RFC 3339, the
/// submission time). Errors: 415 for another content type, 400 for malformed JSON (naming the
/// line for JSON Lines), 422 listing every bad item.
pub fn parse_submission(
    content_type: Option<&str>,
    body: &[u8],
    moment: &str,
) -> Result<Submission, ApiError> {
    let mime = content_type
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase());
    let (raw_items, metadata) = match mime.as_deref() {
        Some("application/json") => parse_envelope(body)?,
        Some(NDJSON) | Some("application/jsonl") => (parse_lines(body)?, Map::new()),
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Send the batch as Content-Type: application/json ({{\"requests\": [...]}}) or \
                 {NDJSON} (one item a line)."
            )));
        }
    };
    validate_items(raw_items, moment).map(|items| Submission { items, metadata })
}

fn parse_envelope(body: &[u8]) -> Result<(Vec<Value>, Map<String, Value>), ApiError> {
    let value: Value = orrery::http::parse_json(body)?;
    let Value::Object(mut envelope) = value else {
        return Err(ApiError::validation(
            "",
            "the body must be a JSON object with `requests`",
        ));
    };
    let mut errors = Vec::new();
    for key in envelope.keys() {
        if key != "requests" && key != "metadata" {
            errors.push(FieldError::new(
                key.clone(),
                "unknown field; accepted: requests, metadata",
            ));
        }
    }
    let metadata = match envelope.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(metadata)) => {
            check_metadata(&metadata, &mut errors);
            metadata
        }
        Some(_) => {
            errors.push(FieldError::new(
                "metadata",
                "must be an object of string values",
            ));
            Map::new()
        }
    };
    let items = match envelope.remove("requests") {
        Some(Value::Array(items)) => items,
        None => {
            errors.push(FieldError::new("requests", "missing: an array of items"));
            Vec::new()
        }
        Some(_) => {
            errors.push(FieldError::new("requests", "must be an array of items"));
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok((items, metadata))
}

fn check_metadata(metadata: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    if metadata.len() > MAX_METADATA_KEYS {
        errors.push(FieldError::new(
            "metadata",
            format!("holds at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (key, value) in metadata {
        let field = format!("metadata.{key}");
        if key.is_empty() || key.chars().count() > 64 {
            errors.push(FieldError::new(
                field.clone(),
                "keys are 1 to 64 characters",
            ));
        }
        match value {
            Value::String(text) if text.chars().count() <= 512 => {}
            Value::String(_) => errors.push(FieldError::new(field, "at most 512 characters")),
            _ => errors.push(FieldError::new(field, "must be a string")),
        }
    }
}

/// JSON Lines: one item object a line; blank lines are skipped.
fn parse_lines(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("The JSON Lines body is not valid UTF-8.".into()))?;
    let mut items = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = orrery::http::parse_json(line.as_bytes()).map_err(|err| match err {
            ApiError::BadRequest(detail) => {
                ApiError::BadRequest(format!("Line {}: {detail}", number + 1))
            }
            other => other,
        })?;
        items.push(value);
    }
    Ok(items)
}

fn validate_items(raw: Vec<Value>, moment: &str) -> Result<Vec<BatchItem>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::validation(
            "requests",
            "a batch holds at least one item",
        ));
    }
    if raw.len() > MAX_ITEMS {
        return Err(ApiError::validation(
            "requests",
            format!(
                "a batch holds at most {MAX_ITEMS} items; this one has {}",
                raw.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    let mut items = Vec::with_capacity(raw.len());
    let mut problems = Vec::new();
    for (index, value) in raw.into_iter().enumerate() {
        let custom_id = value
            .get("custom_id")
            .and_then(Value::as_str)
            .map(|id| capped(id.to_owned()));
        match validate_item(index, value, moment) {
            Ok(item) if !seen.insert(item.custom_id.clone()) => problems.push(ItemProblem {
                index,
                custom_id,
                errors: vec![FieldError::new(
                    "custom_id",
                    "is already used by an earlier item; custom_ids are unique in a batch",
                )],
            }),
            Ok(item) => items.push(item),
            Err(mut errors) => {
                if errors.len() > MAX_ERRORS_PER_ITEM {
                    let more = errors.len() - MAX_ERRORS_PER_ITEM;
                    errors.truncate(MAX_ERRORS_PER_ITEM);
                    errors.push(FieldError::new("", format!("and {more} more errors")));
                }
                problems.push(ItemProblem {
                    index,
                    custom_id,
                    errors,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(items)
    } else {
        Err(ApiError::InvalidItems(problems))
    }
}

fn capped(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_CUSTOM_ID_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// One item, checked as its single-item endpoint would check its body.
fn validate_item(index: usize, value: Value, moment: &str) -> Result<BatchItem, Vec<FieldError>> {
    let Value::Object(mut object) = value else {
        return Err(vec![FieldError::new(
            "",
            "an item is an object {\"custom_id\", \"operation\", \"body\"}",
        )]);
    };
    let mut errors = Vec::new();
    for key in object.keys() {
        if !["custom_id", "operation", "body"].contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.clone(),
                "unknown field; accepted: custom_id, operation, body",
            ));
        }
    }
    let custom_id = match object.remove("custom_id") {
        Some(Value::String(id))
            if !id.is_empty()
                && id.chars().count() <= MAX_CUSTOM_ID_CHARS
                && !id.chars().any(char::is_control) =>
        {
            Some(id)
        }
        Some(Value::String(_)) => {
            errors.push(FieldError::new(
                "custom_id",
                format!("must be 1 to {MAX_CUSTOM_ID_CHARS} characters without control characters"),
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                "custom_id",
                "missing: your id for this item",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("custom_id", "must be a string"));
            None
        }
    };
    let accepted = Operation::ALL.map(Operation::as_str).join(", ");
    let operation = match object.remove("operation") {
        Some(Value::String(name)) => match Operation::parse(&name) {
            Some(operation) => Some(operation),
            None => {
                errors.push(FieldError::new(
                    "operation",
                    format!("unknown operation {name:?}; accepted: {accepted}"),
                ));
                None
            }
        },
        None => {
            errors.push(FieldError::new(
                "operation",
                format!("missing; one of {accepted}"),
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "operation",
                format!("must be one of {accepted}"),
            ));
            None
        }
    };
    let body = match object.remove("body") {
        Some(Value::Object(body)) => Some(body),
        None => {
            errors.push(FieldError::new(
                "body",
                "missing: the body the single-item endpoint takes",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new("body", "must be a JSON object"));
            None
        }
    };
    let checked = match (operation, body) {
        (Some(operation), Some(body)) => match check_body(operation, body, moment) {
            Ok(checked) => Some(checked),
            Err(body_errors) => {
                errors.extend(
                    body_errors
                        .into_iter()
                        .map(|e| FieldError::new(field_path("body", &e.field), e.message)),
                );
                None
            }
        },
        _ => None,
    };
    match (custom_id, operation, checked) {
        (Some(custom_id), Some(operation), Some((body, key))) if errors.is_empty() => {
            Ok(BatchItem {
                index: index as u32,
                custom_id,
                operation,
                body: Value::Object(body),
                input_key: input_key(operation, &key),
            })
        }
        _ => Err(errors),
    }
}

fn field_errors(err: ApiError) -> Vec<FieldError> {
    match err {
        ApiError::Validation(errors) => errors,
        other => vec![FieldError::new("", other.problem().detail)],
    }
}

/// The body as it will run, and the canonical description of its input.
fn check_body(
    operation: Operation,
    mut body: Map<String, Value>,
    moment: &str,
) -> Result<(Map<String, Value>, String), Vec<FieldError>> {
    let key = match operation {
        Operation::Chart => chart_key(&ChartRequest::from_value(Value::Object(body.clone()), "")?),
        Operation::ChartSvg => {
            let mut chart = body.clone();
            let theme = match chart.remove("theme") {
                None | Some(Value::Null) => "light".to_owned(),
                Some(Value::String(theme)) => {
                    theme
                        .parse::<orrery_charts::wheel::Theme>()
                        .map_err(|message| vec![FieldError::new("theme", message)])?;
                    theme
                }
                Some(_) => return Err(vec![FieldError::new("theme", "must be light or dark")]),
            };
            let request = ChartRequest::from_value(Value::Object(chart), "")?;
            format!("{}|{theme}", chart_key(&request))
        }
        Operation::Transits => {
            if body.get("moment").is_none_or(Value::is_null) {
                body.insert("moment".into(), moment.into());
            }
            let request =
                TransitsRequest::from_value(Value::Object(body.clone())).map_err(field_errors)?;
            format!(
                "{}|{}|{:?}",
                ref_key(&request.natal),
                request.moment.unwrap_or_default(),
                request.aspects
            )
        }
        Operation::Synastry => {
            let request =
                SynastryRequest::from_value(Value::Object(body.clone())).map_err(field_errors)?;
            format!(
                "{}|{}|{:?}",
                ref_key(&request.first),
                ref_key(&request.second),
                request.aspects
            )
        }
        Operation::Reading => ref_key(&ChartRef::from_value(Value::Object(body.clone()), "")?),
    };
    Ok((body, key))
}

fn chart_key(request: &ChartRequest) -> String {
    format!(
        "{}|{}",
        request.input_hash,
        serde_json::to_string(&request.name).unwrap_or_default()
    )
}

fn ref_key(chart: &ChartRef) -> String {
    match chart {
        ChartRef::Inline(request) => chart_key(request),
        ChartRef::Saved(id) => format!("saved:{id}"),
    }
}

fn input_key(operation: Operation, key: &str) -> String {
    let digest = Sha256::digest(format!("{}|{key}", operation.as_str()));
    orrery::ids::hex(&digest[..16])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const NOW: &str = "2026-12-01T12:00:00Z";

    fn chart(custom_id: &str, datetime: &str) -> Value {
        json!({"custom_id": custom_id, "operation": "chart", "body": {"datetime": datetime, "latitude": 51.5, "longitude": -0.1}})
    }

    fn submit(value: Value) -> Result<Submission, ApiError> {
        parse_submission(Some("application/json"), value.to_string().as_bytes(), NOW)
    }

    #[test]
    fn every_bad_item_is_reported_by_index_and_custom_id() {
        let err = submit(json!({"requests": [
            chart("ok", "1990-05-17T14:30Z"),
            {"custom_id": "bad-lat", "operation": "chart", "body": {"datetime": "1990-05-17T14:30Z", "latitude": 91, "longitude": 0}},
            {"custom_id": "bad-op", "operation": "horoscope", "body": {}},
            chart("ok", "1991-05-17T14:30Z"),
            {"operation": "reading"},
        ]}))
        .unwrap_err();
        let ApiError::InvalidItems(problems) = err else {
            panic!("{err:?}")
        };
        let summary: Vec<_> = problems
            .iter()
            .map(|p| (p.index, p.custom_id.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                (1, Some("bad-lat")),
                (2, Some("bad-op")),
                (3, Some("ok")),
                (4, None)
            ]
        );
        assert_eq!(problems[0].errors[0].field, "body.latitude");
        assert!(problems[2].errors[0].message.contains("already used"));
        let fields: Vec<_> = problems[3]
            .errors
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["custom_id", "body"]);
    }

    #[test]
    fn json_lines_carry_the_same_items_and_name_a_bad_line() {
        let lines = format!(
            "{}\n\n{}\n",
            chart("a", "1990-05-17T14:30Z"),
            chart("b", "1990-05-17T15:30Z")
        );
        let submission = parse_submission(Some(NDJSON), lines.as_bytes(), NOW).unwrap();
        assert_eq!(submission.items.len(), 2);
        assert_eq!(submission.items[1].index, 1);
        let err =
            parse_submission(Some(NDJSON), b"{\"custom_id\": \"a\"}\n{oops", NOW).unwrap_err();
        assert!(
            matches!(&err, ApiError::BadRequest(detail) if detail.starts_with("Line 2:")),
            "{err:?}"
        );
        assert!(matches!(
            parse_submission(Some("text/plain"), b"", NOW),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn identical_inputs_share_a_key_however_they_are_spelt() {
        let submission = submit(json!({"requests": [
            chart("a", "1990-05-17T14:30:00Z"),
            {"custom_id": "b", "operation": "chart", "body": {"datetime": "1990-05-17T15:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1}},
            chart("c", "1990-05-17T14:31:00Z"),
            {"custom_id": "d", "operation": "chart_svg", "body": {"datetime": "1990-05-17T14:30:00Z", "latitude": 51.5, "longitude": -0.1}},
        ]}))
        .unwrap();
        let keys: Vec<_> = submission
            .items
            .iter()
            .map(|i| i.input_key.as_str())
            .collect();
        assert_eq!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_ne!(keys[0], keys[3], "another operation");
    }

    #[test]
    fn transits_without_a_moment_run_at_the_submission_time() {
        let submission = submit(json!({"requests": [
            {"custom_id": "t", "operation": "transits", "body": {"natal": {"datetime": "1990-05-17T14:30Z", "latitude": 51.5, "longitude": -0.1}}},
        ]}))
        .unwrap();
        assert_eq!(submission.items[0].body["moment"], NOW);
    }

    #[test]
    fn sizes_are_bounded() {
        let many: Vec<Value> = (0..=MAX_ITEMS)
            .map(|i| chart(&i.to_string(), "1990-05-17T14:30Z"))
            .collect();
        assert!(matches!(
            submit(json!({"requests": many})),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            submit(json!({"requests": []})),
            Err(ApiError::Validation(_))
        ));
        let err = submit(json!({"requests": [chart("a", "1990-05-17T14:30Z")], "extra": 1, "metadata": {"k": 5}}))
            .unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!()
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["extra", "metadata.k"]);
    }
}
