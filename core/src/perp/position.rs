//! A perp position and how fills change it: entry notional in, realized PnL out.

use serde::{Deserialize, Serialize};

use super::arith::{self, MICROS};
use super::market::MarketMath;
use crate::money::{Overflow, Price, Usd};

/// An account's position in one perp market.
///
/// `entry_notional` has the sign of `size_lots` (positive long, negative short) and is 0 when flat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Signed size in lots: positive long, negative short.
    pub size_lots: i64,
    /// What the open size cost, signed (the sum of fill notionals not yet closed).
    pub entry_notional: Usd,
}

impl Position {
    /// No position.
    pub const FLAT: Self = Self { size_lots: 0, entry_notional: Usd::ZERO };

    /// True when the size is zero.
    pub const fn is_flat(&self) -> bool {
        self.size_lots == 0
    }

    /// Applies a fill of `signed_lots` (positive buys) at `price` and returns the realized PnL, to be
    /// credited to collateral.
    ///
    /// - Growing (same sign, or from flat) adds the fill's [`MarketMath::notional`] to entry; nothing is
    ///   realized.
    /// - Reducing removes `entry * closed / |size|`, truncated toward zero, from entry and realizes the
    ///   difference with the fill notional (`fill - removed` for a long, `removed - fill` for a short, both
    ///   in absolute terms). The truncation remainder stays in entry and is realized with the last lot, so a
    ///   position's total realized PnL over its life is exact.
    /// - Flipping closes everything and opens the rest at the fill price: the new entry is
    ///   `notional(new_size, price)` and the closed part is worth `notional(fill) - notional(new_size)`.
    ///
    /// In every case `realized == Δentry - notional(fill)`, so for any fill
    /// `Δcollateral - Δentry == -notional(fill)` and the buyer's and seller's changes cancel exactly.
    /// On error the position is unchanged.
    pub fn apply_fill(&mut self, math: &MarketMath, signed_lots: i64, price: Price) -> Result<Usd, Overflow> {
        if signed_lots == 0 {
            return Ok(Usd::ZERO);
        }
        let fill = i128::from(math.notional(signed_lots, price)?.micros());
        let size = i128::from(self.size_lots);
        let lots = i128::from(signed_lots);
        let entry = i128::from(self.entry_notional.micros());
        let new_size = arith::to_i64(arith::add(size, lots)?)?;

        let new_entry = if size == 0 {
            // A flat position's entry is 0; any residue is realized here rather than carried.
            fill
        } else if (size > 0) == (lots > 0) {
            arith::add(entry, fill)?
        } else if lots.abs() <= size.abs() {
            // |size| > 0 and |entry * closed| < 2^127, so neither the product nor the division can fail.
            let removed = arith::trunc_div(arith::mul(entry, lots.abs())?, size.abs());
            entry - removed
        } else {
            i128::from(math.notional(new_size, price)?.micros())
        };
        let realized = arith::to_usd(arith::sub(arith::sub(new_entry, entry)?, fill)?)?;
        let new_entry = arith::to_usd(new_entry)?;

        self.size_lots = new_size;
        self.entry_notional = new_entry;
        Ok(realized)
    }

