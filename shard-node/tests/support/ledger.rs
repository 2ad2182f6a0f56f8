//! The ledger totals against a scan: after a block, `LedgerTotalsRecord.collateral_micros` and
//! `entry_notional_micros` must equal Σ collateral and Σ entry notional read record by record from every
//! account that ever held money, `escrowed_micros` must equal Σ account escrow, and the conservation identity
//! of `shardex_core::ledger` must hold on the totals and pools.

use std::collections::BTreeSet;

use shardex_core::{
    ledger::{check_conservation, LedgerPools},
    pb, AccountId,
};
use shardex_shard_node::shard::Shard;

/// Every account a block can have touched: signers, the accounts ops name, the accounts events name. An
/// account's record changes only through one of these, so their union covers every account with a record.
#[derive(Debug, Default, Clone)]
pub struct Seen(pub BTreeSet<AccountId>);

impl Seen {
    /// Adds the signer and any account `op` names on this shard.
    pub fn op(&mut self, signer: AccountId, op: &pb::tx_body::Op) {
        use pb::tx_body::Op;
        self.0.insert(signer);
        let named = match op {
            Op::Deposit(d) => Some(d.account.as_slice()),
            Op::Liquidate(l) => Some(l.account.as_slice()),
            Op::DeliverMessage(d) => d.message.as_ref().map(|m| m.account.as_slice()),
            _ => None,
        };
        if let Some(a) = named.and_then(|raw| AccountId::from_slice(raw).ok()) {
            self.0.insert(a);
        }
    }

    /// Adds every account named by the events of `receipts` and `block_events`.
    pub fn events<'a>(&mut self, receipts: &'a [pb::Receipt], block_events: &'a [pb::Event]) {
        let events = receipts.iter().flat_map(|r| &r.events).chain(block_events);
        self.0.extend(events.filter_map(|e| AccountId::from_slice(&e.account).ok()));
    }
}

/// Asserts the totals equal the scanned sums over `accounts` and that the shard conserves money.
pub fn check_ledger<'a>(shard: &Shard, accounts: impl IntoIterator<Item = &'a AccountId>, context: &str) {
    let (mut collateral, mut entry, mut escrow) = (0i128, 0i128, 0i128);
    for a in accounts {
        let v = shard.view().position(a, false).expect("position");
        let acct = v.account.unwrap_or_default();
        collateral += i128::from(acct.collateral_micros);
        escrow += i128::from(acct.escrow_micros);
        entry += i128::from(v.position.unwrap_or_default().entry_notional_micros);
    }
    let m = shard.view().market(false).expect("market");
    let t = &m.totals;
    let at = format!("{context} (shard {}, height {})", shard.domain().shard, m.height);
    assert_eq!(i128::from(t.collateral_micros), collateral, "{at}: collateral total drifted from Σ collateral");
    assert_eq!(i128::from(t.entry_notional_micros), entry, "{at}: entry notional total drifted from Σ entry");
    assert_eq!(i128::from(t.escrowed_micros), escrow, "{at}: escrowed total differs from Σ account escrow");
    let pools = LedgerPools::from_records(&m.fee_pool, &m.insurance, &m.funding);
    if let Err(e) = check_conservation(t, &pools) {
        panic!("{at}: {e} ({t:?}, {pools:?})");
    }
}
