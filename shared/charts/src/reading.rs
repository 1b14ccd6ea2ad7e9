//! Natal readings assembled from the project's own texts (`shared/charts/data/readings`, see its
//! README). Assembly is deterministic: the same chart always gives the same reading.

use std::collections::HashMap;
use std::sync::OnceLock;

use orrery::ApiError;
use orrery_astro::{AspectKind, Body, Chart, PointKind};
use serde::{Deserialize, Serialize};

use crate::plain;
use crate::relations::ChartLabel;

/// The most major aspects a reading discusses, tightest first.
pub const MAX_ASPECTS: usize = 8;
/// An element or modality holding at least this many of the ten bodies is "dominant".
const DOMINANT_AT: u8 = 4;

#[derive(Debug, Clone, Deserialize)]
struct Entry {
    title: String,
    text: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Balance {
    elements: HashMap<String, BalanceTexts>,
    modalities: HashMap<String, BalanceTexts>,
}

#[derive(Debug, Deserialize)]
struct BalanceTexts {
    dominant: Entry,
    lacking: Entry,
}

#[derive(Debug, Deserialize)]
struct Overview {
    intro: Entry,
    sections: HashMap<String, String>,
}

type Nested = HashMap<String, HashMap<String, Entry>>;

#[derive(Debug)]
struct Texts {
    signs: HashMap<String, Entry>,
    body_in_sign: Nested,
    body_in_house: Nested,
    ascendant_in_sign: HashMap<String, Entry>,
    midheaven_in_sign: HashMap<String, Entry>,
    /// Pair key (`sun_moon`) → aspect → entry.
    aspects: Nested,
    balance: Balance,
    overview: Overview,
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("readings/{name}: {e}"))
}

fn load() -> Result<Texts, String> {
    let mut aspects: Nested = parse(
        "aspects.json",
        include_str!("../data/readings/aspects.json"),
    )?;
    aspects.remove("_aspect");
    Ok(Texts {
        signs: parse("signs.json", include_str!("../data/readings/signs.json"))?,
        body_in_sign: parse(
            "body_in_sign.json",
            include_str!("../data/readings/body_in_sign.json"),
        )?,
        body_in_house: parse(
            "body_in_house.json",
            include_str!("../data/readings/body_in_house.json"),
        )?,
        ascendant_in_sign: parse(
            "ascendant_in_sign.json",
            include_str!("../data/readings/ascendant_in_sign.json"),
        )?,
        midheaven_in_sign: parse(
            "midheaven_in_sign.json",
            include_str!("../data/readings/midheaven_in_sign.json"),
        )?,
        aspects,
        balance: parse(
            "balance.json",
            include_str!("../data/readings/balance.json"),
        )?,
        overview: parse(
            "overview.json",
            include_str!("../data/readings/overview.json"),
        )?,
    })
}

fn texts() -> Result<&'static Texts, ApiError> {
    static TEXTS: OnceLock<Result<Texts, String>> = OnceLock::new();
    TEXTS
        .get_or_init(load)
        .as_ref()
        .map_err(|e| ApiError::internal(e.clone()))
}

/// One passage of a reading.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReadingItem {
    pub key: String,
    pub title: String,
    pub paragraphs: Vec<String>,
}

/// A titled section: its own paragraphs, then its items.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Section {
    pub key: &'static str,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub items: Vec<ReadingItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Reading {
    pub chart: ChartLabel,
    pub title: String,
    pub sections: Vec<Section>,
}

fn item(key: impl Into<String>, entry: &Entry) -> ReadingItem {
    ReadingItem {
        key: key.into(),
        title: entry.title.clone(),
        paragraphs: entry.text.clone(),
    }
}

fn missing(what: &str) -> ApiError {
    ApiError::internal(format!("reading texts lack {what}"))
}

