//! Angles (ASC, MC, DSC, IC, Vertex) and house cusps from the sidereal angle
//! ARMC, the true obliquity and the geographic latitude.
//!
//! Cusps are computed geometrically: a house circle is a great circle through
//! the north and south points of the horizon (Campanus, Regiomontanus) or an
//! hour-circle/semi-arc construction (Placidus, Koch, Alcabitius), and the cusp
//! is its intersection with the ecliptic on the eastern side.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::earth_series::gmst06;
use crate::error::AstroError;
use crate::fast_math::atan2;
use crate::positions::{Frame, normalize_degrees, wrap_180};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HouseSystem {
    #[default]
    Placidus,
    Koch,
    Porphyry,
    Regiomontanus,
    Campanus,
    /// Equal houses from the ascendant.
    Equal,
    WholeSign,
    Alcabitius,
    Morinus,
}

impl HouseSystem {
    pub const ALL: [HouseSystem; 9] = [
        HouseSystem::Placidus,
        HouseSystem::Koch,
        HouseSystem::Porphyry,
        HouseSystem::Regiomontanus,
        HouseSystem::Campanus,
        HouseSystem::Equal,
        HouseSystem::WholeSign,
        HouseSystem::Alcabitius,
        HouseSystem::Morinus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HouseSystem::Placidus => "placidus",
            HouseSystem::Koch => "koch",
            HouseSystem::Porphyry => "porphyry",
            HouseSystem::Regiomontanus => "regiomontanus",
            HouseSystem::Campanus => "campanus",
            HouseSystem::Equal => "equal",
            HouseSystem::WholeSign => "whole_sign",
            HouseSystem::Alcabitius => "alcabitius",
            HouseSystem::Morinus => "morinus",
        }
    }

    pub fn accepted_names() -> String {
        HouseSystem::ALL.map(|h| h.as_str()).join(", ")
    }
}

impl FromStr for HouseSystem {
    type Err = AstroError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HouseSystem::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| AstroError::UnknownHouseSystem {
                given: s.to_string(),
            })
    }
}

/// The four angles and the vertex, ecliptic longitudes of date in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Angles {
    pub asc: f64,
    pub mc: f64,
    pub dsc: f64,
    pub ic: f64,
    pub vertex: f64,
    /// Right ascension of the meridian (local apparent sidereal time), degrees.
    pub armc: f64,
}

/// Local apparent sidereal angle (ARMC) in degrees: GAST (IAU 2006 GMST + equation of
/// the equinoxes) + east longitude.
pub fn armc_degrees(frame: &Frame, longitude: f64) -> f64 {
    let gmst = gmst06(frame.time.jd_ut, frame.time.jd_tt);
    normalize_degrees((gmst + frame.equation_of_equinoxes).to_degrees() + longitude)
}

type Vec3 = [f64; 3];

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Local sky geometry in equatorial coordinates of date (trigonometry computed once).
struct Sky {
    armc: f64,
    lat: f64,
    sin_armc: f64,
    cos_armc: f64,
    sin_eps: f64,
    cos_eps: f64,
    tan_lat: f64,
    zenith: Vec3,
    east: Vec3,
    north: Vec3,
    ecliptic_pole: Vec3,
}

impl Sky {
    fn new(armc_deg: f64, eps_deg: f64, lat_deg: f64) -> Sky {
        let (armc, eps, lat) = (
            armc_deg.to_radians(),
            eps_deg.to_radians(),
            lat_deg.to_radians(),
        );
        let (sr, cr) = armc.sin_cos();
        let (sl, cl) = lat.sin_cos();
        let (se, ce) = eps.sin_cos();
        let zenith = [cl * cr, cl * sr, sl];
        let east = [-sr, cr, 0.0];
        let north = cross(zenith, east);
        Sky {
            armc,
            lat,
            sin_armc: sr,
            cos_armc: cr,
            sin_eps: se,
            cos_eps: ce,
            tan_lat: lat.tan(),
            zenith,
            east,
            north,
            ecliptic_pole: [0.0, -se, ce],
        }
    }

    /// Ecliptic longitude (degrees) of an equatorial direction.
    fn longitude_of(&self, v: Vec3) -> f64 {
        let y = self.cos_eps * v[1] + self.sin_eps * v[2];
        normalize_degrees(atan2(y, v[0]).to_degrees())
    }

