//! Charts against other charts or moments: transits (the sky at a moment against a natal
//! chart) and synastry (two natal charts: inter-aspects and house overlays). A chart is given
//! inline as a chart request or by the id of a saved chart.

use std::borrow::Cow;
use std::collections::BTreeMap;

use orrery::{ApiError, App, FieldError, clock};
use orrery_astro::chart::house_of;
use orrery_astro::{
    Aspect, AspectConfig, AspectKind, AspectPoint, Chart, PointKind, Zodiac, ZodiacKind,
    aspects_between, resolve_instant, transit_positions,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::compute::compute;
use crate::request::{ChartRequest, field_error, field_path};
use crate::saved;

/// A chart given in a request: inline, or a saved chart of the caller's account.
#[derive(Debug, Clone)]
pub enum ChartRef {
    Inline(Box<ChartRequest>),
    Saved(String),
}

impl ChartRef {
    /// Parses the object at `path`: `{"chart_id": "chart_…"}` or a chart request.
    pub fn from_value(value: Value, path: &str) -> Result<ChartRef, Vec<FieldError>> {
        let Value::Object(mut object) = value else {
            return Err(vec![FieldError::new(
                field_path(path, ""),
                "must be a chart request object or {\"chart_id\": \"chart_…\"}",
            )]);
        };
        match object.remove("chart_id") {
            None => ChartRequest::from_object(object, path).map(|r| ChartRef::Inline(Box::new(r))),
            Some(Value::String(id)) if object.is_empty() => Ok(ChartRef::Saved(id)),
            Some(Value::String(_)) => Err(vec![FieldError::new(
                field_path(path, "chart_id"),
                format!(
                    "give either chart_id or a chart request, not both (also given: {})",
                    object.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )]),
            Some(_) => Err(vec![FieldError::new(
                field_path(path, "chart_id"),
                "must be the id of a saved chart (a string)",
            )]),
        }
    }

    /// The chart and how the response names it.
    pub async fn load(
        &self,
        app: &App,
        account_id: &orrery::ids::AccountId,
        path: &str,
    ) -> Result<(ChartLabel, Chart), ApiError> {
        match self {
            ChartRef::Inline(request) => {
                let computed = compute(app, request, path).await?;
                let chart = computed.chart()?.into_owned();
                Ok((
                    ChartLabel {
                        chart_id: None,
                        name: request.name.clone(),
                        input_hash: computed.input_hash.clone(),
                        utc: chart.utc.clone(),
                        cache_use: Some(computed.cache_use()),
                    },
                    chart,
                ))
            }
            ChartRef::Saved(id) => {
                let saved = saved::get(app, account_id, id)
                    .await
                    .map_err(|err| match err {
                        ApiError::NotFound(_) => ApiError::validation(
                            field_path(path, "chart_id"),
                            "no saved chart with this id in this account",
                        ),
                        other => other,
                    })?;
                let chart = saved.chart()?;
                let summary: Value =
                    serde_json::from_str(&saved.body).map_err(ApiError::internal)?;
                Ok((
                    ChartLabel {
                        chart_id: Some(saved.id.clone()),
                        name: summary
                            .get("name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        input_hash: summary
                            .get("input_hash")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        utc: chart.utc.clone(),
                        cache_use: None,
                    },
                    chart,
                ))
            }
        }
    }
}

/// Which chart a relation was computed for.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChartLabel {
    pub chart_id: Option<orrery::ids::ChartId>,
    pub name: Option<String>,
    pub input_hash: String,
    pub utc: String,
    /// How the chart cache served an inline chart (a saved chart is read from the store): for
    /// analytics, never in the response.
    #[serde(skip)]
    #[schema(ignore)]
    pub cache_use: Option<orrery::analytics::CacheUse>,
}

impl ChartLabel {
    /// One cache use for the charts of a response: a hit when every inline chart was one.
    pub fn cache_use_of(labels: &[&ChartLabel]) -> Option<orrery::analytics::CacheUse> {
        use orrery::analytics::CacheUse;
        let uses: Vec<CacheUse> = labels.iter().filter_map(|label| label.cache_use).collect();
        if uses.is_empty() {
            None
        } else if uses.contains(&CacheUse::Miss) {
            Some(CacheUse::Miss)
        } else {
            Some(CacheUse::Hit)
        }
    }
}

/// Aspect kinds and orbs of a relation request (`aspects`, `orbs` at its top level).
fn aspect_config(
    object: &mut Map<String, Value>,
    default_orb: f64,
    errors: &mut Vec<FieldError>,
) -> AspectConfig {
    let kinds: Option<Vec<AspectKind>> = match object.remove("aspects") {
        None | Some(Value::Null) => None,
        Some(value) => match serde_json::from_value::<Vec<String>>(value) {
            Ok(names) => {
                let mut kinds = Vec::new();
                for name in names {
                    match name.parse::<AspectKind>() {
                        Ok(kind) => kinds.push(kind),
                        Err(e) => errors.push(field_error("", &e)),
                    }
                }
                Some(kinds)
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "aspects",
                    "must be an array of aspect names",
                ));
                None
            }
        },
    };
    let orbs: BTreeMap<AspectKind, f64> = match object.remove("orbs") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(entries)) => {
            let mut orbs = BTreeMap::new();
            for (name, value) in entries {
                match (name.parse::<AspectKind>(), value.as_f64()) {
                    (Ok(kind), Some(orb)) => {
                        orbs.insert(kind, orb);
                    }
                    (Err(e), _) => errors.push(FieldError::new("orbs", e.to_string())),
                    (_, None) => errors.push(FieldError::new(
                        format!("orbs.{name}"),
                        "must be a number of degrees (0 to 15)",
                    )),
                }
            }
            orbs
        }
        Some(_) => {
            errors.push(FieldError::new(
                "orbs",
                "must be an object of aspect name → orb in degrees",
            ));
            BTreeMap::new()
        }
    };
    // Relations use the five major aspects with a tighter orb unless told otherwise.
    let kinds = kinds.unwrap_or_else(|| AspectKind::ALL[..5].to_vec());
    let mut effective: BTreeMap<AspectKind, f64> =
        kinds.iter().map(|kind| (*kind, default_orb)).collect();
    for (kind, orb) in orbs {
        effective.insert(kind, orb);
    }
    let effective = effective
        .into_iter()
        .filter(|(kind, _)| kinds.contains(kind))
        .collect::<BTreeMap<_, _>>();
    match AspectConfig::new(Some(&kinds), Some(&effective)) {
        Ok(config) => config,
        Err(e) => {
            errors.push(field_error("", &e));
            AspectConfig::default()
        }
    }
}

