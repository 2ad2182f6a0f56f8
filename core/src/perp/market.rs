//! Per-market parameters and the notional of a fill: the one conversion from lots and price to micro-USD.

use super::arith::{self, BPS, MICROS};
use crate::money::{Lots, Overflow, Price, Usd};

/// Basis points in 100%: the largest margin requirement a market may set.
pub const MAX_MARGIN_BPS: u32 = 10_000;

/// Validated margin parameters of one perpetual market.
///
/// One lot is `lot_size` base micro-units, so `q` lots at `p` micro-USD per whole base unit are worth
/// `q * lot_size * p / 1_000_000` micro-USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarketMath {
    lot_size: u64,
    initial_margin_bps: u32,
    maintenance_margin_bps: u32,
    min_initial_margin_micros: u64,
}

/// Market parameters that would make the margin math meaningless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMarket {
    /// A lot of zero base units.
    #[error("lot size must be positive")]
    ZeroLotSize,
    /// Margins out of order: required is `0 < maintenance <= initial <= 10000` bps.
    #[error("margins must satisfy 0 < maintenance ({maintenance_bps}) <= initial ({initial_bps}) <= 10000 bps")]
    MarginOrder {
        /// Initial margin given, in bps.
        initial_bps: u32,
        /// Maintenance margin given, in bps.
        maintenance_bps: u32,
    },
}

impl MarketMath {
    /// Validates `lot_size > 0` and `0 < maintenance_margin_bps <= initial_margin_bps <= 10_000`.
    pub fn new(lot_size: u64, initial_margin_bps: u32, maintenance_margin_bps: u32) -> Result<Self, InvalidMarket> {
        if lot_size == 0 {
            return Err(InvalidMarket::ZeroLotSize);
        }
        if maintenance_margin_bps == 0
            || maintenance_margin_bps > initial_margin_bps
            || initial_margin_bps > MAX_MARGIN_BPS
        {
            return Err(InvalidMarket::MarginOrder {
                initial_bps: initial_margin_bps,
                maintenance_bps: maintenance_margin_bps,
            });
        }
        Ok(Self { lot_size, initial_margin_bps, maintenance_margin_bps, min_initial_margin_micros: 0 })
    }

    /// The same market with a floor on the initial requirement of any account holding a position or a
    /// resting order: opening risk needs at least `micros` of equity whatever its size, so a market's
    /// bounded resources (positions per side, price levels) cost real margin to occupy. 0 = no floor.
    #[must_use]
    pub const fn with_min_initial_margin(mut self, micros: u64) -> Self {
        self.min_initial_margin_micros = micros;
        self
    }

    /// The floor on a non-zero initial requirement, micro-USD (0 = none).
    pub const fn min_initial_margin_micros(&self) -> u64 {
        self.min_initial_margin_micros
    }

    /// Base micro-units per lot.
    pub const fn lot_size(&self) -> u64 {
        self.lot_size
    }

    /// Margin required to open or grow a position, in bps of notional at the mark.
    pub const fn initial_margin_bps(&self) -> u32 {
        self.initial_margin_bps
    }

    /// Margin required to keep a position, in bps of notional at the mark.
    pub const fn maintenance_margin_bps(&self) -> u32 {
        self.maintenance_margin_bps
    }

    /// Signed notional of `lots` (positive long) at `price`: `lots * lot_size * price / 1e6` micro-USD.
    ///
    /// Rounded toward zero, so `notional(-q, p) == -notional(q, p)`: the buyer's entry gains exactly what
    /// the seller's loses, which is what keeps fills conserving money.
    pub fn notional(&self, lots: i64, price: Price) -> Result<Usd, Overflow> {
        arith::to_usd(arith::trunc_div(self.scaled_notional(i128::from(lots), price)?, MICROS))
    }

    /// `lots * lot_size * price`: the notional in micro-USD times 1e6, exact, for callers that round it.
    pub(crate) fn scaled_notional(&self, lots: i128, price: Price) -> Result<i128, Overflow> {
        arith::mul(arith::mul(lots, i128::from(self.lot_size))?, i128::from(price.micros()))
    }

