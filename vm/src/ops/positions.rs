//! Position and fee-pool records, and the index of accounts holding a position on each side (which
//! auto-deleveraging scans). The index changes only when a position opens, closes or flips.

use prost::Message;
use shardex_core::{pb, perp::Position, state_key, AccountId, Usd};

use crate::{error::ExecError, records::load_record, view::TxScope};

/// Long or short, as the index's side byte.
fn side_byte(size_lots: i64) -> Option<u8> {
    match size_lots.signum() {
        1 => Some(1),
        -1 => Some(2),
        _ => None,
    }
}

fn index_key(side: u8, bucket: u8) -> alloy_primitives::B256 {
    state_key::leaf_key(state_key::Namespace::PositionIndex, &[side, bucket])
}

fn count_key(side: u8) -> alloy_primitives::B256 {
    state_key::leaf_key(state_key::Namespace::PositionCount, &[side])
}

/// The account's position (default when flat and never traded).
pub fn load(scope: &mut TxScope<'_>, account: &AccountId) -> Result<pb::PositionRecord, ExecError> {
    load_record(scope, &state_key::position_key(account), "position")
}

/// The margin math's view of a stored position: size and typed entry notional.
pub fn perp(record: &pb::PositionRecord) -> Position {
    Position { size_lots: record.size_lots, entry_notional: Usd::from_micros(record.entry_notional_micros) }
}

/// Writes the account's position, keeping the side index in step and adding its change of entry notional
/// to the scope's ledger sums (settled into the totals record at the end of the tx). Opening a position on a
/// side that already holds `max_per_side` positions is refused.
pub fn store(
    scope: &mut TxScope<'_>,
    account: &AccountId,
    record: &pb::PositionRecord,
    max_per_side: u32,
) -> Result<(), ExecError> {
    let before = load(scope, account)?;
    scope.totals_delta_mut().entry_notional_changed(before.entry_notional_micros, record.entry_notional_micros)?;
    let (from, to) = (side_byte(before.size_lots), side_byte(record.size_lots));
    if from != to {
        if let Some(side) = from {
            unindex(scope, side, account)?;
        }
        if let Some(side) = to {
            index(scope, side, account, max_per_side)?;
        }
    }
    scope.write(state_key::position_key(account), record.encode_to_vec());
    Ok(())
}

fn index(scope: &mut TxScope<'_>, side: u8, account: &AccountId, max_per_side: u32) -> Result<(), ExecError> {
    let mut count: pb::PositionCountRecord = load_record(scope, &count_key(side), "position count")?;
    if count.count >= max_per_side {
        return Err(ExecError::InvalidOp(format!(
            "the market holds its limit of {max_per_side} positions on this side; close one first"
        )));
    }
    let key = index_key(side, account.0[0]);
    let mut bucket: pb::PositionIndexRecord = load_record(scope, &key, "position index")?;
    match bucket.accounts.binary_search_by(|a| a.as_slice().cmp(account.0.as_slice())) {
        Ok(_) => return Err(ExecError::Corrupt { what: "position index", detail: format!("{account} listed twice") }),
        Err(at) => bucket.accounts.insert(at, account.0.to_vec()),
    }
    count.count += 1;
    scope.write(key, bucket.encode_to_vec());
    scope.write(count_key(side), count.encode_to_vec());
    Ok(())
}

fn unindex(scope: &mut TxScope<'_>, side: u8, account: &AccountId) -> Result<(), ExecError> {
    let key = index_key(side, account.0[0]);
    let mut bucket: pb::PositionIndexRecord = load_record(scope, &key, "position index")?;
    let at = bucket
        .accounts
        .binary_search_by(|a| a.as_slice().cmp(account.0.as_slice()))
        .map_err(|_| ExecError::Corrupt { what: "position index", detail: format!("{account} not listed") })?;
    bucket.accounts.remove(at);
    let mut count: pb::PositionCountRecord = load_record(scope, &count_key(side), "position count")?;
    count.count = count
        .count
        .checked_sub(1)
        .ok_or_else(|| ExecError::Corrupt { what: "position count", detail: "below zero".into() })?;
    scope.write(key, bucket.encode_to_vec());
    scope.write(count_key(side), count.encode_to_vec());
    Ok(())
}

/// Every account holding a position of the sign of `size_lots` (long if positive, short if negative).
pub fn accounts_on_side_of(scope: &mut TxScope<'_>, size_lots: i64) -> Result<Vec<AccountId>, ExecError> {
    let Some(side) = side_byte(size_lots) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for bucket in 0..=u8::MAX {
        let record: pb::PositionIndexRecord = load_record(scope, &index_key(side, bucket), "position index")?;
        for raw in record.accounts {
            out.push(
                AccountId::from_slice(&raw)
                    .map_err(|e| ExecError::Corrupt { what: "position index", detail: e.to_string() })?,
            );
        }
    }
    Ok(out)
}

/// The fee pool balance.
pub fn load_fee_pool(scope: &mut TxScope<'_>) -> Result<Usd, ExecError> {
    let record: pb::FeePoolRecord = load_record(scope, &state_key::fee_pool_key(), "fee pool")?;
    Usd::from_u64_micros(record.balance_micros).map_err(|_| ExecError::Overflow("fee pool"))
}

/// Writes the fee pool balance (never negative: fees only flow in).
pub fn store_fee_pool(scope: &mut TxScope<'_>, balance: Usd) -> Result<(), ExecError> {
    let balance_micros = u64::try_from(balance.micros()).map_err(|_| ExecError::Overflow("fee pool"))?;
    scope.write(state_key::fee_pool_key(), pb::FeePoolRecord { balance_micros }.encode_to_vec());
    Ok(())
}
