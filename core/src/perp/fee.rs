//! Trading fees.

use super::arith::{self, BPS};
use crate::money::{Overflow, Usd};

/// Fee of `fee_bps` on a notional: `|notional| * fee_bps / 1e4` rounded up, so the payer bears the
/// rounding. The sign of `notional` is ignored.
pub fn fee(notional: Usd, fee_bps: u32) -> Result<Usd, Overflow> {
    let scaled = arith::mul(i128::from(notional.micros().unsigned_abs()), i128::from(fee_bps))?;
    arith::to_usd(arith::ceil_div(scaled, BPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_against_the_payer() {
        // 5 bps of 100 USD is 5 cents.
        let fee = |micros, bps| fee(Usd::from_micros(micros), bps).map(Usd::micros);
        assert_eq!(fee(100_000_000, 5), Ok(50_000));
        // 5 bps of 1.000001 USD is 500.0005 micro-USD.
        assert_eq!(fee(1_000_001, 5), Ok(501));
        assert_eq!(fee(-1_000_001, 5), Ok(501));
        assert_eq!(fee(1, 1), Ok(1));
        assert_eq!(fee(123, 0), Ok(0));
        assert_eq!(fee(i64::MIN, 10_000), Err(Overflow));
        assert_eq!(fee(i64::MAX, u32::MAX), Err(Overflow));
        assert_eq!(fee(i64::MAX, 10_000), Ok(i64::MAX));
    }
}
