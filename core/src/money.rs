//! Money as integers, typed so that amounts of different kinds cannot be swapped: collateral in micro-USD
//! ([`Usd`], signed), prices in micro-USD per unit of underlying ([`Price`]) and sizes in lots ([`Lots`]),
//! each with checked arithmetic and no floating point.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Micro-units per USD.
pub const MICROS_PER_USD: i64 = 1_000_000;

/// A signed amount of collateral in micro-USD (1e-6 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(i64);

/// An arithmetic result did not fit the type; the operation is rejected, never wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount overflow")]
pub struct Overflow;

impl Usd {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// From micro-USD.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// From an unsigned wire amount; amounts above `i64::MAX` micro-USD are rejected.
    pub fn from_u64_micros(micros: u64) -> Result<Self, Overflow> {
        i64::try_from(micros).map(Self).map_err(|_| Overflow)
    }

    /// Whole dollars.
    pub fn from_usd(usd: i64) -> Result<Self, Overflow> {
        usd.checked_mul(MICROS_PER_USD).map(Self).ok_or(Overflow)
    }

    /// The amount in micro-USD.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// `self + rhs`, or `Overflow`.
    pub fn checked_add(self, rhs: Self) -> Result<Self, Overflow> {
        self.0.checked_add(rhs.0).map(Self).ok_or(Overflow)
    }

    /// `self - rhs`, or `Overflow`.
    pub fn checked_sub(self, rhs: Self) -> Result<Self, Overflow> {
        self.0.checked_sub(rhs.0).map(Self).ok_or(Overflow)
    }

    /// `-self`, or `Overflow` (for `i64::MIN` micro-USD).
    pub fn checked_neg(self) -> Result<Self, Overflow> {
        self.0.checked_neg().map(Self).ok_or(Overflow)
    }

    /// True when strictly below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl From<Usd> for i128 {
    /// Micro-USD, for exact wide sums.
    fn from(u: Usd) -> Self {
        i128::from(u.0)
    }
}

impl fmt::Display for Usd {
    /// `-12.000345 USD`: exact, six decimals; `{:+}` shows the sign of non-negative amounts too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match (self.0 < 0, f.sign_plus()) {
            (true, _) => "-",
            (false, true) => "+",
            (false, false) => "",
        };
        let abs = self.0.unsigned_abs();
        let per = MICROS_PER_USD.unsigned_abs();
        write!(f, "{sign}{}.{:06} USD", abs / per, abs % per)
    }
}

/// A price: micro-USD per whole unit of the underlying (a perpetual's limit or mark, an option's premium).
/// A limit price of 0 never rests; the type itself only keeps prices and sizes apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(u64);

impl Price {
    /// From micro-USD per unit.
    pub const fn from_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Micro-USD per unit.
    pub const fn micros(self) -> u64 {
        self.0
    }

    /// The mean of `self` and `other`, rounded down, without overflow.
    pub const fn midpoint_floor(self, other: Self) -> Self {
        Self(self.0 / 2 + other.0 / 2 + (self.0 % 2 + other.0 % 2) / 2)
    }
}

impl fmt::Display for Price {
    /// As [`Usd`]: `3000.500000 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match i64::try_from(self.0) {
            Ok(m) => Usd(m).fmt(f),
            Err(_) => write!(f, "{} micro-USD", self.0),
        }
    }
}

/// A size: a number of lots of the market's `lot_size` (an order's, a fill's, a resting remainder).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lots(u64);

impl Lots {
    /// None.
    pub const ZERO: Self = Self(0);

    /// From a count of lots.
    pub const fn new(lots: u64) -> Self {
        Self(lots)
    }

    /// The count of lots.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - rhs`, or `Overflow` below zero.
    pub fn checked_sub(self, rhs: Self) -> Result<Self, Overflow> {
        self.0.checked_sub(rhs.0).map(Self).ok_or(Overflow)
    }

    /// `self + rhs`, or `Overflow`.
    pub fn checked_add(self, rhs: Self) -> Result<Self, Overflow> {
        self.0.checked_add(rhs.0).map(Self).ok_or(Overflow)
    }

    /// The size as a signed position change: positive for `buy`, negative otherwise; `Overflow` above
    /// `i64::MAX` lots.
    pub fn signed(self, buy: bool) -> Result<i64, Overflow> {
        let lots = i64::try_from(self.0).map_err(|_| Overflow)?;
        Ok(if buy { lots } else { -lots })
    }
}

