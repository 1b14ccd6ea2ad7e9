//! Earth orientation series evaluated without per-term trigonometry: IAU 2000B
//! nutation, the IAU 2006 GMST and the equation of the equinoxes' complementary
//! terms. Each series term is a sine/cosine of an integer combination of the five
//! Delaunay arguments; the sines and cosines of the multiples of each argument, and
//! of the (l, l′) and (F, D) combinations, are built once by complex multiplication,
//! so a term costs two complex multiplications instead of an `fmod` and two
//! transcendental calls (as in SOFA/`sofars`).
//! Coefficients are those of SOFA's `nut00b` and `eect00` (IAU 2000B: McCarthy &
//! Luzum 2003; IERS Conventions 2003), results agree with `sofars` to < 1 µas
//! (unit-tested).

use std::f64::consts::TAU;

use crate::time::J2000;

/// Arcseconds to radians.
const DAS2R: f64 = std::f64::consts::PI / 648_000.0;
/// Arcseconds in a full circle.
const TURNAS: f64 = 1_296_000.0;
/// 0.1 µas to radians.
const U2R: f64 = DAS2R / 1e7;
/// Fixed offsets standing in for the planetary nutation (IAU 2000B), radians.
const DPPLAN: f64 = -0.135e-3 * DAS2R;
const DEPLAN: f64 = 0.388e-3 * DAS2R;
/// Largest multiple of a Delaunay argument used by the series.
const MAX_MULTIPLE: usize = 4;

