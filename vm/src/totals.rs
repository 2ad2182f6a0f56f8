//! The sums the ledger totals record keeps over the whole shard: Σ account collateral and Σ position entry
//! notional. The helpers that store an account or a position add the record's change to its scope's
//! [`TotalsDelta`]; [`settle`] folds that delta into the totals record once, at the end of a tx or of
//! begin-block work. No op has to remember, and an op's own read-modify-write of the totals (deposit,
//! bridge) cannot overwrite it, since the delta lands after the op returns.

use super::{
    error::ExecError,
    records::{load_totals, store_totals},
    view::TxScope,
};

/// Net change of the two sums by the records one scope stored so far, widened so that summing changes of
/// i64 records cannot overflow before the total is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalsDelta {
    /// Change of Σ `AccountRecord.collateral_micros`.
    pub collateral_micros: i128,
    /// Change of Σ `PositionRecord.entry_notional_micros`.
    pub entry_notional_micros: i128,
}

impl TotalsDelta {
    /// True when the stored records left both sums unchanged.
    pub fn is_zero(&self) -> bool {
        self.collateral_micros == 0 && self.entry_notional_micros == 0
    }

    /// An account's collateral went from `before` to `after`.
    pub fn collateral_changed(&mut self, before: i64, after: i64) -> Result<(), ExecError> {
        self.collateral_micros = add_change(self.collateral_micros, before, after, "collateral total")?;
        Ok(())
    }

    /// A position's entry notional went from `before` to `after`.
    pub fn entry_notional_changed(&mut self, before: i64, after: i64) -> Result<(), ExecError> {
        self.entry_notional_micros = add_change(self.entry_notional_micros, before, after, "entry notional total")?;
        Ok(())
    }
}

fn add_change(sum: i128, before: i64, after: i64, what: &'static str) -> Result<i128, ExecError> {
    sum.checked_add(i128::from(after) - i128::from(before)).ok_or(ExecError::Overflow(what))
}

fn apply(total: i64, delta: i128, what: &'static str) -> Result<i64, ExecError> {
    i128::from(total).checked_add(delta).and_then(|t| i64::try_from(t).ok()).ok_or(ExecError::Overflow(what))
}

/// Folds the scope's pending delta into the totals record (one read and one write, only when a sum moved).
/// A total that leaves i64 refuses the tx with [`ExecError::Overflow`]. Part of consensus: it runs at the
/// same point of every tx and of begin-block work on every replica, after gas is counted (it is bookkeeping
/// the base cost covers, so gas figures do not depend on it).
pub fn settle(scope: &mut TxScope<'_>) -> Result<(), ExecError> {
    let delta = scope.take_totals_delta();
    if delta.is_zero() {
        return Ok(());
    }
    let mut totals = load_totals(scope)?;
    totals.collateral_micros = apply(totals.collateral_micros, delta.collateral_micros, "collateral total")?;
    totals.entry_notional_micros =
        apply(totals.entry_notional_micros, delta.entry_notional_micros, "entry notional total")?;
    store_totals(scope, &totals);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::B256;
    use shardex_core::{pb, AccountId};

    use super::*;
    use crate::{
        records::{load_account, store_account},
        view::Changes,
    };

    #[test]
    fn stores_accumulate_and_settle_once() {
        let base: BTreeMap<B256, Vec<u8>> = BTreeMap::new();
        let parent = Changes::new();
        let mut s = TxScope::new(&base, &parent);
        let (a, b) = (AccountId([1; 32]), AccountId([2; 32]));
        store_account(&mut s, &a, &pb::AccountRecord { collateral_micros: 50, ..Default::default() }).expect("a");
        store_account(&mut s, &a, &pb::AccountRecord { collateral_micros: 30, ..Default::default() }).expect("a");
        store_account(&mut s, &b, &pb::AccountRecord { collateral_micros: -5, ..Default::default() }).expect("b");
        assert_eq!(s.totals_delta().collateral_micros, 25);
        settle(&mut s).expect("settle");
        assert!(s.totals_delta().is_zero());
        assert_eq!(load_totals(&mut s).expect("totals").collateral_micros, 25);
        // Nothing moved: no second write.
        let writes = s.writes();
        let same = load_account(&mut s, &a).expect("a");
        store_account(&mut s, &a, &same).expect("a");
        settle(&mut s).expect("settle");
        assert_eq!(s.writes(), writes);
    }

    #[test]
    fn a_total_leaving_i64_is_an_overflow_not_a_panic() {
        let base: BTreeMap<B256, Vec<u8>> = BTreeMap::new();
        let parent = Changes::new();
        let mut s = TxScope::new(&base, &parent);
        for i in 0..2u8 {
            let record = pb::AccountRecord { collateral_micros: i64::MAX, ..Default::default() };
            store_account(&mut s, &AccountId([i; 32]), &record).expect("store");
        }
        assert_eq!(settle(&mut s), Err(ExecError::Overflow("collateral total")));
        let mut d = TotalsDelta { entry_notional_micros: i128::MAX, ..Default::default() };
        assert_eq!(d.entry_notional_changed(-1, 0), Err(ExecError::Overflow("entry notional total")));
    }
}
