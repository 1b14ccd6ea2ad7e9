//! JPL DE422 Chebyshev ephemeris, read from the embedded table.
//!
//! The table (`data/de422_1800_2200.bin`) is produced by
//! `scripts/astro/gen_table.py`; its format is described there. It is split into
//! independently decodable blocks of sub-intervals with a byte-offset index, so
//! start-up only parses the header and the index (tens of µs); a block is decoded
//! on first use (≈ 1–3 µs) and cached for the life of the process. Positions are
//! barycentric (except the Moon, which DE stores geocentric); evaluation returns
//! au and au/day; arguments are TDB Julian days.

use std::sync::OnceLock;

use crate::positions::AU_KM;

static TABLE_BYTES: &[u8] = include_bytes!("../data/de422_1800_2200.bin");

/// Bodies as stored in the DE table (order = table id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Segment {
    Sun = 0,
    MoonGeocentric = 1,
    EarthMoonBarycenter = 2,
    Mercury = 3,
    Venus = 4,
    MarsBarycenter = 5,
    JupiterBarycenter = 6,
    SaturnBarycenter = 7,
    UranusBarycenter = 8,
    NeptuneBarycenter = 9,
    PlutoBarycenter = 10,
}

const SEGMENT_COUNT: usize = 11;
/// Largest Chebyshev degree + 1 the evaluator supports (DE422 uses ≤ 14).
const MAX_COEFFICIENTS: usize = 16;
/// Sub-intervals per independently decoded block (fixed by gen_table.py's BLOCK).
const BLOCK_INTERVALS: usize = 8;

pub(crate) struct BodySeries {
    coefficient_count: usize,
    interval_days: f64,
    interval_count: usize,
    /// Quantum of the stored integers, in au.
    quantum_au: f64,
    /// Start of each block in `payload`.
    block_offsets: Vec<u32>,
    payload: &'static [u8],
    /// Decoded blocks: interval-major, then axis, then coefficient; au.
    blocks: Box<[OnceLock<Box<[f64]>>]>,
}

pub(crate) struct Ephemeris {
    pub start_jd: f64,
    #[allow(dead_code)] // checked by tests; kept to describe the table
    pub end_jd: f64,
    /// Ratio Earth mass / Moon mass (DE422 EMRAT).
    pub earth_moon_ratio: f64,
    #[allow(dead_code)] // checked by tests; kept to describe the table
    pub de_number: u32,
    series: Vec<BodySeries>,
}

/// Position (au) and velocity (au/day).
pub(crate) type State = ([f64; 3], [f64; 3]);

struct Reader {
    bytes: &'static [u8],
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> &'static [u8] {
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        slice
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4));
        u32::from_le_bytes(b)
    }
    fn f64(&mut self) -> f64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8));
        f64::from_le_bytes(b)
    }
    /// Zigzag LEB128.
    #[inline(always)]
    fn varint(&mut self) -> i64 {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.bytes[self.at];
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (shift & 63);
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        ((value >> 1) as i64) ^ -((value & 1) as i64)
    }
}

fn read_series(reader: &mut Reader, span_days: f64) -> (usize, BodySeries) {
    let id = reader.u8() as usize;
    let n = reader.u8() as usize;
    assert!(
        (2..=MAX_COEFFICIENTS).contains(&n),
        "embedded ephemeris table has an unsupported coefficient count"
    );
    let interval_count = reader.u32() as usize;
    let quantum_km = reader.f64();
    let block_count = reader.u32() as usize;
    assert_eq!(
        block_count,
        interval_count.div_ceil(BLOCK_INTERVALS),
        "embedded ephemeris table has a wrong block index"
    );
    let block_offsets = (0..block_count).map(|_| reader.u32()).collect();
    let payload_len = reader.u32() as usize;
    let payload = reader.take(payload_len);
    (
        id,
        BodySeries {
            coefficient_count: n,
            interval_days: span_days / interval_count as f64,
            interval_count,
            quantum_au: quantum_km / AU_KM,
            block_offsets,
            payload,
            blocks: (0..block_count).map(|_| OnceLock::new()).collect(),
        },
    )
}