/// The reading's bodies: the ten planets, then the lunar nodes and Lilith (true nodes when the
/// chart has them), each as (text key, longitude sign, house).
fn reading_bodies(chart: &Chart) -> Vec<(&'static str, String, u8)> {
    let mut out: Vec<(&'static str, String, u8)> = chart
        .bodies
        .iter()
        .map(|b| (b.name.as_str(), plain(&b.sign), b.house))
        .collect();
    let has = |kind: PointKind| chart.points.iter().any(|p| p.name == kind);
    let (north, south) = if has(PointKind::TrueNode) {
        (PointKind::TrueNode, PointKind::TrueSouthNode)
    } else {
        (PointKind::MeanNode, PointKind::MeanSouthNode)
    };
    for (key, kind) in [
        ("north_node", north),
        ("south_node", south),
        ("lilith", PointKind::MeanLilith),
    ] {
        if let Some(p) = chart.points.iter().find(|p| p.name == kind) {
            out.push((key, plain(&p.sign), p.house));
        }
    }
    out
}

fn house_key(house: u8) -> String {
    house.to_string()
}

/// Assembles the natal reading of `chart`.
pub fn reading(chart: &Chart, label: ChartLabel) -> Result<Reading, ApiError> {
    let texts = texts()?;
    let bodies = reading_bodies(chart);
    let section = |key: &'static str, items: Vec<ReadingItem>| -> Result<Section, ApiError> {
        Ok(Section {
            key,
            title: texts
                .overview
                .sections
                .get(key)
                .cloned()
                .ok_or_else(|| missing(key))?,
            paragraphs: Vec::new(),
            items,
        })
    };
    let (planets, houses) = placements(texts, &bodies)?;
    let title = match &label.name {
        Some(name) => format!("Natal reading for {name}"),
        None => "Natal reading".to_owned(),
    };
    Ok(Reading {
        chart: label,
        title,
        sections: vec![
            overview(texts, chart, &bodies)?,
            section("planets", planets)?,
            section("houses", houses)?,
            section("aspects", major_aspects(texts, chart)?)?,
            section("balance", balance(texts, chart)?)?,
        ],
    })
}

