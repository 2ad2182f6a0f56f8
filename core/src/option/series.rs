//! Option series and expiries: their ids and state keys, the checks of a listing and of a volatility update
//! against the market's [`pb::OptionsParams`], and volatility by strike. Pure: the VM stores, this decides.

use alloy_primitives::B256;

use super::black76::{MAX_PRICE_MICROS, MAX_TAU_MS, MAX_VOL_PPM};
use crate::{
    pb,
    state_key::{leaf_key, Namespace},
};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionKind {
    /// The right to buy at the strike.
    Call = 1,
    /// The right to sell at the strike.
    Put = 2,
}

impl OptionKind {
    /// The kind a wire value names (`OPTION_KIND_UNSPECIFIED` and unknown values name none).
    pub fn from_pb(value: i32) -> Option<Self> {
        match pb::OptionKind::try_from(value) {
            Ok(pb::OptionKind::Call) => Some(Self::Call),
            Ok(pb::OptionKind::Put) => Some(Self::Put),
            _ => None,
        }
    }

    /// The wire value.
    pub fn to_pb(self) -> pb::OptionKind {
        match self {
            Self::Call => pb::OptionKind::Call,
            Self::Put => pb::OptionKind::Put,
        }
    }
}

/// One series: expiry, strike and kind. Its name is its id, so listing it twice is caught by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesId {
    /// Expiry, ms since the Unix epoch.
    pub expiry_ms: u64,
    /// Strike, micro-USD per unit.
    pub strike_micros: u64,
    /// Call or put.
    pub kind: OptionKind,
}

/// Bytes of a series id: expiry (u64 BE) ‖ strike (u64 BE) ‖ kind (1 call, 2 put).
pub const SERIES_ID_LEN: usize = 17;

impl SeriesId {
    /// The id bytes (see [`SERIES_ID_LEN`]); they sort like the series.
    pub fn to_bytes(&self) -> [u8; SERIES_ID_LEN] {
        let mut out = [0u8; SERIES_ID_LEN];
        out[..8].copy_from_slice(&self.expiry_ms.to_be_bytes());
        out[8..16].copy_from_slice(&self.strike_micros.to_be_bytes());
        out[16] = self.kind as u8;
        out
    }

    /// The series of id bytes, if they are one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; SERIES_ID_LEN] = bytes.try_into().ok()?;
        let kind = match bytes[16] {
            1 => OptionKind::Call,
            2 => OptionKind::Put,
            _ => return None,
        };
        let word = |at: usize| bytes[at..at + 8].try_into().map(u64::from_be_bytes).ok();
        Some(Self { expiry_ms: word(0)?, strike_micros: word(8)?, kind })
    }

    /// Its intrinsic value, micro-USD per unit, if it settled at `price_micros`: (S − K)⁺ for a call,
    /// (K − S)⁺ for a put.
    pub fn intrinsic_micros(&self, price_micros: u64) -> u64 {
        match self.kind {
            OptionKind::Call => price_micros.saturating_sub(self.strike_micros),
            OptionKind::Put => self.strike_micros.saturating_sub(price_micros),
        }
    }

    /// Its place in its expiry's series list.
    pub fn series_ref(&self) -> pb::SeriesRef {
        pb::SeriesRef { strike_micros: self.strike_micros, kind: self.kind.to_pb() as i32 }
    }
}

impl std::fmt::Display for SeriesId {
    /// `EXPIRY_MS:STRIKE_USD:call` (or `put`), the strike without trailing zero decimals: the form
    /// [`SeriesId::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (whole, frac) = (self.strike_micros / 1_000_000, self.strike_micros % 1_000_000);
        let kind = if self.kind == OptionKind::Call { "call" } else { "put" };
        match frac {
            0 => write!(f, "{}:{whole}:{kind}", self.expiry_ms),
            _ => {
                let decimals = format!("{frac:06}");
                write!(f, "{}:{whole}.{}:{kind}", self.expiry_ms, decimals.trim_end_matches('0'))
            }
        }
    }
}

