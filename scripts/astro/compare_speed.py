#!/usr/bin/env python3
"""Time one chart in pyswisseph and kerykeion on this machine and compare with
the Rust engine's criterion median (read from target/criterion or passed in).

    /work/astro-venv/bin/python scripts/astro/compare_speed.py

runs `cargo bench -p orrery-astro --bench chart` first (skip with --no-bench to reuse the last
criterion result), then times the Python libraries, so all figures come from one run.

pyswisseph: 10 bodies (calc_ut with speed) + mean node + true node + mean apogee
+ Placidus houses, Moshier ephemeris (no data files), same instant and site as
benches/chart.rs. kerykeion: AstrologicalSubjectFactory.from_birth_data(online=False,
explicit lat/lng/tz) + AspectsFactory.single_chart_aspects. Both AGPL; timed
here only, never shipped.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SITE = dict(lat=51.5074, lng=-0.1278, tz="Europe/London")
WHEN = dict(year=1990, month=5, day=17, hour=14, minute=30)  # local; 13:30 UTC


def median_per_call(fn, repeat=7, min_time=0.4):
    """Median over `repeat` batches of the mean time per call, in µs."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 > min_time / 4:
            break
        n *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def swisseph_chart():
    import swisseph as swe

    jd = swe.julday(1990, 5, 17, 13.5)
    bodies = [swe.SUN, swe.MOON, swe.MERCURY, swe.VENUS, swe.MARS, swe.JUPITER,
              swe.SATURN, swe.URANUS, swe.NEPTUNE, swe.PLUTO]

    def run():
        flags = swe.FLG_SPEED | swe.FLG_MOSEPH
        out = [swe.calc_ut(jd, b, flags)[0] for b in bodies]
        out.append(swe.calc_ut(jd, swe.MEAN_NODE, flags)[0])
        out.append(swe.calc_ut(jd, swe.TRUE_NODE, flags)[0])
        out.append(swe.calc_ut(jd, swe.MEAN_APOG, flags)[0])
        out.append(swe.houses_ex(jd, SITE["lat"], SITE["lng"], b"P"))
        return out

    return run


def kerykeion_chart():
    from kerykeion import AstrologicalSubjectFactory
    from kerykeion.aspects import AspectsFactory

    def run():
        subject = AstrologicalSubjectFactory.from_birth_data(
            "bench", **WHEN, lng=SITE["lng"], lat=SITE["lat"], tz_str=SITE["tz"],
            online=False, suppress_geonames_warning=True)
        return AspectsFactory.single_chart_aspects(subject)

    return run


def rust_median_us(target_dir):
    path = os.path.join(target_dir, "criterion", "full_chart_placidus", "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1000.0


def main():
    ap = argparse.ArgumentParser()
    repo = os.path.normpath(os.path.join(HERE, "..", ".."))
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(repo, "target")))
    ap.add_argument("--rust-us", type=float, help="override the Rust median (µs)")
    ap.add_argument("--no-bench", action="store_true", help="reuse the last criterion result")
    args = ap.parse_args()
    if not (args.no_bench or args.rust_us):
        subprocess.run(["cargo", "bench", "-p", "orrery-astro", "--bench", "chart", "--", "full_chart_placidus$"],
                       cwd=repo, check=True, stdout=subprocess.DEVNULL)
    rust = args.rust_us or rust_median_us(args.target_dir)
    rows = [("pyswisseph 2.10 (10 bodies + nodes + Lilith + Placidus)", median_per_call(swisseph_chart())),
            ("kerykeion 5 (natal subject + aspects, offline)", median_per_call(kerykeion_chart(), repeat=5))]
    print("| engine | median per chart | time ÷ orrery-astro time |")
    print("| --- | ---: | ---: |")
    if rust:
        print("| orrery-astro (criterion median, full chart) | %.1f µs | 1.00 |" % rust)
    for name, us in rows:
        ratio = ("%.2f" % (us / rust)) if rust else "n/a"
        print("| %s | %.1f µs | %s |" % (name, us, ratio))


if __name__ == "__main__":
    main()