fn reject_unknown(object: &Map<String, Value>, accepted: &[&str], errors: &mut Vec<FieldError>) {
    for key in object.keys() {
        if !accepted.contains(&key.as_str()) {
            errors.push(FieldError::new(
                key.clone(),
                format!("unknown field; accepted: {}", accepted.join(", ")),
            ));
        }
    }
}

fn take_chart(
    object: &mut Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<ChartRef> {
    match object.remove(field) {
        None => {
            errors.push(FieldError::new(
                field,
                "missing: a chart request object or {\"chart_id\": \"chart_…\"}",
            ));
            None
        }
        Some(value) => match ChartRef::from_value(value, field) {
            Ok(chart) => Some(chart),
            Err(e) => {
                errors.extend(e);
                None
            }
        },
    }
}

/// The natal chart's points that other positions aspect: bodies, the lunar node, Lilith and the
/// angles — fixed in the sky of the chart, so their speed counts as zero.
fn natal_points(chart: &Chart, keep_speed: bool) -> Vec<AspectPoint> {
    let node = if chart.points.iter().any(|p| p.name == PointKind::TrueNode) {
        PointKind::TrueNode
    } else {
        PointKind::MeanNode
    };
    let speed = |s: f64| if keep_speed { s } else { 0.0 };
    let mut points: Vec<AspectPoint> = chart
        .bodies
        .iter()
        .map(|b| AspectPoint {
            name: Cow::Borrowed(b.name.as_str()),
            longitude: b.longitude,
            speed: speed(b.speed),
        })
        .collect();
    points.extend(
        chart
            .points
            .iter()
            .filter(|p| p.name == node || p.name == PointKind::MeanLilith)
            .map(|p| AspectPoint {
                name: Cow::Borrowed(p.name.as_str()),
                longitude: p.longitude,
                speed: speed(p.speed),
            }),
    );
    points.push(AspectPoint {
        name: Cow::Borrowed("asc"),
        longitude: chart.angles.asc.longitude,
        speed: 0.0,
    });
    points.push(AspectPoint {
        name: Cow::Borrowed("mc"),
        longitude: chart.angles.mc.longitude,
        speed: 0.0,
    });
    points
}

fn cusps(chart: &Chart) -> [f64; 12] {
    let mut cusps = [0.0; 12];
    for (slot, cusp) in cusps.iter_mut().zip(&chart.houses) {
        *slot = cusp.longitude;
    }
    cusps
}

fn zodiac_of(chart: &Chart) -> Zodiac {
    match (chart.zodiac.kind, chart.zodiac.ayanamsa) {
        (ZodiacKind::Sidereal, Some(ayanamsa)) => Zodiac::Sidereal(ayanamsa),
        _ => Zodiac::Tropical,
    }
}

/// A parsed `POST /v1/charts/transits` body.
#[derive(Debug, Clone)]
pub struct TransitsRequest {
    pub natal: ChartRef,
    /// RFC 3339; `None` is now.
    pub moment: Option<String>,
    pub aspects: AspectConfig,
}

/// Default orb for transit-to-natal aspects, in degrees.
pub const TRANSIT_ORB: f64 = 2.0;
/// Default orb for synastry aspects, in degrees.
pub const SYNASTRY_ORB: f64 = 5.0;

impl TransitsRequest {
    pub fn from_value(value: Value) -> Result<TransitsRequest, ApiError> {
        let Value::Object(mut object) = value else {
            return Err(ApiError::validation("", "the body must be a JSON object"));
        };
        let mut errors = Vec::new();
        reject_unknown(
            &object,
            &["natal", "moment", "aspects", "orbs"],
            &mut errors,
        );
        let natal = take_chart(&mut object, "natal", &mut errors);
        let moment = match object.remove("moment") {
            None | Some(Value::Null) => None,
            Some(Value::String(moment)) => match resolve_instant(&moment, None, None, None) {
                Ok(_) => Some(moment),
                Err(e) => {
                    errors.push(FieldError::new("moment", e.to_string()));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new(
                    "moment",
                    "must be an RFC 3339 instant, e.g. \"2026-01-01T12:00:00Z\"",
                ));
                None
            }
        };
        let aspects = aspect_config(&mut object, TRANSIT_ORB, &mut errors);
        match natal {
            Some(natal) if errors.is_empty() => Ok(TransitsRequest {
                natal,
                moment,
                aspects,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransitBody {
    pub name: &'static str,
    pub longitude: f64,
    pub latitude: f64,
    pub speed: f64,
    pub retrograde: bool,
    pub sign: orrery_astro::Sign,
    pub degree_in_sign: f64,
    /// The natal house the transiting body is passing through.
    pub natal_house: u8,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Moment {
    pub utc: String,
    pub jd_ut: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transits {
    pub natal: ChartLabel,
    pub moment: Moment,
    pub bodies: Vec<TransitBody>,
    /// `a` is the transiting body, `b` the natal point.
    pub aspects: Vec<Aspect>,
}

pub async fn transits(
    app: &App,
    account_id: &orrery::ids::AccountId,
    request: &TransitsRequest,
) -> Result<Transits, ApiError> {
    let (label, natal) = request.natal.load(app, account_id, "natal").await?;
    let moment = request
        .moment
        .clone()
        .unwrap_or_else(|| clock::rfc3339(clock::now()));
    let (instant, time) = resolve_instant(&moment, None, None, None)
        .map_err(|e| ApiError::validation("moment", e.to_string()))?;
    let positions = transit_positions(time, zodiac_of(&natal));
    let natal_cusps = cusps(&natal);
    let bodies: Vec<TransitBody> = positions
        .iter()
        .map(|p| {
            let (sign, degree_in_sign) = orrery_astro::Sign::of_longitude(p.longitude);
            TransitBody {
                name: p.body.as_str(),
                longitude: p.longitude,
                latitude: p.latitude,
                speed: p.speed,
                retrograde: p.retrograde,
                sign,
                degree_in_sign,
                natal_house: house_of(p.longitude, &natal_cusps),
            }
        })
        .collect();
    let moving: Vec<AspectPoint> = positions
        .iter()
        .map(|p| AspectPoint {
            name: Cow::Borrowed(p.body.as_str()),
            longitude: p.longitude,
            speed: p.speed,
        })
        .collect();
    let mut aspects = aspects_between(&moving, &natal_points(&natal, false), &request.aspects);
    aspects.sort_by(|a, b| a.orb.total_cmp(&b.orb));
    Ok(Transits {
        natal: label,
        moment: Moment {
            utc: instant.to_rfc3339(),
            jd_ut: time.jd_ut,
        },
        bodies,
        aspects,
    })
}

/// A parsed `POST /v1/charts/synastry` body.
#[derive(Debug, Clone)]
pub struct SynastryRequest {
    pub first: ChartRef,
    pub second: ChartRef,
    pub aspects: AspectConfig,
}

impl SynastryRequest {
    pub fn from_value(value: Value) -> Result<SynastryRequest, ApiError> {
        let Value::Object(mut object) = value else {
            return Err(ApiError::validation("", "the body must be a JSON object"));
        };
        let mut errors = Vec::new();
        reject_unknown(
            &object,
            &["first", "second", "aspects", "orbs"],
            &mut errors,
        );
        let first = take_chart(&mut object, "first", &mut errors);
        let second = take_chart(&mut object, "second", &mut errors);
        let aspects = aspect_config(&mut object, SYNASTRY_ORB, &mut errors);
        match (first, second) {
            (Some(first), Some(second)) if errors.is_empty() => Ok(SynastryRequest {
                first,
                second,
                aspects,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overlay {
    pub name: &'static str,
    pub house: u8,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseOverlays {
    /// Where the first person's bodies fall in the second person's houses.
    pub first_in_second: Vec<Overlay>,
    pub second_in_first: Vec<Overlay>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Synastry {
    pub first: ChartLabel,
    pub second: ChartLabel,
    /// `a` is a point of the first chart, `b` of the second; tightest first.
    pub aspects: Vec<Aspect>,
    pub house_overlays: HouseOverlays,
}

fn overlays(from: &Chart, into: &Chart) -> Vec<Overlay> {
    let cusps = cusps(into);
    from.bodies
        .iter()
        .map(|b| Overlay {
            name: b.name.as_str(),
            house: house_of(b.longitude, &cusps),
        })
        .collect()
}

pub async fn synastry(
    app: &App,
    account_id: &orrery::ids::AccountId,
    request: &SynastryRequest,
) -> Result<Synastry, ApiError> {
    let (first_label, first) = request.first.load(app, account_id, "first").await?;
    let (second_label, second) = request.second.load(app, account_id, "second").await?;
    let mut aspects = aspects_between(
        &natal_points(&first, true),
        &natal_points(&second, true),
        &request.aspects,
    );
    aspects.sort_by(|a, b| a.orb.total_cmp(&b.orb));
    Ok(Synastry {
        first: first_label,
        second: second_label,
        aspects,
        house_overlays: HouseOverlays {
            first_in_second: overlays(&first, &second),
            second_in_first: overlays(&second, &first),
        },
    })
}
