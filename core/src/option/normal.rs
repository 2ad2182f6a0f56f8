//! The standard normal distribution in fixed point (10^-18, floored): the cdf N(x) and the pdf n(x) that
//! Black-76 prices and Greeks are made of. Integer-only with bounded loops, like [`super::fixed`].
//!
//! N(x) = (1 + erf(x/√2)) / 2. For |x| ≤ 3, erf by its Taylor series at 10^-27 (at most 100 terms; the
//! alternating terms stay below 60 in size, so cancellation costs about two of the nine spare digits). For
//! |x| > 3, erfc(z) = e^(−z²)/√π · 1/(z + ½/(z + 1/(z + (3/2)/(z + …)))), the continued fraction evaluated
//! from its 160th level (converged to 10^-29 relative at the boundary, faster beyond). Beyond |x| = 37 the
//! result is 0 or 1. The error is a few units of 10^-18.

use super::fixed::{exp, mul_div_floor, MathError, FINE, FINE_PER_WAD, WAD};
/// 1/√2 at [`FINE`] (0.707106781186547524400844362104849…).
const INV_SQRT2: i128 = 707_106_781_186_547_524_400_844_362;
/// 2/√π at [`FINE`] (1.128379167095512573896158903121545…).
const TWO_INV_SQRT_PI: i128 = 1_128_379_167_095_512_573_896_158_903;
/// 1/√π at [`FINE`] (0.564189583547756286948079451560772…).
const INV_SQRT_PI: i128 = 564_189_583_547_756_286_948_079_451;
/// 1/√(2π) at [`FINE`] (0.398942280401432677939946059934…).
const INV_SQRT_2PI: i128 = 398_942_280_401_432_677_939_946_059;

/// |x| beyond which N(x) is 0 or 1 at this precision.
pub const CDF_CUTOFF: i128 = 37 * WAD;
/// |x| up to which the Taylor series is used.
const SERIES_LIMIT: i128 = 3 * WAD;
/// Levels of the continued fraction.
const CF_LEVELS: i128 = 160;
/// Most Taylor terms.
const MAX_TERMS: i128 = 100;

/// N(x), the standard normal cdf, floored to 10^-18.
pub fn cdf(x: i128) -> Result<i128, MathError> {
    if x >= CDF_CUTOFF {
        return Ok(WAD);
    }
    if x <= -CDF_CUTOFF {
        return Ok(0);
    }
    // z = |x|/√2 at FINE.
    let z = mul_div_floor(x.abs(), INV_SQRT2, WAD)?;
    let fine = if x.abs() <= SERIES_LIMIT {
        let erf = erf_series(z)?;
        let signed = if x < 0 { -erf } else { erf };
        (FINE + signed) / 2
    } else {
        let erfc = erfc_fraction(z, x)?;
        if x < 0 {
            erfc.div_euclid(2)
        } else {
            (2 * FINE - erfc).div_euclid(2)
        }
    };
    Ok(fine.div_euclid(FINE_PER_WAD).clamp(0, WAD))
}

/// n(x) = e^(−x²/2)/√(2π), the standard normal pdf, floored to 10^-18.
pub fn pdf(x: i128) -> Result<i128, MathError> {
    if x >= CDF_CUTOFF || x <= -CDF_CUTOFF {
        return Ok(0);
    }
    let half_square = mul_div_floor(x, x, 2 * WAD)?;
    mul_div_floor(exp(-half_square)?, INV_SQRT_2PI, FINE)
}

/// erf(z) for 0 ≤ z ≤ 3/√2 at FINE: 2/√π · Σ (−1)^n z^(2n+1) / (n!·(2n+1)).
fn erf_series(z: i128) -> Result<i128, MathError> {
    let z2 = mul_div_floor(z, z, FINE)?;
    let mut t = z;
    let mut sum = z;
    let mut n = 1;
    while n <= MAX_TERMS {
        t = -mul_div_floor(t, z2, FINE * n)?;
        if t == 0 {
            break;
        }
        sum += t / (2 * n + 1);
        n += 1;
    }
    mul_div_floor(sum, TWO_INV_SQRT_PI, FINE)
}

/// erfc(z) for z > 3/√2 at FINE, by the continued fraction (see the module docs). `x` is √2·z at WAD, for
/// e^(−z²) = e^(−x²/2).
fn erfc_fraction(z: i128, x: i128) -> Result<i128, MathError> {
    let mut f = z;
    let mut k = CF_LEVELS;
    while k >= 1 {
        // f = z + (k/2)/f
        f = z + mul_div_floor(k * FINE / 2, FINE, f)?;
        k -= 1;
    }
    let half_square = mul_div_floor(x, x, 2 * WAD)?;
    let e = exp(-half_square)? * FINE_PER_WAD;
    let scaled = mul_div_floor(e, INV_SQRT_PI, FINE)?;
    mul_div_floor(scaled, FINE, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    proptest! {
        /// Within 2e-16 absolute (and 1e-13 relative in the lower tail, where the values are tiny) of an f64
        /// reference built on libm's erfc.
        #[test]
        fn cdf_matches_a_float_reference(x in -CDF_CUTOFF..CDF_CUTOFF) {
            let got = cdf(x).expect("in domain") as f64 / WAD as f64;
            let want = reference_cdf(x as f64 / WAD as f64);
            prop_assert!((got - want).abs() <= 2e-16 + 1e-13 * want, "N({}) = {} want {}", x, got, want);
        }

        /// N(x) + N(−x) = 1 to within two units (each side is floored).
        #[test]
        fn cdf_is_symmetric(x in 0..CDF_CUTOFF) {
            let sum = cdf(x).expect("in domain") + cdf(-x).expect("in domain");
            prop_assert!((WAD - 2..=WAD).contains(&sum), "N({x}) + N(-{x}) = {sum}");
        }

        /// Monotone: a larger x never has a smaller N.
        #[test]
        fn cdf_is_monotone(x in -8 * WAD..8 * WAD, step in 1i128..WAD / 100) {
            prop_assert!(cdf(x + step).expect("in domain") >= cdf(x).expect("in domain"));
        }

        /// n(x) within 2e-16 absolute of e^(−x²/2)/√(2π) in f64.
        #[test]
        fn pdf_matches_a_float_reference(x in -40 * WAD..40 * WAD) {
            let got = pdf(x).expect("in domain") as f64 / WAD as f64;
            let xf = x as f64 / WAD as f64;
            let want = (-xf * xf / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            prop_assert!((got - want).abs() <= 2e-16 + 1e-14 * want, "n({}) = {} want {}", xf, got, want);
        }
    }

    /// Golden values (true values: N(1) = 0.841344746068542948585…, N(−2) = 0.022750131948179207200…,
    /// N(4) = 0.999968328758166880078…, n(1) = 0.241970724519143349797…).
    #[test]
    fn golden_values() {
        assert_eq!(cdf(0), Ok(WAD / 2));
        assert_eq!(cdf(WAD), Ok(841_344_746_068_542_948));
        assert_eq!(cdf(-2 * WAD), Ok(22_750_131_948_179_207));
        assert_eq!(cdf(4 * WAD), Ok(999_968_328_758_166_880));
        assert_eq!(pdf(WAD), Ok(241_970_724_519_143_349));
        assert_eq!(cdf(CDF_CUTOFF), Ok(WAD));
        assert_eq!(cdf(-CDF_CUTOFF), Ok(0));
        assert_eq!(cdf(i128::MAX), Ok(WAD));
        assert_eq!(cdf(i128::MIN), Ok(0));
        assert_eq!(pdf(i128::MIN), Ok(0));
    }
}
