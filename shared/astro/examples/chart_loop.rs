//! Runs `compute_chart` N times (default 2000) after timing the table decode; for
//! instruction-count profiling:
//! valgrind --tool=callgrind target/release/examples/chart_loop 2000
use std::hint::black_box;
use std::time::Instant;

use orrery_astro::{ChartInput, compute_chart};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let start = Instant::now();
    orrery_astro::warm_up();
    println!(
        "warm_up (table decode): {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let input = ChartInput::from_json(
        r#"{"datetime":"1990-05-17T14:30:00","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278,"house_system":"placidus"}"#,
    )
    .expect("valid input");
    let start = Instant::now();
    for _ in 0..n {
        black_box(compute_chart(black_box(&input)).ok());
    }
    println!(
        "full chart: {:.2} µs",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}
