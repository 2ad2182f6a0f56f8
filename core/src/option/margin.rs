//! Standard margin of an account's option positions, in the shape every venue shares: a short option needs
//! a share of spot (less how far it is out of the money, down to a floor) plus its mark; a long option
//! needs nothing and lends nothing (its value is not equity). Per expiry, an account whose short calls are
//! all covered by long calls needs no more than its worst loss at expiry, so a spread is margined at its
//! maximum loss. Every amount is rounded up: a requirement is never understated.
//!
//! Per unit of underlying, with spot S, strike K and mark m (micro-USD):
//! - short call: initial max(im_max·S − (K − S)⁺, im_min·S) + m; maintenance mm·S + m;
//! - short put: initial max(im_max·S − (S − K)⁺, im_min·S, maintenance); maintenance max(mm·S, mm_mark·m) + m.
//!
//! Per expiry, when the calls are net long or flat, the requirement is the lesser of the sum above and the
//! largest loss of the expiry's positions if it settled at 0 or at any of their strikes (between strikes
//! the payoff is linear, and above the highest it does not fall when calls are net long or flat).

use std::collections::BTreeMap;

use super::series::{OptionKind, SeriesId};
use crate::money::Usd;

/// Margin rates, basis points (of spot, or of the mark for `mm_put_mark_bps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Initial margin of a short at the money, of spot (e.g. 1,500 = 15%).
    pub im_spot_max_bps: u32,
    /// Least initial margin of a short however far out of the money, of spot (e.g. 1,000).
    pub im_spot_min_bps: u32,
    /// Maintenance of a short, of spot (e.g. 750).
    pub mm_spot_bps: u32,
    /// Least maintenance of a short put, of its mark (e.g. 750).
    pub mm_put_mark_bps: u32,
}

/// One position: its series, size in lots (negative short) and mark in micro-USD per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// The series.
    pub series: SeriesId,
    /// Lots, negative when short.
    pub lots: i64,
    /// Mark, micro-USD per unit of underlying.
    pub mark_micros: u64,
}

/// Initial and maintenance requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Requirement {
    /// Needed to add risk.
    pub initial: Usd,
    /// Below this equity the account is liquidatable.
    pub maintenance: Usd,
}

/// An amount too large for the margin arithmetic (the caller refuses the op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("option margin overflows")]
pub struct Overflow;

const BPS: i128 = 10_000;
const MICROS: i128 = 1_000_000;

fn ceil_div(a: i128, b: i128) -> i128 {
    // b > 0 at every call site.
    a.div_euclid(b) + i128::from(a.rem_euclid(b) != 0)
}

fn share(bps: u32, of: u64) -> i128 {
    ceil_div(i128::from(bps) * i128::from(of), BPS)
}

/// Per unit of underlying: (initial, maintenance) of a short, micro-USD.
fn short_unit(kind: OptionKind, strike: u64, spot: u64, mark: u64, r: &Rates) -> (i128, i128) {
    let (k, s, m) = (i128::from(strike), i128::from(spot), i128::from(mark));
    let out_of_money = match kind {
        OptionKind::Call => (k - s).max(0),
        OptionKind::Put => (s - k).max(0),
    };
    let initial = (share(r.im_spot_max_bps, spot) - out_of_money).max(share(r.im_spot_min_bps, spot)) + m;
    match kind {
        OptionKind::Call => (initial, share(r.mm_spot_bps, spot) + m),
        OptionKind::Put => {
            let maintenance = share(r.mm_spot_bps, spot).max(share(r.mm_put_mark_bps, mark)) + m;
            (initial.max(maintenance), maintenance)
        }
    }
}

/// `per_unit · |lots| · lot_size / 10^6`, rounded up.
fn amount(per_unit: i128, lots: i64, lot_size: u64) -> Result<i128, Overflow> {
    let scaled = per_unit
        .checked_mul(i128::from(lots.unsigned_abs()))
        .and_then(|v| v.checked_mul(i128::from(lot_size)))
        .ok_or(Overflow)?;
    Ok(ceil_div(scaled, MICROS))
}

/// The payoff of `legs` (one expiry) if it settled at `price`, micro-USD ·10^6 (exact).
fn payoff_scaled(legs: &[&Leg], price: u64, lot_size: u64) -> Result<i128, Overflow> {
    legs.iter().try_fold(0i128, |sum, leg| {
        let value = i128::from(leg.series.intrinsic_micros(price))
            .checked_mul(i128::from(leg.lots))
            .and_then(|v| v.checked_mul(i128::from(lot_size)))
            .ok_or(Overflow)?;
        sum.checked_add(value).ok_or(Overflow)
    })
}

