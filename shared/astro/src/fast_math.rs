//! `atan2` after fdlibm's `e_atan2.c`/`s_atan.c` (the algorithm of musl and of Java's
//! `StrictMath`; error < 2 ulp). glibc's correctly rounded `atan2` costs about three
//! times as many instructions and a chart needs ~50 of them. Zeros, infinities and
//! NaNs go to `f64::atan2`. Unit-tested against `f64::atan2`.
//!
//! fdlibm notice: Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//! Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy,
//! modify, and distribute this software is freely granted, provided that this notice
//! is preserved.

// fdlibm's constants, digit for digit.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

use std::f64::consts::{FRAC_PI_2, PI};

const ATAN_HI: [f64; 4] = [
    4.636_476_090_008_060_935_15e-1,
    7.853_981_633_974_482_789_99e-1,
    9.827_937_232_473_290_540_82e-1,
    1.570_796_326_794_896_558_00e0,
];
const ATAN_LO: [f64; 4] = [
    2.269_877_745_296_168_709_24e-17,
    3.061_616_997_868_383_017_93e-17,
    1.390_331_103_123_099_845_16e-17,
    6.123_233_995_736_766_035_87e-17,
];
const AT: [f64; 11] = [
    3.333_333_333_333_293_180_27e-1,
    -1.999_999_999_987_648_324_76e-1,
    1.428_571_427_250_346_637_11e-1,
    -1.111_111_040_546_235_578_80e-1,
    9.090_887_133_436_506_561_96e-2,
    -7.691_876_205_044_829_994_95e-2,
    6.661_073_137_387_531_206_69e-2,
    -5.833_570_133_790_573_486_45e-2,
    4.976_877_994_615_932_360_17e-2,
    -3.653_157_274_421_691_552_70e-2,
    1.628_582_011_536_578_236_23e-2,
];
const PI_LO: f64 = 1.224_646_799_147_353_177_2e-16;

/// atan(x) for finite x ≥ 0 (fdlibm `s_atan.c`).
#[inline]
fn atan_non_negative(x: f64) -> f64 {
    let (id, x) = if x < 0.4375 {
        if x < 7.450_580_596_923_828e-9 {
            return x;
        }
        (None, x)
    } else if x < 0.6875 {
        (Some(0), (2.0 * x - 1.0) / (2.0 + x))
    } else if x < 1.1875 {
        (Some(1), (x - 1.0) / (x + 1.0))
    } else if x < 2.4375 {
        (Some(2), (x - 1.5) / (1.0 + 1.5 * x))
    } else if x < 7.378_697_629_483_821e19 {
        (Some(3), -1.0 / x)
    } else {
        return ATAN_HI[3] + ATAN_LO[3];
    };
    let z = x * x;
    let w = z * z;
    let s1 = z * (AT[0] + w * (AT[2] + w * (AT[4] + w * (AT[6] + w * (AT[8] + w * AT[10])))));
    let s2 = w * (AT[1] + w * (AT[3] + w * (AT[5] + w * (AT[7] + w * AT[9]))));
    match id {
        None => x - x * (s1 + s2),
        Some(i) => ATAN_HI[i] - ((x * (s1 + s2) - ATAN_LO[i]) - x),
    }
}

/// Four-quadrant arctangent of y/x, radians in [−π, π] (fdlibm `e_atan2.c`).
#[inline]
pub(crate) fn atan2(y: f64, x: f64) -> f64 {
    if !(x.is_finite() && y.is_finite()) || x == 0.0 || y == 0.0 {
        return y.atan2(x);
    }
    let ratio = (y / x).abs();
    let (z, upright) = if ratio > 1.152_921_504_606_847e18 {
        // |y/x| > 2^60: ±π/2 whatever the sign of x.
        (FRAC_PI_2 + 0.5 * PI_LO, true)
    } else if x < 0.0 && ratio < 8.673_617_379_884_035e-19 {
        // |y/x| < 2^-60 with x < 0: ±π.
        (0.0, false)
    } else {
        (atan_non_negative(ratio), false)
    };
    match (y < 0.0, x < 0.0 && !upright) {
        (false, false) => z,
        (true, false) => -z,
        (false, true) => PI - (z - PI_LO),
        (true, true) => (z - PI_LO) - PI,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_std_atan2_within_two_ulp() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let mut worst: f64 = 0.0;
        for i in 0..200_000 {
            let scale = 10f64.powi((i % 13) - 6);
            let (y, x) = (next() * scale, next());
            let (ours, std) = (atan2(y, x), y.atan2(x));
            worst = worst.max((ours - std).abs() / std.abs().max(1e-300));
        }
        assert!(worst <= 4.5e-16, "relative error {worst:e}");
        for (y, x) in [
            (0.0, 1.0),
            (0.0, -1.0),
            (-0.0, -1.0),
            (1.0, 0.0),
            (-1.0, 0.0),
            (1e300, 1e-300),
            (1e-300, -1e300),
            (-1e-300, -1e300),
            (1.0, f64::INFINITY),
            (f64::NAN, 1.0),
        ] {
            let (ours, std) = (atan2(y, x), y.atan2(x));
            assert!(
                ours == std
                    || (ours - std).abs() <= 4.5e-16 * std.abs()
                    || (ours.is_nan() && std.is_nan()),
                "atan2({y}, {x}) = {ours}, std {std}"
            );
        }
    }
}
