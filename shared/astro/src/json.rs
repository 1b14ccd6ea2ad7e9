//! The chart's JSON, written directly. A chart is ~14 KB with ~320 numbers, and through serde
//! every field costs several small buffer writes; writing whole `,"key":` fragments halves the
//! serialisation time, which is the largest single cost of serving a computed chart.
//!
//! The text is exactly what `serde_json::to_string(&chart)` produces (the same field order and
//! the same shortest round-trip number formatting), so the serde `Deserialize` impls read it
//! back and the documented shape has one definition; the tests hold the two to each other.

use crate::aspects::Aspect;
use crate::chart::{AngleEntry, BodyEntry, Chart, HouseCusp, PointEntry};

impl Chart {
    /// The chart as compact JSON, identical to `serde_json::to_string(self)`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        write_chart(self, &mut out);
        out
    }
}

fn write_chart(chart: &Chart, out: &mut String) {
    out.push_str("{\"engine_version\":");
    string(out, &chart.engine_version);
    out.push_str(",\"data_version\":");
    string(out, &chart.data_version);
    out.push_str(",\"utc\":");
    string(out, &chart.utc);
    out.push_str(",\"jd_ut\":");
    number(out, chart.jd_ut);
    out.push_str(",\"jd_tt\":");
    number(out, chart.jd_tt);
    out.push_str(",\"delta_t_seconds\":");
    number(out, chart.delta_t_seconds);
    out.push_str(",\"latitude\":");
    number(out, chart.latitude);
    out.push_str(",\"longitude\":");
    number(out, chart.longitude);
    out.push_str(",\"house_system\":");
    string(out, chart.house_system.as_str());
    out.push_str(",\"zodiac\":{\"kind\":");
    string(out, chart.zodiac.kind.as_str());
    out.push_str(",\"ayanamsa\":");
    match chart.zodiac.ayanamsa {
        Some(ayanamsa) => string(out, ayanamsa.as_str()),
        None => out.push_str("null"),
    }
    out.push_str(",\"ayanamsa_degrees\":");
    match chart.zodiac.ayanamsa_degrees {
        Some(degrees) => number(out, degrees),
        None => out.push_str("null"),
    }
    out.push_str("},\"bodies\":");
    array(out, &chart.bodies, body);
    out.push_str(",\"points\":");
    array(out, &chart.points, point);
    out.push_str(",\"angles\":{\"asc\":");
    angle(out, &chart.angles.asc);
    out.push_str(",\"mc\":");
    angle(out, &chart.angles.mc);
    out.push_str(",\"dsc\":");
    angle(out, &chart.angles.dsc);
    out.push_str(",\"ic\":");
    angle(out, &chart.angles.ic);
    out.push_str(",\"vertex\":");
    angle(out, &chart.angles.vertex);
    out.push_str(",\"armc\":");
    number(out, chart.angles.armc);
    out.push_str("},\"houses\":");
    array(out, &chart.houses, cusp);
    out.push_str(",\"aspects\":");
    array(out, &chart.aspects, aspect);
    out.push_str(",\"distribution\":{\"elements\":");
    counts(out, &chart.distribution.elements);
    out.push_str(",\"modalities\":");
    counts(out, &chart.distribution.modalities);
    out.push_str("}}");
}

fn body(out: &mut String, body: &BodyEntry) {
    out.push_str("{\"name\":");
    string(out, body.name.as_str());
    out.push_str(",\"longitude\":");
    number(out, body.longitude);
    out.push_str(",\"latitude\":");
    number(out, body.latitude);
    out.push_str(",\"distance_au\":");
    number(out, body.distance_au);
    out.push_str(",\"speed\":");
    number(out, body.speed);
    out.push_str(",\"retrograde\":");
    boolean(out, body.retrograde);
    out.push_str(",\"ra\":");
    number(out, body.ra);
    out.push_str(",\"dec\":");
    number(out, body.dec);
    out.push_str(",\"sign\":");
    string(out, body.sign.as_str());
    out.push_str(",\"degree_in_sign\":");
    number(out, body.degree_in_sign);
    out.push_str(",\"house\":");
    small(out, body.house);
    out.push('}');
}

fn point(out: &mut String, point: &PointEntry) {
    out.push_str("{\"name\":");
    string(out, point.name.as_str());
    out.push_str(",\"longitude\":");
    number(out, point.longitude);
    out.push_str(",\"latitude\":");
    number(out, point.latitude);
    out.push_str(",\"speed\":");
    number(out, point.speed);
    out.push_str(",\"retrograde\":");
    boolean(out, point.retrograde);
    out.push_str(",\"sign\":");
    string(out, point.sign.as_str());
    out.push_str(",\"degree_in_sign\":");
    number(out, point.degree_in_sign);
    out.push_str(",\"house\":");
    small(out, point.house);
    out.push('}');
}

fn angle(out: &mut String, angle: &AngleEntry) {
    out.push_str("{\"longitude\":");
    number(out, angle.longitude);
    out.push_str(",\"sign\":");
    string(out, angle.sign.as_str());
    out.push_str(",\"degree_in_sign\":");
    number(out, angle.degree_in_sign);
    out.push('}');
}

fn cusp(out: &mut String, cusp: &HouseCusp) {
    out.push_str("{\"house\":");
    small(out, cusp.house);
    out.push_str(",\"longitude\":");
    number(out, cusp.longitude);
    out.push_str(",\"sign\":");
    string(out, cusp.sign.as_str());
    out.push_str(",\"degree_in_sign\":");
    number(out, cusp.degree_in_sign);
    out.push('}');
}

