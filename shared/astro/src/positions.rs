//! Geocentric apparent positions, reduced like skyfield's `observe().apparent()`:
//! light-time iteration, deflection by the Sun, Jupiter and Saturn, relativistic
//! annual aberration, then IAU 2006 precession with IAU 2000B nutation (2000A with
//! feature `nutation-2000a`; SOFA via `sofars`)
//! to the true equator/ecliptic and equinox of date.

use serde::{Deserialize, Serialize};

use crate::earth_series::{earth_series, fw2m};
use crate::ephemeris::{Ephemeris, Segment, State, ephemeris};
use crate::fast_math::atan2;
use crate::time::{J2000, TimeScales};

/// Astronomical unit in km (IAU 2012), the unit of all positions here.
pub const AU_KM: f64 = 149_597_870.700;
/// Speed of light in au/day.
pub const C_AU_PER_DAY: f64 = 299_792_458.0 * 86_400.0 / (AU_KM * 1000.0);
/// Heliocentric gravitational constant (m³/s²), TDB-compatible.
const GM_SUN_M3_S2: f64 = 1.327_124_400_179_87e20;
/// Gaussian gravitational constant squared: GM_sun in au³/day².
const GAUSS_K2: f64 = 2.959_122_082_855_911e-4;
const ARCSEC: f64 = std::f64::consts::PI / 648_000.0;

/// The ten chart bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Sun,
    Moon,
    Mercury,
    Venus,
    Mars,
    Jupiter,
    Saturn,
    Uranus,
    Neptune,
    Pluto,
}

impl Body {
    pub const ALL: [Body; 10] = [
        Body::Sun,
        Body::Moon,
        Body::Mercury,
        Body::Venus,
        Body::Mars,
        Body::Jupiter,
        Body::Saturn,
        Body::Uranus,
        Body::Neptune,
        Body::Pluto,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Body::Sun => "sun",
            Body::Moon => "moon",
            Body::Mercury => "mercury",
            Body::Venus => "venus",
            Body::Mars => "mars",
            Body::Jupiter => "jupiter",
            Body::Saturn => "saturn",
            Body::Uranus => "uranus",
            Body::Neptune => "neptune",
            Body::Pluto => "pluto",
        }
    }
}

/// Apparent geocentric position of a body, of date.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ApparentPosition {
    pub body: Body,
    /// Ecliptic longitude, true ecliptic and equinox of date, degrees [0, 360).
    pub longitude: f64,
    /// Ecliptic latitude, degrees.
    pub latitude: f64,
    /// Distance in au (length of the apparent vector, as skyfield reports it).
    pub distance_au: f64,
    /// Daily motion in ecliptic longitude, degrees/day (negative when retrograde).
    pub speed: f64,
    pub retrograde: bool,
    /// Right ascension, true equator and equinox of date, degrees [0, 360).
    pub ra: f64,
    /// Declination, degrees.
    pub dec: f64,
}

/// Earth orientation quantities of one instant, shared by bodies, houses and points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub time: TimeScales,
    /// GCRS → true equator and equinox of date (bias-precession-nutation).
    pub npb: [[f64; 3]; 3],
    /// GCRS → true ecliptic and equinox of date.
    pub ecliptic: [[f64; 3]; 3],
    /// Mean obliquity (IAU 2006), radians.
    pub mean_obliquity: f64,
    /// True obliquity, radians.
    pub true_obliquity: f64,
    /// Nutation in longitude (IAU 2000B; 2000A with feature `nutation-2000a`), radians.
    pub nutation_longitude: f64,
    /// Equation of the equinoxes (Δψ cos ε_A + complementary terms), radians: GAST − GMST.
    pub equation_of_equinoxes: f64,
}

