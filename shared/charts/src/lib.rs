//! Orrery charts domain, on top of the astronomy core: chart requests and their canonical hash,
//! cached computation, saved charts, transits and synastry, natal readings and the SVG wheel.
//! The `charts` and `readings` functions (and `orrery-local`) only translate HTTP to these.

pub mod compute;
pub mod presentation;
pub mod reading;
pub mod relations;
pub mod request;
pub mod saved;
pub mod schema;
pub mod wheel;

pub use compute::{ComputedChart, compute};
pub use relations::{ChartLabel, ChartRef};
pub use request::ChartRequest;

/// The plain name a unit enum serialises to (`Sign::Taurus` → `"taurus"`).
pub(crate) fn plain<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}
