//! Typed load/store of the book's records. An absent key reads as the default record, and storing a default
//! record (zero-byte encoding) deletes its key, so "absent" and "empty" are the same state.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{pb, AccountId};

use super::{
    keys,
    types::{Book, Side},
};
use crate::{error::ExecError, view::TxScope};

/// A `Corrupt` error for `what`: state contradicts the book's invariants.
pub(super) fn corrupt(what: &'static str, detail: impl Into<String>) -> ExecError {
    ExecError::Corrupt { what, detail: detail.into() }
}

fn load<M: Message + Default>(scope: &mut TxScope<'_>, key: &B256, what: &'static str) -> Result<M, ExecError> {
    crate::records::load_record(scope, key, what)
}

fn store<M: Message>(scope: &mut TxScope<'_>, key: B256, record: &M) {
    scope.write(key, record.encode_to_vec());
}

/// The resting order `order_id`, if any; checks that the record is the one its key names.
pub(super) fn load_order(scope: &mut TxScope<'_>, order_id: u64) -> Result<Option<pb::OrderRecord>, ExecError> {
    let Some(bytes) = scope.read(&keys::order_key(order_id))? else { return Ok(None) };
    let order = pb::OrderRecord::decode(bytes.as_slice()).map_err(|e| corrupt("order", e.to_string()))?;
    if order.order_id != order_id {
        return Err(corrupt("order", format!("key of order {order_id} holds order {}", order.order_id)));
    }
    Ok(Some(order))
}

/// The resting order `order_id`, which the book's links say exists.
pub(super) fn linked_order(
    scope: &mut TxScope<'_>,
    order_id: u64,
    linked_from: &'static str,
) -> Result<pb::OrderRecord, ExecError> {
    load_order(scope, order_id)?
        .ok_or_else(|| corrupt("order", format!("{linked_from} links missing order {order_id}")))
}

/// Writes a resting order.
pub(super) fn store_order(scope: &mut TxScope<'_>, order: &pb::OrderRecord) {
    store(scope, keys::order_key(order.order_id), order);
}

/// Deletes a resting order's record.
pub(super) fn delete_order(scope: &mut TxScope<'_>, order_id: u64) {
    scope.write(keys::order_key(order_id), Vec::new());
}

/// The owner of a stored order.
pub(super) fn owner_of(order: &pb::OrderRecord) -> Result<AccountId, ExecError> {
    AccountId::from_slice(&order.owner).map_err(|e| corrupt("order", format!("order {}: {e}", order.order_id)))
}

/// The level at (`side`, `price`) of `book`; default (order_count 0) when there is none.
pub(super) fn load_level(
    scope: &mut TxScope<'_>,
    book: Book,
    side: Side,
    price_micros: u64,
) -> Result<pb::BookLevelRecord, ExecError> {
    load(scope, &keys::level_key(book, side, price_micros), "book level")
}

/// Writes a level; a default (emptied) level deletes its key.
pub(super) fn store_level(
    scope: &mut TxScope<'_>,
    book: Book,
    side: Side,
    price_micros: u64,
    level: &pb::BookLevelRecord,
) {
    store(scope, keys::level_key(book, side, price_micros), level);
}

/// The prices of one side of `book`, best first.
pub(super) fn load_side(scope: &mut TxScope<'_>, book: Book, side: Side) -> Result<pb::BookSideRecord, ExecError> {
    load(scope, &keys::side_key(book, side), "book side")
}

/// Writes the prices of one side of `book`; an empty list deletes its key.
pub(super) fn store_side(scope: &mut TxScope<'_>, book: Book, side: Side, record: &pb::BookSideRecord) {
    store(scope, keys::side_key(book, side), record);
}

/// The open orders of `owner`.
pub(super) fn load_account_orders(
    scope: &mut TxScope<'_>,
    owner: &AccountId,
) -> Result<pb::AccountOrdersRecord, ExecError> {
    load(scope, &keys::account_orders_key(owner), "account orders")
}

/// Writes the open orders of `owner`; none left deletes its key.
pub(super) fn store_account_orders(scope: &mut TxScope<'_>, owner: &AccountId, record: &pb::AccountOrdersRecord) {
    store(scope, keys::account_orders_key(owner), record);
}

/// The order id `owner` reserved under `client_order_id` (0 = none).
pub(super) fn load_client_order(
    scope: &mut TxScope<'_>,
    owner: &AccountId,
    client_order_id: u64,
) -> Result<u64, ExecError> {
    let record: pb::ClientOrderRecord = load(scope, &keys::client_order_key(owner, client_order_id), "client order")?;
    Ok(record.order_id)
}

/// Maps (`owner`, `client_order_id`) to `order_id`; `order_id` 0 deletes the mapping.
pub(super) fn store_client_order(scope: &mut TxScope<'_>, owner: &AccountId, client_order_id: u64, order_id: u64) {
    store(scope, keys::client_order_key(owner, client_order_id), &pb::ClientOrderRecord { order_id });
}

/// Takes the next order id (ids start at 1) and advances the counter.
pub(super) fn allocate_order_id(scope: &mut TxScope<'_>) -> Result<u64, ExecError> {
    let mut counters: pb::MarketCountersRecord = load(scope, &keys::counters_key(), "market counters")?;
    let id = counters.next_order_id.max(1);
    counters.next_order_id = id.checked_add(1).ok_or(ExecError::Overflow("next order id"))?;
    store(scope, keys::counters_key(), &counters);
    Ok(id)
}