/// IAU 2000B luni-solar terms: multiples of (l, l′, F, D, Ω) and
/// (ψ sin, ψ t·sin, ψ cos, ε cos, ε t·cos, ε sin), units 0.1 µas.
#[rustfmt::skip]
const NUTATION_2000B: [([i8; 5], [f64; 6]); 77] = [
    ([0, 0, 0, 0, 1], [-172064161.0, -174666.0, 33386.0, 92052331.0, 9086.0, 15377.0]),
    ([0, 0, 2, -2, 2], [-13170906.0, -1675.0, -13696.0, 5730336.0, -3015.0, -4587.0]),
    ([0, 0, 2, 0, 2], [-2276413.0, -234.0, 2796.0, 978459.0, -485.0, 1374.0]),
    ([0, 0, 0, 0, 2], [2074554.0, 207.0, -698.0, -897492.0, 470.0, -291.0]),
    ([0, 1, 0, 0, 0], [1475877.0, -3633.0, 11817.0, 73871.0, -184.0, -1924.0]),
    ([0, 1, 2, -2, 2], [-516821.0, 1226.0, -524.0, 224386.0, -677.0, -174.0]),
    ([1, 0, 0, 0, 0], [711159.0, 73.0, -872.0, -6750.0, 0.0, 358.0]),
    ([0, 0, 2, 0, 1], [-387298.0, -367.0, 380.0, 200728.0, 18.0, 318.0]),
    ([1, 0, 2, 0, 2], [-301461.0, -36.0, 816.0, 129025.0, -63.0, 367.0]),
    ([0, -1, 2, -2, 2], [215829.0, -494.0, 111.0, -95929.0, 299.0, 132.0]),
    ([0, 0, 2, -2, 1], [128227.0, 137.0, 181.0, -68982.0, -9.0, 39.0]),
    ([-1, 0, 2, 0, 2], [123457.0, 11.0, 19.0, -53311.0, 32.0, -4.0]),
    ([-1, 0, 0, 2, 0], [156994.0, 10.0, -168.0, -1235.0, 0.0, 82.0]),
    ([1, 0, 0, 0, 1], [63110.0, 63.0, 27.0, -33228.0, 0.0, -9.0]),
    ([-1, 0, 0, 0, 1], [-57976.0, -63.0, -189.0, 31429.0, 0.0, -75.0]),
    ([-1, 0, 2, 2, 2], [-59641.0, -11.0, 149.0, 25543.0, -11.0, 66.0]),
    ([1, 0, 2, 0, 1], [-51613.0, -42.0, 129.0, 26366.0, 0.0, 78.0]),
    ([-2, 0, 2, 0, 1], [45893.0, 50.0, 31.0, -24236.0, -10.0, 20.0]),
    ([0, 0, 0, 2, 0], [63384.0, 11.0, -150.0, -1220.0, 0.0, 29.0]),
    ([0, 0, 2, 2, 2], [-38571.0, -1.0, 158.0, 16452.0, -11.0, 68.0]),
    ([0, -2, 2, -2, 2], [32481.0, 0.0, 0.0, -13870.0, 0.0, 0.0]),
    ([-2, 0, 0, 2, 0], [-47722.0, 0.0, -18.0, 477.0, 0.0, -25.0]),
    ([2, 0, 2, 0, 2], [-31046.0, -1.0, 131.0, 13238.0, -11.0, 59.0]),
    ([1, 0, 2, -2, 2], [28593.0, 0.0, -1.0, -12338.0, 10.0, -3.0]),
    ([-1, 0, 2, 0, 1], [20441.0, 21.0, 10.0, -10758.0, 0.0, -3.0]),
    ([2, 0, 0, 0, 0], [29243.0, 0.0, -74.0, -609.0, 0.0, 13.0]),
    ([0, 0, 2, 0, 0], [25887.0, 0.0, -66.0, -550.0, 0.0, 11.0]),
    ([0, 1, 0, 0, 1], [-14053.0, -25.0, 79.0, 8551.0, -2.0, -45.0]),
    ([-1, 0, 0, 2, 1], [15164.0, 10.0, 11.0, -8001.0, 0.0, -1.0]),
    ([0, 2, 2, -2, 2], [-15794.0, 72.0, -16.0, 6850.0, -42.0, -5.0]),
    ([0, 0, -2, 2, 0], [21783.0, 0.0, 13.0, -167.0, 0.0, 13.0]),
    ([1, 0, 0, -2, 1], [-12873.0, -10.0, -37.0, 6953.0, 0.0, -14.0]),
    ([0, -1, 0, 0, 1], [-12654.0, 11.0, 63.0, 6415.0, 0.0, 26.0]),
    ([-1, 0, 2, 2, 1], [-10204.0, 0.0, 25.0, 5222.0, 0.0, 15.0]),
    ([0, 2, 0, 0, 0], [16707.0, -85.0, -10.0, 168.0, -1.0, 10.0]),
    ([1, 0, 2, 2, 2], [-7691.0, 0.0, 44.0, 3268.0, 0.0, 19.0]),
    ([-2, 0, 2, 0, 0], [-11024.0, 0.0, -14.0, 104.0, 0.0, 2.0]),
    ([0, 1, 2, 0, 2], [7566.0, -21.0, -11.0, -3250.0, 0.0, -5.0]),
    ([0, 0, 2, 2, 1], [-6637.0, -11.0, 25.0, 3353.0, 0.0, 14.0]),
    ([0, -1, 2, 0, 2], [-7141.0, 21.0, 8.0, 3070.0, 0.0, 4.0]),
    ([0, 0, 0, 2, 1], [-6302.0, -11.0, 2.0, 3272.0, 0.0, 4.0]),
    ([1, 0, 2, -2, 1], [5800.0, 10.0, 2.0, -3045.0, 0.0, -1.0]),
    ([2, 0, 2, -2, 2], [6443.0, 0.0, -7.0, -2768.0, 0.0, -4.0]),
    ([-2, 0, 0, 2, 1], [-5774.0, -11.0, -15.0, 3041.0, 0.0, -5.0]),
    ([2, 0, 2, 0, 1], [-5350.0, 0.0, 21.0, 2695.0, 0.0, 12.0]),
    ([0, -1, 2, -2, 1], [-4752.0, -11.0, -3.0, 2719.0, 0.0, -3.0]),
    ([0, 0, 0, -2, 1], [-4940.0, -11.0, -21.0, 2720.0, 0.0, -9.0]),
    ([-1, -1, 0, 2, 0], [7350.0, 0.0, -8.0, -51.0, 0.0, 4.0]),
    ([2, 0, 0, -2, 1], [4065.0, 0.0, 6.0, -2206.0, 0.0, 1.0]),
    ([1, 0, 0, 2, 0], [6579.0, 0.0, -24.0, -199.0, 0.0, 2.0]),
    ([0, 1, 2, -2, 1], [3579.0, 0.0, 5.0, -1900.0, 0.0, 1.0]),
    ([1, -1, 0, 0, 0], [4725.0, 0.0, -6.0, -41.0, 0.0, 3.0]),
    ([-2, 0, 2, 0, 2], [-3075.0, 0.0, -2.0, 1313.0, 0.0, -1.0]),
    ([3, 0, 2, 0, 2], [-2904.0, 0.0, 15.0, 1233.0, 0.0, 7.0]),
    ([0, -1, 0, 2, 0], [4348.0, 0.0, -10.0, -81.0, 0.0, 2.0]),
    ([1, -1, 2, 0, 2], [-2878.0, 0.0, 8.0, 1232.0, 0.0, 4.0]),
    ([0, 0, 0, 1, 0], [-4230.0, 0.0, 5.0, -20.0, 0.0, -2.0]),
    ([-1, -1, 2, 2, 2], [-2819.0, 0.0, 7.0, 1207.0, 0.0, 3.0]),
    ([-1, 0, 2, 0, 0], [-4056.0, 0.0, 5.0, 40.0, 0.0, -2.0]),
    ([0, -1, 2, 2, 2], [-2647.0, 0.0, 11.0, 1129.0, 0.0, 5.0]),
    ([-2, 0, 0, 0, 1], [-2294.0, 0.0, -10.0, 1266.0, 0.0, -4.0]),
    ([1, 1, 2, 0, 2], [2481.0, 0.0, -7.0, -1062.0, 0.0, -3.0]),
    ([2, 0, 0, 0, 1], [2179.0, 0.0, -2.0, -1129.0, 0.0, -2.0]),
    ([-1, 1, 0, 1, 0], [3276.0, 0.0, 1.0, -9.0, 0.0, 0.0]),
    ([1, 1, 0, 0, 0], [-3389.0, 0.0, 5.0, 35.0, 0.0, -2.0]),
    ([1, 0, 2, 0, 0], [3339.0, 0.0, -13.0, -107.0, 0.0, 1.0]),
    ([-1, 0, 2, -2, 1], [-1987.0, 0.0, -6.0, 1073.0, 0.0, -2.0]),
    ([1, 0, 0, 0, 2], [-1981.0, 0.0, 0.0, 854.0, 0.0, 0.0]),
    ([-1, 0, 0, 1, 0], [4026.0, 0.0, -353.0, -553.0, 0.0, -139.0]),
    ([0, 0, 2, 1, 2], [1660.0, 0.0, -5.0, -710.0, 0.0, -2.0]),
    ([-1, 0, 2, 4, 2], [-1521.0, 0.0, 9.0, 647.0, 0.0, 4.0]),
    ([-1, 1, 0, 1, 1], [1314.0, 0.0, 0.0, -700.0, 0.0, 0.0]),
    ([0, -2, 2, -2, 1], [-1283.0, 0.0, 0.0, 672.0, 0.0, 0.0]),
    ([1, 0, 2, 2, 1], [-1331.0, 0.0, 8.0, 663.0, 0.0, 4.0]),
    ([-2, 0, 2, 2, 2], [1383.0, 0.0, -2.0, -594.0, 0.0, -2.0]),
    ([-1, 0, 0, 0, 2], [1405.0, 0.0, 4.0, -610.0, 0.0, 2.0]),
    ([1, 1, 2, -2, 2], [1290.0, 0.0, 0.0, -556.0, 0.0, 0.0]),
];

