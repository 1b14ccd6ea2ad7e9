//! OpenAPI shapes of the chart bodies. Requests are parsed field by field from JSON (so every
//! invalid field is reported at once) rather than deserialised into these types; these types
//! state the same contract for the OpenAPI document, next to the parsers they describe.

use std::collections::BTreeMap;

use orrery_astro::{
    AspectKind, Ayanamsa, Chart, ChartInput, DstChoice, HouseSystem, PointKind, ZodiacKind,
};
use serde::Serialize;
use utoipa::ToSchema;

/// A natal chart request: the engine input plus an optional display name. Rules across fields
/// that a schema cannot state are checked too and answered with a 422 naming the field: a local
/// time needs `timezone` or `utc_offset` (not both) and must exist there (DST gaps and overlaps
/// need `dst`); the instant must lie within the ephemeris (1800–2200); `sidereal` needs an
/// `ayanamsa`; Placidus and Koch are undefined at polar latitudes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "datetime": "1990-05-17T14:30", "timezone": "Europe/London",
    "latitude": 51.5, "longitude": -0.1, "name": "Ada",
    "house_system": "placidus", "zodiac": "tropical"
}))]
pub struct ChartRequestBody {
    #[schema(schema_with = orrery::openapi::schemas::chart_name)]
    pub name: Option<String>,
    /// Local "YYYY-MM-DDTHH:MM[:SS]" (with `timezone` or `utc_offset`) or an RFC 3339 instant.
    #[schema(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
    )]
    pub datetime: String,
    /// IANA zone name, e.g. "Europe/London".
    pub timezone: Option<String>,
    /// Fixed offset "+05:30".
    #[schema(pattern = "^([Zz]|[+-](0[0-9]|1[0-8]):[0-5][0-9])$")]
    pub utc_offset: Option<String>,
    /// Resolves DST overlaps and gaps.
    pub dst: Option<DstChoice>,
    /// Degrees, north positive.
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: f64,
    /// Degrees, east positive.
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: f64,
    /// Default `placidus`.
    #[serde(default)]
    pub house_system: HouseSystem,
    /// Default `tropical`.
    #[serde(default)]
    pub zodiac: ZodiacKind,
    /// Required when `zodiac` is "sidereal".
    pub ayanamsa: Option<Ayanamsa>,
    /// Points to include (default: all).
    pub points: Option<Vec<PointKind>>,
    /// Aspect kinds to find (default: all eleven).
    pub aspects: Option<Vec<AspectKind>>,
    /// Per-aspect orb overrides in degrees, 0 to 15.
    #[schema(schema_with = orbs_schema)]
    pub orbs: Option<BTreeMap<AspectKind, f64>>,
}

/// Orbs per aspect kind in degrees, 0 to 15: an object keyed by aspect kind, or null.
pub fn orbs_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(AspectKind::ALL.map(AspectKind::as_str))),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(15)),
        ))
        .description(Some("Orb per aspect kind in degrees, 0 to 15."))
        .build()
}

/// A saved chart of the caller's account, by id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"}))]
pub struct SavedChartRef {
    /// A saved chart of the caller's account (an unknown one is a 422 naming this field).
    #[schema(pattern = "^chart_[0-9a-hjkmnp-tv-z]{26}$")]
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
#[serde(deny_unknown_fields)]
pub struct TransitsBody {
    pub natal: ChartRefBody,
    /// RFC 3339 instant; default now.
    #[schema(
        pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
    )]
    pub moment: Option<String>,
    /// Aspect kinds (default: the five major ones).
    pub aspects: Option<Vec<AspectKind>>,
    /// Orb per aspect kind in degrees, 0–15 (default 2).
    #[schema(schema_with = orbs_schema)]
    pub orbs: Option<BTreeMap<AspectKind, f64>>,
}

/// `POST /v1/charts/synastry`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "first": {"chart_id": "chart_01m8jhtx29fwxgk2eqq7gms51n"},
    "second": {"datetime": "1992-03-01T08:00:00Z", "latitude": 40.7, "longitude": -74.0, "name": "Grace"}
}))]
#[serde(deny_unknown_fields)]
pub struct SynastryBody {
    pub first: ChartRefBody,
    pub second: ChartRefBody,
    /// Aspect kinds (default: the five major ones).
    pub aspects: Option<Vec<AspectKind>>,
    /// Orb per aspect kind in degrees, 0–15 (default 5).
    #[schema(schema_with = orbs_schema)]
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

/// `?format=` of the chart routes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChartFormat {
    Json,
    Svg,
}

/// `?theme=` of the SVG wheel.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChartTheme {
    Light,
    Dark,
}
