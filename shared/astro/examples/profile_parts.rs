//! Rough per-stage timing (release), plus the one-time start-up cost and the cost of a
//! chart whose ephemeris blocks are not decoded yet:
//! CARGO_TARGET_DIR=/work/astro-target cargo run --release -p orrery-astro --example profile_parts
use std::hint::black_box;
use std::time::Instant;

use orrery_astro::{Body, ChartInput, Frame, TimeScales, apparent_positions, compute_chart};

fn time<F: FnMut()>(label: &str, n: u32, mut f: F) {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    println!(
        "{label:<34} {:>9.2} µs",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

fn chart_input(datetime: &str) -> ChartInput {
    ChartInput::from_json(&format!(
        r#"{{"datetime":"{datetime}","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278}}"#
    ))
    .expect("valid input")
}

fn main() {
    let start = Instant::now();
    orrery_astro::warm_up();
    println!(
        "{:<34} {:>9.3} ms",
        "warm_up (index + ΔT table)",
        start.elapsed().as_secs_f64() * 1e3
    );

    // First charts at dates whose blocks nobody decoded yet (one per ~2 years, so every
    // body needs a fresh block), then the same charts again with the blocks cached.
    let cold: Vec<ChartInput> = (0..150)
        .map(|i| chart_input(&format!("{}-03-{:02}T12:00", 1801 + 2 * i, 1 + i % 28)))
        .collect();
    let start = Instant::now();
    for input in &cold {
        black_box(compute_chart(input).ok());
    }
    let cold_us = start.elapsed().as_secs_f64() * 1e6 / cold.len() as f64;
    let start = Instant::now();
    for input in &cold {
        black_box(compute_chart(input).ok());
    }
    let warm_us = start.elapsed().as_secs_f64() * 1e6 / cold.len() as f64;
    println!("{:<34} {cold_us:>9.2} µs", "chart, blocks not yet decoded");
    println!("{:<34} {warm_us:>9.2} µs", "same charts, blocks cached");

    let t = TimeScales::from_tt(2448029.06);
    let frame = Frame::new(t);
    let n = 20_000;
    time("frame (pfw06 + IAU 2000B series)", n, || {
        black_box(Frame::new(black_box(t)));
    });
    time("sofars nut06a (2000A, not used)", n, || {
        black_box(sofars::pnp::nut06a(
            2451545.0,
            black_box(t.jd_tt) - 2451545.0,
        ));
    });
    time("10 apparent bodies", n, || {
        black_box(apparent_positions(black_box(&frame), &Body::ALL));
    });
    time("houses placidus (incl. ARMC)", n, || {
        black_box(
            orrery_astro::houses::houses(&frame, orrery_astro::HouseSystem::Placidus, 51.5, -0.12)
                .ok(),
        );
    });
    time("true node", n, || {
        black_box(orrery_astro::points::true_node(&frame));
    });
    time("time resolution", n, || {
        black_box(
            orrery_astro::resolve_instant("1990-05-17T14:30:00", Some("Europe/London"), None, None)
                .ok(),
        );
    });
    let input = chart_input("1990-05-17T14:30:00");
    time("full chart", n, || {
        black_box(compute_chart(black_box(&input)).ok());
    });
}