/// Equation-of-the-equinoxes complementary terms of order t⁰ (IERS 2003, SOFA
/// `eect00`) with Delaunay arguments only: multiples of (l, l′, F, D, Ω) and
/// (sin, cos) coefficients in arcseconds. The two terms with planetary
/// arguments (amplitudes 0.27 and 0.11 µas) are left out.
#[rustfmt::skip]
const EECT_T0: [([i8; 5], [f64; 2]); 31] = [
    ([0, 0, 0, 0, 1], [2640.96e-6, -0.39e-6]),
    ([0, 0, 0, 0, 2], [63.52e-6, -0.02e-6]),
    ([0, 0, 2, -2, 3], [11.75e-6, 0.01e-6]),
    ([0, 0, 2, -2, 1], [11.21e-6, 0.01e-6]),
    ([0, 0, 2, -2, 2], [-4.55e-6, 0.00e-6]),
    ([0, 0, 2, 0, 3], [2.02e-6, 0.00e-6]),
    ([0, 0, 2, 0, 1], [1.98e-6, 0.00e-6]),
    ([0, 0, 0, 0, 3], [-1.72e-6, 0.00e-6]),
    ([0, 1, 0, 0, 1], [-1.41e-6, -0.01e-6]),
    ([0, 1, 0, 0, -1], [-1.26e-6, -0.01e-6]),
    ([1, 0, 0, 0, -1], [-0.63e-6, 0.00e-6]),
    ([1, 0, 0, 0, 1], [-0.63e-6, 0.00e-6]),
    ([0, 1, 2, -2, 3], [0.46e-6, 0.00e-6]),
    ([0, 1, 2, -2, 1], [0.45e-6, 0.00e-6]),
    ([0, 0, 4, -4, 4], [0.36e-6, 0.00e-6]),
    ([0, 0, 2, 0, 0], [0.32e-6, 0.00e-6]),
    ([0, 0, 2, 0, 2], [0.28e-6, 0.00e-6]),
    ([1, 0, 2, 0, 3], [0.27e-6, 0.00e-6]),
    ([1, 0, 2, 0, 1], [0.26e-6, 0.00e-6]),
    ([0, 0, 2, -2, 0], [-0.21e-6, 0.00e-6]),
    ([0, 1, -2, 2, -3], [0.19e-6, 0.00e-6]),
    ([0, 1, -2, 2, -1], [0.18e-6, 0.00e-6]),
    ([0, 0, 0, 2, 0], [0.15e-6, 0.00e-6]),
    ([2, 0, -2, 0, -1], [-0.14e-6, 0.00e-6]),
    ([1, 0, 0, -2, 1], [0.14e-6, 0.00e-6]),
    ([0, 1, 2, -2, 2], [-0.14e-6, 0.00e-6]),
    ([1, 0, 0, -2, -1], [0.14e-6, 0.00e-6]),
    ([0, 0, 4, -2, 4], [0.13e-6, 0.00e-6]),
    ([0, 0, 2, -2, 4], [-0.11e-6, 0.00e-6]),
    ([1, 0, -2, 0, -3], [0.11e-6, 0.00e-6]),
    ([1, 0, -2, 0, -1], [0.11e-6, 0.00e-6]),
];
/// The single t¹ term: −0.87 µas · t · sin Ω.
const EECT_T1_SIN_OMEGA: f64 = -0.87e-6;