impl Frame {
    pub fn new(time: TimeScales) -> Frame {
        let (date1, date2) = (J2000, time.jd_tt - J2000);
        let (gamb, phib, psib, epsa) = sofars::pnp::pfw06(date1, date2);
        // IAU 2000B by default (crate::earth_series: SOFA nut00b's series without its
        // per-term fmod/sin/cos); it stays within 0.004″ of skyfield's 2000A over
        // 1800–2200 (tests/accuracy.rs). Feature `nutation-2000a`: sofars' full model.
        let series = earth_series(time.jd_tt);
        let (dpsi, deps) = if cfg!(feature = "nutation-2000a") {
            sofars::pnp::nut06a(date1, date2)
        } else {
            (series.dpsi, series.deps)
        };
        let npb = fw2m(gamb, phib, psib + dpsi, epsa + deps);
        let true_obliquity = epsa + deps;
        let (s, c) = true_obliquity.sin_cos();
        // rot_x(−ε): equatorial → ecliptic.
        let rx = [[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]];
        Frame {
            time,
            npb,
            ecliptic: mat_mul(&rx, &npb),
            mean_obliquity: epsa,
            true_obliquity,
            nutation_longitude: dpsi,
            equation_of_equinoxes: dpsi * epsa.cos() + series.eect,
        }
    }

    /// General precession in longitude rate (IAU 2006), radians/day.
    fn precession_rate(&self) -> f64 {
        let t = (self.time.jd_tt - J2000) / 36525.0;
        (5028.796195 + 2.0 * 1.1054348 * t) * ARCSEC / 36525.0
    }
}

#[inline(always)]
fn mat_mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    out
}

#[inline(always)]
pub(crate) fn mat_vec(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    [
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    ]
}

