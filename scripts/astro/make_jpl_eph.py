#!/usr/bin/env python3
"""Write a JPL binary ephemeris file (the little-endian "Linux" format read by Swiss
Ephemeris' swe_set_jpl_file) from the PyPI `de422` package, for 1800-2200 only.

The PyPI package stores each body's Chebyshev coefficients as a jplephem .npy array
(sub-interval, component, coefficient) plus the constants; the JPL binary format is a
header record, a constants record and one record per 32-day span holding
[jd_start, jd_end, then every body's coefficients in that same order]. DE422 uses
DE405's record layout (1018 doubles). Swiss Ephemeris 2.10 accepts only DE numbers it
knows the record size of, so the header says DE405 unless --denum is given.

    .venv-astro/bin/python scripts/astro/make_jpl_eph.py --out /tmp/jpl/de422_1800_2200.eph
"""
import argparse
import math
import os
import struct

import numpy as np

START_JD = 2378496.5  # 1800-01-01 TDB
END_JD = 2524593.5  # 2200-01-01 TDB
# JPL order of the 13 items in a record, with their component counts.
ITEMS = [("mercury", 3), ("venus", 3), ("earthmoon", 3), ("mars", 3), ("jupiter", 3),
         ("saturn", 3), ("uranus", 3), ("neptune", 3), ("pluto", 3), ("moon", 3),
         ("sun", 3), ("nutations", 2), ("librations", 3)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--denum", type=int, default=405)
    args = ap.parse_args()
    import de422

    src = os.path.dirname(de422.__file__)
    consts = [(k.decode(), float(v)) for k, v in np.load(os.path.join(src, "constants.npy"))]
    cdict = dict(consts)
    jalpha, jomega, jdelta = cdict["jalpha"], cdict["jomega"], cdict["jdelta"]
    total = int(round((jomega - jalpha) / jdelta))
    first = int(math.floor((START_JD - jalpha) / jdelta))
    last = int(math.floor((END_JD - jalpha) / jdelta))
    nrec = last - first + 1
    arrays, ipt, offset = [], [], 3
    for name, comps in ITEMS:
        arr = np.load(os.path.join(src, "jpl-%s.npy" % name), mmap_mode="r")
        sub = arr.shape[0] // total
        assert arr.shape[1] == comps
        ncf = arr.shape[2]
        arrays.append((arr, sub))
        ipt.append((offset, ncf, sub))
        offset += ncf * comps * sub
    ncoeff = offset - 1
    recsize = ncoeff * 8
    jpl_consts = [(k, v) for k, v in consts if k not in ("jalpha", "jomega", "jdelta")][:400]
    start = jalpha + first * jdelta
    end = jalpha + (last + 1) * jdelta
    title = ["JPL Planetary Ephemeris DE422 (from PyPI de422, labelled DE%d)" % args.denum,
             "Start Epoch: JED= %.1f" % start, "Final Epoch: JED= %.1f" % end]
    header = b"".join(t.encode().ljust(84) for t in title)
    header += b"".join(k.encode().ljust(6) for k, _ in jpl_consts).ljust(2400)
    header += struct.pack("<3d", start, end, jdelta)
    header += struct.pack("<i", len(jpl_consts))
    header += struct.pack("<2d", cdict["AU"], cdict["EMRAT"])
    header += struct.pack("<36i", *[x for p in ipt[:12] for x in p])
    header += struct.pack("<i", args.denum)
    header += struct.pack("<3i", *ipt[12])
    assert len(header) <= recsize
    with open(args.out, "wb") as f:
        f.write(header.ljust(recsize, b"\0"))
        f.write(struct.pack("<%dd" % len(jpl_consts), *[v for _, v in jpl_consts]).ljust(recsize, b"\0"))
        for r in range(first, last + 1):
            parts = [np.array([jalpha + r * jdelta, jalpha + (r + 1) * jdelta])]
            for arr, sub in arrays:
                parts.append(np.asarray(arr[r * sub:(r + 1) * sub], dtype="<f8").reshape(-1))
            rec = np.concatenate(parts)
            assert rec.size == ncoeff
            f.write(rec.astype("<f8").tobytes())
    print("wrote %s: %d records of %d doubles, JD %.1f..%.1f" % (args.out, nrec, ncoeff, start, end))


if __name__ == "__main__":
    main()