    /// Ecliptic point where the great circle with pole `circle_pole` meets the
    /// ecliptic on the eastern side of the meridian.
    fn eastern_intersection(&self, circle_pole: Vec3) -> f64 {
        let mut d = cross(circle_pole, self.ecliptic_pole);
        if dot(d, self.east) < 0.0 {
            d = [-d[0], -d[1], -d[2]];
        }
        self.longitude_of(d)
    }

    fn mc(&self) -> f64 {
        normalize_degrees(atan2(self.sin_armc, self.cos_armc * self.cos_eps).to_degrees())
    }

    /// The ascendant formula's point, before the polar convention.
    fn raw_asc(&self) -> f64 {
        let raw = atan2(
            self.cos_armc,
            -(self.sin_armc * self.cos_eps + self.tan_lat * self.sin_eps),
        );
        normalize_degrees(raw.to_degrees())
    }

    /// Ascendant, with Swiss Ephemeris' convention inside the polar circles:
    /// the formula's point, turned by 180° when it falls behind the MC.
    fn asc_given_mc(&self, mc: f64) -> f64 {
        let asc = self.raw_asc();
        if wrap_180(asc - mc) < 0.0 {
            normalize_degrees(asc + 180.0)
        } else {
            asc
        }
    }

    fn asc(&self) -> f64 {
        self.asc_given_mc(self.mc())
    }

    /// Polar case where the formula ascendant had to be turned (SE then also
    /// turns the MC of Regiomontanus and Campanus).
    fn ascendant_turned(&self) -> bool {
        wrap_180(self.raw_asc() - self.mc()) < 0.0
    }

    /// Ecliptic longitude with right ascension `ra` (radians).
    fn longitude_at_ra(&self, ra: f64) -> f64 {
        let (s, c) = ra.sin_cos();
        normalize_degrees(atan2(s, c * self.cos_eps).to_degrees())
    }

    fn declination_of_longitude(&self, lon_deg: f64) -> f64 {
        (self.sin_eps * lon_deg.to_radians().sin()).asin()
    }

    /// Diurnal semi-arc (radians) of declination `dec`, if the point rises and sets.
    fn diurnal_semi_arc(&self, dec: f64) -> Option<f64> {
        let x = -self.tan_lat * dec.tan();
        (x.abs() <= 1.0).then(|| x.acos())
    }

    /// Circle through the horizon's north/south points and `point`.
    fn circle_through_north_south(&self, point: Vec3) -> Vec3 {
        cross(self.north, point)
    }

    /// Vertex (western intersection of prime vertical and ecliptic): the
    /// ascendant of the co-latitude at the opposite meridian.
    /// `mc` is this sky's MC; at the opposite meridian sin/cos(ARMC) change sign and
    /// the MC turns by 180°.
    fn vertex(&self, mc: f64) -> f64 {
        let colat = if self.lat >= 0.0 {
            std::f64::consts::FRAC_PI_2 - self.lat
        } else {
            -std::f64::consts::FRAC_PI_2 - self.lat
        };
        let (sr, cr) = (-self.sin_armc, -self.cos_armc);
        let raw = atan2(cr, -(sr * self.cos_eps + colat.tan() * self.sin_eps));
        let raw = normalize_degrees(raw.to_degrees());
        if wrap_180(raw - normalize_degrees(mc + 180.0)) < 0.0 {
            normalize_degrees(raw + 180.0)
        } else {
            raw
        }
    }

    /// Placidus cusp: the ecliptic point whose right ascension α is `fraction` of
    /// its own diurnal semi-arc east of the meridian (`above`), or of its nocturnal
    /// semi-arc west of the lower meridian. With K = tan φ tan ε the semi-arc of the
    /// ecliptic point at α is π/2 + asin(K sin α), so α solves
    /// F(α) = α − ARMC − f (π/2 + asin(K sin α)) = 0 (above) or
    /// F(α) = α − ARMC − π + f (π/2 − asin(K sin α)) = 0 (below), i.e.
    /// α = base + f asin(K sin α) with base = ARMC + fπ/2 or ARMC + π − fπ/2.
    /// For |K| ≤ 1 (inside the polar limit) F′ ≥ 1 − f > 0, so Newton's method
    /// converges from the semi-arc-of-the-equator guess in a few steps.
    /// Returns None if it does not (callers then use the general solver).
    fn placidus_newton(&self, fraction: f64, above: bool) -> Option<f64> {
        use std::f64::consts::{FRAC_PI_2, PI};
        let k = self.tan_lat * self.sin_eps / self.cos_eps;
        // α = base + f·asin(K sin α) in both cases.
        let base = if above {
            self.armc + fraction * FRAC_PI_2
        } else {
            self.armc + PI - fraction * FRAC_PI_2
        };
        let mut alpha = base;
        for _ in 0..30 {
            let (s, c) = alpha.sin_cos();
            let ks = k * s;
            let f = alpha - base - fraction * ks.asin();
            let df = 1.0 - fraction * k * c / (1.0 - ks * ks).sqrt();
            let step = f / df;
            if !step.is_finite() {
                return None;
            }
            alpha -= step;
            if step.abs() < 1e-13 {
                return Some(self.longitude_at_ra(alpha));
            }
        }
        None
    }
}