/// Angle in arcseconds reduced to [0, 1 296 000).
fn reduce_arcsec(x: f64) -> f64 {
    x - TURNAS * (x / TURNAS).floor()
}

/// Radians reduced to [0, 2π) (SOFA `anp`).
pub(crate) fn anp(x: f64) -> f64 {
    let r = x - TAU * (x / TAU).floor();
    if r >= TAU { 0.0 } else { r }
}

/// Ranges of the multiples of l, l′, F, D used by the two series (checked at compile time).
const L_RANGE: (i8, usize) = (-2, 6);
const LP_RANGE: (i8, usize) = (-2, 5);
const F_RANGE: (i8, usize) = (-2, 7);
const D_RANGE: (i8, usize) = (-4, 9);

/// Per term: indices into the (l, l′) table, the (F, D) table and the Ω row.
const fn term_indices<const N: usize>(multiples: [[i8; 5]; N]) -> [[u8; 3]; N] {
    let mut out = [[0u8; 3]; N];
    let mut i = 0;
    while i < N {
        let [l, lp, f, d, om] = multiples[i];
        let (l, lp) = ((l - L_RANGE.0) as usize, (lp - LP_RANGE.0) as usize);
        let (f, d) = ((f - F_RANGE.0) as usize, (d - D_RANGE.0) as usize);
        assert!(l < L_RANGE.1 && lp < LP_RANGE.1 && f < F_RANGE.1 && d < D_RANGE.1);
        assert!(om.unsigned_abs() as usize <= MAX_MULTIPLE);
        out[i] = [
            (l * LP_RANGE.1 + lp) as u8,
            (f * D_RANGE.1 + d) as u8,
            (om + MAX_MULTIPLE as i8) as u8,
        ];
        i += 1;
    }
    out
}

