//! Running one item: the same domain calls as its single-item endpoint, without the per-item
//! events (a batch reports through its own `batch.*` events), turned into a result line.

use orrery::error::Problem;
use orrery::ids::AccountId;
use orrery::{ApiError, App};
use orrery_charts::relations::{self, SynastryRequest, TransitsRequest};
use orrery_charts::wheel::{self, Theme, WheelOptions};
use orrery_charts::{ChartRef, ChartRequest, compute};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::items::{BatchItem, Operation};

/// A result line as stored: LZ4-compressed and base64-encoded (a chart line of ~14 KB stores
/// as ~4 KB: a third of the write units on DynamoDB, a third of the bytes each embedded commit
/// writes). Base64 because the store's attributes are JSON.
pub fn pack_line(line: &str) -> Value {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(lz4_flex::compress_prepend_size(line.as_bytes()))
        .into()
}

/// The line of a stored result, if it is one.
pub fn unpack_line(stored: &Value) -> Option<String> {
    use base64::Engine as _;
    let packed = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(stored.as_str()?)
        .ok()?;
    String::from_utf8(lz4_flex::decompress_size_prepended(&packed).ok()?).ok()
}

/// What running an item gave.
#[derive(Debug, Clone)]
pub enum ItemResult {
    /// The response the single-item endpoint would give, as JSON text.
    Succeeded(String),
    /// The problem it would give (a 4xx).
    Failed(Problem),
}

impl ItemResult {
    pub fn succeeded(&self) -> bool {
        matches!(self, ItemResult::Succeeded(_))
    }

    /// The result line of `custom_id`: `{custom_id, status, response}` or
    /// `{custom_id, status, error}`. The response is spliced in as it is, never re-parsed.
    pub fn line(&self, custom_id: &str) -> String {
        let id = serde_json::to_string(custom_id).unwrap_or_else(|_| "\"\"".into());
        match self {
            ItemResult::Succeeded(response) => {
                format!("{{\"custom_id\":{id},\"status\":\"succeeded\",\"response\":{response}}}")
            }
            ItemResult::Failed(problem) => format!(
                "{{\"custom_id\":{id},\"status\":\"failed\",\"error\":{}}}",
                serde_json::to_string(problem).unwrap_or_else(|_| "null".into())
            ),
        }
    }
}

/// Runs `item` for `account_id`. A client error becomes the item's failure; a server error is
/// returned, so the chunk is retried rather than recording a transient fault as a result.
pub async fn run(
    app: &App,
    account_id: &AccountId,
    item: &BatchItem,
) -> Result<ItemResult, ApiError> {
    match respond(app, account_id, item).await {
        Ok(response) => Ok(ItemResult::Succeeded(response)),
        Err(err) if err.status().is_client_error() => Ok(ItemResult::Failed(err.problem())),
        Err(err) => Err(err),
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

async fn respond(app: &App, account_id: &AccountId, item: &BatchItem) -> Result<String, ApiError> {
    let body = item.body.clone();
    match item.operation {
        Operation::Chart => {
            let request = chart_request(body)?;
            let computed = compute(app, &request, "").await?;
            orrery_charts::compute::document(
                leading(&request, &computed.input_hash),
                computed.json(),
            )
        }
        Operation::ChartSvg => {
            let Value::Object(mut body) = body else {
                return Err(ApiError::validation("", "the body must be a JSON object"));
            };
            let theme = match body.remove("theme") {
                Some(Value::String(theme)) => theme
                    .parse::<Theme>()
                    .map_err(|message| ApiError::validation("theme", message))?,
                _ => Theme::Light,
            };
            let request = chart_request(Value::Object(body))?;
            let computed = compute(app, &request, "").await?;
            let svg = wheel::render(
                &*computed.chart()?,
                &WheelOptions {
                    theme,
                    title: request.name.clone(),
                },
            );
            let mut response = leading(&request, &computed.input_hash);
            response.insert("svg".into(), svg.into());
            json(&response)
        }
        Operation::Transits => {
            let request = TransitsRequest::from_value(body)?;
            json(&relations::transits(app, account_id, &request).await?)
        }
        Operation::Synastry => {
            let request = SynastryRequest::from_value(body)?;
            json(&relations::synastry(app, account_id, &request).await?)
        }
        Operation::Reading => {
            let chart = ChartRef::from_value(body, "").map_err(ApiError::Validation)?;
            let (label, chart) = chart.load(app, account_id, "").await?;
            json(&orrery_charts::reading::reading(&chart, label)?)
        }
    }
}

fn chart_request(body: Value) -> Result<ChartRequest, ApiError> {
    ChartRequest::from_value(body, "").map_err(ApiError::Validation)
}

/// The fields `POST /v1/charts` puts before the chart.
fn leading(request: &ChartRequest, input_hash: &str) -> Map<String, Value> {
    let mut leading = Map::new();
    leading.insert(
        "name".into(),
        request.name.clone().map_or(Value::Null, Value::String),
    );
    leading.insert("input_hash".into(), input_hash.into());
    leading
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn packed_lines_round_trip_and_shrink() {
        let line =
            ItemResult::Succeeded(format!("{{\"a\":\"{}\"}}", "x".repeat(10_000))).line("id");
        let packed = pack_line(&line);
        assert!(packed.as_str().unwrap().len() < line.len() / 4);
        assert_eq!(unpack_line(&packed).as_deref(), Some(line.as_str()));
        assert_eq!(unpack_line(&Value::from("not base64 !")), None);
    }

    #[test]
    fn lines_splice_the_response_and_quote_the_id() {
        let ok = ItemResult::Succeeded("{\"a\":1}".into()).line("x\"y");
        let value: Value = serde_json::from_str(&ok).unwrap();
        assert_eq!(value["custom_id"], "x\"y");
        assert_eq!(value["status"], "succeeded");
        assert_eq!(value["response"]["a"], 1);
        let failed =
            ItemResult::Failed(ApiError::validation("latitude", "bad").problem()).line("z");
        let value: Value = serde_json::from_str(&failed).unwrap();
        assert_eq!(value["status"], "failed");
        assert_eq!(value["error"]["status"], 422);
        assert_eq!(value["error"]["errors"][0]["field"], "latitude");
    }
}
