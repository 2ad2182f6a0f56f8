//! Position and fee-pool records.

use prost::Message;
use shardex_core::{pb, state_key, AccountId};

use crate::vm::{error::ExecError, view::TxScope};

/// The account's position (default when flat and never traded).
pub fn load(scope: &mut TxScope<'_>, account: &AccountId) -> Result<pb::PositionRecord, ExecError> {
    match scope.read(&state_key::position_key(account))? {
        Some(b) => pb::PositionRecord::decode(b.as_slice())
            .map_err(|e| ExecError::Corrupt { what: "position", detail: e.to_string() }),
        None => Ok(pb::PositionRecord::default()),
    }
}

/// Writes the account's position.
pub fn store(scope: &mut TxScope<'_>, account: &AccountId, record: &pb::PositionRecord) {
    scope.write(state_key::position_key(account), record.encode_to_vec());
}

/// The fee pool balance.
pub fn load_fee_pool(scope: &mut TxScope<'_>) -> Result<i64, ExecError> {
    let record = match scope.read(&state_key::fee_pool_key())? {
        Some(b) => pb::FeePoolRecord::decode(b.as_slice())
            .map_err(|e| ExecError::Corrupt { what: "fee pool", detail: e.to_string() })?,
        None => pb::FeePoolRecord::default(),
    };
    i64::try_from(record.balance_micros).map_err(|_| ExecError::Overflow("fee pool"))
}

/// Writes the fee pool balance (never negative: fees only flow in).
pub fn store_fee_pool(scope: &mut TxScope<'_>, balance_micros: i64) -> Result<(), ExecError> {
    let balance_micros = u64::try_from(balance_micros).map_err(|_| ExecError::Overflow("fee pool"))?;
    scope.write(state_key::fee_pool_key(), pb::FeePoolRecord { balance_micros }.encode_to_vec());
    Ok(())
}
