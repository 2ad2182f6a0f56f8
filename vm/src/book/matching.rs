//! Matching an incoming order against the opposite side in price-time priority.

use super::{
    account, level,
    lifecycle::remove_resting,
    query::best_price,
    store::{self, corrupt},
    types::{Book, BookLimits, Fill, Incoming, MatchOutcome, Side},
};
use shardex_core::{pb, Lots, Price};

use crate::{error::ExecError, view::TxScope};

/// True if a limit order at `price` on `side` of `book` would trade at once against the opposite side (own
/// orders included), e.g. to reject a post-only order.
pub fn would_cross(scope: &mut TxScope<'_>, book: Book, side: Side, price: Price) -> Result<bool, ExecError> {
    Ok(best_price(scope, book, side.opposite())?.is_some_and(|best| side.crosses(price, best)))
}

/// Matches `incoming` against the opposite side of its book, best price first and oldest first within a price; each
/// fill trades at the maker's price.
///
/// Stops when the incoming lots are used up, when the best opposite price no longer crosses the limit
/// (a market order crosses any price), when the side is empty, or after touching
/// `max_fills_per_order` makers (then [`MatchOutcome::stopped_at_fill_limit`] is set and the remainder may
/// not rest, since it would still cross). Self-trade prevention: a resting order of the incoming owner that
/// would be hit is cancelled instead (removed like [`cancel`](super::cancel), reported in
/// `self_trade_cancelled`; it consumes none of the incoming lots) and matching goes on. Fully filled makers
/// leave the book, releasing their client ids; a partially filled maker keeps its place. Remaining lots
/// are only reported: resting them (limit orders) or dropping them (market/IOC) is the caller's choice.
pub fn match_incoming(
    scope: &mut TxScope<'_>,
    incoming: &Incoming,
    limits: &BookLimits,
) -> Result<MatchOutcome, ExecError> {
    match_incoming_with(scope, incoming, limits, |_, _, _| Ok(false))
}