const fn multiples_of<const N: usize, const K: usize>(
    terms: &[([i8; 5], [f64; K]); N],
) -> [[i8; 5]; N] {
    let mut out = [[0i8; 5]; N];
    let mut i = 0;
    while i < N {
        out[i] = terms[i].0;
        i += 1;
    }
    out
}

const NUTATION_INDICES: [[u8; 3]; 77] = term_indices(multiples_of(&NUTATION_2000B));
const EECT_INDICES: [[u8; 3]; 31] = term_indices(multiples_of(&EECT_T0));

type Complex = (f64, f64);

#[inline(always)]
fn mul((a, b): Complex, (c, d): Complex) -> Complex {
    (a * c - b * d, a * d + b * c)
}

/// (cos, sin) of every integer combination the series use: rows of
/// k·x for k = −4..=4 (index k + 4) per argument, then the (l, l′) and (F, D) products.
/// Power-of-two lengths let the masked indexing skip bounds checks.
struct Multiples {
    single: [[Complex; 16]; 5],
    lunar_solar: [Complex; 32],
    latitude_elongation: [Complex; 64],
}

impl Multiples {
    /// All zeros (a memset; entries outside the ranges stay unused).
    const ZERO: Multiples = Multiples {
        single: [[(0.0, 0.0); 16]; 5],
        lunar_solar: [(0.0, 0.0); 32],
        latitude_elongation: [(0.0, 0.0); 64],
    };

    /// Fill the tables in place (building and returning them by value costs copies).
    fn fill(&mut self, args: [f64; 5]) {
        for (row, x) in self.single.iter_mut().zip(args) {
            let (s, c) = x.sin_cos();
            let mut power = (1.0, 0.0);
            row[MAX_MULTIPLE] = power;
            for k in 1..=MAX_MULTIPLE {
                power = mul(power, (c, s));
                row[MAX_MULTIPLE + k] = power;
                row[MAX_MULTIPLE - k] = (power.0, -power.1);
            }
        }
        // Rows start at multiple −MAX_MULTIPLE; each product table spans its ranges.
        let [l, lp, f, d, _] = &self.single;
        let start = |first: i8| (first + MAX_MULTIPLE as i8) as usize;
        for (out, a) in self
            .lunar_solar
            .chunks_exact_mut(LP_RANGE.1)
            .zip(&l[start(L_RANGE.0)..start(L_RANGE.0) + L_RANGE.1])
        {
            for (o, b) in out
                .iter_mut()
                .zip(&lp[start(LP_RANGE.0)..start(LP_RANGE.0) + LP_RANGE.1])
            {
                *o = mul(*a, *b);
            }
        }
        for (out, a) in self
            .latitude_elongation
            .chunks_exact_mut(D_RANGE.1)
            .zip(&f[start(F_RANGE.0)..start(F_RANGE.0) + F_RANGE.1])
        {
            for (o, b) in out
                .iter_mut()
                .zip(&d[start(D_RANGE.0)..start(D_RANGE.0) + D_RANGE.1])
            {
                *o = mul(*a, *b);
            }
        }
    }

