//! Per-account bookkeeping: the owner's resting order ids (ascending, i.e. placement order) with open lots
//! per side, and client order ids, each reserved while its order rests.

use shardex_core::{pb, AccountId};

use super::{
    store::{self, corrupt},
    types::Side,
};
use crate::{error::ExecError, view::TxScope};

fn open_lots(record: &mut pb::AccountOrdersRecord, side: Side) -> &mut u64 {
    match side {
        Side::Buy => &mut record.open_buy_lots,
        Side::Sell => &mut record.open_sell_lots,
    }
}

/// Records a new resting order of `lots` on `side`.
pub(super) fn add_open(
    record: &mut pb::AccountOrdersRecord,
    side: Side,
    order_id: u64,
    lots: u64,
) -> Result<(), ExecError> {
    let open = open_lots(record, side);
    *open = open.checked_add(lots).ok_or(ExecError::Overflow("account open lots"))?;
    record.order_ids.push(order_id);
    Ok(())
}

/// Takes `lots` off the open lots of `side` (a partial fill).
pub(super) fn reduce_open(record: &mut pb::AccountOrdersRecord, side: Side, lots: u64) -> Result<(), ExecError> {
    let open = open_lots(record, side);
    *open = open.checked_sub(lots).ok_or_else(|| corrupt("account orders", format!("open lots below {lots}")))?;
    Ok(())
}

/// Drops resting order `order_id`, which had `remaining_lots` on `side`.
pub(super) fn remove_open(
    record: &mut pb::AccountOrdersRecord,
    side: Side,
    order_id: u64,
    remaining_lots: u64,
) -> Result<(), ExecError> {
    let at = record
        .order_ids
        .iter()
        .position(|&id| id == order_id)
        .ok_or_else(|| corrupt("account orders", format!("order {order_id} missing from its owner's list")))?;
    record.order_ids.remove(at);
    reduce_open(record, side, remaining_lots)
}

/// Takes a partial fill of `lots` off `owner`'s open lots on `side`.
pub(super) fn record_partial_fill(
    scope: &mut TxScope<'_>,
    owner: &AccountId,
    side: Side,
    lots: u64,
) -> Result<(), ExecError> {
    let mut record = store::load_account_orders(scope, owner)?;
    reduce_open(&mut record, side, lots)?;
    store::store_account_orders(scope, owner, &record);
    Ok(())
}

/// Forgets a resting order that left the book: its id, its open lots and its client order id.
pub(super) fn forget(scope: &mut TxScope<'_>, owner: &AccountId, order: &pb::OrderRecord) -> Result<(), ExecError> {
    let mut record = store::load_account_orders(scope, owner)?;
    remove_open(&mut record, Side::of(order), order.order_id, order.remaining_lots)?;
    store::store_account_orders(scope, owner, &record);
    if order.client_order_id != 0 {
        let mapped = store::load_client_order(scope, owner, order.client_order_id)?;
        if mapped != order.order_id {
            return Err(corrupt(
                "client order",
                format!("client id {} maps to {mapped}, not order {}", order.client_order_id, order.order_id),
            ));
        }
        store::store_client_order(scope, owner, order.client_order_id, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_lots_per_side() {
        let mut r = pb::AccountOrdersRecord::default();
        add_open(&mut r, Side::Buy, 1, 5).expect("add");
        add_open(&mut r, Side::Sell, 2, 7).expect("add");
        reduce_open(&mut r, Side::Sell, 3).expect("partial");
        assert_eq!((r.open_buy_lots, r.open_sell_lots), (5, 4));
        remove_open(&mut r, Side::Buy, 1, 5).expect("remove");
        assert_eq!(r.order_ids, [2]);
        remove_open(&mut r, Side::Sell, 2, 4).expect("remove");
        assert_eq!(r, pb::AccountOrdersRecord::default(), "no orders left encodes to nothing");
        assert!(matches!(remove_open(&mut r, Side::Sell, 2, 0), Err(ExecError::Corrupt { .. })));
        assert!(matches!(reduce_open(&mut r, Side::Buy, 1), Err(ExecError::Corrupt { .. })));
        r.open_buy_lots = u64::MAX;
        assert_eq!(add_open(&mut r, Side::Buy, 3, 1), Err(ExecError::Overflow("account open lots")));
    }
}
