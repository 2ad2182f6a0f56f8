//! Per-shard conservation, checkable from proven state alone. The ledger totals record (namespace `0x0c`)
//! keeps what entered and left the shard and the sums of collateral and entry notional over every account;
//! with the fee pool, the insurance fund and the funding pool, every shard satisfies exactly
//!
//! ```text
//! Σ collateral − Σ entry notional + fee pool + insurance fund + funding pool + escrowed   (held)
//!     = deposited − withdrawn + bridged in − bridged out                                  (net inflow)
//! ```
//!
//! [`check_conservation`] is that identity; [`verify_ledger_response`] establishes its inputs from a proven
//! `GetMarket` answer (five records under one state root, optionally tied to a finalized header).

use crate::{
    ids::{ChainId, ShardId},
    pb,
    proof::{verify_header_carries, verify_returned_record, ProofError},
    state_key,
    validators::ValidatorSet,
    B256,
};

/// The three pools money rests in besides accounts and escrow, in micro-USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerPools {
    /// Trading fees collected (`FeePoolRecord.balance_micros`).
    pub fee_pool_micros: u64,
    /// Insurance fund balance (`InsuranceFundRecord.balance_micros`).
    pub insurance_fund_micros: i64,
    /// Funding paid minus funding received (`FundingIndexRecord.pool_micros`).
    pub funding_pool_micros: i64,
}

impl LedgerPools {
    /// The pools as the three state records hold them (absent records are default, i.e. zero).
    pub fn from_records(
        fee_pool: &pb::FeePoolRecord,
        insurance: &pb::InsuranceFundRecord,
        funding: &pb::FundingIndexRecord,
    ) -> Self {
        Self {
            fee_pool_micros: fee_pool.balance_micros,
            insurance_fund_micros: insurance.balance_micros,
            funding_pool_micros: funding.pool_micros,
        }
    }
}

/// The identity does not hold: money was created or destroyed on the shard (or the totals drifted from the
/// records they sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "conservation broken: held (Σ collateral − Σ entry notional + fee pool + insurance fund + funding pool + \
     escrowed) = {held_micros} micro-USD, net inflow (deposited − withdrawn + bridged in − bridged out) = \
     {net_inflow_micros} micro-USD, held − net inflow = {difference_micros} micro-USD"
)]
pub struct ConservationError {
    /// Left side: what the shard holds.
    pub held_micros: i128,
    /// Right side: what entered the shard minus what left it.
    pub net_inflow_micros: i128,
    /// `held_micros − net_inflow_micros`: positive when money was created.
    pub difference_micros: i128,
}

/// Left side of the identity: Σ collateral − Σ entry notional + fee pool + insurance fund + funding pool +
/// escrowed. Exact: every term is at most 64 bits.
pub fn held_micros(totals: &pb::LedgerTotalsRecord, pools: &LedgerPools) -> i128 {
    i128::from(totals.collateral_micros) - i128::from(totals.entry_notional_micros)
        + i128::from(pools.fee_pool_micros)
        + i128::from(pools.insurance_fund_micros)
        + i128::from(pools.funding_pool_micros)
        + i128::from(totals.escrowed_micros)
}

/// Right side of the identity: deposited − withdrawn + bridged in − bridged out. Exact.
pub fn net_inflow_micros(totals: &pb::LedgerTotalsRecord) -> i128 {
    i128::from(totals.deposited_micros) - i128::from(totals.withdrawn_micros) + i128::from(totals.bridged_in_micros)
        - i128::from(totals.bridged_out_micros)
}

/// Checks the shard's conservation identity on its totals and pools.
pub fn check_conservation(totals: &pb::LedgerTotalsRecord, pools: &LedgerPools) -> Result<(), ConservationError> {
    let (held, inflow) = (held_micros(totals, pools), net_inflow_micros(totals));
    if held == inflow {
        Ok(())
    } else {
        Err(ConservationError { held_micros: held, net_inflow_micros: inflow, difference_micros: held - inflow })
    }
}

/// What a proven `GetMarket` answer established: the records conservation needs, all under one state root.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedLedger {
    /// The market record.
    pub market: pb::MarketRecord,
    /// The ledger totals (default when the shard has never moved money).
    pub totals: pb::LedgerTotalsRecord,
    /// Fee pool, insurance fund and funding pool.
    pub pools: LedgerPools,
    /// Height proven at.
    pub height: u64,
    /// State root every record was proven against.
    pub state_root: B256,
    /// True when the root was checked to be carried by a header certified by the validator set.
    pub header_checked: bool,
}

impl VerifiedLedger {
    /// The conservation identity on the proven records ([`check_conservation`]).
    pub fn check_conservation(&self) -> Result<(), ConservationError> {
        check_conservation(&self.totals, &self.pools)
    }
}

