//! Writes the SVG wheel of a chart request to stdout, e.g.
//! `cargo run -p orrery-charts --example wheel -- '{"datetime":"1990-05-17T13:30:00Z","latitude":51.5,"longitude":-0.1}' dark > wheel.svg`.

use orrery_charts::wheel::{Theme, WheelOptions, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let request = args.next().unwrap_or_else(|| {
        r#"{"datetime":"1990-05-17T13:30:00Z","latitude":51.5,"longitude":-0.1,"name":"Example"}"#
            .to_owned()
    });
    let theme: Theme = args.next().as_deref().unwrap_or("light").parse()?;
    let request = orrery_charts::ChartRequest::from_value(serde_json::from_str(&request)?, "")
        .map_err(|errors| format!("{errors:?}"))?;
    let chart = orrery_astro::compute_chart(&request.input)?;
    let options = WheelOptions {
        theme,
        title: request.name,
    };
    println!("{}", render(&chart, &options));
    Ok(())
}
