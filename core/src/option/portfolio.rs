//! Portfolio margin: the cash an account's option positions need so that, in the worst of a grid of spot and
//! volatility shocks, its collateral still covers what the positions would then be worth against it.
//!
//! The grid is 15 scenarios: spot moved by −100%, −50%, 0, +50% and +100% of `spot_shock_bps`, each with the
//! volatility of every strike raised by `vol_up_bps` (relative), unchanged, or lowered by `vol_down_bps`,
//! within the market's volatility bounds. In each scenario the portfolio is valued with Black-76 at the
//! shocked inputs (an expired series at its intrinsic value); a long is valued at the floor of its price
//! and a short at one micro-USD above, so every value leans against the account.
//!
//! Maintenance is the largest amount the portfolio is worth *against* the account in any scenario (0 if it
//! is worth something in all of them), plus a contingency of `contingency_bps` of spot per unit of
//! underlying sold short, so that a portfolio of offsetting shorts is never free. Initial is maintenance
//! scaled by `im_scale_bps`. Premiums are already in collateral, so a long option lends nothing by itself:
//! its value only offsets the shorts' in the same scenario, which is how a spread, a calendar or a
//! straddle's hedge is recognised without a rule for each. Every amount is rounded up.

use super::{
    black76::{Inputs, MAX_PRICE_MICROS},
    margin::{Overflow, Requirement},
};

/// Scenarios in the grid.
pub const SCENARIOS: usize = 15;
/// Spot steps of the grid, in halves of the spot shock.
const SPOT_STEPS: [i64; 5] = [-2, -1, 0, 1, 2];
/// Largest `spot_shock_bps`: 50%.
pub const MAX_SPOT_SHOCK_BPS: u32 = 5_000;
/// Smallest non-zero `spot_shock_bps`: 1%.
pub const MIN_SPOT_SHOCK_BPS: u32 = 100;
/// Largest `im_scale_bps`: three times maintenance.
pub const MAX_IM_SCALE_BPS: u32 = 30_000;

const BPS: i128 = 10_000;
const MICROS: i128 = 1_000_000;

/// The shocks and scales of portfolio margin, from the market's options parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shocks {
    /// The largest spot move of the grid, basis points of spot (e.g. 2,000 = ±20%).
    pub spot_shock_bps: u32,
    /// Volatility raised by this share of itself in the up scenarios, basis points (e.g. 5,000 = ×1.5).
    pub vol_up_bps: u32,
    /// Volatility lowered by this share of itself in the down scenarios, basis points (below 10,000).
    pub vol_down_bps: u32,
    /// Volatility bounds of the market: shocked volatility stays within them.
    pub min_vol_ppm: u32,
    /// See `min_vol_ppm`.
    pub max_vol_ppm: u32,
    /// Contingency per unit of underlying short, basis points of spot.
    pub contingency_bps: u32,
    /// Initial margin as a multiple of maintenance, basis points (at least 10,000).
    pub im_scale_bps: u32,
}

impl Shocks {
    /// Checks the shocks are usable: the spot shock 1% to 50%, volatility down below 100%, the initial
    /// scale 1× to 3×, the contingency at most 100% of spot.
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_SPOT_SHOCK_BPS..=MAX_SPOT_SHOCK_BPS).contains(&self.spot_shock_bps) {
            return Err(format!("pm_spot_shock_bps must be {MIN_SPOT_SHOCK_BPS} to {MAX_SPOT_SHOCK_BPS} (or 0: off)"));
        }
        if self.vol_down_bps >= 10_000 || self.vol_up_bps > 100_000 {
            return Err("pm_vol_down_bps must be below 10000 and pm_vol_up_bps at most 100000".into());
        }
        if !(10_000..=MAX_IM_SCALE_BPS).contains(&self.im_scale_bps) {
            return Err(format!("pm_im_scale_bps must be 10000 to {MAX_IM_SCALE_BPS}"));
        }
        if self.contingency_bps > 10_000 {
            return Err("pm_contingency_bps must be at most 10000".into());
        }
        Ok(())
    }

    /// The spot of scenario `i` (0 to [`SCENARIOS`] − 1) from `spot_micros`, rounded down, within the
    /// pricer's domain.
    pub fn spot(&self, i: usize, spot_micros: u64) -> u64 {
        let step = SPOT_STEPS[(i / 3) % SPOT_STEPS.len()];
        let bps = BPS + i128::from(step) * i128::from(self.spot_shock_bps) / 2;
        let shocked = i128::from(spot_micros) * bps / BPS;
        u64::try_from(shocked.clamp(1, i128::from(MAX_PRICE_MICROS))).unwrap_or(MAX_PRICE_MICROS)
    }

    /// The volatility of scenario `i` from `vol_ppm`: up, unchanged or down, within the market's bounds.
    pub fn vol(&self, i: usize, vol_ppm: u32) -> u32 {
        let v = i128::from(vol_ppm);
        let shocked = match i % 3 {
            0 => v + v * i128::from(self.vol_up_bps) / BPS,
            1 => v,
            _ => v - v * i128::from(self.vol_down_bps) / BPS,
        };
        let (lo, hi) = (i128::from(self.min_vol_ppm), i128::from(self.max_vol_ppm.max(self.min_vol_ppm)));
        u32::try_from(shocked.clamp(lo, hi)).unwrap_or(self.max_vol_ppm)
    }

    /// The Black-76 inputs of scenario `i` for `base` (the unshocked inputs).
    pub fn inputs(&self, i: usize, base: &Inputs) -> Inputs {
        Inputs { forward_micros: self.spot(i, base.forward_micros), vol_ppm: self.vol(i, base.vol_ppm), ..*base }
    }
}