/// Polar latitude limit (degrees) beyond which Placidus and Koch are undefined.
pub fn polar_limit(true_obliquity_deg: f64) -> f64 {
    90.0 - true_obliquity_deg
}

/// Angles from ARMC (deg), true obliquity (deg) and latitude (deg).
pub fn angles_from_armc(armc: f64, eps: f64, latitude: f64) -> Angles {
    let sky = Sky::new(armc, eps, latitude);
    let mc = sky.mc();
    angles_of_sky(&sky, armc, mc, sky.asc_given_mc(mc))
}

fn angles_of_sky(sky: &Sky, armc: f64, mc: f64, asc: f64) -> Angles {
    Angles {
        asc,
        mc,
        dsc: normalize_degrees(asc + 180.0),
        ic: normalize_degrees(mc + 180.0),
        vertex: sky.vertex(mc),
        armc,
    }
}

/// Twelve cusps (index 0 = house 1) from ARMC, true obliquity and latitude (degrees).
pub fn cusps_from_armc(
    system: HouseSystem,
    armc: f64,
    eps: f64,
    latitude: f64,
) -> Result<[f64; 12], AstroError> {
    let sky = Sky::new(armc, eps, latitude);
    let mc = sky.mc();
    cusps_of_sky(&sky, system, armc, eps, latitude, mc, sky.asc_given_mc(mc))
}

