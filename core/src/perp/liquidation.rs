//! The mark at which a position becomes liquidatable, exact against [`health`].
//!
//! With `k = size * lot_size` and `c = collateral - entry`, the account is liquidatable at mark `m` when
//! `c + floor(k*m / 1e6) < ceil(|k|*m*mm / 1e10)`. For a short both sides move the same way, so the
//! predicate is monotone in `m` and a bisection finds the boundary. For a long the two roundings pull
//! apart, so the predicate can flicker within two micro-USD of equity around the boundary; the search
//! there walks down one 1e6-bucket of `k*m` at a time (at most `1e4 / (1e4 - mm) + 3` steps).

use super::arith::{self, BPS, MICROS};
use super::health::health;
use super::market::MarketMath;
use super::position::Position;
use crate::money::{Lots, Overflow, Price, Usd};

/// The liquidation price of `pos` backed by `collateral`.
///
/// Rounded conservatively, toward the current price side: for a long, the highest mark at which
/// [`health`] reports it liquidatable (every higher mark is safe); for a short, the
/// lowest such mark (every lower positive mark is safe). `None` when flat or when no mark in `1..=u64::MAX`
/// makes it liquidatable. A long liquidatable at every mark returns `Some(u64::MAX)` (where `health` itself
/// may overflow), a short `Some(1)`. `Overflow` when the boundary lies where the account's amounts do not fit
/// i64, so `health` could not be evaluated there either.
pub fn liquidation_price(math: &MarketMath, collateral: Usd, pos: &Position) -> Result<Option<Price>, Overflow> {
    if pos.is_flat() {
        return Ok(None);
    }
    let probe = Probe {
        k: arith::mul(i128::from(pos.size_lots), i128::from(math.lot_size()))?,
        c: i128::from(collateral.micros()) - i128::from(pos.entry_notional.micros()),
        mm_bps: i128::from(math.maintenance_margin_bps()),
    };
    let long = probe.k > 0;
    let boundary = if long { probe.long_boundary()? } else { probe.short_boundary()? };
    match boundary {
        Some(mark) if !(long && mark == u64::MAX) => {
            // A boundary where the account's amounts do not fit i64 is one no margin check can evaluate.
            let at = health(math, collateral, pos, Lots::ZERO, Lots::ZERO, Price::from_micros(mark))?;
            debug_assert!(at.liquidatable);
            Ok(Some(Price::from_micros(mark)))
        }
        other => Ok(other.map(Price::from_micros)),
    }
}

/// The liquidation predicate of one account, in i128 without narrowing to i64.
struct Probe {
    /// Signed size in base micro-units.
    k: i128,
    /// Collateral minus entry notional, micro-USD.
    c: i128,
    /// Maintenance margin, bps.
    mm_bps: i128,
}

impl Probe {
    /// `equity < maintenance requirement` at `mark`, with the same roundings as `health`.
    fn liquidatable(&self, mark: u64) -> Result<bool, Overflow> {
        let x = arith::mul(self.k, i128::from(mark))?;
        let equity = arith::add(self.c, arith::floor_div(x, MICROS))?;
        let required = arith::ceil_div(arith::mul(x.checked_abs().ok_or(Overflow)?, self.mm_bps)?, MICROS * BPS);
        Ok(equity < required)
    }

    /// Highest liquidatable mark of a long (`k > 0`).
    fn long_boundary(&self) -> Result<Option<u64>, Overflow> {
        let d = BPS - self.mm_bps;
        if d == 0 {
            return Ok(self.long_full_margin_boundary());
        }
        // equity - requirement is an integer in (h - 2, h] with h(m) = c + k*m*d/1e10, increasing in m:
        // every mark with h >= 1 is safe. Start from the highest mark with h < 1.
        if self.c >= 1 {
            return Ok(None);
        }
        let numerator = arith::mul(1 - self.c, MICROS * BPS)?;
        let denominator = arith::mul(self.k, d)?;
        let highest = (numerator - 1) / denominator;
        let mut mark = u64::try_from(highest).unwrap_or(u64::MAX);
        // Within one bucket of equal floor(k*m / 1e6) the predicate only turns true as m grows, so when the
        // highest candidate of a bucket is safe the whole bucket is; jump to the top of the bucket below.
        while mark >= 1 {
            if self.liquidatable(mark)? {
                return Ok(Some(mark));
            }
            let bucket = arith::floor_div(arith::mul(self.k, i128::from(mark))?, MICROS);
            let below = arith::floor_div(bucket * MICROS - 1, self.k);
            debug_assert!(below < i128::from(mark));
            mark = match u64::try_from(below) {
                Ok(m) => m,
                Err(_) => return Ok(None),
            };
        }
        Ok(None)
    }

