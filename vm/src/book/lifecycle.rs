//! Resting and removing orders. The caller (the VM's op handler) has already checked signatures,
//! ownership, margin, tick/lot sizes and time in force; the book keeps only its own invariants.

use shardex_core::{pb, AccountId};

use super::{
    account,
    level::{self, Room},
    matching::would_cross,
    store,
    types::{Book, BookLimits, NewOrder, Rested, Side},
};
use crate::{error::ExecError, view::TxScope};

/// Rests `new` as a new order at the tail of its price level and returns the stored record, with the orders
/// it evicted.
///
/// Allocates the next order id, creates the level (listing its price in order) if needed, records the
/// order in the owner's `AccountOrdersRecord` and, if `client_order_id != 0`, reserves the client id in a
/// `ClientOrderRecord` until the order leaves the book (filled or cancelled).
///
/// A side holds at most `max_price_levels` prices. When a new price finds its side full, the worst level
/// that is worse than the new price and holds at most `max_evicted_orders` orders is evicted: its orders
/// are cancelled (returned in [`Rested::evicted`]) and the new price takes its place. So the levels nearest
/// the mark can always be quoted: a side full of cheap far-away orders gives way, and holding it against
/// better prices takes more than `max_evicted_orders` orders on every level.
///
/// Fails with `InvalidOp`, writing nothing, when `lots` is 0, the price would cross the opposite side
/// (match first), the client id already names a resting order of the owner, the owner has
/// `max_open_orders_per_account` orders, or the side is full and no level worse than the price may be
/// evicted.
pub fn rest(scope: &mut TxScope<'_>, new: &NewOrder, limits: &BookLimits) -> Result<Rested, ExecError> {
    let NewOrder { book, owner, side, price, lots, client_order_id, reduce_only, placed_height } = *new;
    if lots.is_zero() {
        return Err(ExecError::InvalidOp("an order must rest at least one lot".into()));
    }
    if would_cross(scope, book, side, price)? {
        return Err(ExecError::InvalidOp(format!("a {side:?} order at {price} would cross the book")));
    }
    let (price_micros, lots) = (price.micros(), lots.get());
    let mut orders = store::load_account_orders(scope, &owner)?;
    if orders.order_ids.len() >= limits.max_open_orders_per_account {
        return Err(ExecError::InvalidOp(format!(
            "account has {} open orders, the most allowed",
            limits.max_open_orders_per_account
        )));
    }
    if client_order_id != 0 {
        let existing = store::load_client_order(scope, &owner, client_order_id)?;
        if existing != 0 {
            return Err(ExecError::InvalidOp(format!(
                "client order id {client_order_id} already names resting order {existing}"
            )));
        }
    }
    let evicted = match level::room(scope, book, side, price_micros, limits.max_price_levels)? {
        Room::Free => Vec::new(),
        Room::Full(prices) => {
            let Some((worse, level)) =
                level::evictable(scope, book, side, &prices, price_micros, limits.max_evicted_orders)?
            else {
                return Err(ExecError::InvalidOp(format!(
                    "the {side:?} side has {} price levels, the most allowed, and none worse than {price_micros} \
                     holds {} orders or fewer to give way",
                    limits.max_price_levels, limits.max_evicted_orders
                )));
            };
            evict(scope, book, side, worse, &level)?
        }
    };
    // Eviction changed the records of the owners it evicted: the owner's are read again if it was one.
    if evicted.iter().any(|o| o.owner.as_slice() == owner.0.as_slice()) {
        orders = store::load_account_orders(scope, &owner)?;
    }

    // Checks done: from here on only corrupt state or overflow can fail.
    let order_id = store::allocate_order_id(scope)?;
    let mut order = pb::OrderRecord {
        order_id,
        owner: owner.0.to_vec(),
        is_buy: side.is_buy(),
        price_micros,
        remaining_lots: lots,
        client_order_id,
        reduce_only,
        placed_height,
        prev_order_id: 0,
        next_order_id: 0,
        original_lots: lots,
        series: book.series_bytes(),
    };
    account::add_open(&mut orders, side, order_id, lots)?;
    level::append(scope, &mut order)?;
    store::store_account_orders(scope, &owner, &orders);
    if client_order_id != 0 {
        store::store_client_order(scope, &owner, client_order_id, order_id);
    }
    Ok(Rested { order, evicted })
}

/// Cancels every order of the level at (`side`, `price_micros`) of `book`, oldest first, and returns them as
/// they rested; the level and its price go with the last one.
fn evict(
    scope: &mut TxScope<'_>,
    book: Book,
    side: Side,
    price_micros: u64,
    level: &pb::BookLevelRecord,
) -> Result<Vec<pb::OrderRecord>, ExecError> {
    let mut evicted = Vec::with_capacity(level.order_count as usize);
    let mut next = level.head_order_id;
    for _ in 0..level.order_count {
        let order = store::linked_order(scope, next, "evicted level")?;
        if Book::of(&order)? != book || Side::of(&order) != side || order.price_micros != price_micros {
            return Err(store::corrupt("book level", format!("order {next} linked into level {price_micros}")));
        }
        next = order.next_order_id;
        remove_resting(scope, &order)?;
        evicted.push(order);
    }
    if next != 0 {
        return Err(store::corrupt("book level", format!("level {price_micros} links more orders than it counts")));
    }
    Ok(evicted)
}

/// Removes resting order `order_id` from the book (level, side list, owner's records, client id) and
/// returns it as it rested. `InvalidOp` if no such order rests. Whether the signer may cancel it is the
/// caller's check.
pub fn cancel(scope: &mut TxScope<'_>, order_id: u64) -> Result<pb::OrderRecord, ExecError> {
    let order = store::load_order(scope, order_id)?
        .ok_or_else(|| ExecError::InvalidOp(format!("order {order_id} is not resting")))?;
    remove_resting(scope, &order)?;
    Ok(order)
}

/// Cancels every resting order of `owner` (at most `max_open_orders_per_account`), oldest first, and
/// returns them as they rested.
pub fn cancel_all(scope: &mut TxScope<'_>, owner: &AccountId) -> Result<Vec<pb::OrderRecord>, ExecError> {
    Ok(cancel_oldest(scope, owner, usize::MAX)?.0)
}

/// Cancels the `max` oldest resting orders of `owner` and returns them as they rested, with whether more
/// remain: bounded work for a caller that must always fit in one op (liquidation).
pub fn cancel_oldest(
    scope: &mut TxScope<'_>,
    owner: &AccountId,
    max: usize,
) -> Result<(Vec<pb::OrderRecord>, bool), ExecError> {
    let ids = store::load_account_orders(scope, owner)?.order_ids;
    let more = ids.len() > max;
    let mut cancelled = Vec::with_capacity(ids.len().min(max));
    for id in ids.into_iter().take(max) {
        let order = store::linked_order(scope, id, "account orders")?;
        if store::owner_of(&order)? != *owner {
            return Err(store::corrupt("account orders", format!("order {id} listed for another owner")));
        }
        remove_resting(scope, &order)?;
        cancelled.push(order);
    }
    Ok((cancelled, more))
}

/// Takes `order` (as stored) off the book entirely: unlinks it and forgets it in its owner's records.
pub(super) fn remove_resting(scope: &mut TxScope<'_>, order: &pb::OrderRecord) -> Result<(), ExecError> {
    let owner = store::owner_of(order)?;
    level::unlink(scope, order)?;
    account::forget(scope, &owner, order)
}
