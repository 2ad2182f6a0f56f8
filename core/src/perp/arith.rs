//! Checked i128 arithmetic with explicit rounding, shared by the perp math.
//!
//! Every product is checked: a result that does not fit is [`Overflow`], never a wrap or a panic.

use crate::money::Overflow;

/// Micro-units per whole unit: prices are micro-USD per whole base unit and lots are in base micro-units.
pub(crate) const MICROS: i128 = 1_000_000;

/// Basis points per whole (100%).
pub(crate) const BPS: i128 = 10_000;

/// `a * b`, or `Overflow`.
pub(crate) fn mul(a: i128, b: i128) -> Result<i128, Overflow> {
    a.checked_mul(b).ok_or(Overflow)
}

/// `a + b`, or `Overflow`.
pub(crate) fn add(a: i128, b: i128) -> Result<i128, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

/// `a - b`, or `Overflow`.
pub(crate) fn sub(a: i128, b: i128) -> Result<i128, Overflow> {
    a.checked_sub(b).ok_or(Overflow)
}

/// `n / d` rounded toward negative infinity; `d` must be positive.
pub(crate) fn floor_div(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    n.div_euclid(d)
}

/// `n / d` rounded toward positive infinity; `d` must be positive.
pub(crate) fn ceil_div(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

/// `n / d` rounded toward zero; `d` must be positive.
pub(crate) fn trunc_div(n: i128, d: i128) -> i128 {
    debug_assert!(d > 0);
    n / d
}

/// Narrows to i64, or `Overflow`.
pub(crate) fn to_i64(v: i128) -> Result<i64, Overflow> {
    i64::try_from(v).map_err(|_| Overflow)
}

/// `v` micro-USD as [`Usd`](crate::money::Usd), or `Overflow` outside i64.
pub(crate) fn to_usd(v: i128) -> Result<crate::money::Usd, Overflow> {
    to_i64(v).map(crate::money::Usd::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_directions() {
        assert_eq!((floor_div(7, 2), ceil_div(7, 2), trunc_div(7, 2)), (3, 4, 3));
        assert_eq!((floor_div(-7, 2), ceil_div(-7, 2), trunc_div(-7, 2)), (-4, -3, -3));
        assert_eq!((floor_div(6, 2), ceil_div(6, 2), trunc_div(-6, 2)), (3, 3, -3));
        assert_eq!(ceil_div(i128::MIN, 3), i128::MIN / 3);
        assert_eq!(floor_div(i128::MIN, 1), i128::MIN);
    }

    #[test]
    fn narrowing_and_products_are_checked() {
        assert_eq!(to_i64(i128::from(i64::MAX) + 1), Err(Overflow));
        assert_eq!(to_i64(i128::from(i64::MIN)), Ok(i64::MIN));
        assert_eq!(mul(i128::MAX, 2), Err(Overflow));
        assert_eq!(add(i128::MAX, 1), Err(Overflow));
        assert_eq!(sub(i128::MIN, 1), Err(Overflow));
    }
}
