//! Price levels and side lists. A level is a FIFO of orders (time priority) linked through the orders'
//! prev/next ids, with head, tail, total lots and count in its `BookLevelRecord`. A side list holds the
//! prices of the side's levels, best first (price priority). A level exists iff it holds an order, and the
//! side list equals the set of existing levels.

use shardex_core::{pb, Price};

use super::{
    store::{self, corrupt},
    types::{Book, Side},
};
use crate::{error::ExecError, view::TxScope};

/// Inserts `price_micros` into `prices` (best first) after every better price.
fn insert_price(prices: &mut Vec<u64>, side: Side, price_micros: u64) -> Result<(), ExecError> {
    if prices.contains(&price_micros) {
        return Err(corrupt("book side", format!("price {price_micros} listed without a level")));
    }
    let at = prices.iter().position(|&p| side.is_better(Price::from_micros(price_micros), Price::from_micros(p)));
    let at = at.unwrap_or(prices.len());
    prices.insert(at, price_micros);
    Ok(())
}

/// Removes `price_micros` from `prices`.
fn remove_price(prices: &mut Vec<u64>, price_micros: u64) -> Result<(), ExecError> {
    let at = prices
        .iter()
        .position(|&p| p == price_micros)
        .ok_or_else(|| corrupt("book side", format!("level {price_micros} missing from its side list")))?;
    prices.remove(at);
    Ok(())
}

/// Whether a side can take an order at a price.
pub(super) enum Room {
    /// The price's level exists, or the side has fewer than `max_price_levels` levels.
    Free,
    /// The side is full and the price needs a new level; these are its prices, best first.
    Full(Vec<u64>),
}

/// Whether an order at (`side`, `price_micros`) of `book` fits without a new level beyond `max_price_levels`.
pub(super) fn room(
    scope: &mut TxScope<'_>,
    book: Book,
    side: Side,
    price_micros: u64,
    max_price_levels: usize,
) -> Result<Room, ExecError> {
    if store::load_level(scope, book, side, price_micros)?.order_count > 0 {
        return Ok(Room::Free);
    }
    let prices = store::load_side(scope, book, side)?.prices_micros;
    Ok(if prices.len() < max_price_levels { Room::Free } else { Room::Full(prices) })
}

/// The worst level of a full side that is worse than `price_micros` and holds at most `max_orders` orders:
/// the level a new, better price evicts. `prices` is the side list, best first. Reads at most every level
/// worse than `price_micros`.
pub(super) fn evictable(
    scope: &mut TxScope<'_>,
    book: Book,
    side: Side,
    prices: &[u64],
    price_micros: u64,
    max_orders: usize,
) -> Result<Option<(u64, pb::BookLevelRecord)>, ExecError> {
    let price = Price::from_micros(price_micros);
    for &worse in prices.iter().rev().take_while(|&&p| side.is_better(price, Price::from_micros(p))) {
        let level = store::load_level(scope, book, side, worse)?;
        if level.order_count == 0 {
            return Err(corrupt("book side", format!("price {worse} listed without a level")));
        }
        if level.order_count as usize <= max_orders {
            return Ok(Some((worse, level)));
        }
    }
    Ok(None)
}

/// Links `order` at the tail of its level (creating the level and listing its price if needed) and writes
/// it. Sets the order's prev/next ids. The caller has checked [`room`].
pub(super) fn append(scope: &mut TxScope<'_>, order: &mut pb::OrderRecord) -> Result<(), ExecError> {
    let (book, side) = (Book::of(order)?, Side::of(order));
    let price = order.price_micros;
    let mut level = store::load_level(scope, book, side, price)?;
    if level.order_count == 0 {
        if level != pb::BookLevelRecord::default() {
            return Err(corrupt("book level", format!("empty level {price} holds {level:?}")));
        }
        let mut list = store::load_side(scope, book, side)?;
        insert_price(&mut list.prices_micros, side, price)?;
        store::store_side(scope, book, side, &list);
        order.prev_order_id = 0;
        level.head_order_id = order.order_id;
    } else {
        let mut tail = store::linked_order(scope, level.tail_order_id, "level tail")?;
        if tail.next_order_id != 0 {
            return Err(corrupt("order", format!("level tail {} links a next order", tail.order_id)));
        }
        tail.next_order_id = order.order_id;
        store::store_order(scope, &tail);
        order.prev_order_id = tail.order_id;
    }
    order.next_order_id = 0;
    level.tail_order_id = order.order_id;
    level.total_lots = level.total_lots.checked_add(order.remaining_lots).ok_or(ExecError::Overflow("level lots"))?;
    level.order_count = level.order_count.checked_add(1).ok_or(ExecError::Overflow("level order count"))?;
    store::store_level(scope, book, side, price, &level);
    store::store_order(scope, order);
    Ok(())
}