impl SeriesId {
    /// Reads `EXPIRY_MS:STRIKE_USD:call|put` (e.g. `1700006400000:2000:call`; the strike may have up to six
    /// decimals), or the id's 34 hex digits.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(bytes) = hex::decode(s.trim_start_matches("0x")) {
            if let Some(id) = Self::from_bytes(&bytes) {
                return Ok(id);
            }
        }
        let mut parts = s.split(':');
        let (Some(expiry), Some(strike), Some(kind), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("series {s:?}: expected EXPIRY_MS:STRIKE_USD:call|put"));
        };
        let expiry_ms = expiry.parse().map_err(|e| format!("series {s:?}: expiry: {e}"))?;
        let strike_micros = crate::money::parse_usd(strike).map_err(|e| format!("series {s:?}: strike: {e}"))?;
        let kind = match kind.to_ascii_lowercase().as_str() {
            "call" | "c" => OptionKind::Call,
            "put" | "p" => OptionKind::Put,
            other => return Err(format!("series {s:?}: kind {other:?} is neither call nor put")),
        };
        Ok(Self { expiry_ms, strike_micros, kind })
    }
}

/// The leaf key of the option chain record.
pub fn chain_key() -> B256 {
    leaf_key(Namespace::OptionChain, &[])
}

/// The leaf key of an expiry's record.
pub fn expiry_key(expiry_ms: u64) -> B256 {
    leaf_key(Namespace::Expiry, &expiry_ms.to_be_bytes())
}

/// The leaf key of a series' record.
pub fn series_key(series: &SeriesId) -> B256 {
    leaf_key(Namespace::Series, &series.to_bytes())
}

/// The leaf key of `account`'s position in `series`.
pub fn position_key(account: &crate::AccountId, series: &SeriesId) -> B256 {
    let mut id = [0u8; 32 + SERIES_ID_LEN];
    id[..32].copy_from_slice(&account.0);
    id[32..].copy_from_slice(&series.to_bytes());
    leaf_key(Namespace::OptionPosition, &id)
}

/// The leaf key of the series `account` holds positions in.
pub fn account_series_key(account: &crate::AccountId) -> B256 {
    leaf_key(Namespace::AccountSeries, &account.0)
}

/// Largest `strike_tick_micros`: $1,000,000.
pub const MAX_STRIKE_TICK_MICROS: u64 = 1_000_000_000_000;
/// Most expiries with live series at once.
pub const MAX_EXPIRIES: u32 = 64;
/// Most series in one expiry.
pub const MAX_SERIES_PER_EXPIRY: u32 = 256;
/// Most points in one volatility update.
pub const MAX_VOL_POINTS: u32 = 256;
/// Least time the oracle has after an expiry to fix its price before the admin may: a minute.
pub const MIN_SETTLE_GRACE_MS: u64 = 60_000;
/// Shortest settlement window: ten seconds (a local testnet's demo; a real market averages over tens of
/// minutes).
pub const MIN_SETTLE_WINDOW_MS: u64 = 10_000;
/// Longest settlement window: a day.
pub const MAX_SETTLE_WINDOW_MS: u64 = 86_400_000;
/// Most series one account may hold a position or an order in (bounds the work of its margin check).
pub const MAX_SERIES_PER_ACCOUNT: u32 = 64;

/// The margin rates of `p`.
pub fn rates(p: &pb::OptionsParams) -> super::margin::Rates {
    super::margin::Rates {
        im_spot_max_bps: p.im_spot_max_bps,
        im_spot_min_bps: p.im_spot_min_bps,
        mm_spot_bps: p.mm_spot_bps,
        mm_put_mark_bps: p.mm_put_mark_bps,
    }
}

