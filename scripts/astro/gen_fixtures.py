#!/usr/bin/env python3
"""Generate accuracy fixtures for `orrery-astro` from independent oracles.

Oracles (run here only; nothing of them ships):
  * skyfield + JPL DE422 (the PyPI package, read through jplephem) for the
    apparent positions of the ten bodies;
  * ERFA (pyerfa, BSD) for Greenwich apparent sidereal time (IAU 2006/2000A);
  * pyswisseph (AGPL: imported by this script only) for houses, angles,
    lunar nodes, mean Lilith and ayanamsas; its true node reads DE422 converted to a
    JPL binary file by make_jpl_eph.py (a temporary 37 MB file), so it uses the same
    Moon as the engine.

Outputs CSV files under shared/astro/tests/fixtures/ (see the header line of
each). utc_bodies.csv starts from UTC instants of 2030-2200, after the leap-second table's
last entry, so it pins skyfield's (IERS/SOFA) convention there: TT = UTC + 32.184 s + 37 s,
UT1 = TT - Delta T. Run: .venv-astro/bin/python scripts/astro/gen_fixtures.py [--only points.csv]
"""
import math
import os
import random

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "shared", "astro", "tests", "fixtures")
START_JD = 2378497.0  # just after 1800-01-01
END_JD = 2524593.0  # just before 2200-01-01
SEED = 20261128
N_INSTANTS = 600
N_HOUSE_INSTANTS = 400
N_UTC_INSTANTS = 200
UTC_START = (2030, 1, 1)  # utc_bodies.csv: UTC instants in [2030-01-01, 2200-01-01)
UTC_END = (2200, 1, 1)

BODY_CODES = {
    "sun": 10, "moon": 301, "mercury": 199, "venus": 299, "mars": 4,
    "jupiter": 5, "saturn": 6, "uranus": 7, "neptune": 8, "pluto": 9,
}


def build_skyfield_ephemeris():
    """Expose the DE422 .npy arrays to skyfield as barycentric vector functions."""
    from jplephem.ephem import Ephemeris
    from skyfield.constants import AU_KM
    from skyfield.vectorlib import VectorFunction
    import de422

    eph = Ephemeris(de422)
    earth_share = 1.0 / (1.0 + eph.EMRAT)
    moon_share = eph.EMRAT / (1.0 + eph.EMRAT)
    npy_name = {10: "sun", 199: "mercury", 299: "venus", 4: "mars", 5: "jupiter",
                6: "saturn", 7: "uranus", 8: "neptune", 9: "pluto"}

    def state(code, tdb, tdb2):
        if code in npy_name:
            return eph.position_and_velocity(npy_name[code], tdb, tdb2)
        emb_p, emb_v = eph.position_and_velocity("earthmoon", tdb, tdb2)
        moon_p, moon_v = eph.position_and_velocity("moon", tdb, tdb2)
        if code == 399:
            return emb_p - moon_p * earth_share, emb_v - moon_v * earth_share
        return emb_p + moon_p * moon_share, emb_v + moon_v * moon_share

    class Registry(dict):
        pass

    registry = Registry()

    class NpyBody(VectorFunction):
        center = 0

        def __init__(self, code):
            self.target = code
            self.ephemeris = registry

        def _at(self, t):
            p, v = state(self.target, t.whole, t.tdb_fraction)
            return p.reshape(p.shape[:1] + t.shape) / AU_KM, v.reshape(v.shape[:1] + t.shape) / AU_KM, None, None

    for code in (10, 301, 399, 199, 299, 4, 5, 6, 7, 8, 9):
        registry[code] = NpyBody(code)
    return registry


def body_fixtures(rng, ts):
    from skyfield.framelib import ecliptic_frame

    bodies = build_skyfield_ephemeris()
    earth = bodies[399]
    jds = [2451545.0, 2378497.25, 2524592.75] + [rng.uniform(START_JD, END_JD) for _ in range(N_INSTANTS - 3)]
    rows = ["jd_tt,body,longitude,latitude,distance_au,ra,dec,speed"]
    h = 0.005  # days, for the central-difference speed
    for jd in jds:
        t = ts.tt_jd(np.array([jd - h, jd, jd + h]))
        for name, code in BODY_CODES.items():
            app = earth.at(t).observe(bodies[code]).apparent()
            lat, lon, dist = app.frame_latlon(ecliptic_frame)
            ra, dec, _ = app.radec(epoch="date")
            lons = np.unwrap(lon.radians)
            speed = math.degrees((lons[2] - lons[0]) / (2 * h))
            rows.append("%.9f,%s,%.12f,%.12f,%.15f,%.12f,%.12f,%.9f" % (
                jd, name, lon.degrees[1], lat.degrees[1], dist.au[1],
                ra._degrees[1], dec.degrees[1], speed))
    return rows