fn aspect(out: &mut String, aspect: &Aspect) {
    out.push_str("{\"a\":");
    string(out, &aspect.a);
    out.push_str(",\"b\":");
    string(out, &aspect.b);
    out.push_str(",\"kind\":");
    string(out, aspect.kind.as_str());
    out.push_str(",\"angle\":");
    number(out, aspect.angle);
    out.push_str(",\"separation\":");
    number(out, aspect.separation);
    out.push_str(",\"orb\":");
    number(out, aspect.orb);
    out.push_str(",\"phase\":");
    string(out, aspect.phase.as_str());
    out.push_str(",\"exactness\":");
    number(out, aspect.exactness);
    out.push('}');
}

fn counts<K: AsRef<str>>(out: &mut String, counts: &std::collections::BTreeMap<K, u8>) {
    out.push('{');
    for (i, (name, count)) in counts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, name.as_ref());
        out.push(':');
        small(out, *count);
    }
    out.push('}');
}

fn array<T>(out: &mut String, items: &[T], write: fn(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

/// A number as serde_json writes it: shortest round-trip digits, `null` if not finite.
fn number(out: &mut String, value: f64) {
    if value.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(value));
    } else {
        out.push_str("null");
    }
}

fn small(out: &mut String, value: u8) {
    if value >= 100 {
        out.push(char::from(b'0' + value / 100));
    }
    if value >= 10 {
        out.push(char::from(b'0' + value / 10 % 10));
    }
    out.push(char::from(b'0' + value % 10));
}

fn boolean(out: &mut String, value: bool) {
    out.push_str(if value { "true" } else { "false" });
}

/// A JSON string. The chart's strings are fixed names and versions; anything needing an escape
/// goes through serde_json, so the output stays identical to its.
fn string(out: &mut String, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        match serde_json::to_string(text) {
            Ok(quoted) => out.push_str(&quoted),
            // Serialising a str cannot fail; an empty string keeps the document valid anyway.
            Err(_) => out.push_str("\"\""),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chart::{ChartInput, compute_chart};
    use crate::{AspectKind, Ayanamsa, HouseSystem, PointKind, ZodiacKind};

    fn input(datetime: &str, latitude: f64, longitude: f64) -> ChartInput {
        serde_json::from_value(serde_json::json!({
            "datetime": datetime, "latitude": latitude, "longitude": longitude,
        }))
        .unwrap()
    }

    /// Charts covering every option that changes the shape or the strings: each house system,
    /// both zodiacs with every ayanamsa, point subsets, minor aspects and custom orbs.
    fn varied_charts() -> Vec<Chart> {
        let mut charts = Vec::new();
        let sites = [(51.5, -0.1), (-33.9, 151.2), (64.1, -21.9), (0.0, 0.0)];
        let instants = [
            "1990-05-17T13:30:00Z",
            "1801-01-01T00:00:00Z",
            "2199-12-31T23:59:00Z",
            "2024-02-29T12:00:00Z",
        ];
        for (i, system) in HouseSystem::ALL.into_iter().enumerate() {
            let (latitude, longitude) = sites[i % sites.len()];
            let mut chart_input = input(instants[i % instants.len()], latitude, longitude);
            chart_input.house_system = system;
            if let Ok(chart) = compute_chart(&chart_input) {
                charts.push(chart);
            }
        }
        for ayanamsa in Ayanamsa::ALL {
            let mut chart_input = input("1955-02-24T19:15:00Z", 37.8, -122.4);
            chart_input.zodiac = ZodiacKind::Sidereal;
            chart_input.ayanamsa = Some(ayanamsa);
            chart_input.house_system = HouseSystem::WholeSign;
            charts.push(compute_chart(&chart_input).unwrap());
        }
        let mut chart_input = input("2000-01-01T12:00:00Z", -45.0, 170.0);
        chart_input.points = Some(vec![PointKind::TrueNode, PointKind::MeanLilith]);
        chart_input.aspects = Some(AspectKind::ALL.to_vec());
        chart_input.orbs = Some([(AspectKind::Quintile, 3.0)].into_iter().collect());
        charts.push(compute_chart(&chart_input).unwrap());
        chart_input.points = Some(Vec::new());
        charts.push(compute_chart(&chart_input).unwrap());
        charts
    }

    #[test]
    fn the_text_is_byte_for_byte_what_serde_writes() {
        let charts = varied_charts();
        assert!(charts.len() >= 15, "{} charts", charts.len());
        for chart in &charts {
            assert_eq!(chart.to_json(), serde_json::to_string(chart).unwrap());
        }
    }

    #[test]
    fn the_text_reads_back_as_the_same_chart() {
        for chart in varied_charts() {
            let back: Chart = serde_json::from_str(&chart.to_json()).unwrap();
            assert_eq!(back, chart);
        }
    }

    #[test]
    fn odd_strings_and_numbers_are_written_as_serde_writes_them() {
        let mut chart = varied_charts().remove(0);
        chart.utc = "quote \" backslash \\ newline \n tab \t".into();
        chart.jd_ut = f64::NAN;
        chart.delta_t_seconds = 1e-300;
        chart.longitude = -0.0;
        chart.bodies[0].house = 200;
        chart.bodies[1].house = 0;
        assert_eq!(chart.to_json(), serde_json::to_string(&chart).unwrap());
    }
}
