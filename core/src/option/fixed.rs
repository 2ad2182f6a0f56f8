//! Fixed-point arithmetic for the option pricer: values are `i128` in units of 10^-18 ([`WAD`]), every
//! operation is integer-only, every loop is bounded, and every result is rounded toward −∞ (floor) unless its
//! docs say otherwise. Products that leave `i128` go through exact 256-bit intermediates, so the fast path
//! and the wide path give the same result. Out-of-range inputs are errors, never panics or wraps.
//!
//! The same inputs give the same bits on every machine: there is no floating point and no branch on the
//! platform. Changing an approximation changes consensus (option marks and margins), which the golden
//! vectors in the tests pin.

use alloy_primitives::{I256, U256};

/// 1.0 in fixed point.
pub const WAD: i128 = 1_000_000_000_000_000_000;

/// ln 2, floored to 18 decimals (0.693147180559945309417…).
pub const LN2: i128 = 693_147_180_559_945_309;

/// Largest `x` [`exp`] accepts (e^46 ≈ 9.5·10^19 fits `i128` in fixed point with room).
pub const EXP_MAX: i128 = 46 * WAD;

/// Below this [`exp`] is 0: e^-42 ≈ 5.7·10^-19 floors to nothing.
pub const EXP_MIN: i128 = -42 * WAD;

/// Most terms a series may take before it must have converged (they converge in under 30).
const MAX_TERMS: u32 = 64;

