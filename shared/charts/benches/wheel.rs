//! The per-request CPU of a chart response, piece by piece: parsing and hashing the request,
//! computing the chart, serialising it, and rendering the SVG wheel (target ≤ 1 ms).
//!
//! `cargo bench -p orrery-charts --bench wheel`

use criterion::{Criterion, criterion_group, criterion_main};
use orrery_charts::ChartRequest;
use orrery_charts::wheel::{Theme, WheelOptions, render};
use std::hint::black_box;

const REQUEST: &str = r#"{"datetime":"1990-05-17T14:30","timezone":"Europe/London","latitude":51.5,"longitude":-0.1,"name":"Ada"}"#;

fn bench(c: &mut Criterion) {
    orrery_astro::warm_up();
    let value: serde_json::Value = serde_json::from_str(REQUEST).expect("valid JSON");
    let request = ChartRequest::from_value(value.clone(), "").expect("a valid request");
    let chart = orrery_astro::compute_chart(&request.input).expect("a chart");
    let options = WheelOptions {
        theme: Theme::Light,
        title: Some("Ada".into()),
    };
    c.bench_function("parse + validate + canonical hash", |b| {
        b.iter(|| ChartRequest::from_value(black_box(value.clone()), ""))
    });
    c.bench_function("compute_chart", |b| {
        b.iter(|| orrery_astro::compute_chart(black_box(&request.input)))
    });
    c.bench_function("serialise chart JSON (serde_json)", |b| {
        b.iter(|| serde_json::to_string(black_box(&chart)))
    });
    c.bench_function("serialise chart JSON (Chart::to_json, as served)", |b| {
        b.iter(|| black_box(&chart).to_json())
    });
    c.bench_function("render SVG wheel", |b| {
        b.iter(|| render(black_box(&chart), black_box(&options)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
