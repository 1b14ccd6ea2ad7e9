//! Chart-level behaviour: JSON input/output shape, validation, determinism.

use orrery_astro::{
    AstroError, Chart, ChartInput, Zodiac, compute_chart, supported_range, transit_positions,
};

fn chart(json: &str) -> Result<Chart, AstroError> {
    compute_chart(&ChartInput::from_json(json)?)
}

const LONDON: &str = r#"{"datetime":"1990-05-17T14:30","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278}"#;

#[test]
fn full_chart_has_expected_shape() {
    let c = chart(LONDON).expect("chart");
    assert_eq!(c.utc, "1990-05-17T13:30:00Z");
    assert_eq!(c.bodies.len(), 10);
    assert_eq!(c.houses.len(), 12);
    assert_eq!(c.points.len(), 6);
    assert!(!c.aspects.is_empty());
    // Sun in Taurus on 17 May.
    let sun = &c.bodies[0];
    assert_eq!(serde_json::to_value(sun.sign).unwrap(), "taurus");
    assert!((1..=12).contains(&sun.house));
    let total: u8 = c.distribution.elements.values().sum();
    assert_eq!(total, 10);
    let json = serde_json::to_value(&c).unwrap();
    for key in [
        "engine_version",
        "data_version",
        "utc",
        "jd_ut",
        "jd_tt",
        "bodies",
        "points",
        "angles",
        "houses",
        "aspects",
        "distribution",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let body = &json["bodies"][1];
    for key in [
        "name",
        "longitude",
        "latitude",
        "distance_au",
        "speed",
        "retrograde",
        "ra",
        "dec",
        "sign",
        "degree_in_sign",
        "house",
    ] {
        assert!(body.get(key).is_some(), "body lacks {key}");
    }
    assert_eq!(
        json["aspects"][0]["phase"]
            .as_str()
            .map(|s| ["applying", "separating", "exact"].contains(&s)),
        Some(true)
    );
}

#[test]
fn output_is_deterministic_and_round_trips() {
    let a = serde_json::to_string(&chart(LONDON).unwrap()).unwrap();
    let b = serde_json::to_string(&chart(LONDON).unwrap()).unwrap();
    assert_eq!(a, b);
    let cached: Chart = serde_json::from_str(&a).unwrap();
    assert_eq!(serde_json::to_string(&cached).unwrap(), a);
}

#[test]
fn sidereal_shifts_everything_by_the_ayanamsa() {
    let trop = chart(LONDON).unwrap();
    let sid = chart(r#"{"datetime":"1990-05-17T14:30","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278,"zodiac":"sidereal","ayanamsa":"lahiri"}"#).unwrap();
    let ayan = sid.zodiac.ayanamsa_degrees.unwrap();
    assert!((ayan - 23.72).abs() < 0.05, "{ayan}");
    let diff = (trop.bodies[0].longitude - sid.bodies[0].longitude).rem_euclid(360.0);
    assert!((diff - ayan).abs() < 1e-9);
    let diff = (trop.angles.asc.longitude - sid.angles.asc.longitude).rem_euclid(360.0);
    assert!((diff - ayan).abs() < 1e-9);
    assert_eq!(trop.bodies[0].house, sid.bodies[0].house);
}

#[test]
fn validation_errors_name_the_field() {
    let cases = [
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":91,"longitude":0}"#,
            "latitude",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":-181}"#,
            "longitude",
        ),
        (
            r#"{"datetime":"1790-05-17T14:30Z","latitude":10,"longitude":0}"#,
            "datetime",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30","timezone":"Nowhere/City","latitude":10,"longitude":0}"#,
            "timezone",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"house_system":"topocentric"}"#,
            "house_system",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"zodiac":"sidereal","ayanamsa":"yukteshwar"}"#,
            "ayanamsa",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"zodiac":"sidereal"}"#,
            "ayanamsa",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"dst":"summer"}"#,
            "dst",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"aspects":["novile"]}"#,
            "aspects",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"orbs":{"trine":30}}"#,
            "orbs",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"points":["chiron"]}"#,
            "points",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":70,"longitude":0,"house_system":"placidus"}"#,
            "latitude",
        ),
        (
            r#"{"datetime":"2021-03-14T02:30","timezone":"America/New_York","latitude":40,"longitude":-74}"#,
            "datetime",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30","latitude":10,"longitude":0}"#,
            "timezone",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30","utc_offset":"0530","latitude":10,"longitude":0}"#,
            "utc_offset",
        ),
        (
            r#"{"datetime":"1990-05-17T14:30Z","latitude":"north","longitude":0}"#,
            "latitude",
        ),
    ];
    for (json, field) in cases {
        let err = chart(json).expect_err(json);
        assert_eq!(err.field(), Some(field), "{json}: {err}");
        assert!(!err.to_string().is_empty());
    }
    let err =
        chart(r#"{"datetime":"1990-05-17T14:30Z","latitude":10,"longitude":0,"colour":"red"}"#)
            .unwrap_err();
    assert!(err.to_string().contains("colour"));
    let err = chart(r#"{"datetime":"1790-05-17T14:30Z","latitude":10,"longitude":0}"#).unwrap_err();
    assert!(err.to_string().contains("1800-01-01"));
}

#[test]
fn polar_sites_work_with_systems_defined_there() {
    for system in [
        "porphyry",
        "equal",
        "whole_sign",
        "campanus",
        "regiomontanus",
        "alcabitius",
        "morinus",
    ] {
        let json = format!(
            r#"{{"datetime":"2000-12-21T12:00Z","latitude":78.22,"longitude":15.63,"house_system":"{system}"}}"#
        );
        let c = chart(&json).unwrap_or_else(|e| panic!("{system}: {e}"));
        assert!(c.houses.iter().all(|h| h.longitude.is_finite()));
    }
}

#[test]
fn edges_of_the_range_compute() {
    let (start, end) = supported_range();
    assert_eq!(start, "1800-01-01T00:00:00Z");
    assert_eq!(end, "2200-01-01T00:00:00Z");
    for dt in ["1800-01-01T00:00:00Z", "2199-12-31T23:59:59Z"] {
        let json = format!(r#"{{"datetime":"{dt}","latitude":0,"longitude":0}}"#);
        chart(&json).unwrap_or_else(|e| panic!("{dt}: {e}"));
    }
}

#[test]
fn transits_match_chart_bodies() {
    let c = chart(LONDON).unwrap();
    let t = orrery_astro::TimeScales {
        jd_ut: c.jd_ut,
        jd_tt: c.jd_tt,
    };
    let transits = transit_positions(t, Zodiac::Tropical);
    assert_eq!(transits[3].longitude, c.bodies[3].longitude);
}