    /// Unrealized PnL at `mark`: `size * lot_size * mark / 1e6 - entry`, rounded toward negative infinity so
    /// equity is never overstated (a short's liability at the mark is rounded up).
    pub fn unrealized_pnl(&self, math: &MarketMath, mark: Price) -> Result<Usd, Overflow> {
        let value = arith::floor_div(math.scaled_notional(i128::from(self.size_lots), mark)?, MICROS);
        arith::to_usd(arith::sub(value, i128::from(self.entry_notional.micros()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: fn(u64) -> Price = Price::from_micros;
    const U: fn(i64) -> Usd = Usd::from_micros;

    const USD: i64 = 1_000_000;
    /// Micro-USD per BTC at `usd` dollars.
    const fn btc_at(usd: u64) -> u64 {
        usd * 1_000_000
    }

    fn btc() -> MarketMath {
        MarketMath::new(1_000, 1_000, 500).expect("valid market")
    }

    #[test]
    fn long_open_add_partial_close_and_close() {
        let m = btc();
        let mut p = Position::FLAT;
        assert_eq!(p.apply_fill(&m, 2, P(btc_at(100_000))).map(Usd::micros), Ok(0));
        assert_eq!(p, Position { size_lots: 2, entry_notional: U(200 * USD) });
        assert_eq!(p.apply_fill(&m, 1, P(btc_at(103_000))).map(Usd::micros), Ok(0));
        assert_eq!(p.entry_notional.micros(), 303 * USD);
        assert_eq!(p.unrealized_pnl(&m, P(btc_at(110_000))).map(Usd::micros), Ok(27 * USD));
        // Sell 1 of 3 at 110k: removes 303/3 = 101 USD of entry, realizes 110 - 101 = 9 USD.
        assert_eq!(p.apply_fill(&m, -1, P(btc_at(110_000))).map(Usd::micros), Ok(9 * USD));
        assert_eq!(p, Position { size_lots: 2, entry_notional: U(202 * USD) });
        assert_eq!(p.apply_fill(&m, -2, P(btc_at(90_000))).map(Usd::micros), Ok(-22 * USD));
        assert_eq!(p, Position::FLAT);
    }

    #[test]
    fn short_gains_when_price_falls() {
        let m = btc();
        let mut p = Position::FLAT;
        assert_eq!(p.apply_fill(&m, -4, P(btc_at(100_000))).map(Usd::micros), Ok(0));
        assert_eq!(p.entry_notional.micros(), -400 * USD);
        assert_eq!(p.unrealized_pnl(&m, P(btc_at(95_000))).map(Usd::micros), Ok(20 * USD));
        assert_eq!(p.apply_fill(&m, 1, P(btc_at(95_000))).map(Usd::micros), Ok(5 * USD));
        assert_eq!(p, Position { size_lots: -3, entry_notional: U(-300 * USD) });
        assert_eq!(p.apply_fill(&m, 3, P(btc_at(101_000))).map(Usd::micros), Ok(-3 * USD));
        assert!(p.is_flat());
    }

    #[test]
    fn flip_closes_then_opens_at_the_fill_price() {
        let m = btc();
        let mut p = Position::FLAT;
        p.apply_fill(&m, 2, P(btc_at(100_000))).map(Usd::micros).expect("open");
        // Sell 5 at 105k: closes 2 (+10 USD) and opens a 3-lot short at 105k.
        assert_eq!(p.apply_fill(&m, -5, P(btc_at(105_000))).map(Usd::micros), Ok(10 * USD));
        assert_eq!(p, Position { size_lots: -3, entry_notional: U(-315 * USD) });
    }

    #[test]
    fn truncation_remainder_is_realized_with_the_last_lot() {
        let m = MarketMath::new(1, 10_000, 10_000).expect("valid market");
        let mut p = Position::FLAT;
        // 3 lots of one base micro-unit at 10 USD (30 micro-USD), then 1 at 11 USD: entry 41.
        p.apply_fill(&m, 3, P(10_000_000)).map(Usd::micros).expect("open");
        p.apply_fill(&m, 1, P(11_000_000)).map(Usd::micros).expect("add");
        assert_eq!(p.entry_notional.micros(), 41);
        // Closing 1 of 4 removes trunc(41 / 4) = 10; the remaining 31 is removed at the end.
        assert_eq!(p.apply_fill(&m, -1, P(10_000_000)).map(Usd::micros), Ok(0));
        assert_eq!(p.entry_notional.micros(), 31);
        assert_eq!(p.apply_fill(&m, -3, P(10_000_000)).map(Usd::micros), Ok(-1));
        // Round trip at 10 USD after paying 41 for 4 lots: exactly -1 micro-USD in total.
        assert_eq!(p, Position::FLAT);
    }

    #[test]
    fn short_unrealized_pnl_rounds_against_the_account() {
        let m = btc();
        let p = Position { size_lots: -1, entry_notional: U(0) };
        // Liability 1000 * 999 / 1e6 = 0.999 micro-USD: counted as 1.
        assert_eq!(p.unrealized_pnl(&m, P(999)).map(Usd::micros), Ok(-1));
        let long = Position { size_lots: 1, entry_notional: U(0) };
        assert_eq!(long.unrealized_pnl(&m, P(999)).map(Usd::micros), Ok(0));
    }

    #[test]
    fn errors_leave_the_position_unchanged() {
        let m = btc();
        let mut p = Position { size_lots: i64::MAX - 1, entry_notional: U(1) };
        let before = p;
        assert_eq!(p.apply_fill(&m, 2, P(1)).map(Usd::micros), Err(Overflow));
        assert_eq!(p, before);
        let mut q = Position { size_lots: 1, entry_notional: U(i64::MAX) };
        assert_eq!(q.apply_fill(&m, 1, P(btc_at(100_000))).map(Usd::micros), Err(Overflow));
        assert_eq!(q, Position { size_lots: 1, entry_notional: U(i64::MAX) });
        assert_eq!(p.apply_fill(&m, 0, P(u64::MAX)).map(Usd::micros), Ok(0));
        assert_eq!(p, before);
    }
}