/// The portfolio-margin shocks of `p`; `None` when the market offers no portfolio margin.
pub fn shocks(p: &pb::OptionsParams) -> Option<super::portfolio::Shocks> {
    (p.pm_spot_shock_bps != 0).then_some(super::portfolio::Shocks {
        spot_shock_bps: p.pm_spot_shock_bps,
        vol_up_bps: p.pm_vol_up_bps,
        vol_down_bps: p.pm_vol_down_bps,
        min_vol_ppm: p.min_vol_ppm,
        max_vol_ppm: p.max_vol_ppm,
        contingency_bps: p.pm_contingency_bps,
        im_scale_bps: p.pm_im_scale_bps,
    })
}

/// Checks options parameters (genesis): every limit positive and within the pricer's domain.
pub fn check_params(p: &pb::OptionsParams) -> Result<(), String> {
    if !(1..=MAX_STRIKE_TICK_MICROS).contains(&p.strike_tick_micros) {
        return Err(format!("strike_tick_micros must be 1 to {MAX_STRIKE_TICK_MICROS}"));
    }
    if p.expiry_step_ms == 0 {
        return Err("expiry_step_ms must be positive".into());
    }
    if p.min_tenor_ms == 0 || p.min_tenor_ms > p.max_tenor_ms || p.max_tenor_ms > MAX_TAU_MS {
        return Err(format!("need 0 < min_tenor_ms <= max_tenor_ms <= {MAX_TAU_MS} (10 years)"));
    }
    if !(1..=MAX_EXPIRIES).contains(&p.max_expiries) {
        return Err(format!("max_expiries must be 1 to {MAX_EXPIRIES}"));
    }
    if !(1..=MAX_SERIES_PER_EXPIRY).contains(&p.max_series_per_expiry) {
        return Err(format!("max_series_per_expiry must be 1 to {MAX_SERIES_PER_EXPIRY}"));
    }
    if p.min_vol_ppm == 0 || p.min_vol_ppm > p.max_vol_ppm || p.max_vol_ppm > MAX_VOL_PPM {
        return Err(format!("need 0 < min_vol_ppm <= max_vol_ppm <= {MAX_VOL_PPM} (1000%)"));
    }
    if !(1..=MAX_VOL_POINTS).contains(&p.max_vol_points) {
        return Err(format!("max_vol_points must be 1 to {MAX_VOL_POINTS}"));
    }
    if p.mm_spot_bps == 0
        || p.mm_spot_bps > p.im_spot_min_bps
        || p.im_spot_min_bps > p.im_spot_max_bps
        || p.im_spot_max_bps > 10_000
        || p.mm_put_mark_bps > 10_000
    {
        return Err(
            "need 0 < mm_spot_bps <= im_spot_min_bps <= im_spot_max_bps <= 10000, mm_put_mark_bps <= 10000".into()
        );
    }
    if !(1..=MAX_SERIES_PER_ACCOUNT).contains(&p.max_series_per_account) {
        return Err(format!("max_series_per_account must be 1 to {MAX_SERIES_PER_ACCOUNT}"));
    }
    if p.vol_max_age_ms == 0 {
        return Err("vol_max_age_ms must be positive".into());
    }
    if p.settle_grace_ms < MIN_SETTLE_GRACE_MS {
        return Err(format!("settle_grace_ms must be at least {MIN_SETTLE_GRACE_MS} (a minute)"));
    }
    if p.vol_band_ppm != 0 && p.vol_band_cooldown_ms == 0 {
        return Err("vol_band_cooldown_ms must be positive when vol_band_ppm is set".into());
    }
    if !(MIN_SETTLE_WINDOW_MS..=MAX_SETTLE_WINDOW_MS).contains(&p.settle_window_ms)
        || p.settle_window_ms > p.min_tenor_ms
    {
        return Err(format!(
            "settle_window_ms must be {MIN_SETTLE_WINDOW_MS} to {MAX_SETTLE_WINDOW_MS} and at most min_tenor_ms"
        ));
    }
    if let Some(shocks) = shocks(p) {
        shocks.check()?;
    }
    Ok(())
}

