//! Orrery astronomy core: JPL DE422 ephemeris evaluated in pure Rust, apparent
//! geocentric positions (IAU 2006 precession via `sofars`, IAU 2000B nutation),
//! houses, lunar points, sidereal zodiacs and aspects. No IO; all data is embedded.
//!
//! Entry point: [`compute_chart`]. See docs/astro.md for the JSON shape,
//! the data range, the ΔT model and the measured accuracy.

pub mod aspects;
pub mod chart;
mod earth_series;
mod ephemeris;
pub mod error;
mod fast_math;
pub mod houses;
mod json;
pub mod points;
pub mod positions;
pub mod time;
pub mod zodiac;

pub use aspects::{
    Aspect, AspectConfig, AspectKind, AspectPhase, AspectPoint, aspects_between, aspects_within,
};
pub use chart::{
    Chart, ChartInput, DATA_VERSION, ENGINE_VERSION, compute_chart, resolve_instant,
    transit_positions,
};
pub use error::AstroError;
pub use houses::HouseSystem;
pub use points::PointKind;
pub use positions::{ApparentPosition, Body, Frame, apparent_positions};
pub use time::{DstChoice, TimeScales, UtcInstant};
pub use zodiac::{Ayanamsa, Sign, Zodiac, ZodiacKind};

/// Supported civil range: (first instant, first instant past the end), RFC 3339 UTC.
pub fn supported_range() -> (String, String) {
    time::supported_range_text()
}

/// Build the process-wide tables now instead of on the first chart, e.g. during a
/// Lambda cold start: the ephemeris index (header and block offsets; the Chebyshev
/// blocks themselves are decoded lazily, ≈ 1–3 µs each on first use) and the ΔT
/// table. Takes well under a millisecond (see docs/benchmarks-astro.md).
pub fn warm_up() {
    let _ = ephemeris::ephemeris();
    let _ = time::delta_t_seconds(time::J2000);
}