    /// (sin, cos) of the term with table indices `at` (see `term_indices`).
    #[inline(always)]
    fn sin_cos(&self, at: &[u8; 3]) -> (f64, f64) {
        let (re, im) = mul(
            mul(
                self.lunar_solar[usize::from(at[0]) & 31],
                self.latitude_elongation[usize::from(at[1]) & 63],
            ),
            self.single[4][usize::from(at[2]) & 15],
        );
        (im, re)
    }
}

/// Nutation and sidereal-time series at one TT instant, radians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EarthSeries {
    /// IAU 2000B nutation in longitude.
    pub dpsi: f64,
    /// IAU 2000B nutation in obliquity.
    pub deps: f64,
    /// Complementary terms of the equation of the equinoxes (IERS 2003).
    pub eect: f64,
}

/// IAU 2000B nutation (as SOFA `nut00b`) and the equation of the equinoxes'
/// complementary terms (as SOFA `eect00`, ≤ 0.4 µas of planetary terms omitted, and
/// with the 2000B linear Delaunay arguments, which differ from IERS 2003's by
/// < 0.5 µas in this series over 1800–2200).
pub(crate) fn earth_series(jd_tt: f64) -> EarthSeries {
    let t = (jd_tt - J2000) / 36525.0;
    // Delaunay arguments (Simon et al. 1994), as in nut00b.
    let mut multiples = Multiples::ZERO;
    multiples.fill([
        reduce_arcsec(485_868.249_036 + 1_717_915_923.217_8 * t) * DAS2R,
        reduce_arcsec(1_287_104.793_05 + 129_596_581.048_1 * t) * DAS2R,
        reduce_arcsec(335_779.526_232 + 1_739_527_262.847_8 * t) * DAS2R,
        reduce_arcsec(1_072_260.703_69 + 1_602_961_601.209 * t) * DAS2R,
        reduce_arcsec(450_160.398_036 - 6_962_890.543_1 * t) * DAS2R,
    ]);
    let (mut dp, mut de) = (0.0, 0.0);
    // Smallest terms first, as SOFA sums them.
    for ((_, c), at) in NUTATION_2000B.iter().zip(&NUTATION_INDICES).rev() {
        let (s, co) = multiples.sin_cos(at);
        dp += (c[0] + c[1] * t) * s + c[2] * co;
        de += (c[3] + c[4] * t) * co + c[5] * s;
    }
    let mut e0 = 0.0;
    for ((_, c), at) in EECT_T0.iter().zip(&EECT_INDICES).rev() {
        let (s, co) = multiples.sin_cos(at);
        e0 += c[0] * s + c[1] * co;
    }
    let sin_omega = multiples.single[4][MAX_MULTIPLE + 1].1;
    EarthSeries {
        dpsi: dp * U2R + DPPLAN,
        deps: de * U2R + DEPLAN,
        eect: (e0 + EECT_T1_SIN_OMEGA * t * sin_omega) * DAS2R,
    }
}

/// Greenwich mean sidereal time (IAU 2006, as SOFA `gmst06`), radians in [0, 2π).
pub(crate) fn gmst06(jd_ut: f64, jd_tt: f64) -> f64 {
    // Earth rotation angle (IAU 2000), with the day fraction taken exactly.
    let du = jd_ut - J2000;
    let era = TAU * (du - du.trunc() + 0.779_057_273_264 + 0.002_737_811_911_354_48 * du);
    let t = (jd_tt - J2000) / 36525.0;
    let polynomial = 0.014506
        + (4612.156534
            + (1.3915817 + (-0.00000044 + (-0.000029956 + (-0.0000000368) * t) * t) * t) * t)
            * t;
    anp(anp(era) + polynomial * DAS2R)
}