/// The series a `ListSeries` names, if it may be listed at block time `now_ms` under `p`: a call or a put,
/// a strike on the tick within the pricer's domain, an expiry on the step between the least and the most
/// tenor from now. Whether it is new and fits the chain's caps is the state's to say.
pub fn check_listing(p: &pb::OptionsParams, op: &pb::ListSeries, now_ms: u64) -> Result<SeriesId, String> {
    let kind = OptionKind::from_pb(op.kind).ok_or("series kind must be call or put")?;
    let strike = op.strike_micros;
    if strike == 0 || strike > MAX_PRICE_MICROS {
        return Err(format!("strike {strike} micro-USD is outside 1 to {MAX_PRICE_MICROS}"));
    }
    if !strike.is_multiple_of(p.strike_tick_micros) {
        return Err(format!("strike {strike} micro-USD is not a multiple of the tick {}", p.strike_tick_micros));
    }
    let expiry = op.expiry_ms;
    if !expiry.is_multiple_of(p.expiry_step_ms) {
        return Err(format!("expiry {expiry} ms is not a multiple of the expiry step {} ms", p.expiry_step_ms));
    }
    let earliest = now_ms.saturating_add(p.min_tenor_ms);
    let latest = now_ms.saturating_add(p.max_tenor_ms);
    if expiry < earliest || expiry > latest {
        return Err(format!(
            "expiry {expiry} ms must be {} to {} ms after block time {now_ms} (so {earliest} to {latest})",
            p.min_tenor_ms, p.max_tenor_ms
        ));
    }
    Ok(SeriesId { expiry_ms: expiry, strike_micros: strike, kind })
}

/// Checks a volatility update's points under `p`: 1 to `max_vol_points` of them, strikes strictly
/// ascending within the pricer's domain, every volatility within the market's bounds.
pub fn check_vol_points(p: &pb::OptionsParams, points: &[pb::VolPoint]) -> Result<(), String> {
    if points.is_empty() || points.len() > p.max_vol_points as usize {
        return Err(format!("{} volatility points: 1 to {} are allowed", points.len(), p.max_vol_points));
    }
    let mut last = 0;
    for (i, point) in points.iter().enumerate() {
        if point.strike_micros <= last || point.strike_micros > MAX_PRICE_MICROS {
            return Err(format!(
                "volatility point {i}: strike {} micro-USD must exceed the previous ({last}) and be at most \
                 {MAX_PRICE_MICROS}",
                point.strike_micros
            ));
        }
        if !(p.min_vol_ppm..=p.max_vol_ppm).contains(&point.vol_ppm) {
            return Err(format!(
                "volatility point {i}: {} ppm is outside the market's {} to {} ppm",
                point.vol_ppm, p.min_vol_ppm, p.max_vol_ppm
            ));
        }
        last = point.strike_micros;
    }
    Ok(())
}

/// Volatility at `strike_micros` from points checked by [`check_vol_points`]: linear between the two
/// points around the strike, rounded up (a higher volatility marks a short option higher, so the rounding
/// is against the account), and the nearest point's outside them. None without points.
pub fn vol_at(points: &[pb::VolPoint], strike_micros: u64) -> Option<u32> {
    let first = points.first()?;
    let upper = points.partition_point(|p| p.strike_micros < strike_micros);
    if upper == 0 {
        return Some(first.vol_ppm);
    }
    let Some(hi) = points.get(upper) else { return points.last().map(|p| p.vol_ppm) };
    let lo = &points[upper - 1];
    // lo.strike < strike <= hi.strike; the weight of `hi` is (strike - lo) / (hi - lo), exactly in u128.
    let (span, along) = (u128::from(hi.strike_micros - lo.strike_micros), u128::from(strike_micros - lo.strike_micros));
    let (v_lo, v_hi) = (u128::from(lo.vol_ppm), u128::from(hi.vol_ppm));
    let scaled = v_lo * (span - along) + v_hi * along;
    // Between two u32 values, so it fits.
    Some(scaled.div_ceil(span) as u32)
}