def utc_body_fixtures(rng, ts):
    """Bodies at UTC instants of 2030-2200, with skyfield's TT and UT1 and ERFA's GAST at them.

    skyfield keeps the last TAI-UTC (37 s) after its leap-second table and takes UT1 from its
    Delta T model, as IERS and SOFA do; the engine's bodies (TT), UT1 and sidereal time must
    follow. Instants are whole milliseconds so the UTC text is exact."""
    import datetime

    import erfa
    from skyfield.framelib import ecliptic_frame

    bodies = build_skyfield_ephemeris()
    earth = bodies[399]
    first = datetime.datetime(*UTC_START)
    span_ms = int((datetime.datetime(*UTC_END) - first).total_seconds() * 1000)
    fixed = [datetime.datetime(2030, 1, 1), datetime.datetime(2049, 6, 15, 12),
             datetime.datetime(2199, 12, 31, 23, 59, 59)]
    instants = fixed + [first + datetime.timedelta(milliseconds=rng.randrange(span_ms))
                        for _ in range(N_UTC_INSTANTS - len(fixed))]
    rows = ["utc,jd_tt,jd_ut1,gast_erfa_deg,body,longitude,latitude,distance_au,ra,dec,speed"]
    h = 0.005  # days, for the central-difference speed
    for when in instants:
        t = ts.utc(when.year, when.month, when.day, when.hour, when.minute,
                   when.second + when.microsecond * 1e-6)
        tt3 = ts.tt_jd(np.full(3, t.whole), t.tt_fraction + np.array([-h, 0.0, h]))
        gast = math.degrees(erfa.gst06a(t.whole, t.ut1_fraction, t.whole, t.tt_fraction))
        utc = when.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000)
        for name, code in BODY_CODES.items():
            app = earth.at(tt3).observe(bodies[code]).apparent()
            lat, lon, dist = app.frame_latlon(ecliptic_frame)
            ra, dec, _ = app.radec(epoch="date")
            lons = np.unwrap(lon.radians)
            speed = math.degrees((lons[2] - lons[0]) / (2 * h))
            rows.append("%s,%.10f,%.10f,%.12f,%s,%.12f,%.12f,%.15f,%.12f,%.12f,%.9f" % (
                utc, t.tt, t.ut1, gast, name, lon.degrees[1], lat.degrees[1], dist.au[1],
                ra._degrees[1], dec.degrees[1], speed))
    return rows


LOCATIONS = [
    # name-free (lat, lon) pairs: cities plus high-latitude and southern sites
    (51.5074, -0.1278), (40.7128, -74.006), (35.6762, 139.6503), (-33.8688, 151.2093),
    (19.4326, -99.1332), (28.6139, 77.209), (-23.5505, -46.6333), (55.7558, 37.6173),
    (1.3521, 103.8198), (-1.2921, 36.8219), (64.1466, -21.9426), (69.6492, 18.9553),
    (78.2232, 15.6267), (-54.8019, -68.303), (-77.8463, 166.6683), (61.2181, -149.9003),
    (64.8378, -147.7164), (67.8558, 20.2253), (-45.8788, 170.5028), (0.0, 0.0),
    (30.0444, 31.2357), (48.8566, 2.3522), (52.52, 13.405), (41.9028, 12.4964),
    (59.3293, 18.0686), (60.1699, 24.9384), (-34.6037, -58.3816), (-26.2041, 28.0473),
    (37.7749, -122.4194), (34.0522, -118.2437), (47.6062, -122.3321), (25.2048, 55.2708),
    (13.7563, 100.5018), (-6.2088, 106.8456), (39.9042, 116.4074), (31.2304, 121.4737),
    (-41.2865, 174.7762), (21.3069, -157.8583), (4.711, -74.0721), (-12.0464, -77.0428),
    (45.4215, -75.6972), (53.3498, -6.2603), (38.7223, -9.1393), (50.0755, 14.4378),
    (62.4540, -114.3718), (66.5, 25.7), (70.6634, 23.6821), (-60.7, -45.6),
    (-66.0, 110.5), (71.2906, -156.7886), (63.8, -22.6), (89.5, 0.0), (-89.5, 0.0),
    (12.9716, 77.5946), (-4.4419, 15.2663), (33.5731, -7.5898),
]
HOUSE_SYSTEMS = {
    "placidus": b"P", "koch": b"K", "porphyry": b"O", "regiomontanus": b"R",
    "campanus": b"C", "equal": b"A", "whole_sign": b"W", "alcabitius": b"B", "morinus": b"M",
}


def house_fixtures(rng):
    import swisseph as swe

    rows = ["jd_ut,latitude,longitude,system,armc,eps_true,status,asc,mc,vertex," + ",".join("c%d" % i for i in range(1, 13))]
    for i in range(N_HOUSE_INSTANTS):
        jd_ut = rng.uniform(START_JD + 0.01, END_JD - 0.01)
        lat, lon = LOCATIONS[i % len(LOCATIONS)]
        if i % 7 == 3:  # extra random sites, some beyond the polar circles
            lat, lon = rng.uniform(-80, 80), rng.uniform(-180, 180)
        jd_tt = jd_ut + swe.deltat(jd_ut)
        eps_true = swe.calc(jd_tt, swe.ECL_NUT)[0][0]
        for name, code in HOUSE_SYSTEMS.items():
            status = "ok"
            try:
                cusps, ascmc = swe.houses_ex(jd_ut, lat, lon, code)
            except swe.Error:
                status = "error"
                cusps, ascmc = [float("nan")] * 12, [float("nan")] * 8
            if name in ("placidus", "koch") and abs(lat) > 90 - eps_true:
                status = "polar"  # Swiss Ephemeris falls back to Porphyry here; we refuse
            rows.append("%.9f,%.6f,%.6f,%s,%.12f,%.12f,%s,%.12f,%.12f,%.12f,%s" % (
                jd_ut, lat, lon, name, ascmc[2], eps_true, status, ascmc[0], ascmc[1], ascmc[3],
                ",".join("%.12f" % c for c in cusps)))
    return rows


