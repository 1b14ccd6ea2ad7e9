//! One full chart: 10 bodies + nodes + Lilith + angles + one house system + aspects.
//! Run: cargo bench -p orrery-astro --bench chart
//!
//! Headline: `full_chart_placidus_distinct_instants`, one chart per iteration cycling through
//! the 1,000 (instant, site) pairs of `instants.csv` (1900–2100), the list that
//! scripts/astro/compare_speed.py times the other engines on. `full_chart_placidus` repeats
//! one instant, where any per-instant cache (Swiss Ephemeris has one) answers for free.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orrery_astro::{ChartInput, compute_chart};

fn input() -> ChartInput {
    ChartInput::from_json(
        r#"{"datetime":"1990-05-17T14:30:00","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278,"house_system":"placidus"}"#,
    )
    .expect("valid input")
}

/// The committed list, parsed before timing (as the datetime string: resolving it is timed).
fn distinct_inputs() -> Vec<ChartInput> {
    include_str!("instants.csv")
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let (utc, lat, lon) = (fields.next(), fields.next(), fields.next());
            let (Some(utc), Some(lat), Some(lon)) = (utc, lat, lon) else {
                panic!("bad line {line:?}");
            };
            ChartInput::from_json(&format!(
                r#"{{"datetime":"{utc}","latitude":{lat},"longitude":{lon},"house_system":"placidus"}}"#
            ))
            .expect("valid input")
        })
        .collect()
}

fn bench_chart(c: &mut Criterion) {
    orrery_astro::warm_up();
    let inputs = distinct_inputs();
    // Decode every ephemeris block the list needs, as a long-running process would have.
    for input in &inputs {
        compute_chart(input).expect("chart");
    }
    let mut next = 0;
    c.bench_function("full_chart_placidus_distinct_instants", |b| {
        b.iter(|| {
            next = (next + 1) % inputs.len();
            compute_chart(black_box(&inputs[next]))
        })
    });
    let input = input();
    c.bench_function("full_chart_placidus", |b| {
        b.iter(|| compute_chart(black_box(&input)))
    });
    c.bench_function("full_chart_placidus_plus_json", |b| {
        b.iter(|| compute_chart(black_box(&input)).expect("chart").to_json())
    });
}

criterion_group!(benches, bench_chart);
criterion_main!(benches);
