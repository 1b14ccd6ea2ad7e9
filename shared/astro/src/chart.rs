//! The chart request/response shapes and `compute_chart`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aspects::{
    Aspect, AspectConfig, AspectKind, AspectPoint, KindTable, aspects_within_kinds, default_kinds,
};
use crate::error::AstroError;
use crate::houses::{HouseSystem, houses};
use crate::points::{self, PointKind, PointPosition};
use crate::positions::Observer;
use crate::positions::{Body, Frame, apparent_positions, normalize_degrees};
use crate::time::{DstChoice, TimeScales, UtcInstant, resolve_civil_time};
use crate::zodiac::{Ayanamsa, Element, Modality, Sign, Zodiac, ZodiacKind};

pub const ENGINE_VERSION: &str = concat!("orrery-astro ", env!("CARGO_PKG_VERSION"));
/// Part of every cached chart's key: a change of data or time-scale model here makes every
/// older cached result unreachable. (`tt-utc iers`: after the last leap second TT = UTC +
/// 32.184 s + the last TAI−UTC, as IERS and SOFA take it.)
pub const DATA_VERSION: &str = "DE422 1800-2200 q1; delta_t skyfield-1.55 monthly; tt-utc iers";

/// Chart request, deserialisable from snake_case JSON (unknown fields rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChartInput {
    /// Local "YYYY-MM-DDTHH:MM[:SS]" (with `timezone` or `utc_offset`) or an RFC 3339 instant.
    pub datetime: String,
    /// IANA zone name, e.g. "Europe/London".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Fixed offset "+05:30".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<String>,
    /// Resolves DST overlaps and gaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<DstChoice>,
    /// Degrees, north positive, −90..90.
    pub latitude: f64,
    /// Degrees, east positive, −180..180.
    pub longitude: f64,
    #[serde(default)]
    pub house_system: HouseSystem,
    #[serde(default)]
    pub zodiac: ZodiacKind,
    /// Required when `zodiac` is "sidereal".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ayanamsa: Option<Ayanamsa>,
    /// Points to include (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<PointKind>>,
    /// Aspect kinds to find (default: all eleven).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspects: Option<Vec<AspectKind>>,
    /// Per-aspect orb overrides in degrees (0..15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orbs: Option<BTreeMap<AspectKind, f64>>,
}

const INPUT_FIELDS: [&str; 12] = [
    "datetime",
    "timezone",
    "utc_offset",
    "dst",
    "latitude",
    "longitude",
    "house_system",
    "zodiac",
    "ayanamsa",
    "points",
    "aspects",
    "orbs",
];

fn static_field(name: &str) -> Option<&'static str> {
    INPUT_FIELDS.iter().copied().find(|f| *f == name)
}

