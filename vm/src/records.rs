//! Typed access to the records the VM reads and writes.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{genesis::Genesis, pb, state_key, AccountId, Usd};

use super::{
    error::ExecError,
    view::{Changes, TxScope},
};

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, ExecError> {
    M::decode(bytes).map_err(|e| ExecError::Corrupt { what, detail: e.to_string() })
}

/// The record at `key`, or its default when absent (an all-default record is stored as no key).
/// Bytes that do not decode are corrupt state, named by `what`.
pub fn load_record<M: Message + Default>(
    scope: &mut TxScope<'_>,
    key: &B256,
    what: &'static str,
) -> Result<M, ExecError> {
    match scope.read(key)? {
        Some(bytes) => decode(what, &bytes),
        None => Ok(M::default()),
    }
}

/// The account record of `account` (default when it has none yet).
pub fn load_account(scope: &mut TxScope<'_>, account: &AccountId) -> Result<pb::AccountRecord, ExecError> {
    load_record(scope, &state_key::account_key(account), "account")
}

/// Writes the account record of `account`, adding its change of collateral to the scope's ledger sums
/// (settled into the totals record at the end of the tx).
pub fn store_account(
    scope: &mut TxScope<'_>,
    account: &AccountId,
    record: &pb::AccountRecord,
) -> Result<(), ExecError> {
    let key = state_key::account_key(account);
    let before = scope.peek_with(&key, |v| v.map(stored_collateral).unwrap_or(Ok(0)))??;
    scope.totals_delta_mut().collateral_changed(before, record.collateral_micros)?;
    scope.write(key, record.encode_to_vec());
    Ok(())
}

/// The account record's collateral.
pub fn collateral(record: &pb::AccountRecord) -> Usd {
    Usd::from_micros(record.collateral_micros)
}

/// Adds `amount` to the account record's collateral (takes it when negative), checked: every change of an
/// account's collateral in the VM passes here, as typed micro-USD. Returns the new collateral.
pub fn credit(record: &mut pb::AccountRecord, amount: Usd) -> Result<Usd, ExecError> {
    let after = collateral(record).checked_add(amount).map_err(|_| ExecError::Overflow("collateral"))?;
    record.collateral_micros = after.micros();
    Ok(after)
}

/// Loads `account`, adds `amount` to its collateral ([`credit`]) and stores it. Returns the new collateral.
pub fn credit_account(scope: &mut TxScope<'_>, account: &AccountId, amount: Usd) -> Result<Usd, ExecError> {
    let mut record = load_account(scope, account)?;
    let balance = credit(&mut record, amount)?;
    store_account(scope, account, &record)?;
    Ok(balance)
}

/// The collateral field of a stored account record, decoded without its nonce window.
fn stored_collateral(bytes: &[u8]) -> Result<i64, ExecError> {
    /// `AccountRecord` with only field 1: the rest is skipped rather than decoded into a vector.
    #[derive(Clone, PartialEq, Message)]
    struct Collateral {
        #[prost(sint64, tag = "1")]
        collateral_micros: i64,
    }
    Ok(decode::<Collateral>("account", bytes)?.collateral_micros)
}

/// The market record; genesis always writes one.
pub fn load_market(scope: &mut TxScope<'_>) -> Result<pb::MarketRecord, ExecError> {
    match scope.read(&state_key::market_key())? {
        Some(bytes) => decode("market", &bytes),
        None => Err(ExecError::Corrupt { what: "market", detail: "no market record in state".into() }),
    }
}

/// The on-ramp totals.
pub fn load_totals(scope: &mut TxScope<'_>) -> Result<pb::LedgerTotalsRecord, ExecError> {
    load_record(scope, &state_key::ledger_totals_key(), "ledger totals")
}

/// Writes the on-ramp totals.
pub fn store_totals(scope: &mut TxScope<'_>, totals: &pb::LedgerTotalsRecord) {
    scope.write(state_key::ledger_totals_key(), totals.encode_to_vec());
}

/// The state a shard starts from: its market record and the validator set of each bridge peer (on-ramp
/// totals start absent, i.e. zero). A genesis without peers writes the market record alone.
pub fn genesis_changes(genesis: &Genesis) -> Changes {
    let mut changes = Changes::from([(state_key::market_key(), Some(genesis.market_record().encode_to_vec()))]);
    for (shard, record) in genesis.peer_records() {
        changes.insert(shardex_core::bridge::peer_key(shard), Some(record.encode_to_vec()));
    }
    changes
}
