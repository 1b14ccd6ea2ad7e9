//! OpenAPI shapes of the chart bodies. Requests are parsed field by field from JSON (so every
//! invalid field is reported at once) rather than deserialised into these types; these types
//! state the same contract for the OpenAPI document, next to the parsers they describe.

use std::collections::BTreeMap;

use orrery_astro::{AspectKind, Chart, ChartInput};
use serde::Serialize;
use utoipa::ToSchema;

/// A natal chart request: the engine input plus an optional display name.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "datetime": "1990-05-17T14:30", "timezone": "Europe/London",
    "latitude": 51.5, "longitude": -0.1, "name": "Ada",
    "house_system": "placidus", "zodiac": "tropical"
}))]
pub struct ChartRequestBody {
    /// Display name (at most 200 characters); not part of the chart's identity.
    pub name: Option<String>,
    #[serde(flatten)]
    pub input: ChartInput,
}

/// A saved chart of the caller's account, by id.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"}))]
pub struct SavedChartRef {
    pub chart_id: String,
}

/// A chart given inline or by the id of a saved chart.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ChartRefBody {
    Saved(SavedChartRef),
    Inline(ChartRequestBody),
}

/// `POST /v1/charts/transits`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "natal": {"datetime": "1990-05-17T14:30", "timezone": "Europe/London", "latitude": 51.5, "longitude": -0.1},
    "moment": "2026-11-29T12:00:00Z"
}))]
pub struct TransitsBody {
    pub natal: ChartRefBody,
    /// RFC 3339 instant; default now.
    pub moment: Option<String>,
    /// Aspect kinds (default: the five major ones).
    pub aspects: Option<Vec<AspectKind>>,
    /// Orb per aspect kind in degrees, 0–15 (default 2).
    pub orbs: Option<BTreeMap<AspectKind, f64>>,
}

/// `POST /v1/charts/synastry`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "first": {"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"},
    "second": {"datetime": "1992-03-01T08:00:00Z", "latitude": 40.7, "longitude": -74.0, "name": "Grace"}
}))]
pub struct SynastryBody {
    pub first: ChartRefBody,
    pub second: ChartRefBody,
    /// Aspect kinds (default: the five major ones).
    pub aspects: Option<Vec<AspectKind>>,
    /// Orb per aspect kind in degrees, 0–15 (default 5).
    pub orbs: Option<BTreeMap<AspectKind, f64>>,
}

/// A computed chart as `POST /v1/charts` returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChartResponse {
    pub name: Option<String>,
    /// SHA-256 of the canonical input: equal for every spelling of the same chart.
    pub input_hash: String,
    /// The wheel, with `?include=svg`.
    pub svg: Option<String>,
    #[serde(flatten)]
    pub chart: Chart,
}

/// A saved chart: its id, the request as given and the result as saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedChartResponse {
    pub id: String,
    pub name: Option<String>,
    pub created_at: String,
    pub input: ChartInput,
    pub input_hash: String,
    /// The wheel, with `?include=svg`.
    pub svg: Option<String>,
    #[serde(flatten)]
    pub chart: Chart,
}