/// The largest move, ppm, between two sets of volatility points at any strike either names (each read with
/// [`vol_at`]); 0 when either set is empty.
pub fn vol_jump(old: &[pb::VolPoint], new: &[pb::VolPoint]) -> u32 {
    old.iter()
        .chain(new)
        .filter_map(|p| Some(vol_at(old, p.strike_micros)?.abs_diff(vol_at(new, p.strike_micros)?)))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> pb::OptionsParams {
        pb::OptionsParams {
            strike_tick_micros: 50_000_000,
            expiry_step_ms: 3_600_000,
            min_tenor_ms: 3_600_000,
            max_tenor_ms: 365 * 86_400_000,
            max_expiries: 8,
            max_series_per_expiry: 32,
            min_vol_ppm: 10_000,
            max_vol_ppm: 5_000_000,
            max_vol_points: 4,
            im_spot_max_bps: 1_500,
            im_spot_min_bps: 1_000,
            mm_spot_bps: 750,
            mm_put_mark_bps: 750,
            max_series_per_account: 8,
            settle_window_ms: 1_800_000,
            vol_max_age_ms: 300_000,
            vol_band_ppm: 300_000,
            vol_band_cooldown_ms: 60_000,
            settle_grace_ms: 3_600_000,
            ..Default::default()
        }
    }

    fn point(strike_micros: u64, vol_ppm: u32) -> pb::VolPoint {
        pb::VolPoint { strike_micros, vol_ppm }
    }

    #[test]
    fn series_ids_round_trip_sort_like_series_and_have_golden_keys() {
        let a = SeriesId { expiry_ms: 1_700_003_600_000, strike_micros: 2_000_000_000, kind: OptionKind::Call };
        let b = SeriesId { kind: OptionKind::Put, ..a };
        let c = SeriesId { strike_micros: 2_050_000_000, ..a };
        for s in [a, b, c] {
            assert_eq!(SeriesId::from_bytes(&s.to_bytes()), Some(s));
        }
        assert!(a.to_bytes() < b.to_bytes() && b.to_bytes() < c.to_bytes() && a < b && b < c);
        assert_eq!(SeriesId::from_bytes(&[0; 17]), None, "kind 0");
        assert_eq!(SeriesId::from_bytes(&[1; 16]), None, "short");
        let id = a.to_bytes();
        assert_eq!(series_key(&a), alloy_primitives::keccak256([[0x1bu8].as_slice(), &id].concat()));
        assert_eq!(expiry_key(7), alloy_primitives::keccak256([0x1a, 0, 0, 0, 0, 0, 0, 0, 7]));
        assert_eq!(chain_key(), alloy_primitives::keccak256([0x19]));
    }

    #[test]
    fn series_names_print_and_parse() {
        let s = SeriesId { expiry_ms: 1_700_006_400_000, strike_micros: 2_000_000_000, kind: OptionKind::Call };
        assert_eq!(s.to_string(), "1700006400000:2000:call");
        assert_eq!(SeriesId::parse("1700006400000:2000:call"), Ok(s));
        assert_eq!(SeriesId::parse(&hex::encode(s.to_bytes())), Ok(s));
        let put = SeriesId { strike_micros: 1_999_500_000, kind: OptionKind::Put, ..s };
        assert_eq!(put.to_string(), "1700006400000:1999.5:put");
        assert_eq!(SeriesId::parse("1700006400000:1999.5:P"), Ok(put));
        for bad in ["", "1:2", "1:2:call:4", "x:2:call", "1:two:call", "1:2:straddle"] {
            assert!(SeriesId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listings_are_checked_against_the_params() {
        let p = params();
        let now = 1_700_000_000_000;
        // The first hour boundary at least an hour ahead.
        let expiry = 1_700_006_400_000;
        let ok = pb::ListSeries { expiry_ms: expiry, strike_micros: 2_000_000_000, kind: 1 };
        assert_eq!(
            check_listing(&p, &ok, now),
            Ok(SeriesId { expiry_ms: expiry, strike_micros: 2_000_000_000, kind: OptionKind::Call })
        );
        let bad = [
            (pb::ListSeries { kind: 0, ..ok }, "call or put"),
            (pb::ListSeries { kind: 3, ..ok }, "call or put"),
            (pb::ListSeries { strike_micros: 0, ..ok }, "outside"),
            (pb::ListSeries { strike_micros: 2_010_000_000, ..ok }, "multiple of the tick"),
            (pb::ListSeries { strike_micros: 20_000_000_000_000, ..ok }, "outside"),
            (pb::ListSeries { expiry_ms: expiry + 1, ..ok }, "expiry step"),
            (pb::ListSeries { expiry_ms: expiry - 3_600_000, ..ok }, "after block time"),
            (pb::ListSeries { expiry_ms: expiry + 365 * 86_400_000, ..ok }, "after block time"),
        ];
        for (op, want) in bad {
            let e = check_listing(&p, &op, now).expect_err("refused");
            assert!(e.contains(want), "{op:?}: {e}");
        }
    }

    #[test]
    fn vol_points_are_checked() {
        let p = params();
        assert_eq!(check_vol_points(&p, &[point(1, 10_000), point(2, 5_000_000)]), Ok(()));
        for (points, want) in [
            (vec![], "0 volatility points"),
            (vec![point(1, 10_000); 5], "5 volatility points"),
            (vec![point(2, 500_000), point(2, 500_000)], "must exceed the previous"),
            (vec![point(2, 500_000), point(1, 500_000)], "must exceed the previous"),
            (vec![point(0, 500_000)], "must exceed the previous"),
            (vec![point(MAX_PRICE_MICROS + 1, 500_000)], "at most"),
            (vec![point(1, 9_999)], "outside the market's"),
            (vec![point(1, 5_000_001)], "outside the market's"),
        ] {
            let e = check_vol_points(&p, &points).expect_err("refused");
            assert!(e.contains(want), "{points:?}: {e}");
        }
    }

    #[test]
    fn a_volatility_jump_is_the_largest_move_at_any_strike_of_either_set() {
        let old = [point(1_000, 800_000), point(2_000, 600_000)];
        assert_eq!(vol_jump(&old, &old), 0);
        assert_eq!(vol_jump(&[], &old), 0, "a first update moves nothing");
        // Moved at 2,000 only.
        assert_eq!(vol_jump(&old, &[point(1_000, 800_000), point(2_000, 700_000)]), 100_000);
        // A new point at 1,500 where the old curve read 700,000.
        assert_eq!(vol_jump(&old, &[point(1_000, 800_000), point(1_500, 1_000_000), point(2_000, 600_000)]), 300_000);
        // One flat point: the old curve's ends are what moved.
        assert_eq!(vol_jump(&old, &[point(1_500, 700_000)]), 100_000);
    }

    #[test]
    fn vol_is_linear_between_points_rounded_up_and_flat_outside() {
        let points = [point(1_000, 800_000), point(2_000, 600_000), point(4_000, 600_001)];
        assert_eq!(vol_at(&[], 5), None);
        assert_eq!(vol_at(&points, 1), Some(800_000), "below the first point");
        assert_eq!(vol_at(&points, 1_000), Some(800_000));
        assert_eq!(vol_at(&points, 1_500), Some(700_000));
        assert_eq!(vol_at(&points, 1_001), Some(799_800));
        assert_eq!(vol_at(&points, 2_000), Some(600_000));
        // 600,000 + 1·(1/2000): rounded up.
        assert_eq!(vol_at(&points, 2_001), Some(600_001));
        assert_eq!(vol_at(&points, 4_000), Some(600_001));
        assert_eq!(vol_at(&points, u64::MAX), Some(600_001), "above the last point");
    }
}