fn read_table(bytes: &'static [u8]) -> Ephemeris {
    let mut reader = Reader { bytes, at: 0 };
    let magic = reader.take(8);
    assert_eq!(
        magic, b"ORRDE\x00\x02\x00",
        "embedded ephemeris table has a wrong magic"
    );
    let de_number = reader.u32();
    let start_jd = reader.f64();
    let end_jd = reader.f64();
    let _au_km = reader.f64();
    let earth_moon_ratio = reader.f64();
    let count = reader.u32() as usize;
    assert_eq!(
        reader.u32() as usize,
        BLOCK_INTERVALS,
        "embedded ephemeris table has an unexpected block size"
    );
    let mut slots: Vec<Option<BodySeries>> = (0..SEGMENT_COUNT).map(|_| None).collect();
    for _ in 0..count {
        let (id, series) = read_series(&mut reader, end_jd - start_jd);
        slots[id] = Some(series);
    }
    let series = slots
        .into_iter()
        .map(|s| s.expect("embedded ephemeris table lacks a body"))
        .collect();
    Ephemeris {
        start_jd,
        end_jd,
        earth_moon_ratio,
        de_number,
        series,
    }
}

/// The table index; building it (parsing the header and block offsets) happens on first use.
pub(crate) fn ephemeris() -> &'static Ephemeris {
    static EPHEMERIS: OnceLock<Ephemeris> = OnceLock::new();
    EPHEMERIS.get_or_init(|| read_table(TABLE_BYTES))
}

impl BodySeries {
    /// Decode one block: integer coefficients, continuity-predicted c1/c0 (see gen_table.py).
    fn decode_block(&self, block: usize) -> Box<[f64]> {
        let n = self.coefficient_count;
        let first = block * BLOCK_INTERVALS;
        let count = (self.interval_count - first).min(BLOCK_INTERVALS);
        let mut reader = Reader {
            bytes: self.payload,
            at: self.block_offsets[block] as usize,
        };
        let mut out = Vec::with_capacity(count * 3 * n);
        let mut previous = [[0i64; MAX_COEFFICIENTS]; 3];
        for interval in 0..count {
            for prev in previous.iter_mut() {
                let mut q = [0i64; MAX_COEFFICIENTS];
                for c in &mut q[2..n] {
                    *c = reader.varint();
                }
                let residual_c1 = reader.varint();
                let residual_c0 = reader.varint();
                if interval == 0 {
                    q[1] = residual_c1;
                    q[0] = residual_c0;
                } else {
                    // T_k(1) = 1, T_k'(1) = k²; T_k(-1) = (-1)^k, T_k'(-1) = (-1)^(k+1) k².
                    let mut end_pos = 0i64;
                    let mut end_vel = 0i64;
                    let mut vel_rest = 0i64;
                    let mut pos_rest = 0i64;
                    for k in 0..n {
                        let k2 = (k * k) as i64;
                        end_pos += prev[k];
                        end_vel += k2 * prev[k];
                        if k >= 2 {
                            if k % 2 == 1 {
                                vel_rest += k2 * q[k];
                                pos_rest -= q[k];
                            } else {
                                vel_rest -= k2 * q[k];
                                pos_rest += q[k];
                            }
                        }
                    }
                    let c1 = end_vel - vel_rest + residual_c1;
                    q[1] = c1;
                    q[0] = end_pos - (pos_rest - c1) + residual_c0;
                }
                out.extend(q[..n].iter().map(|&v| v as f64 * self.quantum_au));
                *prev = q;
            }
        }
        out.into_boxed_slice()
    }
}

