//! Chart computation behind the two-level cache. A chart is a pure function of its canonical
//! input, so results are cached by the input hash in the immutable `charts` namespace: every
//! container can answer from any other's work, and a new engine or data version changes the
//! hash instead of serving stale results.

use std::borrow::Cow;
use std::sync::Arc;

use orrery::cache::CHARTS;
use orrery::events::EventType;
use orrery::{ApiError, App};
use orrery_astro::{Chart, compute_chart};
use serde_json::{Map, Value};

use crate::request::{ChartRequest, field_error};

/// A computed chart: its JSON as served, and the typed chart when it is at hand.
#[derive(Debug)]
pub struct ComputedChart {
    pub input_hash: String,
    /// The chart's JSON text (always a JSON object), served verbatim; shared with the cache.
    json: Arc<str>,
    /// Whether the result came from the cache.
    pub cached: bool,
    chart: Option<Chart>,
}

impl ComputedChart {
    /// The chart's JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// How the chart cache served it, for analytics (the meter reads it from the response).
    pub fn cache_use(&self) -> orrery::analytics::CacheUse {
        if self.cached {
            orrery::analytics::CacheUse::Hit
        } else {
            orrery::analytics::CacheUse::Miss
        }
    }

    /// The typed chart (parsed from the cached JSON if it was a cache hit).
    pub fn chart(&self) -> Result<Cow<'_, Chart>, ApiError> {
        match &self.chart {
            Some(chart) => Ok(Cow::Borrowed(chart)),
            None => serde_json::from_str(&self.json)
                .map(Cow::Owned)
                .map_err(ApiError::internal),
        }
    }
}

/// Computes a chart without the cache; engine refusals (e.g. Placidus above the polar circle)
/// are 422s naming the field, under `path` of the request body.
pub fn compute_now(request: &ChartRequest, path: &str) -> Result<(Chart, String), ApiError> {
    let chart = compute_chart(&request.input)
        .map_err(|e| ApiError::Validation(vec![field_error(path, &e)]))?;
    let json = chart.to_json();
    Ok((chart, json))
}

/// The chart for `request`, from the cache or computed (and then cached).
pub async fn compute(
    app: &App,
    request: &ChartRequest,
    path: &str,
) -> Result<ComputedChart, ApiError> {
    // The cached text is served as it is: no parse on a hit (it was valid JSON when stored).
    if let Some(json) = app.cache.get_json(&CHARTS, &request.input_hash).await {
        return Ok(ComputedChart {
            input_hash: request.input_hash.clone(),
            json,
            cached: true,
            chart: None,
        });
    }
    let (chart, json) = compute_now(request, path)?;
    let json: Arc<str> = Arc::from(json);
    app.cache
        .put_json(&CHARTS, &request.input_hash, json.clone())
        .await;
    Ok(ComputedChart {
        input_hash: request.input_hash.clone(),
        json,
        cached: false,
        chart: Some(chart),
    })
}

/// A JSON object of `leading` fields followed by every field of the chart object `chart`,
/// without re-serialising the chart.
pub fn document(leading: Map<String, Value>, chart: &str) -> Result<String, ApiError> {
    let rest = chart
        .strip_prefix('{')
        .ok_or_else(|| ApiError::internal("a chart is not a JSON object"))?;
    let mut out = String::with_capacity(chart.len() + 64 * (leading.len() + 1));
    out.push('{');
    for (key, value) in &leading {
        out.push_str(&serde_json::to_string(key).map_err(ApiError::internal)?);
        out.push(':');
        out.push_str(&serde_json::to_string(value).map_err(ApiError::internal)?);
        out.push(',');
    }
    if rest.trim_start().starts_with('}') {
        // An empty chart object: drop the trailing comma.
        out.pop();
    }
    out.push_str(rest);
    Ok(out)
}

/// What a `chart.calculated` event carries: enough to identify the chart, not the chart itself
/// (events stay small; the result can be recomputed or fetched from the cache by its hash).
pub fn calculated_event_data(request: &ChartRequest, chart: &ComputedChart) -> Value {
    let mut data = Map::new();
    data.insert("input_hash".into(), chart.input_hash.clone().into());
    data.insert(
        "name".into(),
        request.name.clone().map_or(Value::Null, Value::String),
    );
    data.insert("datetime".into(), request.input.datetime.clone().into());
    data.insert("latitude".into(), request.input.latitude.into());
    data.insert("longitude".into(), request.input.longitude.into());
    data.insert(
        "house_system".into(),
        request.input.house_system.as_str().into(),
    );
    data.insert("cached".into(), chart.cached.into());
    Value::Object(data)
}

/// Publishes the chart's `chart.calculated` event, if the caller's account has activity events.
pub async fn publish_calculated(
    app: &App,
    caller: &orrery::access::Caller,
    request: &ChartRequest,
    chart: &ComputedChart,
) {
    orrery::events::publish_activity(app, caller, EventType::ChartCalculated, || {
        calculated_event_data(request, chart)
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_put_the_leading_fields_first_and_stay_valid_json() {
        let chart = json!({"a": 1, "b": [2]}).to_string();
        let mut leading = Map::new();
        leading.insert("id".into(), "chart_x".into());
        leading.insert("name".into(), Value::Null);
        let text = document(leading.clone(), &chart).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({"id": "chart_x", "name": null, "a": 1, "b": [2]})
        );
        assert!(text.starts_with("{\"id\""));
        let empty = "{}";
        let parsed: Value = serde_json::from_str(&document(leading, empty).unwrap()).unwrap();
        assert_eq!(parsed, json!({"id": "chart_x", "name": null}));
    }

    #[tokio::test]
    async fn a_second_request_for_the_same_chart_is_a_cache_hit_with_the_same_json() {
        let app = App::in_memory().unwrap();
        let request = ChartRequest::from_value(
            json!({"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1}),
            "",
        )
        .unwrap();
        let first = compute(&app, &request, "").await.unwrap();
        assert!(!first.cached);
        let respelled = ChartRequest::from_value(
            json!({"datetime": "1990-05-17T13:30:00Z", "latitude": 51.5, "longitude": -0.1}),
            "",
        )
        .unwrap();
        let second = compute(&app, &respelled, "").await.unwrap();
        assert!(second.cached);
        assert_eq!(first.json(), second.json());
        assert_eq!(first.chart().unwrap(), second.chart().unwrap());
    }

    #[tokio::test]
    async fn undefined_houses_are_a_field_error() {
        let app = App::in_memory().unwrap();
        let request = ChartRequest::from_value(
            json!({"datetime": "1990-05-17T14:30Z", "latitude": 80.0, "longitude": 0.0, "house_system": "placidus"}),
            "natal",
        )
        .unwrap();
        let err = compute(&app, &request, "natal").await.unwrap_err();
        match err {
            ApiError::Validation(errors) => assert_eq!(errors[0].field, "natal.latitude"),
            other => panic!("{other:?}"),
        }
    }
}