/// Why a fixed-point operation has no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    /// The result does not fit.
    #[error("fixed-point overflow in {0}")]
    Overflow(&'static str),
    /// The input is outside the function's domain.
    #[error("fixed-point input outside the domain of {0}")]
    Domain(&'static str),
}

/// ⌊a·b / d⌋, exact for every `i128` input with `d ≠ 0`.
pub fn mul_div_floor(a: i128, b: i128, d: i128) -> Result<i128, MathError> {
    if d == 0 {
        return Err(MathError::Domain("mul_div (division by zero)"));
    }
    if let Some(product) = a.checked_mul(b) {
        return product
            .checked_div_euclid(d)
            .map(|q| floor_fix(q, product.rem_euclid(d), d))
            .ok_or(MathError::Overflow("mul_div"));
    }
    let (wide_a, wide_b, wide_d) = (I256::try_from(a), I256::try_from(b), I256::try_from(d));
    let (Ok(wide_a), Ok(wide_b), Ok(wide_d)) = (wide_a, wide_b, wide_d) else {
        return Err(MathError::Overflow("mul_div"));
    };
    let product = wide_a.checked_mul(wide_b).ok_or(MathError::Overflow("mul_div"))?;
    // Truncating division, then one step down when the exact quotient is negative and not whole.
    let (quotient, remainder) = (product / wide_d, product % wide_d);
    let negative = product.is_negative() != wide_d.is_negative();
    let floored = if !remainder.is_zero() && negative { quotient - I256::ONE } else { quotient };
    i128::try_from(floored).map_err(|_| MathError::Overflow("mul_div"))
}

/// `div_euclid` rounds toward −∞ only for a positive divisor; with a negative one it rounds up when the
/// remainder is not zero. This puts it back to the floor.
fn floor_fix(quotient: i128, remainder: i128, d: i128) -> i128 {
    if d < 0 && remainder != 0 {
        quotient - 1
    } else {
        quotient
    }
}

/// ⌊a·b⌋ in fixed point.
pub fn mul(a: i128, b: i128) -> Result<i128, MathError> {
    mul_div_floor(a, b, WAD)
}

/// ⌊a / b⌋ in fixed point.
pub fn div(a: i128, b: i128) -> Result<i128, MathError> {
    mul_div_floor(a, WAD, b)
}

/// Internal precision of [`exp`] and [`ln`]: 10^-27, nine digits beyond the result's, so that the floored
/// series terms cannot reach the result's last digit.
pub(super) const FINE: i128 = 1_000_000_000_000_000_000_000_000_000;
/// [`FINE`] / [`WAD`].
pub(super) const FINE_PER_WAD: i128 = 1_000_000_000;
/// ln 2 at [`FINE`] precision (0.693147180559945309417232121458…).
const LN2_FINE: i128 = 693_147_180_559_945_309_417_232_121;

/// e^x, floored. `x` ≤ [`EXP_MAX`]; below [`EXP_MIN`] the result is 0.
///
/// x = k·ln2 + r with k = round(x / ln2) and |r| ≤ ln2/2, e^r by its Taylor series at 10^-27 (terms
/// floored, summed until a term is 0), then scaled by 2^k and floored to 10^-18.
pub fn exp(x: i128) -> Result<i128, MathError> {
    if x > EXP_MAX {
        return Err(MathError::Overflow("exp"));
    }
    if x < EXP_MIN {
        return Ok(0);
    }
    let x_fine = x * FINE_PER_WAD;
    // Round to nearest: k = ⌊(x + ln2/2) / ln2⌋, |k| ≤ 67.
    let k = (x_fine + LN2_FINE / 2).div_euclid(LN2_FINE);
    let r = x_fine - k * LN2_FINE;
    let mut term = FINE;
    let mut sum = FINE;
    let mut n = 1;
    loop {
        term = mul_div_floor(term, r, FINE * n)?;
        if term == 0 || n >= i128::from(MAX_TERMS) {
            break;
        }
        sum += term;
        n += 1;
    }
    let shift = u32::try_from(k.unsigned_abs()).map_err(|_| MathError::Overflow("exp"))?;
    if k >= 0 {
        mul_div_floor(sum, 1i128 << shift, FINE_PER_WAD)
    } else {
        mul_div_floor(sum, 1, FINE_PER_WAD << shift)
    }
}

/// ln x, floored. `x` > 0.
///
/// x = 2^k·y with y in [1, 2) (y kept at 10^-27, exactly as far as that precision goes), then ln y =
/// 2·atanh(z) with z = (y − 1)/(y + 1) in [0, 1/3), its odd series summed at 10^-27 until a term is 0, and
/// the sum floored to 10^-18.
pub fn ln(x: i128) -> Result<i128, MathError> {
    if x <= 0 {
        return Err(MathError::Domain("ln (x must be positive)"));
    }
    // k with 2^k·WAD ≤ x < 2^(k+1)·WAD (|k| < 128).
    let (mut probe, mut k) = (x, 0i128);
    while probe >= 2 * WAD {
        probe >>= 1;
        k += 1;
    }
    while probe < WAD {
        probe <<= 1;
        k -= 1;
    }
    let shift = u32::try_from(k.unsigned_abs()).map_err(|_| MathError::Overflow("ln"))?;
    let y = if k >= 0 {
        mul_div_floor(x, FINE_PER_WAD, 1i128.checked_shl(shift).ok_or(MathError::Overflow("ln"))?)?
    } else {
        mul_div_floor(x, FINE_PER_WAD.checked_shl(shift).ok_or(MathError::Overflow("ln"))?, 1)?
    };
    let z = mul_div_floor(y - FINE, FINE, y + FINE)?;
    let z2 = mul_div_floor(z, z, FINE)?;
    let mut power = z;
    let mut sum = z;
    let mut n = 1i128;
    loop {
        power = mul_div_floor(power, z2, FINE)?;
        let term = power / (2 * n + 1);
        if term == 0 || n >= i128::from(MAX_TERMS) {
            break;
        }
        sum += term;
        n += 1;
    }
    let fine = k * LN2_FINE + 2 * sum;
    Ok(fine.div_euclid(FINE_PER_WAD))
}

/// √x, floored: the largest r with r² ≤ x·WAD. `x` ≥ 0.
pub fn sqrt(x: i128) -> Result<i128, MathError> {
    if x < 0 {
        return Err(MathError::Domain("sqrt (x must not be negative)"));
    }
    let n = U256::from(x.unsigned_abs()) * U256::from(WAD.unsigned_abs());
    let root = isqrt(n);
    i128::try_from(root).map_err(|_| MathError::Overflow("sqrt"))
}

/// ⌊√n⌋ by Newton's iteration from above (it decreases until it stops; at most 256 steps).
fn isqrt(n: U256) -> U256 {
    if n < U256::from(2u8) {
        return n;
    }
    let bits = n.bit_len();
    let mut x = U256::ONE << bits.div_ceil(2);
    for _ in 0..256 {
        let next = (x + n / x) >> 1;
        if next >= x {
            break;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn to_f64(x: i128) -> f64 {
        x as f64 / WAD as f64
    }

    #[test]
    fn mul_div_floors_toward_minus_infinity_on_both_paths() {
        assert_eq!(mul_div_floor(7, 1, 2), Ok(3));
        assert_eq!(mul_div_floor(-7, 1, 2), Ok(-4));
        assert_eq!(mul_div_floor(7, 1, -2), Ok(-4));
        assert_eq!(mul_div_floor(-7, 1, -2), Ok(3));
        assert_eq!(mul_div_floor(6, 1, -2), Ok(-3));
        assert_eq!(mul_div_floor(1, 1, 0), Err(MathError::Domain("mul_div (division by zero)")));
        // The wide path: 10^30 · 10^30 / 10^24 = 10^36, and its negative floors the same way.
        let big = 10i128.pow(30);
        assert_eq!(mul_div_floor(big, big, 10i128.pow(24)), Ok(10i128.pow(36)));
        assert_eq!(
            mul_div_floor(-big, big + 1, 3 * 10i128.pow(24)),
            Ok(-333_333_333_333_333_333_333_333_333_333_666_667)
        );
        assert_eq!(mul_div_floor(big, big, 1), Err(MathError::Overflow("mul_div")));
        assert_eq!(mul_div_floor(i128::MIN, -1, 1), Err(MathError::Overflow("mul_div")));
    }

    proptest! {
        /// The fast and wide paths agree with an exact 256-bit floor.
        #[test]
        fn mul_div_is_the_exact_floor(a in any::<i128>(), b in any::<i64>(), d in any::<i64>()) {
            prop_assume!(d != 0);
            let wide = |v: i128| I256::try_from(v).expect("i128 fits I256");
            let (wa, wb, wd) = (wide(a), wide(i128::from(b)), wide(i128::from(d)));
            let p = wa * wb;
            let (q, r) = (p / wd, p % wd);
            let exact = if !r.is_zero() && (p.is_negative() != wd.is_negative()) { q - I256::ONE } else { q };
            match i128::try_from(exact) {
                Ok(e) => prop_assert_eq!(mul_div_floor(a, i128::from(b), i128::from(d)), Ok(e)),
                Err(_) => prop_assert!(mul_div_floor(a, i128::from(b), i128::from(d)).is_err()),
            }
        }

        /// e^x against f64 over the domain. The reference's own error is ~1e-16 relative plus what rounding
        /// x to f64 costs (|x|·1.1e-16 relative): the bound is 1e-15 + |x|·4e-16 relative, plus 2 units.
        #[test]
        fn exp_matches_a_float_reference(x in EXP_MIN..EXP_MAX) {
            let got = exp(x).expect("in range");
            let xf = to_f64(x);
            let want = xf.exp() * WAD as f64;
            let bound = (1e-15 + xf.abs() * 4e-16) * want + 2.0;
            prop_assert!((got as f64 - want).abs() <= bound, "exp({}) = {} want {}", xf, got, want);
        }

        /// ln x within 1e-15 absolute (plus relative for large results) of f64.
        #[test]
        fn ln_matches_a_float_reference(x in 1i128..(10i128.pow(12) * WAD)) {
            let got = to_f64(ln(x).expect("in range"));
            let want = to_f64(x).ln();
            let bound = 1e-15 * want.abs().max(1.0) + 1e-17;
            prop_assert!((got - want).abs() <= bound, "ln({}) = {} want {}", to_f64(x), got, want);
        }

        /// exp and ln invert each other to within what flooring e^x to 10^-18 loses (WAD/e^x units of ln)
        /// plus a few units.
        #[test]
        fn ln_of_exp_is_the_identity(x in -13 * WAD..40 * WAD) {
            let e = exp(x).expect("in range");
            let back = ln(e).expect("in range");
            let bound = 4 + 2 * WAD / e;
            prop_assert!((back - x).abs() <= bound, "ln(exp({})) = {} (bound {})", x, back, bound);
        }

        /// √x is the exact floor: r² ≤ x·WAD < (r+1)².
        #[test]
        fn sqrt_is_the_exact_floor(x in 0i128..(10i128.pow(20) * WAD)) {
            let r = U256::from(sqrt(x).expect("in range") as u128);
            let n = U256::from(x as u128) * U256::from(WAD as u128);
            prop_assert!(r * r <= n && (r + U256::ONE) * (r + U256::ONE) > n);
        }
    }

    /// Golden values: a change of approximation fails here (it would be a consensus change).
    #[test]
    fn golden_values() {
        // e = 2.718281828459045235360…, ln 2 = 0.693147180559945309417…, √2 = 1.414213562373095048801…
        assert_eq!(exp(WAD), Ok(2_718_281_828_459_045_235));
        assert_eq!(exp(0), Ok(WAD));
        assert_eq!(exp(-WAD), Ok(367_879_441_171_442_321));
        assert_eq!(ln(2 * WAD), Ok(693_147_180_559_945_309));
        assert_eq!(ln(WAD), Ok(0));
        assert_eq!(ln(10 * WAD), Ok(2_302_585_092_994_045_684));
        assert_eq!(sqrt(2 * WAD), Ok(1_414_213_562_373_095_048));
        assert_eq!(sqrt(0), Ok(0));
    }

    #[test]
    fn out_of_domain_inputs_are_errors_not_panics() {
        assert_eq!(exp(EXP_MAX + 1), Err(MathError::Overflow("exp")));
        assert_eq!(exp(i128::MIN), Ok(0));
        assert_eq!(exp(EXP_MIN - 1), Ok(0));
        assert!(exp(EXP_MAX).is_ok());
        assert_eq!(ln(0), Err(MathError::Domain("ln (x must be positive)")));
        assert_eq!(ln(-1), Err(MathError::Domain("ln (x must be positive)")));
        assert!(ln(i128::MAX).is_ok());
        assert!(ln(1).is_ok());
        assert_eq!(sqrt(-1), Err(MathError::Domain("sqrt (x must not be negative)")));
        assert!(sqrt(i128::MAX).is_ok());
    }
}