impl fmt::Display for Lots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lots", self.0)
    }
}

/// Parses a decimal USD amount with at most six decimals (`"12.5"`, `"0.000001"`) into micro-USD.
pub fn parse_usd(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err("empty amount".into());
    }
    if frac.len() > 6 {
        return Err(format!("{s:?} has more than 6 decimals (the unit is 1e-6 USD)"));
    }
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(whole) || !digits_ok(frac) {
        return Err(format!("{s:?} is not a non-negative decimal amount"));
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|e| format!("{s:?}: {e}"))? };
    let frac_micros: u64 = format!("{frac:0<6}").parse().map_err(|e| format!("{s:?}: {e}"))?;
    whole.checked_mul(1_000_000).and_then(|w| w.checked_add(frac_micros)).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_is_exact() {
        assert_eq!(Usd::from_micros(12_000_345).to_string(), "12.000345 USD");
        assert_eq!(Usd::from_micros(-1).to_string(), "-0.000001 USD");
        assert_eq!(format!("{:+}", Usd::from_micros(1_500_000)), "+1.500000 USD");
        assert_eq!(format!("{:+}", Usd::from_micros(-1)), "-0.000001 USD");
        assert_eq!(Usd::from_micros(i64::MIN).to_string(), "-9223372036854.775808 USD");
    }

    #[test]
    fn parse_usd_accepts_decimals_and_rejects_junk() {
        assert_eq!(parse_usd("12.5"), Ok(12_500_000));
        assert_eq!(parse_usd("0.000001"), Ok(1));
        assert_eq!(parse_usd("7"), Ok(7_000_000));
        assert!(parse_usd("0.0000001").is_err());
        assert!(parse_usd("-1").is_err());
        assert!(parse_usd("1e6").is_err());
        assert!(parse_usd("").is_err());
        assert!(parse_usd("99999999999999999999").is_err());
    }

    #[test]
    fn prices_and_sizes_are_their_own_types() {
        assert_eq!(Price::from_micros(3_000_500_000).to_string(), "3000.500000 USD");
        assert_eq!(Price::from_micros(u64::MAX).to_string(), "18446744073709551615 micro-USD");
        assert_eq!(Lots::new(3).checked_sub(Lots::new(4)), Err(Overflow));
        assert_eq!(Lots::new(u64::MAX).checked_add(Lots::new(1)), Err(Overflow));
        assert_eq!((Lots::new(5).signed(true), Lots::new(5).signed(false)), (Ok(5), Ok(-5)));
        assert_eq!(Lots::new(u64::MAX).signed(true), Err(Overflow));
        assert_eq!(Lots::new(7).to_string(), "7 lots");
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(Usd::from_micros(i64::MAX).checked_add(Usd::from_micros(1)), Err(Overflow));
        assert_eq!(Usd::from_micros(i64::MIN).checked_sub(Usd::from_micros(1)), Err(Overflow));
        assert_eq!(Usd::from_u64_micros(u64::MAX), Err(Overflow));
    }

    proptest! {
        #[test]
        fn add_then_sub_round_trips(a in any::<i64>(), b in any::<i64>()) {
            if let Ok(s) = Usd::from_micros(a).checked_add(Usd::from_micros(b)) {
                prop_assert_eq!(s.checked_sub(Usd::from_micros(b)), Ok(Usd::from_micros(a)));
            } else {
                prop_assert!(i128::from(a) + i128::from(b) > i128::from(i64::MAX)
                    || i128::from(a) + i128::from(b) < i128::from(i64::MIN));
            }
        }

        #[test]
        fn parse_display_round_trip(m in 0i64..i64::MAX) {
            let shown = Usd::from_micros(m).to_string();
            let number = shown.trim_end_matches(" USD");
            prop_assert_eq!(parse_usd(number), Ok(m.unsigned_abs()));
        }
    }

    /// Every build a node runs with panics on an arithmetic overflow instead of wrapping: the release profile
    /// keeps overflow checks on (debug builds have them by default).
    #[test]
    fn release_builds_keep_overflow_checks() {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("workspace manifest");
        let doc: toml::Value = toml::from_str(&text).expect("toml");
        let release = &doc["profile"]["release"];
        assert_eq!(release.get("overflow-checks").and_then(toml::Value::as_bool), Some(true), "{release:?}");
    }
}