#[inline(always)]
fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
#[inline(always)]
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
#[inline(always)]
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}
#[inline(always)]
fn scale(a: [f64; 3], k: f64) -> [f64; 3] {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// `x.rem_euclid(360.0)`, bit for bit, without the slow generic `fmod` for the
/// usual arguments (−360, 1080): those need at most one exact-or-rounded addition.
#[inline(always)]
pub(crate) fn rem_360(x: f64) -> f64 {
    if (0.0..360.0).contains(&x) {
        x
    } else if (360.0..720.0).contains(&x) {
        // Exact (Sterbenz), as fmod is.
        x - 360.0
    } else if (720.0..1080.0).contains(&x) {
        x - 720.0
    } else if x > -360.0 && x < 0.0 {
        // fmod(x, 360) = x here; rem_euclid then adds 360 with the same rounding.
        x + 360.0
    } else {
        x.rem_euclid(360.0)
    }
}

/// Degrees in [0, 360).
#[inline(always)]
pub(crate) fn normalize_degrees(x: f64) -> f64 {
    let r = rem_360(x);
    if r >= 360.0 { 0.0 } else { r }
}

/// Signed difference wrapped to [−180, 180]: `(x + 540).rem_euclid(360) − 180`.
#[inline(always)]
pub(crate) fn wrap_180(x: f64) -> f64 {
    rem_360(x + 540.0) - 180.0
}

/// Position, velocity, acceleration (au, au/day, au/day²).
pub(crate) type Pva = [[f64; 3]; 3];

/// The geocentre at one TDB instant and the states every body's reduction shares:
/// Earth, Moon, EMB, and the deflectors (Sun, Jupiter, Saturn), ICRF.
pub(crate) struct Observer {
    eph: &'static Ephemeris,
    jd: f64,
    moon_share: f64,
    earth: State,
    emb: Pva,
    /// Geocentric Moon.
    moon: Pva,
    sun: Pva,
    jupiter: Pva,
    saturn: Pva,
}

fn segment_of(body: Body) -> Segment {
    match body {
        Body::Sun => Segment::Sun,
        Body::Moon => Segment::MoonGeocentric,
        Body::Mercury => Segment::Mercury,
        Body::Venus => Segment::Venus,
        Body::Mars => Segment::MarsBarycenter,
        Body::Jupiter => Segment::JupiterBarycenter,
        Body::Saturn => Segment::SaturnBarycenter,
        Body::Uranus => Segment::UranusBarycenter,
        Body::Neptune => Segment::NeptuneBarycenter,
        Body::Pluto => Segment::PlutoBarycenter,
    }
}

/// EMB + share × geocentric Moon (the Moon for share = μ/(1+μ), the Earth for −1/(1+μ)).
fn from_emb(emb: &Pva, moon: &Pva, share: f64) -> Pva {
    let mut out = [[0.0; 3]; 3];
    for ((o, e), m) in out.iter_mut().zip(emb).zip(moon) {
        *o = [
            e[0] + m[0] * share,
            e[1] + m[1] * share,
            e[2] + m[2] * share,
        ];
    }
    out
}

impl Observer {
    pub(crate) fn new(frame: &Frame) -> Observer {
        let eph = ephemeris();
        let jd = frame.time.jd_tdb();
        let emb = eph.state_pva(Segment::EarthMoonBarycenter, jd);
        let moon = eph.state_pva(Segment::MoonGeocentric, jd);
        let earth_share = 1.0 / (1.0 + eph.earth_moon_ratio);
        let [earth, earth_velocity, _] = from_emb(&emb, &moon, -earth_share);
        Observer {
            eph,
            jd,
            moon_share: eph.earth_moon_ratio / (1.0 + eph.earth_moon_ratio),
            earth: (earth, earth_velocity),
            emb,
            moon,
            sun: eph.state_pva(Segment::Sun, jd),
            jupiter: eph.state_pva(Segment::JupiterBarycenter, jd),
            saturn: eph.state_pva(Segment::SaturnBarycenter, jd),
        }
    }

    /// Geometric geocentric Moon at the observer's instant (ICRF, with acceleration).
    pub(crate) fn moon_geocentric(&self) -> Pva {
        self.moon
    }

    /// Barycentric position, velocity and acceleration of `body` at the observer's instant.
    fn body_now(&self, body: Body) -> Pva {
        match body {
            Body::Sun => self.sun,
            Body::Jupiter => self.jupiter,
            Body::Saturn => self.saturn,
            Body::Moon => from_emb(&self.emb, &self.moon, self.moon_share),
            _ => self.eph.state_pva(segment_of(body), self.jd),
        }
    }

    fn deflector_now(&self, index: usize) -> [f64; 3] {
        match index {
            0 => self.sun[0],
            1 => self.jupiter[0],
            _ => self.saturn[0],
        }
    }
}

/// p − τv + ½τ²a: a state moved back by τ along its Taylor series.
#[inline(always)]
fn taylor_back([p, v, a]: &Pva, tau: f64) -> [f64; 3] {
    let h = 0.5 * tau * tau;
    [
        p[0] - tau * v[0] + h * a[0],
        p[1] - tau * v[1] + h * a[1],
        p[2] - tau * v[2] + h * a[2],
    ]
}

/// 2·GM_sun/c² in au (the Schwarzschild radius of the Sun).
const SUN_SCHWARZSCHILD_AU: f64 =
    2.0 * GM_SUN_M3_S2 / (299_792_458.0 * 299_792_458.0) / (AU_KM * 1000.0);

/// Light deflection by one mass (IERS Conventions / skyfield `_compute_deflection`),
/// with the unit vectors folded into reciprocal lengths.
#[inline(always)]
fn deflection(
    position: [f64; 3],
    observer_from_deflector: [f64; 3],
    reciprocal_mass: f64,
) -> [f64; 3] {
    let e = observer_from_deflector;
    let pq = [position[0] + e[0], position[1] + e[1], position[2] + e[2]];
    let pmag = norm(position);
    let qmag = norm(pq);
    let emag = norm(e);
    if pmag == 0.0 || qmag == 0.0 || emag == 0.0 {
        return [0.0; 3];
    }
    let (ip, iq, ie) = (1.0 / pmag, 1.0 / qmag, 1.0 / emag);
    let pdotq = dot(position, pq) * (ip * iq);
    let qdote = dot(pq, e) * (iq * ie);
    let edotp = dot(e, position) * (ie * ip);
    // Deflector on the line of sight (e.g. observing the deflector itself): no deflection.
    if edotp.abs() > 0.999_999_999_99 {
        return [0.0; 3];
    }
    let k = SUN_SCHWARZSCHILD_AU * ie / reciprocal_mass / (1.0 + qdote) * pmag;
    let (ke, kq) = (k * pdotq * ie, k * edotp * iq);
    [
        ke * e[0] - kq * pq[0],
        ke * e[1] - kq * pq[1],
        ke * e[2] - kq * pq[2],
    ]
}

/// Relativistic aberration (skyfield `add_aberration`).
fn aberration(position: [f64; 3], velocity: [f64; 3], light_time: f64) -> [f64; 3] {
    let p1mag = light_time * C_AU_PER_DAY;
    let vemag = norm(velocity);
    let beta = vemag / C_AU_PER_DAY;
    let cosd = dot(position, velocity) / (p1mag * vemag + 1e-300);
    let gammai = (1.0 - beta * beta).sqrt();
    let p = beta * cosd;
    let q = (1.0 + p / (1.0 + gammai)) * light_time;
    let r = 1.0 + p;
    [
        (gammai * position[0] + q * velocity[0]) / r,
        (gammai * position[1] + q * velocity[1]) / r,
        (gammai * position[2] + q * velocity[2]) / r,
    ]
}

/// Deflecting bodies and their reciprocal masses (Sun, Jupiter, Saturn systems).
const DEFLECTOR_RECIPROCAL_MASSES: [f64; 3] = [1.0, 1047.3486, 3497.898];

/// Apparent geocentric positions of `bodies` for one frame.
pub fn apparent_positions(frame: &Frame, bodies: &[Body]) -> Vec<ApparentPosition> {
    let observer = Observer::new(frame);
    bodies
        .iter()
        .map(|&body| observer.apparent(frame, body))
        .collect()
}

impl Observer {
    /// Apparent position of one body (skyfield `observe().apparent()` of date).
    pub(crate) fn apparent(&self, frame: &Frame, body: Body) -> ApparentPosition {
        let earth = self.earth.0;
        let earth_velocity = self.earth.1;
        // Light time: c·τ = |target(t − τ) − earth(t)|, with the target moved back by its
        // second-order Taylor series at t (third-order remainder ≤ 4e-11 au for Mercury,
        // i.e. < 0.00001″; ≤ 1e-12 au for the others), solved by Newton's method to
        // ~1e-16 d (skyfield iterates exact evaluations to 1e-12 d).
        let pva = self.body_now(body);
        let [_, v0, a0] = pva;
        let d0 = sub(pva[0], earth);
        let mut tau = norm(d0) / C_AU_PER_DAY;
        for _ in 0..6 {
            let d = sub(taylor_back(&pva, tau), earth);
            let r = norm(d);
            let rate = dot(d, sub(scale(a0, tau), v0)) / r;
            let step = (r - C_AU_PER_DAY * tau) / (C_AU_PER_DAY - rate);
            tau += step;
            if step.abs() <= 1e-16 {
                break;
            }
        }
        let target = taylor_back(&pva, tau);
        let target_velocity = sub(v0, scale(a0, tau));
        let mut position = sub(target, earth);
        let light_time = norm(position) / C_AU_PER_DAY;
        // The target is seen at t − τ(t), so its velocity enters scaled by (1 − dτ/dt).
        let unit = scale(position, 1.0 / norm(position));
        let light_time_rate = dot(unit, sub(target_velocity, earth_velocity))
            / C_AU_PER_DAY
            / (1.0 + dot(unit, target_velocity) / C_AU_PER_DAY);
        let relative_velocity = sub(
            scale(target_velocity, 1.0 - light_time_rate),
            earth_velocity,
        );

        // Gravitational deflection (deflector taken where it was when the light passed closest).
        let geometric = position;
        let max_light_time = norm(position) / C_AU_PER_DAY;
        let mut observer_from_deflectors = [[0.0; 3]; 3];
        for (i, &reciprocal_mass) in DEFLECTOR_RECIPROCAL_MASSES.iter().enumerate() {
            let unit = scale(position, 1.0 / norm(position));
            let deflector_from_earth = sub(self.deflector_now(i), earth);
            let closest_approach =
                (dot(unit, deflector_from_earth) / C_AU_PER_DAY).clamp(0.0, max_light_time);
            // Move only the Sun to the closest-approach time (Taylor series): the other
            // deflectors' shift over the light time changes their (µas-level) deflection
            // negligibly.
            let deflector_then = if i == 0 {
                taylor_back(&self.sun, closest_approach)
            } else {
                self.deflector_now(i)
            };
            observer_from_deflectors[i] = sub(earth, deflector_then);
            let d = deflection(position, observer_from_deflectors[i], reciprocal_mass);
            position = [position[0] + d[0], position[1] + d[1], position[2] + d[2]];
        }
        position = aberration(position, earth_velocity, light_time);

        let ecl = mat_vec(&frame.ecliptic, position);
        let equ = mat_vec(&frame.npb, position);
        let rho2 = ecl[0] * ecl[0] + ecl[1] * ecl[1];
        let longitude = atan2(ecl[1], ecl[0]);

        // Daily motion: re-run deflection and aberration a moment later along the
        // geometric motion. Their rates matter: aberration changes by several
        // arcseconds a day as the Moon moves, solar deflection quickly near
        // conjunction. Then add the precession of the equinox.
        let step = 1e-3;
        let sun_from_earth = sub(self.sun[0], earth);
        let k = GAUSS_K2 / norm(sun_from_earth).powi(3);
        let mut stepped = [
            geometric[0] + relative_velocity[0] * step,
            geometric[1] + relative_velocity[1] * step,
            geometric[2] + relative_velocity[2] * step,
        ];
        let stepped_light_time = norm(stepped) / C_AU_PER_DAY;
        for (i, &reciprocal_mass) in DEFLECTOR_RECIPROCAL_MASSES.iter().enumerate() {
            let moved = [
                observer_from_deflectors[i][0] + earth_velocity[0] * step,
                observer_from_deflectors[i][1] + earth_velocity[1] * step,
                observer_from_deflectors[i][2] + earth_velocity[2] * step,
            ];
            let d = deflection(stepped, moved, reciprocal_mass);
            stepped = [stepped[0] + d[0], stepped[1] + d[1], stepped[2] + d[2]];
        }
        let stepped = aberration(
            stepped,
            [
                earth_velocity[0] + sun_from_earth[0] * k * step,
                earth_velocity[1] + sun_from_earth[1] * k * step,
                earth_velocity[2] + sun_from_earth[2] * k * step,
            ],
            stepped_light_time,
        );
        let ecl_stepped = mat_vec(&frame.ecliptic, stepped);
        // Angle from the longitude now to the stepped one: atan(u), u = cross/dot, by
        // its series when small (|u| < 0.01: remainder < u⁹/9 ≈ 1e-19; a step of
        // 1e-3 d gives u ≈ 2e-4 for the Moon), which saves an atan2 per body.
        let cross = ecl[0] * ecl_stepped[1] - ecl[1] * ecl_stepped[0];
        let along = ecl[0] * ecl_stepped[0] + ecl[1] * ecl_stepped[1];
        let u = cross / along;
        let advance = if along > 0.0 && u.abs() < 0.01 {
            let u2 = u * u;
            u * (1.0 - u2 * (1.0 / 3.0 - u2 * (1.0 / 5.0 - u2 / 7.0)))
        } else {
            atan2(cross, along)
        };
        let speed = (advance / step + frame.precession_rate()).to_degrees();
        ApparentPosition {
            body,
            longitude: normalize_degrees(longitude.to_degrees()),
            latitude: atan2(ecl[2], rho2.sqrt()).to_degrees(),
            distance_au: norm(position),
            speed,
            retrograde: speed < 0.0,
            ra: normalize_degrees(atan2(equ[1], equ[0]).to_degrees()),
            dec: atan2(equ[2], (equ[0] * equ[0] + equ[1] * equ[1]).sqrt()).to_degrees(),
        }
    }
}