impl ChartInput {
    /// Parse request JSON, turning the first problem into a typed error with its field.
    pub fn from_json(text: &str) -> Result<ChartInput, AstroError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| AstroError::InvalidRequest {
                field: None,
                message: format!("body is not valid JSON: {e}"),
            })?;
        ChartInput::from_value(value).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Parse and validate a request object, reporting every invalid field at once (never an
    /// empty error list): unknown fields, missing or mistyped ones, unknown names, out-of-range
    /// values and times that do not resolve (DST gaps and overlaps, dates outside the data).
    pub fn from_value(value: serde_json::Value) -> Result<ChartInput, Vec<AstroError>> {
        let Some(object) = value.as_object() else {
            return Err(vec![AstroError::InvalidRequest {
                field: None,
                message: "the chart request must be a JSON object".into(),
            }]);
        };
        let mut errors = Vec::new();
        for key in object.keys() {
            if static_field(key).is_none() {
                errors.push(AstroError::UnknownField {
                    name: key.clone(),
                    accepted: INPUT_FIELDS.join(", "),
                });
            }
        }
        for (field, kind) in [
            ("datetime", "a string"),
            ("latitude", "a number"),
            ("longitude", "a number"),
        ] {
            let problem = match object.get(field) {
                None => Some(format!("missing required field {field:?}")),
                Some(v) if kind == "a string" && !v.is_string() => {
                    Some(format!("{field} must be {kind}"))
                }
                Some(v) if kind == "a number" && !v.is_number() => {
                    Some(format!("{field} must be {kind}"))
                }
                Some(_) => None,
            };
            if let Some(message) = problem {
                errors.push(AstroError::InvalidRequest {
                    field: static_field(field),
                    message,
                });
            }
        }
        // Ranges too, so one response names every bad field.
        if let Some(Err(e)) = object
            .get("latitude")
            .and_then(|v| v.as_f64())
            .map(validate_latitude)
        {
            errors.push(e);
        }
        if let Some(Err(e)) = object
            .get("longitude")
            .and_then(|v| v.as_f64())
            .map(validate_longitude)
        {
            errors.push(e);
        }
        let text_of = |name: &str| object.get(name).and_then(|v| v.as_str());
        if let Some(Err(e)) = text_of("house_system").map(str::parse::<HouseSystem>) {
            errors.push(e);
        }
        if let Some(s) = text_of("zodiac")
            && s != "tropical"
            && s != "sidereal"
        {
            errors.push(AstroError::UnknownZodiac { given: s.into() });
        }
        if let Some(Err(e)) = text_of("ayanamsa").map(str::parse::<Ayanamsa>) {
            errors.push(e);
        }
        if let Some(s) = text_of("dst")
            && s != "earlier"
            && s != "later"
        {
            errors.push(AstroError::InvalidDst { given: s.into() });
        }
        if let Some(items) = object.get("points").and_then(|v| v.as_array()) {
            errors.extend(
                items
                    .iter()
                    .filter_map(|v| v.as_str())
                    .filter_map(|item| item.parse::<PointKind>().err()),
            );
        }
        if let Some(items) = object.get("aspects").and_then(|v| v.as_array()) {
            errors.extend(
                items
                    .iter()
                    .filter_map(|v| v.as_str())
                    .filter_map(|item| item.parse::<AspectKind>().err()),
            );
        }
        if let Some(orbs) = object.get("orbs").and_then(|v| v.as_object()) {
            errors.extend(
                orbs.keys()
                    .filter_map(|key| key.parse::<AspectKind>().err()),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let fields = object.clone();
        let input: ChartInput = serde_json::from_value(value).map_err(|e| {
            let message = e.to_string();
            let field = INPUT_FIELDS.iter().copied().find(|f| {
                message.contains(&format!("`{f}`"))
                    || fields.get(*f).is_some_and(|_| message.contains(f))
            });
            vec![AstroError::InvalidRequest { field, message }]
        })?;
        let errors = input.validate();
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(errors)
        }
    }

    /// The semantic checks `compute_chart` makes, all of them: site, zodiac, orbs and time.
    pub fn validate(&self) -> Vec<AstroError> {
        let mut errors = Vec::new();
        if let Err(e) = validate_latitude(self.latitude) {
            errors.push(e);
        }
        if let Err(e) = validate_longitude(self.longitude) {
            errors.push(e);
        }
        if let Err(e) = zodiac_of(self) {
            errors.push(e);
        }
        if let Err(e) = AspectConfig::new(self.aspects.as_deref(), self.orbs.as_ref()) {
            errors.push(e);
        }
        if let Err(e) = self.resolve_instant() {
            errors.push(e);
        }
        errors
    }

    /// The UTC instant this request's civil time stands for.
    pub fn resolve_instant(&self) -> Result<(UtcInstant, TimeScales), AstroError> {
        resolve_instant(
            &self.datetime,
            self.timezone.as_deref(),
            self.utc_offset.as_deref(),
            self.dst,
        )
    }

    /// The effective aspect orbs (kind → maximum orb) of this request.
    pub fn aspect_config(&self) -> Result<AspectConfig, AstroError> {
        AspectConfig::new(self.aspects.as_deref(), self.orbs.as_ref())
    }
}

/// Position of a body in the chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BodyEntry {
    pub name: Body,
    pub longitude: f64,
    pub latitude: f64,
    pub distance_au: f64,
    pub speed: f64,
    pub retrograde: bool,
    pub ra: f64,
    pub dec: f64,
    pub sign: Sign,
    pub degree_in_sign: f64,
    pub house: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointEntry {
    pub name: PointKind,
    pub longitude: f64,
    pub latitude: f64,
    pub speed: f64,
    pub retrograde: bool,
    pub sign: Sign,
    pub degree_in_sign: f64,
    pub house: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AngleEntry {
    pub longitude: f64,
    pub sign: Sign,
    pub degree_in_sign: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnglesEntry {
    pub asc: AngleEntry,
    pub mc: AngleEntry,
    pub dsc: AngleEntry,
    pub ic: AngleEntry,
    pub vertex: AngleEntry,
    /// Local apparent sidereal time as an angle (degrees).
    pub armc: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HouseCusp {
    pub house: u8,
    pub longitude: f64,
    pub sign: Sign,
    pub degree_in_sign: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZodiacInfo {
    pub kind: ZodiacKind,
    pub ayanamsa: Option<Ayanamsa>,
    /// True ayanamsa subtracted from tropical longitudes (degrees), if sidereal.
    pub ayanamsa_degrees: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Distribution {
    /// "air", "earth", "fire", "water" → number of bodies.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u8>))]
    pub elements: BTreeMap<Cow<'static, str>, u8>,
    /// "cardinal", "fixed", "mutable" → number of bodies.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u8>))]
    pub modalities: BTreeMap<Cow<'static, str>, u8>,
}

/// A computed natal chart (stable JSON shape, documented in docs/astro.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chart {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub engine_version: Cow<'static, str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub data_version: Cow<'static, str>,
    /// Resolved instant, RFC 3339 UTC.
    pub utc: String,
    pub jd_ut: f64,
    pub jd_tt: f64,
    pub delta_t_seconds: f64,
    pub latitude: f64,
    pub longitude: f64,
    pub house_system: HouseSystem,
    pub zodiac: ZodiacInfo,
    pub bodies: Vec<BodyEntry>,
    pub points: Vec<PointEntry>,
    pub angles: AnglesEntry,
    pub houses: Vec<HouseCusp>,
    pub aspects: Vec<Aspect>,
    pub distribution: Distribution,
}

/// House (1..12) holding `longitude` for the given cusps.
pub fn house_of(longitude: f64, cusps: &[f64; 12]) -> u8 {
    HouseLookup::new(cusps).house(longitude)
}

/// Cusps with their widths computed once, for many `house_of` queries.
struct HouseLookup {
    starts: [f64; 12],
    widths: [f64; 12],
}

impl HouseLookup {
    fn new(cusps: &[f64; 12]) -> HouseLookup {
        let mut widths = [0.0; 12];
        for (i, w) in widths.iter_mut().enumerate() {
            *w = normalize_degrees(cusps[(i + 1) % 12] - cusps[i]);
        }
        HouseLookup {
            starts: *cusps,
            widths,
        }
    }

    fn house(&self, longitude: f64) -> u8 {
        for (i, (start, width)) in self.starts.iter().zip(&self.widths).enumerate() {
            if normalize_degrees(longitude - start) < *width {
                return i as u8 + 1;
            }
        }
        1
    }
}

fn angle_entry(longitude: f64) -> AngleEntry {
    let (sign, degree_in_sign) = Sign::of_longitude(longitude);
    AngleEntry {
        longitude,
        sign,
        degree_in_sign,
    }
}

fn validate_latitude(latitude: f64) -> Result<(), AstroError> {
    if !(-90.0..=90.0).contains(&latitude) || !latitude.is_finite() {
        return Err(AstroError::LatitudeOutOfRange { value: latitude });
    }
    Ok(())
}

fn validate_longitude(longitude: f64) -> Result<(), AstroError> {
    if !(-180.0..=180.0).contains(&longitude) || !longitude.is_finite() {
        return Err(AstroError::LongitudeOutOfRange { value: longitude });
    }
    Ok(())
}

fn validate_site(latitude: f64, longitude: f64) -> Result<(), AstroError> {
    validate_latitude(latitude)?;
    validate_longitude(longitude)
}

fn zodiac_of(input: &ChartInput) -> Result<Zodiac, AstroError> {
    match (input.zodiac, input.ayanamsa) {
        (ZodiacKind::Tropical, None) => Ok(Zodiac::Tropical),
        (ZodiacKind::Tropical, Some(a)) => Err(AstroError::InvalidRequest {
            field: Some("ayanamsa"),
            message: format!("ayanamsa {:?} needs \"zodiac\": \"sidereal\"", a.as_str()),
        }),
        (ZodiacKind::Sidereal, Some(a)) => Ok(Zodiac::Sidereal(a)),
        (ZodiacKind::Sidereal, None) => Err(AstroError::UnknownAyanamsa {
            given: String::new(),
        }),
    }
}

/// Resolve a civil date-time to a UTC instant and its time scales.
pub fn resolve_instant(
    datetime: &str,
    timezone: Option<&str>,
    utc_offset: Option<&str>,
    dst: Option<DstChoice>,
) -> Result<(UtcInstant, TimeScales), AstroError> {
    let utc = resolve_civil_time(datetime, timezone, utc_offset, dst)?;
    Ok((utc, utc.time_scales()))
}

/// Apparent positions of the ten bodies at an instant (transits), in the given zodiac.
pub fn transit_positions(
    time: TimeScales,
    zodiac: Zodiac,
) -> Vec<crate::positions::ApparentPosition> {
    let frame = Frame::new(time);
    let offset = zodiac.offset_degrees(time.jd_tt, frame.nutation_longitude);
    apparent_positions(&frame, &Body::ALL)
        .into_iter()
        .map(|mut p| {
            p.longitude = normalize_degrees(p.longitude - offset);
            p
        })
        .collect()
}

/// Compute a full natal chart. Pure: same input, same output.
pub fn compute_chart(input: &ChartInput) -> Result<Chart, AstroError> {
    validate_site(input.latitude, input.longitude)?;
    let zodiac = zodiac_of(input)?;
    // The default aspect table is built once per process.
    let custom_kinds = match (&input.aspects, &input.orbs) {
        (None, None) => None,
        (kinds, orbs) => Some(KindTable::new(&AspectConfig::new(
            kinds.as_deref(),
            orbs.as_ref(),
        )?)),
    };
    let (utc, time) = resolve_instant(
        &input.datetime,
        input.timezone.as_deref(),
        input.utc_offset.as_deref(),
        input.dst,
    )?;
    let frame = Frame::new(time);
    let (angles, tropical_cusps) =
        houses(&frame, input.house_system, input.latitude, input.longitude)?;
    let offset = zodiac.offset_degrees(time.jd_tt, frame.nutation_longitude);
    let sidereal = |lon: f64| normalize_degrees(lon - offset);
    let cusps = tropical_cusps.map(sidereal);
    let house_lookup = HouseLookup::new(&cusps);

    let observer = Observer::new(&frame);
    let positions = Body::ALL.map(|body| observer.apparent(&frame, body));
    let bodies: Vec<BodyEntry> = positions
        .iter()
        .map(|p| {
            let longitude = sidereal(p.longitude);
            let (sign, degree_in_sign) = Sign::of_longitude(longitude);
            BodyEntry {
                name: p.body,
                longitude,
                latitude: p.latitude,
                distance_au: p.distance_au,
                speed: p.speed,
                retrograde: p.retrograde,
                ra: p.ra,
                dec: p.dec,
                sign,
                degree_in_sign,
                house: house_lookup.house(longitude),
            }
        })
        .collect();

    let mut wanted = [input.points.is_none(); PointKind::ALL.len()];
    for kind in input.points.iter().flatten() {
        wanted[*kind as usize] = true;
    }
    let wants = |kind: PointKind| wanted[kind as usize];
    let mean_node = points::mean_node(&frame);
    let true_node = (wants(PointKind::TrueNode) || wants(PointKind::TrueSouthNode))
        .then(|| points::true_node_from_icrf(&frame, &observer.moon_geocentric()));
    let sun = &positions[0];
    let moon = &positions[1];
    let is_day = points::sun_above_horizon(angles.armc, input.latitude, sun.ra, sun.dec);
    let mut points: Vec<PointEntry> = Vec::with_capacity(PointKind::ALL.len());
    for kind in PointKind::ALL.into_iter().filter(|k| wants(*k)) {
        let p = match kind {
            PointKind::MeanNode => mean_node,
            PointKind::MeanSouthNode => points::south_of(mean_node, kind),
            PointKind::TrueNode => true_node.unwrap_or(mean_node),
            PointKind::TrueSouthNode => points::south_of(true_node.unwrap_or(mean_node), kind),
            PointKind::MeanLilith => points::mean_lilith(&frame),
            PointKind::PartOfFortune => PointPosition {
                kind,
                longitude: points::part_of_fortune(
                    angles.asc,
                    sun.longitude,
                    moon.longitude,
                    is_day,
                ),
                latitude: 0.0,
                speed: 0.0,
            },
        };
        let longitude = sidereal(p.longitude);
        let (sign, degree_in_sign) = Sign::of_longitude(longitude);
        points.push(PointEntry {
            name: p.kind,
            longitude,
            latitude: p.latitude,
            speed: p.speed,
            retrograde: p.speed < 0.0,
            sign,
            degree_in_sign,
            house: house_lookup.house(longitude),
        });
    }

    // Ten bodies, one lunar node (true if requested, else mean), Lilith, ASC and MC;
    // south nodes and the Part of Fortune would only mirror or duplicate other aspects.
    let node_for_aspects = if wants(PointKind::TrueNode) {
        PointKind::TrueNode
    } else {
        PointKind::MeanNode
    };
    let mut aspect_points: [AspectPoint; Body::ALL.len() + 4] =
        std::array::from_fn(|_| AspectPoint {
            name: Cow::Borrowed(""),
            longitude: 0.0,
            speed: 0.0,
        });
    let mut aspect_count = 0;
    let mut add_point = |name: &'static str, longitude: f64, speed: f64| {
        aspect_points[aspect_count] = AspectPoint {
            name: Cow::Borrowed(name),
            longitude,
            speed,
        };
        aspect_count += 1;
    };
    for b in &bodies {
        add_point(b.name.as_str(), b.longitude, b.speed);
    }
    for p in points
        .iter()
        .filter(|p| p.name == node_for_aspects || p.name == PointKind::MeanLilith)
    {
        add_point(p.name.as_str(), p.longitude, p.speed);
    }
    add_point("asc", sidereal(angles.asc), 0.0);
    add_point("mc", sidereal(angles.mc), 0.0);
    let aspects = aspects_within_kinds(
        &aspect_points[..aspect_count],
        custom_kinds.as_ref().unwrap_or_else(|| default_kinds()),
    );

    let mut element_counts = [0u8; 4];
    let mut modality_counts = [0u8; 3];
    for body in &bodies {
        element_counts[body.sign.element() as usize] += 1;
        modality_counts[body.sign.modality() as usize] += 1;
    }
    let elements = [Element::Fire, Element::Earth, Element::Air, Element::Water]
        .map(|e| (Cow::Borrowed(e.as_str()), element_counts[e as usize]))
        .into();
    let modalities = [Modality::Cardinal, Modality::Fixed, Modality::Mutable]
        .map(|m| (Cow::Borrowed(m.as_str()), modality_counts[m as usize]))
        .into();

    let mut houses = Vec::with_capacity(12);
    houses.extend(cusps.iter().enumerate().map(|(i, &longitude)| {
        let (sign, degree_in_sign) = Sign::of_longitude(longitude);
        HouseCusp {
            house: i as u8 + 1,
            longitude,
            sign,
            degree_in_sign,
        }
    }));

    Ok(Chart {
        engine_version: Cow::Borrowed(ENGINE_VERSION),
        data_version: Cow::Borrowed(DATA_VERSION),
        utc: utc.to_rfc3339(),
        jd_ut: time.jd_ut,
        jd_tt: time.jd_tt,
        delta_t_seconds: (time.jd_tt - time.jd_ut) * 86400.0,
        latitude: input.latitude,
        longitude: input.longitude,
        house_system: input.house_system,
        zodiac: ZodiacInfo {
            kind: input.zodiac,
            ayanamsa: input.ayanamsa,
            ayanamsa_degrees: matches!(zodiac, Zodiac::Sidereal(_)).then_some(offset),
        },
        bodies,
        points,
        angles: AnglesEntry {
            asc: angle_entry(sidereal(angles.asc)),
            mc: angle_entry(sidereal(angles.mc)),
            dsc: angle_entry(sidereal(angles.dsc)),
            ic: angle_entry(sidereal(angles.ic)),
            vertex: angle_entry(sidereal(angles.vertex)),
            armc: angles.armc,
        },
        houses,
        aspects,
        distribution: Distribution {
            elements,
            modalities,
        },
    })
}
