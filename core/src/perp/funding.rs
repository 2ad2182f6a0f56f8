//! Funding: a cumulative index per market and the payment each position owes when it moves.
//!
//! The index is in micro-USD per lot scaled by 1e6 ([`FUNDING_INDEX_SCALE`]), i.e. 1e-12 USD per lot, so a
//! premium in micro-USD per whole base unit times `lot_size` is an index step with no rounding at all.

use super::arith::{self, BPS};
use super::market::MarketMath;
use crate::money::{Overflow, Price, Usd};

/// Index units per micro-USD per lot.
pub const FUNDING_INDEX_SCALE: i64 = 1_000_000;

/// The collateral change of a position of `size_lots` when the cumulative funding index moves by
/// `index_delta` (a positive delta means longs pay shorts): negative when the account pays.
///
/// `-size * delta / 1e6` rounded toward negative infinity: payers pay rounded up, receivers get rounded
/// down. Since sizes sum to zero, the payments over all accounts sum to at most 0 and at least minus the
/// number of positions; the VM keeps that dust in its funding pool.
pub fn funding_payment(size_lots: i64, index_delta: i64) -> Result<Usd, Overflow> {
    let owed = arith::mul(i128::from(size_lots), i128::from(index_delta))?;
    arith::to_usd(arith::floor_div(-owed, i128::from(FUNDING_INDEX_SCALE)))
}

impl MarketMath {
    /// Funding index step for one interval: `(mark - index_price) * lot_size`, the premium of the mark over
    /// the index on one lot, clamped to `clamp_bps` of one lot's notional at the index price.
    ///
    /// The premium itself is exact; the clamp bound `index_price * lot_size * clamp_bps / 1e4` is truncated
    /// toward zero so the step never exceeds it.
    pub fn premium_index(&self, mark: Price, index_price: Price, clamp_bps: u32) -> Result<i64, Overflow> {
        let lot = i128::from(self.lot_size());
        let bound = arith::mul(arith::mul(i128::from(index_price.micros()), lot)?, i128::from(clamp_bps))? / BPS;
        let diff = i128::from(mark.micros()) - i128::from(index_price.micros());
        // A premium too large for i128 is certainly beyond the bound.
        let step = diff.checked_mul(lot).map_or(bound * diff.signum(), |premium| premium.clamp(-bound, bound));
        arith::to_i64(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: fn(u64) -> Price = Price::from_micros;

    fn btc() -> MarketMath {
        MarketMath::new(1_000, 1_000, 500).expect("valid market")
    }

    #[test]
    fn premium_of_a_tenth_of_a_percent_on_btc() {
        // Mark 100,100 USD over index 100,000 USD: 0.1% of a 100 USD lot = 0.1 USD per lot = 1e5 micro-USD.
        let step = btc().premium_index(P(100_100_000_000), P(100_000_000_000), 100).expect("fits");
        assert_eq!(step, 100_000 * FUNDING_INDEX_SCALE);
        // Clamped at 5 bps: 0.05 USD per lot.
        assert_eq!(btc().premium_index(P(100_100_000_000), P(100_000_000_000), 5), Ok(50_000 * FUNDING_INDEX_SCALE));
        assert_eq!(btc().premium_index(P(99_900_000_000), P(100_000_000_000), 5), Ok(-50_000 * FUNDING_INDEX_SCALE));
        // A long of 10 lots pays 1 USD, a short of 10 receives it.
        assert_eq!(funding_payment(10, step).map(Usd::micros), Ok(-1_000_000));
        assert_eq!(funding_payment(-10, step).map(Usd::micros), Ok(1_000_000));
    }

    #[test]
    fn payers_round_up_receivers_round_down() {
        // 3 lots at half a micro-USD per lot: 1.5 micro-USD; the long pays 2, the short receives 1.
        assert_eq!(funding_payment(3, 500_000).map(Usd::micros), Ok(-2));
        assert_eq!(funding_payment(-3, 500_000).map(Usd::micros), Ok(1));
        assert_eq!(funding_payment(1, 1).map(Usd::micros), Ok(-1));
        assert_eq!(funding_payment(-1, 1).map(Usd::micros), Ok(0));
        assert_eq!(funding_payment(1, -1).map(Usd::micros), Ok(0));
        assert_eq!(funding_payment(-1, -1).map(Usd::micros), Ok(-1));
        assert_eq!(funding_payment(0, i64::MAX).map(Usd::micros), Ok(0));
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(funding_payment(i64::MIN, i64::MIN).map(Usd::micros), Err(Overflow));
        assert!(funding_payment(i64::MAX, 1).map(Usd::micros).is_ok());
        let wide = MarketMath::new(u64::MAX, 10_000, 10_000).expect("valid market");
        assert_eq!(wide.premium_index(P(u64::MAX), P(0), 10_000), Ok(0));
        assert_eq!(wide.premium_index(P(u64::MAX), P(1), 10_000), Err(Overflow));
    }
}