/// The overview: the Sun, Moon and rising signs in the introduction, then the Sun and Moon in
/// their signs, the Ascendant and the Midheaven.
fn overview(
    texts: &Texts,
    chart: &Chart,
    bodies: &[(&'static str, String, u8)],
) -> Result<Section, ApiError> {
    let sign_title = |sign: &str| {
        texts
            .signs
            .get(sign)
            .map(|e| e.title.clone())
            .ok_or_else(|| missing(sign))
    };
    let sign_of = |body: &str| {
        bodies
            .iter()
            .find(|(key, _, _)| *key == body)
            .map(|(_, sign, _)| sign.clone())
            .ok_or_else(|| missing(body))
    };
    let sun_sign = sign_of("sun")?;
    let moon_sign = sign_of("moon")?;
    let asc_sign = plain(&chart.angles.asc.sign);
    let mc_sign = plain(&chart.angles.mc.sign);
    let intro = &texts.overview.intro;
    let (sun_title, moon_title, asc_title) = (
        sign_title(&sun_sign)?,
        sign_title(&moon_sign)?,
        sign_title(&asc_sign)?,
    );
    let body_in_sign = |body: &str, sign: &str, what: &str| {
        texts
            .body_in_sign
            .get(body)
            .and_then(|m| m.get(sign))
            .ok_or_else(|| missing(what))
    };
    Ok(Section {
        key: "overview",
        title: intro.title.clone(),
        paragraphs: intro
            .text
            .iter()
            .map(|p| {
                p.replace("{sun_sign}", &sun_title)
                    .replace("{moon_sign}", &moon_title)
                    .replace("{ascendant_sign}", &asc_title)
            })
            .collect(),
        items: vec![
            item("sun", body_in_sign("sun", &sun_sign, "sun in sign")?),
            item("moon", body_in_sign("moon", &moon_sign, "moon in sign")?),
            item(
                "ascendant",
                texts
                    .ascendant_in_sign
                    .get(&asc_sign)
                    .ok_or_else(|| missing("ascendant"))?,
            ),
            item(
                "midheaven",
                texts
                    .midheaven_in_sign
                    .get(&mc_sign)
                    .ok_or_else(|| missing("midheaven"))?,
            ),
        ],
    })
}

/// Every body in its sign (the Sun and Moon are in the overview already) and in its house.
fn placements(
    texts: &Texts,
    bodies: &[(&'static str, String, u8)],
) -> Result<(Vec<ReadingItem>, Vec<ReadingItem>), ApiError> {
    let mut planets = Vec::new();
    let mut houses = Vec::new();
    for (key, sign, house) in bodies {
        if *key != "sun" && *key != "moon" {
            planets.push(item(
                *key,
                texts
                    .body_in_sign
                    .get(*key)
                    .and_then(|m| m.get(sign))
                    .ok_or_else(|| missing(key))?,
            ));
        }
        houses.push(item(
            *key,
            texts
                .body_in_house
                .get(*key)
                .and_then(|m| m.get(&house_key(*house)))
                .ok_or_else(|| missing(key))?,
        ));
    }
    Ok((planets, houses))
}

/// The tightest major aspects between planets (at most [`MAX_ASPECTS`]), ties broken by the
/// planets' order.
fn major_aspects(texts: &Texts, chart: &Chart) -> Result<Vec<ReadingItem>, ApiError> {
    let planet_rank = |name: &str| Body::ALL.iter().position(|b| b.as_str() == name);
    let mut major: Vec<_> = chart
        .aspects
        .iter()
        .filter(|a| AspectKind::ALL[..5].contains(&a.kind))
        .filter_map(|a| {
            let (i, j) = (planet_rank(&a.a)?, planet_rank(&a.b)?);
            let (first, second) = if i < j { (i, j) } else { (j, i) };
            Some((a, first, second))
        })
        .collect();
    major.sort_by(|x, y| {
        x.0.orb
            .total_cmp(&y.0.orb)
            .then(x.1.cmp(&y.1))
            .then(x.2.cmp(&y.2))
    });
    let mut aspects = Vec::new();
    for (aspect, first, second) in major.into_iter().take(MAX_ASPECTS) {
        let pair = format!(
            "{}_{}",
            Body::ALL[first].as_str(),
            Body::ALL[second].as_str()
        );
        let entry = texts
            .aspects
            .get(&pair)
            .and_then(|m| m.get(aspect.kind.as_str()))
            .ok_or_else(|| missing(&pair))?;
        aspects.push(item(format!("{pair}_{}", aspect.kind.as_str()), entry));
    }
    Ok(aspects)
}

/// Dominant and lacking elements and modalities.
fn balance(texts: &Texts, chart: &Chart) -> Result<Vec<ReadingItem>, ApiError> {
    let mut balance = Vec::new();
    for (group, counts, table) in [
        (
            "elements",
            &chart.distribution.elements,
            &texts.balance.elements,
        ),
        (
            "modalities",
            &chart.distribution.modalities,
            &texts.balance.modalities,
        ),
    ] {
        // Deterministic: the BTreeMap's order breaks ties.
        let strongest = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(name, count)| (name.to_string(), *count));
        for (name, count) in counts.iter() {
            let texts = table.get(name.as_ref()).ok_or_else(|| missing(name))?;
            let is_strongest = strongest.as_ref().is_some_and(|(n, _)| n == name.as_ref());
            if *count >= DOMINANT_AT || (is_strongest && *count > 0) {
                balance.push(item(format!("{group}.{name}.dominant"), &texts.dominant));
            } else if *count == 0 {
                balance.push(item(format!("{group}.{name}.lacking"), &texts.lacking));
            }
        }
    }
    Ok(balance)
}

/// A reading of `chart` for the caller's account, with its `reading.generated` event if the
/// account has activity events (held until the request's answer like every event).
pub async fn generate(
    app: &orrery::App,
    caller: &orrery::access::Caller,
    chart: crate::ChartRef,
) -> Result<Reading, ApiError> {
    let (label, chart) = chart.load(app, &caller.account_id, "").await?;
    let reading = reading(&chart, label)?;
    orrery::events::publish_activity(
        app,
        caller,
        orrery::events::EventType::ReadingGenerated,
        || {
            serde_json::json!({
                "chart_id": reading.chart.chart_id,
                "input_hash": reading.chart.input_hash,
                "name": reading.chart.name,
                "sections": reading.sections.len(),
            })
        },
    )
    .await;
    Ok(reading)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use orrery_astro::{ChartInput, Sign, compute_chart};

    fn label() -> ChartLabel {
        ChartLabel {
            chart_id: None,
            name: Some("Ada".into()),
            input_hash: "h".into(),
            utc: "x".into(),
            cache_use: None,
        }
    }

    fn chart(datetime: &str, latitude: f64) -> Chart {
        compute_chart(
            &ChartInput::from_json(&format!(
                r#"{{"datetime":"{datetime}","latitude":{latitude},"longitude":10.0}}"#
            ))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_texts_cover_every_body_sign_house_and_major_pair() {
        let texts = load().unwrap();
        let bodies =
            Body::ALL
                .map(|b| b.as_str())
                .into_iter()
                .chain(["north_node", "south_node", "lilith"]);
        for body in bodies {
            assert_eq!(texts.body_in_sign[body].len(), 12, "{body}");
            assert_eq!(texts.body_in_house[body].len(), 12, "{body}");
        }
        assert_eq!(texts.ascendant_in_sign.len(), 12);
        assert_eq!(texts.midheaven_in_sign.len(), 12);
        for (i, a) in Body::ALL.iter().enumerate() {
            for b in &Body::ALL[i + 1..] {
                let pair = &texts.aspects[&format!("{}_{}", a.as_str(), b.as_str())];
                for kind in &AspectKind::ALL[..5] {
                    assert!(pair.contains_key(kind.as_str()), "{a:?} {b:?} {kind:?}");
                }
            }
        }
        for sign in 0..12 {
            let (sign, _) = Sign::of_longitude(f64::from(sign) * 30.0 + 1.0);
            assert!(texts.signs.contains_key(&plain(&sign)));
        }
    }

    #[test]
    fn readings_are_complete_and_deterministic() {
        for (datetime, latitude) in [
            ("1990-05-17T13:30:00Z", 51.5),
            ("1969-07-20T20:17:00Z", -33.9),
            ("2001-01-01T00:00:00Z", 64.1),
            ("1850-03-03T12:00:00Z", 0.0),
        ] {
            let c = chart(datetime, latitude);
            let first = reading(&c, label()).unwrap();
            assert_eq!(first, reading(&c, label()).unwrap());
            assert_eq!(first.title, "Natal reading for Ada");
            let keys: Vec<&str> = first.sections.iter().map(|s| s.key).collect();
            assert_eq!(
                keys,
                ["overview", "planets", "houses", "aspects", "balance"]
            );
            let overview = &first.sections[0];
            assert!(!overview.paragraphs[0].contains('{'), "placeholders filled");
            assert_eq!(overview.items.len(), 4);
            // 8 bodies besides Sun and Moon, plus the nodes and Lilith.
            assert_eq!(first.sections[1].items.len(), 11);
            assert_eq!(first.sections[2].items.len(), 13);
            assert!(first.sections[3].items.len() <= MAX_ASPECTS);
            assert!(!first.sections[4].items.is_empty());
            for section in &first.sections {
                for item in &section.items {
                    assert!(!item.title.is_empty());
                    assert!(item.paragraphs.iter().all(|p| p.len() > 20));
                }
            }
        }
    }
}