impl Ephemeris {
    fn coefficients<'s>(&self, s: &'s BodySeries, index: usize) -> &'s [f64] {
        let block = index / BLOCK_INTERVALS;
        let decoded = s.blocks[block].get_or_init(|| s.decode_block(block));
        let len = 3 * s.coefficient_count;
        let start = (index % BLOCK_INTERVALS) * len;
        &decoded[start..start + len]
    }

    /// Position, velocity and acceleration of a DE segment at TDB Julian day `jd`:
    /// au, au/day, au/day². Callers keep `jd` inside [start_jd, end_jd]; outside it
    /// the nearest polynomial is extrapolated (never panics).
    pub(crate) fn state_pva(&self, segment: Segment, jd: f64) -> [[f64; 3]; 3] {
        let s = &self.series[segment as usize];
        let offset = jd - self.start_jd;
        let raw_index = offset / s.interval_days;
        // `as` truncates (= floor for positive values) and saturates; NaN → 0.
        let index = if raw_index > 0.0 {
            (raw_index as usize).min(s.interval_count - 1)
        } else {
            0
        };
        let x = 2.0 * (offset - index as f64 * s.interval_days) / s.interval_days - 1.0;
        let n = s.coefficient_count;
        let coefficients = self.coefficients(s, index);
        let (cx, rest) = coefficients.split_at(n);
        let (cy, cz) = rest.split_at(n);
        // Chebyshev T_k(x) with first and second derivatives, by the three-term recurrences.
        let mut p = [cx[0] + cx[1] * x, cy[0] + cy[1] * x, cz[0] + cz[1] * x];
        let mut v = [cx[1], cy[1], cz[1]];
        let mut a = [0.0; 3];
        let x2 = 2.0 * x;
        let (mut t0, mut t1) = (1.0, x);
        let (mut d0, mut d1) = (0.0, 1.0);
        let (mut s0, mut s1) = (0.0, 0.0);
        for k in 2..n {
            let t2 = x2 * t1 - t0;
            let d2 = 2.0 * t1 + x2 * d1 - d0;
            let s2 = 4.0 * d1 + x2 * s1 - s0;
            let (ck, yk, zk) = (cx[k], cy[k], cz[k]);
            p[0] += ck * t2;
            p[1] += yk * t2;
            p[2] += zk * t2;
            v[0] += ck * d2;
            v[1] += yk * d2;
            v[2] += zk * d2;
            a[0] += ck * s2;
            a[1] += yk * s2;
            a[2] += zk * s2;
            (t0, t1, d0, d1, s0, s1) = (t1, t2, d1, d2, s1, s2);
        }
        let scale = 2.0 / s.interval_days;
        let scale2 = scale * scale;
        [
            p,
            [v[0] * scale, v[1] * scale, v[2] * scale],
            [a[0] * scale2, a[1] * scale2, a[2] * scale2],
        ]
    }

    /// Position (au) and velocity (au/day) of a DE segment at TDB Julian day `jd`.
    #[cfg(test)]
    pub(crate) fn state(&self, segment: Segment, jd: f64) -> State {
        let [p, v, _] = self.state_pva(segment, jd);
        (p, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_index_has_expected_span() {
        let e = ephemeris();
        assert_eq!(e.de_number, 422);
        assert!(e.start_jd <= 2378496.5 && e.end_jd >= 2524593.5);
        assert!((e.earth_moon_ratio - 81.3005694).abs() < 1e-6);
    }

    #[test]
    fn every_block_decodes_to_its_length() {
        let e = ephemeris();
        for s in &e.series {
            let mut intervals = 0;
            for block in 0..s.blocks.len() {
                let decoded = s.decode_block(block);
                assert_eq!(decoded.len() % (3 * s.coefficient_count), 0);
                assert!(decoded.iter().all(|c| c.is_finite()));
                intervals += decoded.len() / (3 * s.coefficient_count);
            }
            assert_eq!(intervals, s.interval_count);
        }
    }

    #[test]
    fn intervals_join_continuously() {
        // JPL fits are continuous in position; a decoding error would show as a jump far
        // above the 10 m quantisation. Both inside a block and across a block boundary.
        let e = ephemeris();
        for seg in [
            Segment::MoonGeocentric,
            Segment::Mercury,
            Segment::EarthMoonBarycenter,
            Segment::PlutoBarycenter,
        ] {
            let s = &e.series[seg as usize];
            for interval in [1234.0, 1235.0, 8.0 * 300.0, 8.0 * 301.0 + 3.0] {
                let boundary = e.start_jd + interval * s.interval_days;
                let (a, _) = e.state(seg, boundary - 1e-9);
                let (b, _) = e.state(seg, boundary + 1e-9);
                let gap = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2))
                    .sqrt()
                    * AU_KM;
                assert!(gap < 0.1, "{seg:?} jumps {gap} km at an interval boundary");
            }
        }
    }

    #[test]
    fn earth_moon_distance_is_plausible() {
        let (moon, _) = ephemeris().state(Segment::MoonGeocentric, 2451545.0);
        let r = (moon[0].powi(2) + moon[1].powi(2) + moon[2].powi(2)).sqrt() * AU_KM;
        assert!((356_000.0..407_000.0).contains(&r), "{r}");
    }
}