    /// A long at 100% maintenance margin: `equity - requirement` is `c` or `c - 1` at every mark (the
    /// latter where `k*m / 1e6` is fractional), so it is liquidatable everywhere, nowhere, or up to the top.
    fn long_full_margin_boundary(&self) -> Option<u64> {
        let fractional = |m: u64| (self.k.rem_euclid(MICROS) * (i128::from(m) % MICROS)) % MICROS != 0;
        match self.c {
            c if c < 0 => Some(u64::MAX),
            0 => [u64::MAX, u64::MAX - 1].into_iter().find(|&m| fractional(m)),
            _ => None,
        }
    }

    /// Lowest liquidatable mark of a short (`k < 0`), by bisection of a monotone predicate.
    fn short_boundary(&self) -> Result<Option<u64>, Overflow> {
        if self.liquidatable(1)? {
            return Ok(Some(1));
        }
        // equity - requirement <= h(m) = c - |k|*m*(1e4 + mm)/1e10, so any mark with h < 0 is liquidatable.
        let per_mark = arith::mul(self.k.checked_abs().ok_or(Overflow)?, BPS + self.mm_bps)?;
        let above_root = arith::floor_div(arith::mul(self.c.max(0), MICROS * BPS)?, per_mark) + 1;
        let mut hi = match u64::try_from(above_root) {
            Ok(m) => m,
            Err(_) if self.liquidatable(u64::MAX)? => u64::MAX,
            Err(_) => return Ok(None),
        };
        debug_assert!(self.liquidatable(hi).unwrap_or(true));
        let mut lo = 1u64;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.liquidatable(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(Some(hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`health`] on raw integers, flat of orders.
    fn health(
        m: &MarketMath,
        collateral: i64,
        pos: &Position,
        _: u64,
        _: u64,
        mark: u64,
    ) -> Result<super::super::health::Health, Overflow> {
        super::health(m, Usd::from_micros(collateral), pos, Lots::ZERO, Lots::ZERO, Price::from_micros(mark))
    }

    /// [`liquidation_price`] on raw integers.
    fn liquidation_price(m: &MarketMath, collateral: i64, pos: &Position) -> Result<Option<u64>, Overflow> {
        super::liquidation_price(m, Usd::from_micros(collateral), pos).map(|p| p.map(Price::micros))
    }

    const USD: i64 = 1_000_000;

    fn btc() -> MarketMath {
        MarketMath::new(1_000, 1_000, 500).expect("valid market")
    }

    fn liquidatable(m: &MarketMath, collateral: i64, pos: &Position, mark: u64) -> bool {
        health(m, collateral, pos, 0, 0, mark).expect("fits").liquidatable
    }

    /// Not liquidatable, or health does not fit i64 at that mark.
    fn safe_or_overflow(m: &MarketMath, collateral: i64, pos: &Position, mark: u64) -> bool {
        health(m, collateral, pos, 0, 0, mark).map_or(true, |h| !h.liquidatable)
    }

    #[test]
    fn worked_example_long() {
        // Long 10 lots (0.01 BTC) from 100k with 150 USD: equity = 150 + 0.01*(m - 100k) USD equals
        // MM = 0.05 * 0.01 * m at m = 850 / 0.0095 = 89,473.684210... USD. Equity moves one micro-USD
        // per 100 micro-USD of mark and the requirement rounds up, so the highest liquidatable mark is
        // 89 ticks above the exact root.
        let pos = Position { size_lots: 10, entry_notional: Usd::from_micros(1_000 * USD) };
        let liq = liquidation_price(&btc(), 150 * USD, &pos).expect("fits").expect("liquidatable");
        assert_eq!(liq, 89_473_684_299);
        assert!(liquidatable(&btc(), 150 * USD, &pos, liq));
        assert!(!liquidatable(&btc(), 150 * USD, &pos, liq + 1));
    }

    #[test]
    fn worked_example_short() {
        // Short 10 lots from 100k with 150 USD: 150 - 0.01*(m - 100k) = 0.0005 m at m = 1150 / 0.0105 USD
        // = 109,523.809523... USD; with the short's liability and the requirement both rounded up, the
        // lowest liquidatable mark is 22 ticks below the exact root.
        let pos = Position { size_lots: -10, entry_notional: Usd::from_micros(-1_000 * USD) };
        let liq = liquidation_price(&btc(), 150 * USD, &pos).expect("fits").expect("liquidatable");
        assert_eq!(liq, 109_523_809_501);
        assert!(liquidatable(&btc(), 150 * USD, &pos, liq));
        assert!(!liquidatable(&btc(), 150 * USD, &pos, liq - 1));
    }

    #[test]
    fn flat_and_fully_backed_longs_have_none() {
        assert_eq!(liquidation_price(&btc(), 0, &Position::FLAT), Ok(None));
        let pos = Position { size_lots: 10, entry_notional: Usd::from_micros(1_000 * USD) };
        assert_eq!(liquidation_price(&btc(), 1_000 * USD + 1, &pos), Ok(None));
        // Backed exactly: only dust marks (equity 0, requirement rounded up to 1 micro-USD) liquidate it.
        assert_eq!(liquidation_price(&btc(), 1_000 * USD, &pos), Ok(Some(99)));
        // Underwater short: liquidatable at every positive mark.
        let short = Position { size_lots: -10, entry_notional: Usd::from_micros(-1_000 * USD) };
        assert_eq!(liquidation_price(&btc(), -1_001 * USD, &short), Ok(Some(1)));
    }

    #[test]
    fn a_boundary_beyond_i64_amounts_is_an_error() {
        // 1.05e16 base micro-units (about 1e10 whole units): at the boundary the notional exceeds i64.
        let m = MarketMath::new(207_868_226, 9_056, 9_052).expect("valid market");
        let mut pos = Position::FLAT;
        pos.apply_fill(&m, 50_724_171, Price::from_micros(91_643_770)).expect("fits");
        assert_eq!(liquidation_price(&m, 710_548_693_660, &pos), Err(Overflow));
    }

    /// Differential check against a scan of every mark in `1..=SCAN`, over a grid that puts many
    /// boundaries inside the scan and includes longs whose predicate flickers below the boundary.
    #[test]
    fn matches_a_brute_force_scan() {
        const SCAN: u64 = 10_000;
        let (mut in_range, mut flickering) = (0, 0);
        for lot in [999_983u64, 1_000_000, 3_000_017, 250_001] {
            for mm in [1u32, 500, 9_000, 9_999, 10_000] {
                let m = MarketMath::new(lot, mm, mm).expect("valid market");
                for size in [-3i64, -1, 1, 2] {
                    for entry_price in [1u64, 7, 5_000] {
                        for collateral in [-3i64, 0, 1, 2, 50, 700, 4_000] {
                            let entry = m.notional(size, Price::from_micros(entry_price)).expect("fits");
                            let pos = Position { size_lots: size, entry_notional: entry };
                            let ctx = format!("lot {lot} mm {mm} {pos:?} collateral {collateral}");
                            let got = liquidation_price(&m, collateral, &pos).expect("fits");
                            let scan: Vec<u64> =
                                (1..=SCAN).filter(|&p| liquidatable(&m, collateral, &pos, p)).collect();
                            match got {
                                Some(l) if l <= SCAN => {
                                    in_range += 1;
                                    let expected = if size > 0 { scan.last() } else { scan.first() };
                                    assert_eq!(Some(l), expected.copied(), "{ctx}");
                                    if size > 0 && scan.len() < usize::try_from(l).expect("small") {
                                        flickering += 1;
                                    }
                                }
                                Some(l) if size > 0 => {
                                    // Some(u64::MAX) may be past where health fits i64.
                                    let at = health(&m, collateral, &pos, 0, 0, l);
                                    assert!(at.map_or(l == u64::MAX, |h| h.liquidatable), "{ctx}: {l}");
                                    assert!(l == u64::MAX || safe_or_overflow(&m, collateral, &pos, l + 1), "{ctx}");
                                }
                                Some(_) | None => assert!(scan.is_empty(), "{ctx}: {got:?}"),
                            }
                        }
                    }
                }
            }
        }
        assert!(in_range >= 1_000 && flickering >= 10, "grid too weak: {in_range} in range, {flickering} flickering");
    }
}