def sidereal_fixtures(rng, ts):
    """Greenwich apparent sidereal time from two oracles: ERFA's gst06a (IAU 2006/2000A, the
    IERS standard) and Swiss Ephemeris' swe.sidtime, which switches to its own long-term model
    before 1850 and after 2050. The engine is held to ERFA over the whole range; the SE column
    shows where, and by how much, SE's houses-from-UT depart from the standard."""
    import erfa
    import swisseph as swe

    rows = ["jd_ut,jd_tt,gast_erfa_deg,gast_se_deg"]
    for _ in range(N_HOUSE_INSTANTS):
        jd_ut = rng.uniform(START_JD + 0.01, END_JD - 0.01)
        jd_tt = ts.ut1_jd(jd_ut).tt  # skyfield's ΔT, the engine's model
        gast = math.degrees(erfa.gst06a(jd_ut, 0.0, jd_tt, 0.0))
        rows.append("%.9f,%.9f,%.12f,%.12f" % (jd_ut, jd_tt, gast, swe.sidtime(jd_ut) * 15.0))
    return rows


AYANAMSAS = {
    "lahiri": "SIDM_LAHIRI", "fagan_bradley": "SIDM_FAGAN_BRADLEY",
    "krishnamurti": "SIDM_KRISHNAMURTI", "raman": "SIDM_RAMAN",
}


def jpl_file_for_swisseph(directory):
    """DE422 in JPL binary form (make_jpl_eph.py), so Swiss Ephemeris' true node uses the
    same Moon as the engine instead of its Moshier analytic Moon (which differs by up to
    52\")."""
    import subprocess
    import sys

    path = os.path.join(directory, "de422_1800_2200.eph")
    subprocess.run([sys.executable, os.path.join(HERE, "make_jpl_eph.py"), "--out", path],
                   check=True)
    return path


def point_fixtures(rng):
    import tempfile

    import swisseph as swe

    with tempfile.TemporaryDirectory(prefix="orrery-jpl-") as workdir:
        swe.set_ephe_path(workdir)
        swe.set_jpl_file(os.path.basename(jpl_file_for_swisseph(workdir)))
        try:
            return point_rows(rng, swe)
        finally:
            swe.close()


def point_rows(rng, swe):
    def true_node(jd):
        values, flags = swe.calc(jd, swe.TRUE_NODE, swe.FLG_JPLEPH)
        assert flags & swe.FLG_JPLEPH, "Swiss Ephemeris did not use the JPL file"
        return values[0]

    cols = ["jd_tt", "mean_node", "true_node", "mean_lilith_lon", "mean_lilith_lat"]
    cols += ["ayan_%s_mean" % a for a in AYANAMSAS] + ["ayan_%s_true" % a for a in AYANAMSAS]
    rows = [",".join(cols)]
    for _ in range(N_INSTANTS):
        jd = rng.uniform(START_JD, END_JD)
        vals = [swe.calc(jd, swe.MEAN_NODE)[0][0], true_node(jd)]
        lil = swe.calc(jd, swe.MEAN_APOG)[0]
        vals += [lil[0], lil[1]]
        means, trues = [], []
        for const in AYANAMSAS.values():
            swe.set_sid_mode(getattr(swe, const))
            means.append(swe.get_ayanamsa(jd))
            trues.append(swe.get_ayanamsa_ex(jd, 0)[1])
        rows.append(",".join(["%.9f" % jd] + ["%.12f" % v for v in vals + means + trues]))
    return rows


def main():
    import argparse

    from skyfield.api import load

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="regenerate just this file, e.g. points.csv")
    args = ap.parse_args()
    ts = load.timescale(builtin=True)
    os.makedirs(OUT, exist_ok=True)
    for index, (name, fn) in enumerate((("bodies.csv", lambda r: body_fixtures(r, ts)),
                     ("houses.csv", house_fixtures),
                     ("points.csv", point_fixtures),
                     ("sidereal.csv", lambda r: sidereal_fixtures(r, ts)),
                     ("utc_bodies.csv", lambda r: utc_body_fixtures(r, ts)))):
        if args.only and name != args.only:
            continue
        rows = fn(random.Random(SEED + index))
        with open(os.path.join(OUT, name), "w") as f:
            f.write("\n".join(rows) + "\n")
        print("wrote %s (%d rows)" % (name, len(rows) - 1))


if __name__ == "__main__":
    main()