fn cusps_of_sky(
    sky: &Sky,
    system: HouseSystem,
    armc: f64,
    eps: f64,
    latitude: f64,
    mc: f64,
    asc: f64,
) -> Result<[f64; 12], AstroError> {
    if latitude.abs() >= 89.999 && system != HouseSystem::Morinus {
        return Err(AstroError::PolarHouses {
            system: system.as_str(),
            latitude,
            limit: 89.999,
            date_dependent: false,
        });
    }
    let mut cusps = [0.0; 12];
    let eastern: [f64; 5] = match system {
        HouseSystem::Equal => {
            for (i, c) in cusps.iter_mut().enumerate() {
                *c = normalize_degrees(asc + 30.0 * i as f64);
            }
            return Ok(cusps);
        }
        HouseSystem::WholeSign => {
            let start = (asc / 30.0).floor() * 30.0;
            for (i, c) in cusps.iter_mut().enumerate() {
                *c = normalize_degrees(start + 30.0 * i as f64);
            }
            return Ok(cusps);
        }
        HouseSystem::Morinus => {
            for (i, c) in cusps.iter_mut().enumerate() {
                let ra = sky.armc + (90.0 + 30.0 * i as f64).to_radians();
                let (s, co) = ra.sin_cos();
                *c = normalize_degrees(atan2(s * sky.cos_eps, co).to_degrees());
            }
            return Ok(cusps);
        }
        HouseSystem::Porphyry => {
            let upper = normalize_degrees(asc - mc);
            let lower = normalize_degrees(mc + 180.0 - asc);
            [
                mc + upper / 3.0,
                mc + 2.0 * upper / 3.0,
                asc,
                asc + lower / 3.0,
                asc + 2.0 * lower / 3.0,
            ]
        }
        HouseSystem::Campanus => [30.0, 60.0, 90.0, 120.0, 150.0].map(|h: f64| {
            let (s, c) = h.to_radians().sin_cos();
            let point = [
                c * sky.zenith[0] + s * sky.east[0],
                c * sky.zenith[1] + s * sky.east[1],
                c * sky.zenith[2] + s * sky.east[2],
            ];
            sky.eastern_intersection(sky.circle_through_north_south(point))
        }),
        HouseSystem::Regiomontanus => [30.0, 60.0, 90.0, 120.0, 150.0].map(|h: f64| {
            let ra = sky.armc + h.to_radians();
            let point = [ra.cos(), ra.sin(), 0.0];
            sky.eastern_intersection(sky.circle_through_north_south(point))
        }),
        HouseSystem::Alcabitius => {
            let dec = sky.declination_of_longitude(asc);
            let dsa = sky
                .diurnal_semi_arc(dec)
                .unwrap_or(std::f64::consts::FRAC_PI_2);
            let nsa = std::f64::consts::PI - dsa;
            let pi = std::f64::consts::PI;
            [
                sky.armc + dsa / 3.0,
                sky.armc + 2.0 * dsa / 3.0,
                f64::NAN, // replaced by asc below
                sky.armc + pi - 2.0 * nsa / 3.0,
                sky.armc + pi - nsa / 3.0,
            ]
            .map(|ra| {
                if ra.is_nan() {
                    asc
                } else {
                    sky.longitude_at_ra(ra)
                }
            })
        }
        HouseSystem::Koch => {
            let limit = polar_limit(eps);
            let dsa = sky
                .diurnal_semi_arc(sky.declination_of_longitude(mc))
                .filter(|_| latitude.abs() <= limit)
                .ok_or(AstroError::PolarHouses {
                    system: "koch",
                    latitude,
                    limit,
                    date_dependent: true,
                })?;
            let asc_at = |offset: f64| {
                Sky::new(normalize_degrees(armc + offset.to_degrees()), eps, latitude).asc()
            };
            [
                asc_at(-2.0 * dsa / 3.0),
                asc_at(-dsa / 3.0),
                asc,
                asc_at(dsa / 3.0),
                asc_at(2.0 * dsa / 3.0),
            ]
        }
        HouseSystem::Placidus => {
            let limit = polar_limit(eps);
            if latitude.abs() > limit {
                return Err(AstroError::PolarHouses {
                    system: "placidus",
                    latitude,
                    limit,
                    date_dependent: true,
                });
            }
            let solve = |fraction: f64, above: bool| -> Result<f64, AstroError> {
                match sky.placidus_newton(fraction, above) {
                    Some(cusp) => Ok(cusp),
                    None => placidus_fixed_point(sky, fraction, above, latitude, limit),
                }
            };
            [
                solve(1.0 / 3.0, true)?,
                solve(2.0 / 3.0, true)?,
                asc,
                solve(2.0 / 3.0, false)?,
                solve(1.0 / 3.0, false)?,
            ]
        }
    };
    // eastern = cusps 11, 12, 1, 2, 3; the rest follow by opposition.
    let turned = matches!(system, HouseSystem::Regiomontanus | HouseSystem::Campanus)
        && sky.ascendant_turned();
    cusps[9] = if turned {
        normalize_degrees(mc + 180.0)
    } else {
        mc
    };
    cusps[10] = normalize_degrees(eastern[0]);
    cusps[11] = normalize_degrees(eastern[1]);
    cusps[0] = normalize_degrees(eastern[2]);
    cusps[1] = normalize_degrees(eastern[3]);
    cusps[2] = normalize_degrees(eastern[4]);
    for i in 3..9 {
        cusps[i] = normalize_degrees(cusps[(i + 6) % 12] + 180.0);
    }
    Ok(cusps)
}

/// General Placidus solver (secant method on the longitude fixed point); used only
/// when [`Sky::placidus_newton`] fails, e.g. exactly at the polar limit.
fn placidus_fixed_point(
    sky: &Sky,
    fraction: f64,
    above: bool,
    latitude: f64,
    limit: f64,
) -> Result<f64, AstroError> {
    let pi = std::f64::consts::PI;
    let polar = || AstroError::PolarHouses {
        system: "placidus",
        latitude,
        limit,
        date_dependent: true,
    };
    // Each cusp is the fixed point of λ ↦ the longitude at the RA where λ's own
    // semi-arc fraction puts it.
    let image = |lon: f64| -> Result<f64, AstroError> {
        let dec = sky.declination_of_longitude(lon);
        let dsa = sky.diurnal_semi_arc(dec).ok_or_else(polar)?;
        let ra = if above {
            sky.armc + fraction * dsa
        } else {
            sky.armc + pi - fraction * (pi - dsa)
        };
        Ok(sky.longitude_at_ra(ra))
    };
    let mut x0 = sky.longitude_at_ra(
        sky.armc
            + if above {
                fraction * pi / 2.0
            } else {
                pi - fraction * pi / 2.0
            },
    );
    let mut r0 = wrap_180(image(x0)? - x0);
    let mut x1 = x0 + r0;
    for _ in 0..50 {
        let r1 = wrap_180(image(x1)? - x1);
        if r1.abs() < 1e-10 {
            break;
        }
        let slope = (r1 - r0) / wrap_180(x1 - x0);
        let step = if slope.is_finite() && slope != 0.0 {
            -r1 / slope
        } else {
            r1
        };
        (x0, r0) = (x1, r1);
        x1 += step;
    }
    Ok(normalize_degrees(x1))
}