/// Unlinks `order` (as stored) from its level and deletes its record. A level left empty is deleted and its
/// price leaves the side list (an emptied side list deletes its key). Account records are not touched.
pub(super) fn unlink(scope: &mut TxScope<'_>, order: &pb::OrderRecord) -> Result<(), ExecError> {
    let (book, side) = (Book::of(order)?, Side::of(order));
    let (id, price) = (order.order_id, order.price_micros);
    let mut level = store::load_level(scope, book, side, price)?;
    if level.order_count == 0 {
        return Err(corrupt("book level", format!("order {id} rests on missing level {price}")));
    }
    if order.prev_order_id == 0 {
        if level.head_order_id != id {
            return Err(corrupt("book level", format!("order {id} has no prev but is not head of level {price}")));
        }
        level.head_order_id = order.next_order_id;
    } else {
        let mut prev = store::linked_order(scope, order.prev_order_id, "order prev")?;
        if prev.next_order_id != id {
            return Err(corrupt("order", format!("order {} does not link back to {id}", prev.order_id)));
        }
        prev.next_order_id = order.next_order_id;
        store::store_order(scope, &prev);
    }
    if order.next_order_id == 0 {
        if level.tail_order_id != id {
            return Err(corrupt("book level", format!("order {id} has no next but is not tail of level {price}")));
        }
        level.tail_order_id = order.prev_order_id;
    } else {
        let mut next = store::linked_order(scope, order.next_order_id, "order next")?;
        if next.prev_order_id != id {
            return Err(corrupt("order", format!("order {} does not link back to {id}", next.order_id)));
        }
        next.prev_order_id = order.prev_order_id;
        store::store_order(scope, &next);
    }
    level.total_lots = level
        .total_lots
        .checked_sub(order.remaining_lots)
        .ok_or_else(|| corrupt("book level", format!("level {price} holds fewer lots than order {id}")))?;
    level.order_count -= 1; // > 0 checked above
    if level.order_count == 0 {
        if level != pb::BookLevelRecord::default() {
            return Err(corrupt("book level", format!("level {price} emptied but still holds {level:?}")));
        }
        let mut list = store::load_side(scope, book, side)?;
        remove_price(&mut list.prices_micros, price)?;
        store::store_side(scope, book, side, &list);
    }
    store::store_level(scope, book, side, price, &level);
    store::delete_order(scope, id);
    Ok(())
}

