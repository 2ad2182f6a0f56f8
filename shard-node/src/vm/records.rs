//! Typed access to the records the VM reads and writes.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{genesis::Genesis, pb, state_key, AccountId};

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

/// Writes the account record of `account`.
pub fn store_account(scope: &mut TxScope<'_>, account: &AccountId, record: &pb::AccountRecord) {
    scope.write(state_key::account_key(account), record.encode_to_vec());
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

/// The state a shard starts from: its market record (on-ramp totals start absent, i.e. zero).
pub fn genesis_changes(genesis: &Genesis) -> Changes {
    Changes::from([(state_key::market_key(), Some(genesis.market_record().encode_to_vec()))])
}
