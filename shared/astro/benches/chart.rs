//! One full chart: 10 bodies + nodes + Lilith + angles + one house system + aspects.
//! Run: cargo bench -p orrery-astro --bench chart (target: full_chart_placidus ≤ 15 µs median)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orrery_astro::{ChartInput, compute_chart};

fn input() -> ChartInput {
    ChartInput::from_json(
        r#"{"datetime":"1990-05-17T14:30:00","timezone":"Europe/London","latitude":51.5074,"longitude":-0.1278,"house_system":"placidus"}"#,
    )
    .expect("valid input")
}

fn bench_chart(c: &mut Criterion) {
    orrery_astro::warm_up();
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
