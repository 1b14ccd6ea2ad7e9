//! How a chart is returned: content negotiation (`?format=`, `?include=`, `?theme=`, `Accept`)
//! and the one function that renders a chart — computed or saved — as JSON, JSON with the wheel
//! embedded, or the SVG wheel. Handlers only turn the result into a response.

use orrery::{ApiError, FieldError};
use orrery_astro::Chart;
use serde_json::{Map, Value};

use crate::wheel::{self, Theme, WheelOptions};

pub const SVG: &str = "image/svg+xml";
pub const JSON: &str = "application/json";

/// The representation a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Json { embed_svg: bool },
    Svg,
}

/// What the caller asked for, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub representation: Representation,
    pub theme: Theme,
}

impl Presentation {
    /// From the query's `format`, `include` and `theme` and the `Accept` header: an explicit
    /// format wins; without one, SVG only when `Accept` asks for it and not for JSON. Every bad
    /// value is reported at once.
    pub fn negotiate(
        format: Option<&str>,
        include: Option<&str>,
        theme: Option<&str>,
        accept: Option<&str>,
    ) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let wants_svg = match format {
            Some("svg") => true,
            Some("json") => false,
            Some(other) => {
                errors.push(FieldError::new(
                    "format",
                    format!("unknown format {other:?}; accepted: json, svg"),
                ));
                false
            }
            None => accept.is_some_and(|accept| accept.contains(SVG) && !accept.contains(JSON)),
        };
        let embed_svg = match include {
            None | Some("") => false,
            Some("svg") => true,
            Some(other) => {
                errors.push(FieldError::new(
                    "include",
                    format!("unknown include {other:?}; accepted: svg"),
                ));
                false
            }
        };
        let theme = match theme {
            None => Theme::Light,
            Some(text) => text.parse().unwrap_or_else(|message: String| {
                errors.push(FieldError::new("theme", message));
                Theme::Light
            }),
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(Self {
            representation: if wants_svg {
                Representation::Svg
            } else {
                Representation::Json { embed_svg }
            },
            theme,
        })
    }
}

/// A rendered representation: its content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: String,
}

/// Renders a chart as asked. `chart_json` is the chart's JSON text (served as it is, after the
/// `leading` fields); `chart` parses it only when the wheel is drawn; `title` heads the wheel.
pub fn present(
    presentation: &Presentation,
    chart_json: &str,
    chart: impl FnOnce() -> Result<Chart, ApiError>,
    mut leading: Map<String, Value>,
    title: Option<&str>,
) -> Result<Rendered, ApiError> {
    let wheel = |chart: &Chart| {
        wheel::render(
            chart,
            &WheelOptions {
                theme: presentation.theme,
                title: title.map(str::to_owned),
            },
        )
    };
    match presentation.representation {
        Representation::Svg => Ok(Rendered {
            content_type: SVG,
            body: wheel(&chart()?),
        }),
        Representation::Json { embed_svg } => {
            if embed_svg {
                leading.insert("svg".into(), wheel(&chart()?).into());
            }
            Ok(Rendered {
                content_type: JSON,
                body: crate::compute::document(leading, chart_json)?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_the_query_then_accept_and_reports_every_bad_value() {
        let svg = Presentation::negotiate(None, None, None, Some("image/svg+xml")).expect("svg");
        assert_eq!(svg.representation, Representation::Svg);
        let both =
            Presentation::negotiate(None, None, None, Some("image/svg+xml, application/json"))
                .expect("json");
        assert_eq!(
            both.representation,
            Representation::Json { embed_svg: false }
        );
        let json = Presentation::negotiate(Some("json"), Some("svg"), Some("dark"), Some(SVG))
            .expect("json with the wheel");
        assert_eq!(
            json.representation,
            Representation::Json { embed_svg: true }
        );
        assert_eq!(json.theme, Theme::Dark);
        let Err(ApiError::Validation(errors)) =
            Presentation::negotiate(Some("png"), Some("x"), Some("blue"), None)
        else {
            panic!("three bad values")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["format", "include", "theme"]);
    }
}
