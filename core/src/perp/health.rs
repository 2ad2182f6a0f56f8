//! Account health at a mark: equity, margin requirements, what may be withdrawn, and liquidation.

use super::arith;
use super::market::MarketMath;
use super::position::Position;
use crate::money::{Lots, Overflow, Price, Usd};

/// An account's margin state in one market at one mark price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Health {
    /// Collateral plus unrealized PnL (rounded down, see [`Position::unrealized_pnl`]).
    pub equity: Usd,
    /// Initial margin of the worst case (every open order on one side filling), at least the market's
    /// [`min_initial_margin_micros`](MarketMath::min_initial_margin_micros) when that case is not flat.
    pub initial_required: Usd,
    /// Maintenance margin of the current position.
    pub maintenance_required: Usd,
    /// What may be withdrawn: `min(collateral, equity - initial_required)`, floored at 0.
    pub free_collateral: Usd,
    /// Equity covers the initial requirement, so new orders may rest or fill.
    pub can_open: bool,
    /// A non-flat position whose equity is below its maintenance requirement.
    pub liquidatable: bool,
}

/// Health of an account with `collateral`, position `pos` and resting orders totalling `open_buy` /
/// `open_sell` lots, valued at `mark`.
///
/// The initial requirement covers `max(|size + open_buy|, |size - open_sell|)` lots; margins round up and
/// unrealized PnL rounds down, so every rounding here is against the account.
pub fn health(
    math: &MarketMath,
    collateral: Usd,
    pos: &Position,
    open_buy: Lots,
    open_sell: Lots,
    mark: Price,
) -> Result<Health, Overflow> {
    let collateral_micros = i128::from(collateral.micros());
    let equity = arith::add(collateral_micros, i128::from(pos.unrealized_pnl(math, mark)?.micros()))?;

    let size = i128::from(pos.size_lots);
    let if_buys_fill = (size + i128::from(open_buy.get())).unsigned_abs();
    let if_sells_fill = (size - i128::from(open_sell.get())).unsigned_abs();
    let worst_lots = if_buys_fill.max(if_sells_fill);
    let by_size = math.margin(worst_lots, mark, math.initial_margin_bps())?;
    let floor = if worst_lots == 0 { 0 } else { arith::to_i64(i128::from(math.min_initial_margin_micros()))? };
    let initial_required = by_size.max(Usd::from_micros(floor));
    let maintenance_required =
        math.margin(u128::from(pos.size_lots.unsigned_abs()), mark, math.maintenance_margin_bps())?;

    let spare = equity - i128::from(initial_required.micros());
    // Between 0 and collateral, so it fits.
    let free_collateral = arith::to_usd(spare.min(collateral_micros).max(0))?;
    let equity = arith::to_usd(equity)?;

    Ok(Health {
        equity,
        initial_required,
        maintenance_required,
        free_collateral,
        can_open: equity >= initial_required,
        liquidatable: !pos.is_flat() && equity < maintenance_required,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: i64 = 1_000_000;
    const BTC_100K: u64 = 100_000_000_000;

    /// [`health`] on raw integers, as the worked examples are written.
    fn at(m: &MarketMath, collateral: i64, pos: &Position, buy: u64, sell: u64, mark: u64) -> Result<Health, Overflow> {
        health(m, Usd::from_micros(collateral), pos, Lots::new(buy), Lots::new(sell), Price::from_micros(mark))
    }

    fn btc() -> MarketMath {
        MarketMath::new(1_000, 1_000, 500).expect("valid market")
    }

    fn long(lots: i64, entry_usd: i64) -> Position {
        Position { size_lots: lots, entry_notional: Usd::from_micros(entry_usd * USD) }
    }

    #[test]
    fn the_floor_applies_to_any_exposure_and_never_to_a_flat_account() {
        let floored = btc().with_min_initial_margin(50 * USD as u64);
        // 1 lot = 100 USD of notional: 10 USD by size, 50 USD by the floor.
        let h = at(&floored, 40 * USD, &long(1, 100), 0, 0, BTC_100K).expect("fits");
        assert_eq!((h.initial_required.micros(), h.maintenance_required.micros()), (50 * USD, 5 * USD));
        assert!(!h.can_open && !h.liquidatable, "the floor gates opening, not liquidation");
        assert_eq!(h.free_collateral.micros(), 0);
        // A resting order alone is exposure too.
        let h = at(&floored, 60 * USD, &long(0, 0), 1, 0, BTC_100K).expect("fits");
        assert_eq!((h.initial_required.micros(), h.free_collateral.micros()), (50 * USD, 10 * USD));
        // Large positions are margined by size, as without a floor.
        let h = at(&floored, 150 * USD, &long(10, 1_000), 0, 0, BTC_100K).expect("fits");
        assert_eq!(h, at(&btc(), 150 * USD, &long(10, 1_000), 0, 0, BTC_100K).expect("fits"));
        // Flat and no orders: nothing required, everything withdrawable.
        let h = at(&floored, 30 * USD, &long(0, 0), 0, 0, BTC_100K).expect("fits");
        assert_eq!((h.initial_required.micros(), h.free_collateral.micros(), h.can_open), (0, 30 * USD, true));
    }

    #[test]
    fn worked_example_long_10_lots() {
        // 10 lots = 0.01 BTC = 1,000 USD at 100k, with 150 USD of collateral.
        let h = at(&btc(), 150 * USD, &long(10, 1_000), 0, 0, BTC_100K).expect("fits");
        assert_eq!(h.equity.micros(), 150 * USD);
        assert_eq!(h.initial_required.micros(), 100 * USD);
        assert_eq!(h.maintenance_required.micros(), 50 * USD);
        assert_eq!(h.free_collateral.micros(), 50 * USD);
        assert!(h.can_open && !h.liquidatable);

        // At 90k: equity 150 - 100 = 50 USD, MM 45 USD, IM 90 USD.
        let h = at(&btc(), 150 * USD, &long(10, 1_000), 0, 0, 90_000_000_000).expect("fits");
        assert_eq!((h.equity.micros(), h.maintenance_required.micros()), (50 * USD, 45 * USD));
        assert!(!h.can_open && !h.liquidatable);
        assert_eq!(h.free_collateral.micros(), 0);

        // At 88k: equity 30 USD < MM 44 USD.
        let h = at(&btc(), 150 * USD, &long(10, 1_000), 0, 0, 88_000_000_000).expect("fits");
        assert!(h.liquidatable);
    }

    #[test]
    fn open_orders_count_the_worst_side() {
        // Long 10 with 5 to sell and 3 to buy: worst case is 13 lots long (IM 130 USD).
        let h = at(&btc(), 200 * USD, &long(10, 1_000), 3, 5, BTC_100K).expect("fits");
        assert_eq!(h.initial_required.micros(), 130 * USD);
        // Flat with 4 to buy and 6 to sell: worst case 6 lots (IM 60 USD).
        let h = at(&btc(), 200 * USD, &Position::FLAT, 4, 6, BTC_100K).expect("fits");
        assert_eq!(h.initial_required.micros(), 60 * USD);
        assert_eq!(h.free_collateral.micros(), 140 * USD);
        assert!(!h.liquidatable);
    }

    #[test]
    fn free_collateral_never_exceeds_collateral() {
        // Deep in profit: equity 1,150 USD, but only the 150 USD deposited may leave.
        let h = at(&btc(), 150 * USD, &long(10, 0), 0, 0, BTC_100K).expect("fits");
        assert_eq!(h.free_collateral.micros(), 150 * USD);
        let h = at(&btc(), -5, &Position::FLAT, 0, 0, BTC_100K).expect("fits");
        assert_eq!(h.free_collateral.micros(), 0);
        assert!(!h.can_open && !h.liquidatable);
    }

    #[test]
    fn extreme_inputs_are_errors_not_panics() {
        let m = btc();
        let p = Position { size_lots: i64::MIN, entry_notional: Usd::from_micros(i64::MIN) };
        assert_eq!(at(&m, i64::MIN, &p, u64::MAX, u64::MAX, u64::MAX), Err(Overflow));
        assert_eq!(at(&m, i64::MAX, &Position::FLAT, u64::MAX, 0, BTC_100K), Err(Overflow));
        assert!(at(&m, i64::MAX, &Position::FLAT, u64::MAX, u64::MAX, 0).is_ok());
    }
}