/// The standard requirement of `legs` (any order, one per series) at `spot_micros`, for lots of
/// `lot_size` base micro-units.
pub fn requirement(legs: &[Leg], spot_micros: u64, lot_size: u64, rates: &Rates) -> Result<Requirement, Overflow> {
    let mut by_expiry: BTreeMap<u64, Vec<&Leg>> = BTreeMap::new();
    for leg in legs.iter().filter(|l| l.lots != 0) {
        by_expiry.entry(leg.series.expiry_ms).or_default().push(leg);
    }
    let (mut initial, mut maintenance) = (0i128, 0i128);
    for legs in by_expiry.values() {
        let (mut im, mut mm) = (0i128, 0i128);
        for leg in legs.iter().filter(|l| l.lots < 0) {
            let (i, m) = short_unit(leg.series.kind, leg.series.strike_micros, spot_micros, leg.mark_micros, rates);
            im = im.checked_add(amount(i, leg.lots, lot_size)?).ok_or(Overflow)?;
            mm = mm.checked_add(amount(m, leg.lots, lot_size)?).ok_or(Overflow)?;
        }
        let net_calls: i128 =
            legs.iter().filter(|l| l.series.kind == OptionKind::Call).map(|l| i128::from(l.lots)).sum();
        if net_calls >= 0 {
            let mut worst = 0i128;
            for price in std::iter::once(0).chain(legs.iter().map(|l| l.series.strike_micros)) {
                worst = worst.max(-payoff_scaled(legs, price, lot_size)?);
            }
            let max_loss = ceil_div(worst, MICROS);
            (im, mm) = (im.min(max_loss), mm.min(max_loss));
        }
        initial = initial.checked_add(im).ok_or(Overflow)?;
        maintenance = maintenance.checked_add(mm).ok_or(Overflow)?;
    }
    let to_usd = |v: i128| i64::try_from(v).map(Usd::from_micros).map_err(|_| Overflow);
    Ok(Requirement { initial: to_usd(initial)?, maintenance: to_usd(maintenance)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: u64 = 1_000_000;
    /// Lots of 0.001 of the underlying.
    const LOT: u64 = 1_000;
    const RATES: Rates =
        Rates { im_spot_max_bps: 1_500, im_spot_min_bps: 1_000, mm_spot_bps: 750, mm_put_mark_bps: 750 };

    fn leg(expiry_ms: u64, strike_usd: u64, kind: OptionKind, lots: i64, mark_usd: u64) -> Leg {
        Leg { series: SeriesId { expiry_ms, strike_micros: strike_usd * USD, kind }, lots, mark_micros: mark_usd * USD }
    }

    fn req(legs: &[Leg], spot_usd: u64) -> (i64, i64) {
        let r = requirement(legs, spot_usd * USD, LOT, &RATES).expect("in range");
        (r.initial.micros(), r.maintenance.micros())
    }

    /// Hand-checked: spot $2,000, 1,000 lots = 1 unit of underlying.
    #[test]
    fn naked_shorts_need_a_share_of_spot_plus_their_mark() {
        // Short call K 2,200 (10% out of the money), mark $40: IM max(300 − 200, 200) + 40 = $240;
        // MM 150 + 40 = $190.
        assert_eq!(req(&[leg(1, 2_200, OptionKind::Call, -1_000, 40)], 2_000), (240 * USD as i64, 190 * USD as i64));
        // At the money, mark $80: IM 300 + 80 = $380, MM 150 + 80 = $230.
        assert_eq!(req(&[leg(1, 2_000, OptionKind::Call, -1_000, 80)], 2_000), (380 * USD as i64, 230 * USD as i64));
        // Short put K 1,800, mark $30: IM max(300 − 200, 200) + 30 = $230 (above MM 150 + 30 = 180);
        // its max loss (settling at 0) is $1,800, more, so the isolated rule stands.
        assert_eq!(req(&[leg(1, 1_800, OptionKind::Put, -1_000, 30)], 2_000), (230 * USD as i64, 180 * USD as i64));
        // Half a unit short: half of each, rounded up.
        assert_eq!(req(&[leg(1, 2_200, OptionKind::Call, -500, 40)], 2_000), (120 * USD as i64, 95 * USD as i64));
        // Longs need nothing.
        assert_eq!(
            req(&[leg(1, 2_000, OptionKind::Call, 3_000, 80), leg(1, 1_500, OptionKind::Put, 7, 1)], 2_000),
            (0, 0)
        );
    }

    #[test]
    fn a_covered_spread_needs_at_most_its_maximum_loss() {
        // Short the 2,000 call, long the 2,100 call: worst loss at expiry is $100 per unit, less than the
        // naked short's $380.
        let spread = [leg(9, 2_000, OptionKind::Call, -1_000, 80), leg(9, 2_100, OptionKind::Call, 1_000, 50)];
        assert_eq!(req(&spread, 2_000), (100 * USD as i64, 100 * USD as i64));
        // A put spread: short 1,900 put, long 1,850 put: $50.
        let puts = [leg(9, 1_900, OptionKind::Put, -2_000, 40), leg(9, 1_850, OptionKind::Put, 2_000, 25)];
        assert_eq!(req(&puts, 2_000), (100 * USD as i64, 100 * USD as i64));
        // The same legs in different expiries are no spread: each short is naked.
        let apart = [leg(9, 2_000, OptionKind::Call, -1_000, 80), leg(10, 2_100, OptionKind::Call, 1_000, 50)];
        assert_eq!(req(&apart, 2_000), (380 * USD as i64, 230 * USD as i64));
        // More short calls than long: the upside is unbounded, so the cap does not apply.
        let unpaired = [leg(9, 2_000, OptionKind::Call, -2_000, 80), leg(9, 2_100, OptionKind::Call, 1_000, 50)];
        assert_eq!(req(&unpaired, 2_000), (760 * USD as i64, 460 * USD as i64));
        // A short put's worst loss (settling at 0) is its strike: more than the isolated rule, which stands.
        // A flat leg counts for nothing.
        let put = [leg(9, 2_000, OptionKind::Call, 0, 80), leg(9, 2_000, OptionKind::Put, -1_000, 80)];
        assert_eq!(req(&put, 2_000), (380 * USD as i64, 230 * USD as i64));
    }

    #[test]
    fn rounding_is_up_and_overflow_is_an_error() {
        // A requirement of a fraction of a micro-USD is one micro-USD.
        let tiny = [Leg {
            series: SeriesId { expiry_ms: 1, strike_micros: 3, kind: OptionKind::Call },
            lots: -1,
            mark_micros: 1,
        }];
        let r = requirement(&tiny, 3, LOT, &RATES).expect("in range");
        assert_eq!((r.initial.micros(), r.maintenance.micros()), (1, 1));
        let huge = [leg(1, 10_000_000, OptionKind::Call, i64::MIN + 1, 10_000_000)];
        assert_eq!(requirement(&huge, 10_000_000 * USD, u64::MAX, &RATES), Err(Overflow));
    }

    proptest::proptest! {
        /// Initial covers maintenance, and buying an option never raises the requirement (it adds no short
        /// and can only lessen the worst loss).
        #[test]
        fn a_long_never_adds_margin(
            legs in proptest::collection::vec(
                (0u64..3, 1u64..40, proptest::bool::ANY, -5_000i64..5_000, 0u64..500),
                1..8,
            ),
            extra in (0u64..3, 1u64..40, proptest::bool::ANY, 1i64..5_000, 0u64..500),
            spot in 500u64..4_000,
        ) {
            let make = |(e, k, call, lots, mark): (u64, u64, bool, i64, u64)| {
                leg(e, k * 100, if call { OptionKind::Call } else { OptionKind::Put }, lots, mark)
            };
            let mut legs: Vec<Leg> = legs.into_iter().map(make).collect();
            legs.sort_by_key(|l| l.series);
            legs.dedup_by_key(|l| l.series);
            let before = requirement(&legs, spot * USD, LOT, &RATES).expect("in range");
            proptest::prop_assert!(before.initial.micros() >= before.maintenance.micros());
            proptest::prop_assert!(before.maintenance.micros() >= 0);
            let long = make(extra);
            let after = match legs.iter_mut().find(|l| l.series == long.series) {
                Some(l) => { l.lots += long.lots; requirement(&legs, spot * USD, LOT, &RATES) }
                None => { legs.push(long); requirement(&legs, spot * USD, LOT, &RATES) }
            }.expect("in range");
            proptest::prop_assert!(after.initial.micros() <= before.initial.micros(), "{before:?} -> {after:?}");
            proptest::prop_assert!(after.maintenance.micros() <= before.maintenance.micros(), "{before:?} -> {after:?}");
        }
    }
}
