//! Lunar nodes, mean Lilith (mean lunar apogee) and the Part of Fortune.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ephemeris::{Segment, ephemeris};
use crate::error::AstroError;
use crate::fast_math::atan2;
use crate::positions::{Frame, Pva, mat_vec, normalize_degrees};
use crate::time::J2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    MeanNode,
    TrueNode,
    MeanSouthNode,
    TrueSouthNode,
    MeanLilith,
    PartOfFortune,
}

impl PointKind {
    pub const ALL: [PointKind; 6] = [
        PointKind::MeanNode,
        PointKind::TrueNode,
        PointKind::MeanSouthNode,
        PointKind::TrueSouthNode,
        PointKind::MeanLilith,
        PointKind::PartOfFortune,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::MeanNode => "mean_node",
            PointKind::TrueNode => "true_node",
            PointKind::MeanSouthNode => "mean_south_node",
            PointKind::TrueSouthNode => "true_south_node",
            PointKind::MeanLilith => "mean_lilith",
            PointKind::PartOfFortune => "part_of_fortune",
        }
    }

    pub fn accepted_names() -> String {
        PointKind::ALL.map(|p| p.as_str()).join(", ")
    }
}

impl FromStr for PointKind {
    type Err = AstroError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PointKind::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| AstroError::UnknownPoint {
                given: s.to_string(),
            })
    }
}

/// Ecliptic position of a point (tropical, of date), degrees and degrees/day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPosition {
    pub kind: PointKind,
    pub longitude: f64,
    pub latitude: f64,
    pub speed: f64,
}

fn centuries(jd_tt: f64) -> f64 {
    (jd_tt - J2000) / 36525.0
}

/// Mean longitude of the ascending node, mean equinox of date (degrees).
/// Meeus/Chapront polynomial plus a cubic (≤ 0.23″) that aligns it with
/// Swiss Ephemeris' mean node over 1800–2200.
fn mean_node_mean_equinox(t: f64) -> f64 {
    let meeus = 125.044_547_9 - 1_934.136_289_1 * t + 0.002_075_4 * t * t + t * t * t / 467_441.0
        - t * t * t * t / 60_616_000.0;
    let alignment = ((-0.000_840_43 * t - 0.014_203_24) * t - 0.095_449_44) * t + 0.025_741_67;
    meeus + alignment / 3600.0
}

/// Mean longitude of lunar perigee, mean equinox of date (degrees), with the
/// cubic (≤ 1.1″) that aligns it with Swiss Ephemeris' mean apogee.
fn mean_perigee_mean_equinox(t: f64) -> f64 {
    let meeus = 83.353_246_5 + 4_069.013_728_7 * t - 0.010_320_0 * t * t - t * t * t / 80_053.0
        + t * t * t * t / 18_999_000.0;
    let alignment = ((0.003_009_46 * t + 0.021_718_31) * t - 0.538_376_76) * t - 0.012_734_27;
    meeus + alignment / 3600.0
}

/// Mean inclination of the lunar orbit on the ecliptic.
const LUNAR_INCLINATION_DEG: f64 = 5.145_396_4;

pub fn mean_node(frame: &Frame) -> PointPosition {
    let t = centuries(frame.time.jd_tt);
    PointPosition {
        kind: PointKind::MeanNode,
        longitude: normalize_degrees(
            mean_node_mean_equinox(t) + frame.nutation_longitude.to_degrees(),
        ),
        latitude: 0.0,
        speed: -1_934.136_289_1 / 36525.0,
    }
}

/// Osculating ascending node of the geocentric lunar orbit (true ecliptic of date);
/// speed is its instantaneous rate (from the Moon's acceleration).
pub fn true_node(frame: &Frame) -> PointPosition {
    let moon = ephemeris().state_pva(Segment::MoonGeocentric, frame.time.jd_tdb());
    true_node_from_icrf(frame, &moon)
}

/// [`true_node`] from the geometric geocentric Moon (position, velocity, acceleration;
/// ICRF) at the frame's instant, e.g. the one the body reduction already evaluated.
pub(crate) fn true_node_from_icrf(frame: &Frame, moon: &Pva) -> PointPosition {
    let [r, v, a] = moon.map(|x| mat_vec(&frame.ecliptic, x));
    // h = r × v, dh/dt = r × a; ascending node direction = z × h = (−h_y, h_x).
    let hx = r[1] * v[2] - r[2] * v[1];
    let hy = r[2] * v[0] - r[0] * v[2];
    let dhx = r[1] * a[2] - r[2] * a[1];
    let dhy = r[2] * a[0] - r[0] * a[2];
    let rate = (hx * dhy - hy * dhx) / (hx * hx + hy * hy);
    PointPosition {
        kind: PointKind::TrueNode,
        longitude: normalize_degrees(atan2(hx, -hy).to_degrees()),
        latitude: 0.0,
        speed: rate.to_degrees(),
    }
}

pub fn south_of(node: PointPosition, kind: PointKind) -> PointPosition {
    PointPosition {
        kind,
        longitude: normalize_degrees(node.longitude + 180.0),
        latitude: 0.0 - node.latitude + 0.0,
        speed: node.speed,
    }
}

/// Mean Lilith: the mean lunar apogee, projected from the mean lunar orbit
/// onto the ecliptic (so it has a latitude, as in Swiss Ephemeris).
pub fn mean_lilith(frame: &Frame) -> PointPosition {
    let t = centuries(frame.time.jd_tt);
    let node = mean_node_mean_equinox(t);
    let apogee = mean_perigee_mean_equinox(t) + 180.0;
    let u = (apogee - node).to_radians();
    let i = LUNAR_INCLINATION_DEG.to_radians();
    let longitude = node + atan2(u.sin() * i.cos(), u.cos()).to_degrees();
    PointPosition {
        kind: PointKind::MeanLilith,
        longitude: normalize_degrees(longitude + frame.nutation_longitude.to_degrees()),
        latitude: (u.sin() * i.sin()).asin().to_degrees(),
        speed: 4_069.013_728_7 / 36525.0,
    }
}

/// Part of Fortune: ASC + Moon − Sun by day, ASC + Sun − Moon by night.
pub fn part_of_fortune(asc: f64, sun: f64, moon: f64, is_day: bool) -> f64 {
    if is_day {
        normalize_degrees(asc + moon - sun)
    } else {
        normalize_degrees(asc + sun - moon)
    }
}

/// Whether the Sun (RA/Dec of date, degrees) is above the horizon.
pub fn sun_above_horizon(armc: f64, latitude: f64, sun_ra: f64, sun_dec: f64) -> bool {
    let hour_angle = (armc - sun_ra).to_radians();
    let (lat, dec) = (latitude.to_radians(), sun_dec.to_radians());
    lat.sin() * dec.sin() + lat.cos() * dec.cos() * hour_angle.cos() > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_of_fortune_day_and_night() {
        assert_eq!(part_of_fortune(100.0, 10.0, 50.0, true), 140.0);
        assert_eq!(part_of_fortune(100.0, 10.0, 50.0, false), 60.0);
        assert_eq!(part_of_fortune(350.0, 0.0, 20.0, true), 10.0);
    }

    #[test]
    fn sun_altitude_sign() {
        // Sun on the meridian at the equator, equinox: above.
        assert!(sun_above_horizon(0.0, 0.0, 0.0, 0.0));
        // Opposite meridian: below.
        assert!(!sun_above_horizon(180.0, 0.0, 0.0, 0.0));
    }
}