/// SOFA `fw2m`: the rotation Rx(−ε)·Rz(−ψ)·Rx(φ)·Rz(γ) from Fukushima–Williams angles.
pub(crate) fn fw2m(gamb: f64, phib: f64, psi: f64, eps: f64) -> [[f64; 3]; 3] {
    let mut r = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    rot_z(gamb, &mut r);
    rot_x(phib, &mut r);
    rot_z(-psi, &mut r);
    rot_x(-eps, &mut r);
    r
}

/// r ← Rz(ψ)·r (SOFA `rz`).
fn rot_z(psi: f64, r: &mut [[f64; 3]; 3]) {
    let (s, c) = psi.sin_cos();
    let [r0, r1, _] = r;
    for (a, b) in r0.iter_mut().zip(r1.iter_mut()) {
        (*a, *b) = (c * *a + s * *b, -s * *a + c * *b);
    }
}

/// r ← Rx(φ)·r (SOFA `rx`).
fn rot_x(phi: f64, r: &mut [[f64; 3]; 3]) {
    let (s, c) = phi.sin_cos();
    let [_, r1, r2] = r;
    for (a, b) in r1.iter_mut().zip(r2.iter_mut()) {
        (*a, *b) = (c * *a + s * *b, -s * *a + c * *b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 µas in radians.
    const UAS: f64 = DAS2R * 1e-6;

    fn sample_jds() -> impl Iterator<Item = f64> {
        (0..4000).map(|i| 2_378_496.5 + f64::from(i) * 36.523_7 + 0.123)
    }

    #[test]
    fn nutation_matches_sofa_nut00b() {
        let mut worst: f64 = 0.0;
        for jd in sample_jds() {
            let (dpsi, deps) = sofars::pnp::nut00b(J2000, jd - J2000);
            let ours = earth_series(jd);
            worst = worst
                .max((ours.dpsi - dpsi).abs())
                .max((ours.deps - deps).abs());
        }
        assert!(
            worst < 0.001 * UAS,
            "nutation differs from nut00b by {} µas",
            worst / UAS
        );
    }

    #[test]
    fn complementary_terms_match_sofa_eect00() {
        let mut worst: f64 = 0.0;
        for jd in sample_jds() {
            let sofa = sofars::erst::eect00(J2000, jd - J2000);
            worst = worst.max((earth_series(jd).eect - sofa).abs());
        }
        assert!(
            worst < 1.0 * UAS,
            "eect differs from eect00 by {} µas",
            worst / UAS
        );
    }

    #[test]
    fn gmst_matches_sofa_gmst06() {
        let mut worst: f64 = 0.0;
        for jd in sample_jds() {
            let tt = jd + 0.0008;
            let sofa = sofars::erst::gmst06(J2000, jd - J2000, J2000, tt - J2000);
            let d = (gmst06(jd, tt) - sofa).abs();
            worst = worst.max(d.min(TAU - d));
        }
        assert!(
            worst < 0.1 * UAS,
            "gmst differs from gmst06 by {} µas",
            worst / UAS
        );
    }

    #[test]
    fn rotation_matches_sofa_fw2m() {
        let jd = 2_448_029.06;
        let (gamb, phib, psib, epsa) = sofars::pnp::pfw06(J2000, jd - J2000);
        let a = sofars::pnp::fw2m(gamb, phib, psib + 1e-5, epsa + 2e-5);
        let b = fw2m(gamb, phib, psib + 1e-5, epsa + 2e-5);
        for i in 0..3 {
            for j in 0..3 {
                assert!((a[i][j] - b[i][j]).abs() < 1e-15);
            }
        }
    }
}