/// Takes `lots` (fewer than it has) from a resting order, which keeps its place, and from its level.
/// Writes both.
pub(super) fn reduce(scope: &mut TxScope<'_>, order: &mut pb::OrderRecord, lots: u64) -> Result<(), ExecError> {
    let (id, price) = (order.order_id, order.price_micros);
    if lots == 0 || lots >= order.remaining_lots {
        return Err(corrupt("order", format!("partial reduce of order {id} by {lots} of {}", order.remaining_lots)));
    }
    let (book, side) = (Book::of(order)?, Side::of(order));
    let mut level = store::load_level(scope, book, side, price)?;
    level.total_lots = level
        .total_lots
        .checked_sub(lots)
        .ok_or_else(|| corrupt("book level", format!("level {price} holds fewer lots than order {id}")))?;
    order.remaining_lots -= lots; // lots < remaining checked above
    store::store_level(scope, book, side, price, &level);
    store::store_order(scope, order);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::B256;

    use super::*;
    use crate::view::Changes;

    fn order(id: u64, side: Side, price: u64, lots: u64) -> pb::OrderRecord {
        pb::OrderRecord {
            order_id: id,
            owner: vec![1; 32],
            is_buy: side.is_buy(),
            price_micros: price,
            remaining_lots: lots,
            original_lots: lots,
            ..Default::default()
        }
    }

    /// The FIFO of a level by walking from head, checking back links and the level's totals.
    fn fifo(scope: &mut TxScope<'_>, side: Side, price: u64) -> Vec<u64> {
        let level = store::load_level(scope, Book::Perp, side, price).expect("level");
        let (mut ids, mut lots, mut prev, mut cur) = (vec![], 0, 0, level.head_order_id);
        while cur != 0 {
            let o = store::linked_order(scope, cur, "test").expect("order");
            assert_eq!(o.prev_order_id, prev, "back link of {cur}");
            (lots, prev, cur) = (lots + o.remaining_lots, cur, o.next_order_id);
            ids.push(prev);
        }
        assert_eq!((level.tail_order_id, level.total_lots, level.order_count as usize), (prev, lots, ids.len()));
        ids
    }

    fn prices(scope: &mut TxScope<'_>, side: Side) -> Vec<u64> {
        store::load_side(scope, Book::Perp, side).expect("side").prices_micros
    }

    fn with_level<R>(ids: &[u64], f: impl FnOnce(&mut TxScope<'_>) -> R) -> R {
        let (base, parent) = (BTreeMap::<B256, Vec<u8>>::new(), Changes::new());
        let mut scope = TxScope::new(&base, &parent);
        for &id in ids {
            append(&mut scope, &mut order(id, Side::Buy, 100, id)).expect("append");
        }
        f(&mut scope)
    }

    fn remove(scope: &mut TxScope<'_>, id: u64) {
        let o = store::linked_order(scope, id, "test").expect("resting");
        unlink(scope, &o).expect("unlink");
        assert_eq!(store::load_order(scope, id), Ok(None));
    }

    #[test]
    fn append_links_fifo() {
        with_level(&[1, 2, 3], |s| assert_eq!(fifo(s, Side::Buy, 100), [1, 2, 3]));
    }

    #[test]
    fn remove_head_tail_middle() {
        for (gone, left) in [(1, [2, 3]), (3, [1, 2]), (2, [1, 3])] {
            with_level(&[1, 2, 3], |s| {
                remove(s, gone);
                assert_eq!(fifo(s, Side::Buy, 100), left, "removing {gone}");
                assert_eq!(prices(s, Side::Buy), [100]);
            });
        }
    }

    #[test]
    fn remove_last_order_deletes_level_and_side() {
        with_level(&[1], |s| {
            remove(s, 1);
            assert_eq!(s.read(&super::super::keys::level_key(Book::Perp, Side::Buy, 100)), Ok(None));
            assert_eq!(
                s.read(&super::super::keys::side_key(Book::Perp, Side::Buy)),
                Ok(None),
                "last level of the side"
            );
        });
    }

    #[test]
    fn remove_last_order_of_one_level_keeps_others() {
        with_level(&[1], |s| {
            append(s, &mut order(2, Side::Buy, 90, 5)).expect("append");
            append(s, &mut order(3, Side::Buy, 110, 5)).expect("append");
            assert_eq!(prices(s, Side::Buy), [110, 100, 90]);
            remove(s, 1);
            assert_eq!(prices(s, Side::Buy), [110, 90]);
            assert_eq!(fifo(s, Side::Buy, 90), [2]);
            remove(s, 3);
            assert_eq!(prices(s, Side::Buy), [90]);
        });
    }

    #[test]
    fn asks_list_ascending() {
        with_level(&[], |s| {
            for (id, p) in [(1, 100), (2, 90), (3, 110), (4, 95)] {
                append(s, &mut order(id, Side::Sell, p, 1)).expect("append");
            }
            assert_eq!(prices(s, Side::Sell), [90, 95, 100, 110]);
            assert_eq!(prices(s, Side::Buy), Vec::<u64>::new());
        });
    }

    #[test]
    fn reduce_keeps_place() {
        with_level(&[4, 5], |s| {
            let mut o = store::linked_order(s, 4, "test").expect("resting");
            reduce(s, &mut o, 3).expect("reduce");
            assert_eq!(fifo(s, Side::Buy, 100), [4, 5]);
            assert_eq!(store::load_level(s, Book::Perp, Side::Buy, 100).expect("level").total_lots, 6);
            assert!(reduce(s, &mut o, 1).is_err(), "reducing to zero is a removal, not a reduce");
        });
    }

    #[test]
    fn broken_links_are_corrupt_not_panics() {
        with_level(&[1, 2], |s| {
            let mut o = store::linked_order(s, 2, "test").expect("resting");
            o.prev_order_id = 9; // a dangling link
            assert!(matches!(unlink(s, &o), Err(ExecError::Corrupt { .. })));
            let mut stray = order(7, Side::Buy, 100, 1); // claims to be head while 1 is
            stray.next_order_id = 2;
            assert!(matches!(unlink(s, &stray), Err(ExecError::Corrupt { .. })));
        });
    }
}