    /// `abs_lots * lot_size * mark * bps / (1e6 * 1e4)`, rounded up: a requirement never understated.
    pub(crate) fn margin(&self, abs_lots: u128, mark: Price, bps: u32) -> Result<Usd, Overflow> {
        let lots = i128::try_from(abs_lots).map_err(|_| Overflow)?;
        let scaled = arith::mul(self.scaled_notional(lots, mark)?, i128::from(bps))?;
        arith::to_usd(arith::ceil_div(scaled, MICROS * BPS))
    }

    /// Initial margin of `lots` at `mark`, rounded up.
    pub fn initial_margin(&self, lots: Lots, mark: Price) -> Result<Usd, Overflow> {
        self.margin(u128::from(lots.get()), mark, self.initial_margin_bps)
    }

    /// Maintenance margin of `lots` at `mark`, rounded up.
    pub fn maintenance_margin(&self, lots: Lots, mark: Price) -> Result<Usd, Overflow> {
        self.margin(u128::from(lots.get()), mark, self.maintenance_margin_bps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BTC-PERP: 1 lot = 0.001 BTC; IM 10%, MM 5%.
    fn btc() -> MarketMath {
        MarketMath::new(1_000, 1_000, 500).expect("valid market")
    }

    /// 100,000 USD per BTC.
    const BTC_100K: Price = Price::from_micros(100_000_000_000);
    const P: fn(u64) -> Price = Price::from_micros;
    const U: fn(i64) -> Usd = Usd::from_micros;

    #[test]
    fn constructor_validates() {
        assert_eq!(MarketMath::new(0, 1_000, 500), Err(InvalidMarket::ZeroLotSize));
        assert!(MarketMath::new(1, 1_000, 0).is_err());
        assert!(MarketMath::new(1, 500, 1_000).is_err());
        assert!(MarketMath::new(1, 10_001, 500).is_err());
        assert!(MarketMath::new(1, 10_000, 10_000).is_ok());
        assert!(MarketMath::new(1, 1, 1).is_ok());
    }

    #[test]
    fn one_btc_lot_at_100k_is_100_usd() {
        let m = btc();
        assert_eq!(m.notional(1, BTC_100K), Ok(U(100_000_000)));
        assert_eq!(m.notional(-3, BTC_100K), Ok(U(-300_000_000)));
        assert_eq!(m.initial_margin(Lots::new(1), BTC_100K), Ok(U(10_000_000)));
        assert_eq!(m.maintenance_margin(Lots::new(1), BTC_100K), Ok(U(5_000_000)));
    }

    #[test]
    fn notional_truncates_symmetrically_and_margin_rounds_up() {
        let m = btc();
        // 1 lot at 0.000999 USD per BTC: 1000 * 999 / 1e6 = 0.999 micro-USD.
        assert_eq!(m.notional(1, P(999)), Ok(U(0)));
        assert_eq!(m.notional(-1, P(999)), Ok(U(0)));
        assert_eq!(m.notional(7, P(1_234_567)), Ok(U(8_641)));
        assert_eq!(m.notional(-7, P(1_234_567)), Ok(U(-8_641)));
        // 7 lots at 1.234567 USD: notional 8641.969 micro-USD, 5% of it is 432.098 -> 433.
        assert_eq!(m.maintenance_margin(Lots::new(7), P(1_234_567)), Ok(U(433)));
        assert_eq!(m.initial_margin(Lots::ZERO, BTC_100K), Ok(U(0)));
    }

    #[test]
    fn overflow_is_an_error() {
        let m = MarketMath::new(u64::MAX, 10_000, 10_000).expect("valid market");
        assert_eq!(m.notional(i64::MAX, P(u64::MAX)), Err(Overflow));
        assert_eq!(m.notional(i64::MIN, P(1)), Err(Overflow));
        assert_eq!(m.initial_margin(Lots::new(u64::MAX), P(u64::MAX)), Err(Overflow));
        assert_eq!(btc().notional(i64::MAX, BTC_100K), Err(Overflow));
    }
}