/// One position valued in every scenario: lots (negative short) and the floor of its price per unit of
/// underlying in each scenario, micro-USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioLeg {
    /// Lots, negative when short.
    pub lots: i64,
    /// Price per unit in scenario `i`, micro-USD, rounded down.
    pub values: [u64; SCENARIOS],
}

fn ceil_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b) + i128::from(a.rem_euclid(b) != 0)
}

/// The portfolio requirement of `legs` at `spot_micros`, for lots of `lot_size` base micro-units.
pub fn requirement(
    legs: &[ScenarioLeg],
    spot_micros: u64,
    lot_size: u64,
    shocks: &Shocks,
) -> Result<Requirement, Overflow> {
    let mut worth = [0i128; SCENARIOS];
    let mut short_units: i128 = 0;
    for leg in legs.iter().filter(|l| l.lots != 0) {
        let size = i128::from(leg.lots).checked_mul(i128::from(lot_size)).ok_or(Overflow)?;
        // A short is valued one micro-USD above its floor price: against the account.
        let lean = i128::from(leg.lots < 0);
        for (w, value) in worth.iter_mut().zip(leg.values) {
            let v = size.checked_mul(i128::from(value) + lean).ok_or(Overflow)?;
            *w = w.checked_add(v).ok_or(Overflow)?;
        }
        if leg.lots < 0 {
            short_units = short_units.checked_add(-size).ok_or(Overflow)?;
        }
    }
    // Values are micro-USD × 10^6 (lot sizes are in millionths of a unit).
    let worst = worth.iter().map(|w| -w).max().unwrap_or(0).max(0);
    let contingency = short_units
        .checked_mul(i128::from(spot_micros))
        .and_then(|v| v.checked_mul(i128::from(shocks.contingency_bps)))
        .ok_or(Overflow)?;
    let maintenance = ceil_div(worst, MICROS) + ceil_div(contingency, MICROS * BPS);
    let initial = ceil_div(maintenance.checked_mul(i128::from(shocks.im_scale_bps)).ok_or(Overflow)?, BPS);
    let to_usd = |v: i128| i64::try_from(v).map(crate::money::Usd::from_micros).map_err(|_| Overflow);
    Ok(Requirement { initial: to_usd(initial)?, maintenance: to_usd(maintenance)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option::{
        black76,
        margin::{self, Leg, Rates},
        series::{OptionKind, SeriesId},
    };

    const USD: u64 = 1_000_000;
    /// Lots of 0.001 of the underlying: 1,000 lots are one unit.
    const LOT: u64 = 1_000;
    const DAY_MS: u64 = 86_400_000;
    const SHOCKS: Shocks = Shocks {
        spot_shock_bps: 2_000,
        vol_up_bps: 5_000,
        vol_down_bps: 2_500,
        min_vol_ppm: 10_000,
        max_vol_ppm: 5_000_000,
        contingency_bps: 100,
        im_scale_bps: 12_500,
    };

    fn grid(strike_usd: u64, kind: OptionKind, spot_usd: u64, vol_ppm: u32, tau_ms: u64) -> [u64; SCENARIOS] {
        let base = Inputs { forward_micros: spot_usd * USD, strike_micros: strike_usd * USD, vol_ppm, tau_ms };
        std::array::from_fn(|i| {
            let q = black76::quote(&SHOCKS.inputs(i, &base)).expect("in domain");
            if kind == OptionKind::Call {
                q.call_micros
            } else {
                q.put_micros
            }
        })
    }

    #[test]
    fn the_grid_moves_spot_and_volatility_as_documented() {
        let spots: Vec<u64> = (0..SCENARIOS).step_by(3).map(|i| SHOCKS.spot(i, 2_000 * USD) / USD).collect();
        assert_eq!(spots, [1_600, 1_800, 2_000, 2_200, 2_400]);
        let vols: Vec<u32> = (0..3).map(|i| SHOCKS.vol(i, 800_000)).collect();
        assert_eq!(vols, [1_200_000, 800_000, 600_000]);
        // Within the market's bounds, and the spot within the pricer's domain.
        assert_eq!(SHOCKS.vol(0, 4_000_000), 5_000_000);
        assert_eq!(SHOCKS.vol(2, 12_000), 10_000);
        assert_eq!(SHOCKS.spot(0, 1), 1);
        assert_eq!(SHOCKS.spot(14, MAX_PRICE_MICROS), MAX_PRICE_MICROS);
    }

    /// Hand-checked with intrinsic values (zero time left), spot $2,000, one unit.
    #[test]
    fn a_short_needs_its_worst_value_plus_the_contingency() {
        let short_call = ScenarioLeg { lots: -1_000, values: grid(2_000, OptionKind::Call, 2_000, 500_000, 0) };
        let r = requirement(&[short_call], 2_000 * USD, LOT, &SHOCKS).expect("in range");
        // Worst at +20%: the call is worth $400 (+1 micro-USD against the account); contingency 1% of spot.
        assert_eq!(r.maintenance.micros(), (400 * USD + 1 + 20 * USD) as i64);
        assert_eq!(r.initial.micros(), ((400 * USD + 1 + 20 * USD) * 5).div_ceil(4) as i64);
        // Longs alone need nothing.
        let long = ScenarioLeg { lots: 3_000, ..short_call };
        assert_eq!(requirement(&[long], 2_000 * USD, LOT, &SHOCKS), Ok(Requirement::default()));
        assert_eq!(requirement(&[], 2_000 * USD, LOT, &SHOCKS), Ok(Requirement::default()));
    }

    #[test]
    fn offsetting_legs_are_margined_together() {
        let vol = 700_000;
        let leg = |strike, kind, lots, tau| ScenarioLeg { lots, values: grid(strike, kind, 2_000, vol, tau) };
        let pm = |legs: &[ScenarioLeg]| requirement(legs, 2_000 * USD, LOT, &SHOCKS).expect("in range");
        let (week, month) = (7 * DAY_MS, 30 * DAY_MS);
        // A call spread: at most its $100 width plus the contingency of the short leg, whatever the grid.
        let spread = pm(&[leg(2_000, OptionKind::Call, -1_000, month), leg(2_100, OptionKind::Call, 1_000, month)]);
        assert!(spread.maintenance.micros() <= (100 * USD + 20 * USD + 1) as i64, "{spread:?}");
        assert!(spread.maintenance.micros() > (20 * USD) as i64, "{spread:?}");
        // A calendar: the short week call is covered by the long month call at the same strike. The standard
        // rule sees a naked short (the legs are in different expiries); the grid sees the hedge.
        let calendar = pm(&[leg(2_000, OptionKind::Call, -1_000, week), leg(2_000, OptionKind::Call, 1_000, month)]);
        let rates = Rates { im_spot_max_bps: 1_500, im_spot_min_bps: 1_000, mm_spot_bps: 750, mm_put_mark_bps: 750 };
        let standard_leg = |expiry_ms, tau, lots| Leg {
            series: SeriesId { expiry_ms, strike_micros: 2_000 * USD, kind: OptionKind::Call },
            lots,
            mark_micros: grid(2_000, OptionKind::Call, 2_000, vol, tau)[7] + 1,
        };
        let standard = margin::requirement(
            &[standard_leg(1, week, -1_000), standard_leg(2, month, 1_000)],
            2_000 * USD,
            LOT,
            &rates,
        )
        .expect("in range");
        assert!(calendar.maintenance.micros() * 3 < standard.maintenance.micros(), "{calendar:?} vs {standard:?}");
        // Adding a long put to a short put lowers the requirement.
        let naked = pm(&[leg(1_900, OptionKind::Put, -1_000, month)]);
        let hedged = pm(&[leg(1_900, OptionKind::Put, -1_000, month), leg(1_800, OptionKind::Put, 1_000, month)]);
        assert!(hedged.maintenance.micros() < naked.maintenance.micros(), "{hedged:?} vs {naked:?}");
    }

    #[test]
    fn the_shocks_are_checked() {
        assert_eq!(SHOCKS.check(), Ok(()));
        for bad in [
            Shocks { spot_shock_bps: 99, ..SHOCKS },
            Shocks { spot_shock_bps: 5_001, ..SHOCKS },
            Shocks { vol_down_bps: 10_000, ..SHOCKS },
            Shocks { im_scale_bps: 9_999, ..SHOCKS },
            Shocks { im_scale_bps: 30_001, ..SHOCKS },
            Shocks { contingency_bps: 10_001, ..SHOCKS },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = ScenarioLeg { lots: i64::MIN, values: [u64::MAX; SCENARIOS] };
        assert_eq!(requirement(&[huge, huge], u64::MAX, u64::MAX, &SHOCKS), Err(Overflow));
    }
}
