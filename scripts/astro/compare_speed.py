#!/usr/bin/env python3
"""Time a full chart in orrery-astro, pyswisseph and kerykeion on this machine, in one run.

    .venv-astro/bin/python scripts/astro/compare_speed.py

runs `cargo bench -p orrery-astro --bench chart` first (skip with --no-bench to reuse the last
criterion results), then times the Python libraries, so all figures come from one run.

Headline: charts over the same N distinct (instant, site) pairs for every engine, from the
committed list shared/astro/benches/instants.csv (fixed seed, 1900-2100 UTC, 24 sites;
`--write-instants` regenerates it byte for byte). Swiss Ephemeris keeps the last instant's
positions, nutation and obliquity and answers a repeat of the same Julian day from them, so a
benchmark at one instant times that cache rather than the ephemeris. The single-instant
figures (1990-05-17 13:30 UTC, London) are printed too, for comparison with older runs.

pyswisseph: 10 bodies (calc_ut with speed) + mean node + true node + mean apogee + Placidus
houses, Moshier ephemeris (no data files); Julian days are computed before timing.
kerykeion: AstrologicalSubjectFactory.from_birth_data(online=False, explicit lat/lng,
tz "UTC") + AspectsFactory.single_chart_aspects. orrery-astro: criterion medians of
`full_chart_placidus_distinct_instants` (one chart per iteration, cycling through the list)
and `full_chart_placidus`. pyswisseph and kerykeion are AGPL: timed here only, never shipped.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
INSTANTS = os.path.join(REPO, "shared", "astro", "benches", "instants.csv")
SEED = 20261201
N_INSTANTS = 1000
SITES = [  # (latitude, longitude), all inside the polar limit of Placidus
    (51.5074, -0.1278), (40.7128, -74.006), (35.6762, 139.6503), (-33.8688, 151.2093),
    (19.4326, -99.1332), (28.6139, 77.209), (-23.5505, -46.6333), (55.7558, 37.6173),
    (1.3521, 103.8198), (-1.2921, 36.8219), (64.1466, -21.9426), (30.0444, 31.2357),
    (48.8566, 2.3522), (52.52, 13.405), (59.3293, 18.0686), (-34.6037, -58.3816),
    (-26.2041, 28.0473), (37.7749, -122.4194), (25.2048, 55.2708), (39.9042, 116.4074),
    (-41.2865, 174.7762), (21.3069, -157.8583), (-12.0464, -77.0428), (61.2181, -149.9003),
]
SITE = dict(lat=51.5074, lng=-0.1278)
WHEN_UTC = (1990, 5, 17, 13, 30)  # benches/chart.rs: 14:30 Europe/London


def write_instants():
    """Whole-minute UTC instants, uniform over 1900-01-01..2100-01-01, each at a random site."""
    import datetime

    rng = random.Random(SEED)
    first = datetime.datetime(1900, 1, 1)
    minutes = int((datetime.datetime(2100, 1, 1) - first).total_seconds() // 60)
    rows = ["utc,latitude,longitude"]
    for _ in range(N_INSTANTS):
        when = first + datetime.timedelta(minutes=rng.randrange(minutes))
        lat, lng = rng.choice(SITES)
        rows.append("%s,%s,%s" % (when.strftime("%Y-%m-%dT%H:%M:00Z"), lat, lng))
    with open(INSTANTS, "w") as f:
        f.write("\n".join(rows) + "\n")
    print("wrote %s (%d instants)" % (INSTANTS, N_INSTANTS))


def read_instants():
    """[(year, month, day, hour, minute, lat, lng)] from the committed list."""
    out = []
    with open(INSTANTS) as f:
        next(f)
        for line in f:
            utc, lat, lng = line.strip().split(",")
            date, clock = utc.rstrip("Z").split("T")
            y, m, d = (int(x) for x in date.split("-"))
            hh, mm, _ = (int(x) for x in clock.split(":"))
            out.append((y, m, d, hh, mm, float(lat), float(lng)))
    return out


def median_per_chart(run, charts, repeat=7, min_time=0.4):
    """Median over `repeat` batches of the mean time per chart, in µs. `run()` computes
    `charts` charts; a batch repeats it until it lasts about min_time / 4."""
    run()  # warm-up pass (imports, first-touch)
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        if time.perf_counter() - t0 > min_time / 4:
            break
        n *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            run()
        samples.append((time.perf_counter() - t0) / (n * charts) * 1e6)
    return statistics.median(samples)


def swisseph_charts(instants):
    import swisseph as swe

    jobs = [(swe.julday(y, m, d, hh + mm / 60.0), lat, lng) for y, m, d, hh, mm, lat, lng in instants]
    bodies = [swe.SUN, swe.MOON, swe.MERCURY, swe.VENUS, swe.MARS, swe.JUPITER,
              swe.SATURN, swe.URANUS, swe.NEPTUNE, swe.PLUTO]
    flags = swe.FLG_SPEED | swe.FLG_MOSEPH

    def chart(jd, lat, lng):
        out = [swe.calc_ut(jd, b, flags)[0] for b in bodies]
        out.append(swe.calc_ut(jd, swe.MEAN_NODE, flags)[0])
        out.append(swe.calc_ut(jd, swe.TRUE_NODE, flags)[0])
        out.append(swe.calc_ut(jd, swe.MEAN_APOG, flags)[0])
        out.append(swe.houses_ex(jd, lat, lng, b"P"))
        return out

    def run():
        for job in jobs:
            chart(*job)

    return run


def kerykeion_charts(instants):
    from kerykeion import AstrologicalSubjectFactory
    from kerykeion.aspects import AspectsFactory

    def chart(y, m, d, hh, mm, lat, lng):
        subject = AstrologicalSubjectFactory.from_birth_data(
            "bench", y, m, d, hh, mm, lng=lng, lat=lat, tz_str="UTC",
            online=False, suppress_geonames_warning=True)
        return AspectsFactory.single_chart_aspects(subject)

    def run():
        for job in instants:
            chart(*job)

    return run


def criterion_median_us(target_dir, name):
    path = os.path.join(target_dir, "criterion", name, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")))
    ap.add_argument("--no-bench", action="store_true", help="reuse the last criterion results")
    ap.add_argument("--write-instants", action="store_true", help="regenerate benches/instants.csv and exit")
    args = ap.parse_args()
    if args.write_instants:
        write_instants()
        return
    if not args.no_bench:
        subprocess.run(["cargo", "bench", "-p", "orrery-astro", "--bench", "chart", "--",
                        "^full_chart_placidus(_distinct_instants)?$"],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    instants = read_instants()
    one = [WHEN_UTC + (SITE["lat"], SITE["lng"])]
    rows = [
        ("orrery-astro (criterion median, full chart)",
         criterion_median_us(args.target_dir, "full_chart_placidus_distinct_instants"),
         criterion_median_us(args.target_dir, "full_chart_placidus")),
        ("pyswisseph 2.10 (10 bodies + nodes + Lilith + Placidus, Moshier)",
         median_per_chart(swisseph_charts(instants), len(instants)),
         median_per_chart(swisseph_charts(one), 1)),
        ("kerykeion 5 (natal subject + aspects, offline)",
         median_per_chart(kerykeion_charts(instants), len(instants), repeat=5),
         median_per_chart(kerykeion_charts(one), 1, repeat=5)),
    ]
    rust_many, rust_one = rows[0][1], rows[0][2]

    def ratio(us, base):
        return ("%.2f" % (us / base)) if (us and base) else "n/a"

    def us_text(us):
        return ("%.1f µs" % us) if us else "n/a"

    print("%d distinct instants (1900-2100 UTC, %d sites) vs one instant repeated" % (len(instants), len(SITES)))
    print()
    print("| engine | distinct instants: median per chart | ÷ orrery-astro | one instant repeated | ÷ orrery-astro |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, many, single in rows:
        print("| %s | %s | %s | %s | %s |" % (name, us_text(many), ratio(many, rust_many),
                                            us_text(single), ratio(single, rust_one)))


if __name__ == "__main__":
    main()