/// Angles and cusps for a frame and site.
pub fn houses(
    frame: &Frame,
    system: HouseSystem,
    latitude: f64,
    longitude: f64,
) -> Result<(Angles, [f64; 12]), AstroError> {
    let armc = armc_degrees(frame, longitude);
    let eps = frame.true_obliquity.to_degrees();
    let sky = Sky::new(armc, eps, latitude);
    let mc = sky.mc();
    let asc = sky.asc_given_mc(mc);
    let cusps = cusps_of_sky(&sky, system, armc, eps, latitude, mc, asc)?;
    let mut angles = angles_of_sky(&sky, armc, mc, asc);
    if matches!(system, HouseSystem::Regiomontanus | HouseSystem::Campanus) {
        // Keep the MC equal to cusp 10 (they differ only in the polar convention above).
        angles.mc = cusps[9];
        angles.ic = normalize_degrees(cusps[9] + 180.0);
    }
    Ok((angles, cusps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polar_refusals_recommend_only_systems_that_work_there() {
        let at_pole = cusps_from_armc(HouseSystem::Equal, 10.0, 23.44, 90.0)
            .unwrap_err()
            .to_string();
        assert!(at_pole.ends_with("use morinus"), "{at_pole}");
        assert!(
            at_pole.contains("fixed limit") && !at_pole.contains("at this date"),
            "{at_pole}"
        );
        let placidus = cusps_from_armc(HouseSystem::Placidus, 10.0, 23.44, 70.0)
            .unwrap_err()
            .to_string();
        assert!(placidus.contains("at this date"), "{placidus}");
        assert!(
            placidus.contains("use porphyry, equal,") && !placidus.contains("placidus, "),
            "{placidus}"
        );
    }

    #[test]
    fn placidus_and_koch_refuse_polar_latitudes() {
        for system in [HouseSystem::Placidus, HouseSystem::Koch] {
            let err = cusps_from_armc(system, 123.0, 23.44, 70.0).unwrap_err();
            assert!(matches!(err, AstroError::PolarHouses { .. }));
            assert_eq!(err.field(), Some("latitude"));
            assert!(cusps_from_armc(system, 123.0, 23.44, -70.0).is_err());
            assert!(cusps_from_armc(system, 123.0, 23.44, 60.0).is_ok());
        }
        // Systems defined everywhere below the pole still answer at 70°.
        for system in [
            HouseSystem::Porphyry,
            HouseSystem::Equal,
            HouseSystem::Campanus,
            HouseSystem::Regiomontanus,
        ] {
            let cusps = cusps_from_armc(system, 123.0, 23.44, 70.0).unwrap();
            assert!(cusps.iter().all(|c| c.is_finite()));
        }
        assert!(cusps_from_armc(HouseSystem::Equal, 0.0, 23.44, 90.0).is_err());
    }

    #[test]
    fn placidus_newton_matches_the_general_solver() {
        let eps = 23.44;
        let limit = polar_limit(eps);
        let mut worst: f64 = 0.0;
        for lat_step in -40..=40 {
            let lat = f64::from(lat_step) / 40.0 * (limit - 1e-9);
            for armc_step in 0..72 {
                let sky = Sky::new(f64::from(armc_step) * 5.0 + 0.3, eps, lat);
                for (fraction, above) in [
                    (1.0 / 3.0, true),
                    (2.0 / 3.0, true),
                    (2.0 / 3.0, false),
                    (1.0 / 3.0, false),
                ] {
                    let newton = sky
                        .placidus_newton(fraction, above)
                        .unwrap_or_else(|| panic!("Newton failed at lat {lat} armc {armc_step}"));
                    let general = placidus_fixed_point(&sky, fraction, above, lat, limit).unwrap();
                    worst = worst.max(wrap_180(newton - general).abs());
                }
            }
        }
        assert!(worst < 1e-8, "Newton vs secant: {worst}°");
    }

    #[test]
    fn names_round_trip() {
        for h in HouseSystem::ALL {
            assert_eq!(h.as_str().parse::<HouseSystem>().unwrap(), h);
        }
        let err = "topocentric".parse::<HouseSystem>().unwrap_err();
        assert_eq!(err.field(), Some("house_system"));
        assert!(err.to_string().contains("placidus, koch"));
    }
}