/// [`match_incoming`] with a veto: before a maker order is filled for `lots`, `veto(scope, maker, lots)` may
/// refuse it; a refused maker order is removed from the book like a self-trade (reported in
/// [`MatchOutcome::vetoed`], consuming none of the incoming lots, counting toward the fill limit). The VM
/// uses it to cancel orders of accounts that could not pay for their own fill.
pub fn match_incoming_with(
    scope: &mut TxScope<'_>,
    incoming: &Incoming,
    limits: &BookLimits,
    mut veto: impl FnMut(&mut TxScope<'_>, &pb::OrderRecord, Lots) -> Result<bool, ExecError>,
) -> Result<MatchOutcome, ExecError> {
    if incoming.lots.is_zero() {
        return Err(ExecError::InvalidOp("an order must trade at least one lot".into()));
    }
    let (book, maker_side) = (incoming.book, incoming.side.opposite());
    let mut out = MatchOutcome { remaining: incoming.lots, ..MatchOutcome::default() };
    let mut touched = 0usize;
    while !out.remaining.is_zero() {
        let Some(price) = best_price(scope, book, maker_side)? else { break };
        if incoming.limit_price.is_some_and(|limit| !incoming.side.crosses(limit, price)) {
            break;
        }
        if touched >= limits.max_fills_per_order {
            out.stopped_at_fill_limit = true;
            break;
        }
        touched += 1;

        let head = store::load_level(scope, book, maker_side, price.micros())?.head_order_id;
        let mut maker = store::linked_order(scope, head, "level head")?;
        if Book::of(&maker)? != book
            || Side::of(&maker) != maker_side
            || maker.price_micros != price.micros()
            || maker.remaining_lots == 0
        {
            return Err(corrupt("order", format!("order {head} heads level {price} but rests as {maker:?}")));
        }
        let maker_owner = store::owner_of(&maker)?;
        if maker_owner == incoming.owner {
            remove_resting(scope, &maker)?;
            out.self_trade_cancelled.push(maker);
            continue;
        }

        let lots = out.remaining.min(Lots::new(maker.remaining_lots));
        if veto(scope, &maker, lots)? {
            remove_resting(scope, &maker)?;
            out.vetoed.push(maker);
            continue;
        }
        let maker_done = lots.get() == maker.remaining_lots;
        if maker_done {
            remove_resting(scope, &maker)?;
        } else {
            level::reduce(scope, &mut maker, lots.get())?;
            account::record_partial_fill(scope, &maker_owner, maker_side, lots.get())?;
        }
        // lots <= remaining by construction.
        out.remaining = out.remaining.checked_sub(lots).map_err(|_| ExecError::Overflow("incoming lots"))?;
        out.fills.push(Fill { maker_order_id: head, maker: maker_owner, price, lots, maker_done });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::B256;
    use shardex_core::AccountId;

    use super::*;
    use crate::{
        book::{account_orders, cancel, order, order_id_by_client_id, rest, NewOrder},
        view::Changes,
    };

    const LIMITS: BookLimits = BookLimits {
        max_price_levels: 3,
        max_open_orders_per_account: 4,
        max_fills_per_order: 3,
        max_evicted_orders: 1,
    };
    const A: AccountId = AccountId([0xa; 32]);
    const B: AccountId = AccountId([0xb; 32]);

    fn put(s: &mut TxScope<'_>, owner: AccountId, side: Side, price: u64, lots: u64, cid: u64) -> u64 {
        let new = NewOrder {
            book: Book::Perp,
            owner,
            side,
            price: Price::from_micros(price),
            lots: Lots::new(lots),
            client_order_id: cid,
            reduce_only: false,
            placed_height: 7,
        };
        rest(s, &new, &LIMITS).expect("rest").order.order_id
    }

    fn take(s: &mut TxScope<'_>, owner: AccountId, side: Side, limit: Option<u64>, lots: u64) -> MatchOutcome {
        let incoming = Incoming {
            book: Book::Perp,
            owner,
            side,
            limit_price: limit.map(Price::from_micros),
            lots: Lots::new(lots),
        };
        match_incoming(s, &incoming, &LIMITS).expect("match")
    }

    fn book<R>(f: impl FnOnce(&mut TxScope<'_>) -> R) -> R {
        let (base, parent) = (BTreeMap::<B256, Vec<u8>>::new(), Changes::new());
        f(&mut TxScope::new(&base, &parent))
    }

    #[test]
    fn price_then_time_priority_at_maker_price() {
        book(|s| {
            let a1 = put(s, A, Side::Sell, 101, 2, 0);
            let a2 = put(s, A, Side::Sell, 100, 2, 0);
            let a3 = put(s, A, Side::Sell, 100, 2, 0);
            let out = take(s, B, Side::Buy, Some(105), 5);
            let got: Vec<_> =
                out.fills.iter().map(|f| (f.maker_order_id, f.price.micros(), f.lots.get(), f.maker_done)).collect();
            assert_eq!(got, [(a2, 100, 2, true), (a3, 100, 2, true), (a1, 101, 1, false)]);
            assert_eq!(out.remaining.get(), 0);
            assert_eq!(order(s, a1).expect("read").map(|o| o.remaining_lots), Some(1));
            let acct = account_orders(s, &A).expect("read");
            assert_eq!((acct.order_ids, acct.open_sell_lots), (vec![a1], 1));
        });
    }

    #[test]
    fn limit_stops_matching_and_market_takes_all() {
        book(|s| {
            put(s, A, Side::Buy, 100, 2, 0);
            put(s, A, Side::Buy, 99, 2, 0);
            let out = take(s, B, Side::Sell, Some(100), 5);
            assert_eq!((out.fills.len(), out.remaining.get()), (1, 3));
            assert!(would_cross(s, Book::Perp, Side::Sell, Price::from_micros(99)).expect("read"));
            assert!(!would_cross(s, Book::Perp, Side::Sell, Price::from_micros(100)).expect("read"));
            let out = take(s, B, Side::Sell, None, 5);
            assert_eq!((out.fills.len(), out.remaining.get()), (1, 3));
            assert_eq!(best_price(s, Book::Perp, Side::Buy), Ok(None));
        });
    }

    #[test]
    fn self_trade_cancels_maker_and_releases_client_id() {
        book(|s| {
            let own = put(s, A, Side::Sell, 100, 2, 42);
            let other = put(s, B, Side::Sell, 100, 3, 0);
            let out = take(s, A, Side::Buy, Some(100), 2);
            assert_eq!(out.self_trade_cancelled.iter().map(|o| o.order_id).collect::<Vec<_>>(), [own]);
            assert_eq!(out.fills.iter().map(|f| (f.maker_order_id, f.lots.get())).collect::<Vec<_>>(), [(other, 2)]);
            assert_eq!(order_id_by_client_id(s, &A, 42), Ok(None));
            assert_eq!(account_orders(s, &A), Ok(Default::default()));
        });
    }

    #[test]
    fn fill_limit_counts_makers_touched() {
        book(|s| {
            for _ in 0..4 {
                put(s, B, Side::Sell, 100, 1, 0);
            }
            let out = take(s, A, Side::Buy, Some(100), 10);
            assert_eq!((out.fills.len(), out.remaining.get(), out.stopped_at_fill_limit), (3, 7, true));
            let new = NewOrder {
                book: Book::Perp,
                owner: A,
                side: Side::Buy,
                price: Price::from_micros(100),
                lots: Lots::new(7),
                client_order_id: 0,
                reduce_only: false,
                placed_height: 0,
            };
            assert!(matches!(rest(s, &new, &LIMITS), Err(ExecError::InvalidOp(_))), "remainder would cross");
        });
    }

    #[test]
    fn rest_limits_and_client_ids() {
        book(|s| {
            let first = put(s, A, Side::Buy, 97, 1, 5);
            assert_eq!(order_id_by_client_id(s, &A, 5), Ok(Some(first)));
            let dup = NewOrder {
                book: Book::Perp,
                owner: A,
                side: Side::Buy,
                price: Price::from_micros(97),
                lots: Lots::new(1),
                client_order_id: 5,
                reduce_only: false,
                placed_height: 0,
            };
            assert!(rest(s, &dup, &LIMITS).is_err(), "client id reserved while resting");
            put(s, A, Side::Buy, 98, 1, 0);
            put(s, A, Side::Buy, 99, 1, 0);
            let new_level = NewOrder { owner: B, price: Price::from_micros(96), client_order_id: 0, ..dup };
            assert!(rest(s, &new_level, &LIMITS).is_err(), "max price levels, and 96 is worse than every level");
            put(s, B, Side::Buy, 99, 1, 0);
            put(s, A, Side::Buy, 99, 1, 0);
            let fifth = NewOrder { price: Price::from_micros(99), client_order_id: 0, ..dup };
            assert!(rest(s, &fifth, &LIMITS).is_err(), "max open orders");
            cancel(s, first).expect("cancel");
            assert_eq!(order_id_by_client_id(s, &A, 5), Ok(None));
            assert!(cancel(s, first).is_err(), "no longer resting");
            assert!(rest(s, &dup, &LIMITS).is_ok(), "client id free again");
        });
    }

    /// A full side gives way to a better price: the worst level light enough to evict goes, whoever owns it
    /// (the new order's owner included, whose records stay exact); a side whose worse levels are all too
    /// deep refuses the price and changes nothing.
    #[test]
    fn a_full_side_evicts_its_worst_light_level_for_a_better_price() {
        book(|s| {
            let low = put(s, A, Side::Buy, 90, 3, 9); // A's, at the worst price
            let mid = put(s, B, Side::Buy, 95, 1, 0);
            let top = put(s, B, Side::Buy, 99, 1, 0);
            let new = |owner, price| NewOrder {
                book: Book::Perp,
                owner,
                side: Side::Buy,
                price: Price::from_micros(price),
                lots: Lots::new(2),
                client_order_id: 0,
                reduce_only: false,
                placed_height: 8,
            };
            let rested = rest(s, &new(A, 97), &LIMITS).expect("97 beats the worst level");
            assert_eq!(rested.evicted.iter().map(|o| (o.order_id, o.remaining_lots)).collect::<Vec<_>>(), [(low, 3)]);
            assert_eq!(order(s, low), Ok(None));
            assert_eq!(order_id_by_client_id(s, &A, 9), Ok(None), "the evicted order's client id is free");
            let acct = account_orders(s, &A).expect("read");
            assert_eq!((acct.order_ids, acct.open_buy_lots), (vec![rested.order.order_id], 2));
            assert_eq!(super::super::depth(s, Book::Perp, Side::Buy, 10).expect("depth").len(), 3);

            // 95 now holds two orders, more than may be evicted; 97 holds one, but a price must beat a level
            // to evict it.
            put(s, A, Side::Buy, 95, 1, 0);
            let too_deep = rest(s, &new(B, 96), &LIMITS);
            assert!(matches!(&too_deep, Err(ExecError::InvalidOp(m)) if m.contains("give way")), "{too_deep:?}");
            let rested = rest(s, &new(B, 98), &LIMITS).expect("98 beats 97, which is light");
            assert_eq!(rested.evicted.len(), 1);
            assert_eq!(account_orders(s, &A).expect("read").open_buy_lots, 1, "A keeps only its order at 95");
            assert!(order(s, mid).expect("read").is_some() && order(s, top).expect("read").is_some());
        });
    }

    /// Each option series has a book of its own, apart from the others and from the perpetual's: orders
    /// rest, cross and match only within their book, under the same order ids and account records.
    #[test]
    fn series_books_are_apart() {
        use shardex_core::option::series::{OptionKind, SeriesId};
        let call = SeriesId { expiry_ms: 3_600_000, strike_micros: 2_000_000_000, kind: OptionKind::Call };
        let (c, p) = (Book::Series(call), Book::Series(SeriesId { kind: OptionKind::Put, ..call }));
        book(|s| {
            let new = |book, side, price| NewOrder {
                book,
                owner: A,
                side,
                price: Price::from_micros(price),
                lots: Lots::new(2),
                client_order_id: 0,
                reduce_only: false,
                placed_height: 1,
            };
            let ask = rest(s, &new(c, Side::Sell, 100), &LIMITS).expect("call ask").order;
            assert_eq!(Book::of(&ask), Ok(c));
            // A bid above the call's ask rests on the put's book and on the perpetual's: it crosses nothing.
            let bid = rest(s, &new(p, Side::Buy, 120), &LIMITS).expect("put bid rests").order;
            rest(s, &new(Book::Perp, Side::Buy, 120), &LIMITS).expect("perp bid rests");
            assert!(would_cross(s, c, Side::Buy, Price::from_micros(120)).expect("read"));
            assert!(!would_cross(s, p, Side::Sell, Price::from_micros(121)).expect("read"));
            assert_eq!(best_price(s, p, Side::Buy), Ok(Some(Price::from_micros(120))));
            assert_eq!(best_price(s, c, Side::Buy), Ok(None));
            let take = |s: &mut TxScope<'_>, book| {
                let incoming = Incoming { book, owner: B, side: Side::Buy, limit_price: None, lots: Lots::new(5) };
                match_incoming(s, &incoming, &LIMITS).expect("match")
            };
            assert!(take(s, p).fills.is_empty(), "the put's book has no asks");
            let out = take(s, c);
            assert_eq!(
                out.fills.iter().map(|f| (f.maker_order_id, f.lots.get())).collect::<Vec<_>>(),
                [(ask.order_id, 2)]
            );
            assert_eq!(account_orders(s, &A).expect("read").order_ids.len(), 2, "the put bid and the perp bid");
            cancel(s, bid.order_id).expect("cancel");
            assert_eq!(best_price(s, p, Side::Buy), Ok(None));
            assert_eq!(best_price(s, Book::Perp, Side::Buy), Ok(Some(Price::from_micros(120))));
        });
        let corrupt = pb::OrderRecord { series: vec![1; 16], ..pb::OrderRecord::default() };
        assert!(matches!(Book::of(&corrupt), Err(ExecError::Corrupt { .. })));
    }
}