/// Verifies a `GetMarketResponse` asked with `prove`: the market, totals, insurance fund, fee pool and funding
/// index records are each the one proven under the response's state root and height; with `validators`, that
/// root is carried by a header of (`chain`, `shard`) finalized by a quorum of the set.
pub fn verify_ledger_response(
    resp: &pb::GetMarketResponse,
    chain: ChainId,
    shard: ShardId,
    validators: Option<&ValidatorSet>,
) -> Result<VerifiedLedger, ProofError> {
    let (root, height) = (resp.state_root.as_slice(), resp.height);
    let state_root = crate::hash::b256_from_slice(root)
        .ok_or_else(|| ProofError::RootMismatch("the response's state root is not 32 bytes".into()))?;
    let market =
        verify_returned_record(resp.proof.as_ref(), state_key::market_key(), resp.market.as_ref(), root, height)?;
    let totals = verify_returned_record(
        resp.totals_proof.as_ref(),
        state_key::ledger_totals_key(),
        resp.totals.as_ref(),
        root,
        height,
    )?;
    let insurance = verify_returned_record(
        resp.insurance_proof.as_ref(),
        state_key::insurance_key(),
        resp.insurance.as_ref(),
        root,
        height,
    )?;
    let fee_pool = verify_returned_record(
        resp.fee_pool_proof.as_ref(),
        state_key::fee_pool_key(),
        resp.fee_pool.as_ref(),
        root,
        height,
    )?;
    let funding = verify_returned_record(
        resp.funding_proof.as_ref(),
        state_key::funding_key(),
        resp.funding.as_ref(),
        root,
        height,
    )?;
    if let Some(set) = validators {
        verify_header_carries(resp.header.as_ref(), chain, shard, set, root, height)?;
    }
    Ok(VerifiedLedger {
        market,
        totals,
        pools: LedgerPools::from_records(&fee_pool, &insurance, &funding),
        height,
        state_root,
        header_checked: validators.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(deposited: u64, withdrawn: u64, collateral: i64, entry: i64) -> pb::LedgerTotalsRecord {
        pb::LedgerTotalsRecord {
            deposited_micros: deposited,
            withdrawn_micros: withdrawn,
            collateral_micros: collateral,
            entry_notional_micros: entry,
            ..Default::default()
        }
    }

    #[test]
    fn empty_shard_conserves() {
        assert_eq!(check_conservation(&pb::LedgerTotalsRecord::default(), &LedgerPools::default()), Ok(()));
    }

    #[test]
    fn every_term_counts_on_its_side() {
        // 1,000 deposited, 100 withdrawn, 50 in, 30 out = 920 net inflow; held: collateral 800 − entry −40
        // (a net short) + fee 20 + insurance 30 + funding −5 + escrow 35 = 920.
        let mut t = totals(1_000, 100, 800, -40);
        (t.bridged_in_micros, t.bridged_out_micros, t.escrowed_micros) = (50, 30, 35);
        let pools = LedgerPools { fee_pool_micros: 20, insurance_fund_micros: 30, funding_pool_micros: -5 };
        assert_eq!(held_micros(&t, &pools), 920);
        assert_eq!(net_inflow_micros(&t), 920);
        assert_eq!(check_conservation(&t, &pools), Ok(()));

        // One micro-USD more in any held term is money created, named with both sides and the difference.
        let created = LedgerPools { fee_pool_micros: 21, ..pools };
        assert_eq!(
            check_conservation(&t, &created),
            Err(ConservationError { held_micros: 921, net_inflow_micros: 920, difference_micros: 1 })
        );
        // One more withdrawn (or one less collateral) is money destroyed.
        let mut destroyed = t;
        destroyed.entry_notional_micros += 1;
        let err = check_conservation(&destroyed, &pools).expect_err("destroyed");
        assert_eq!((err.held_micros, err.net_inflow_micros, err.difference_micros), (919, 920, -1));
        assert!(err.to_string().contains("held − net inflow = -1 micro-USD"), "{err}");
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut t = totals(u64::MAX, 0, i64::MAX, i64::MIN);
        (t.bridged_in_micros, t.escrowed_micros) = (u64::MAX, u64::MAX);
        let pools =
            LedgerPools { fee_pool_micros: u64::MAX, insurance_fund_micros: i64::MAX, funding_pool_micros: i64::MAX };
        let err = check_conservation(&t, &pools).expect_err("unbalanced");
        assert_eq!(err.difference_micros, err.held_micros - err.net_inflow_micros);
        assert_eq!(net_inflow_micros(&t), 2 * i128::from(u64::MAX));
    }

    proptest::proptest! {
        /// Moving money between held terms keeps the identity; a change to one side only breaks it by exactly
        /// that amount.
        #[test]
        fn transfers_between_terms_conserve(
            deposited in 0u64..1 << 50, moved in 0i64..1 << 40, from in 0usize..5, to in 0usize..5, off in 1i64..1000,
        ) {
            // Escrow starts above any amount moved, so it stays unsigned.
            let escrowed = 1u64 << 41;
            let mut t = totals(deposited + escrowed, 0, i64::try_from(deposited).expect("fits"), 0);
            t.escrowed_micros = escrowed;
            let mut pools = LedgerPools::default();
            let shift = |term: usize, by: i64, t: &mut pb::LedgerTotalsRecord, p: &mut LedgerPools| match term {
                0 => t.collateral_micros += by,
                1 => t.entry_notional_micros -= by,
                2 => p.insurance_fund_micros += by,
                3 => p.funding_pool_micros += by,
                _ => t.escrowed_micros = t.escrowed_micros.checked_add_signed(by).expect("stays positive"),
            };
            shift(from, -moved, &mut t, &mut pools);
            shift(to, moved, &mut t, &mut pools);
            proptest::prop_assert_eq!(check_conservation(&t, &pools), Ok(()));
            shift(to, off, &mut t, &mut pools);
            let err = check_conservation(&t, &pools).expect_err("one-sided change");
            proptest::prop_assert_eq!(err.difference_micros, i128::from(off));
        }
    }
}
