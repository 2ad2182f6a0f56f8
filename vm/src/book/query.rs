//! Read-only views of the book, for the VM, queries and tests.

use shardex_core::{pb, AccountId, Lots, Price};

use super::{
    store::{self, corrupt},
    types::{Book, Side},
};
use crate::{error::ExecError, view::TxScope};

/// One price level as a depth snapshot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthLevel {
    /// The level's price.
    pub price: Price,
    /// Lots resting at that price.
    pub total: Lots,
    /// Orders resting at that price.
    pub order_count: u32,
}

/// The resting order `order_id`, if it rests.
pub fn order(scope: &mut TxScope<'_>, order_id: u64) -> Result<Option<pb::OrderRecord>, ExecError> {
    store::load_order(scope, order_id)
}

/// The resting order `owner` placed under `client_order_id` (0 never names one). The mapping exists only
/// while that order rests.
pub fn order_id_by_client_id(
    scope: &mut TxScope<'_>,
    owner: &AccountId,
    client_order_id: u64,
) -> Result<Option<u64>, ExecError> {
    if client_order_id == 0 {
        return Ok(None);
    }
    let id = store::load_client_order(scope, owner, client_order_id)?;
    Ok((id != 0).then_some(id))
}

/// `owner`'s resting order ids (placement order) and open lots per side; default when it has none.
pub fn account_orders(scope: &mut TxScope<'_>, owner: &AccountId) -> Result<pb::AccountOrdersRecord, ExecError> {
    store::load_account_orders(scope, owner)
}

/// The best price on one side of `book`, if any order rests there.
pub fn best_price(scope: &mut TxScope<'_>, book: Book, side: Side) -> Result<Option<Price>, ExecError> {
    Ok(store::load_side(scope, book, side)?.prices_micros.first().copied().map(Price::from_micros))
}

/// The best `max_levels` levels of one side of `book`, best first.
pub fn depth(scope: &mut TxScope<'_>, book: Book, side: Side, max_levels: usize) -> Result<Vec<DepthLevel>, ExecError> {
    let prices = store::load_side(scope, book, side)?.prices_micros;
    let mut levels = Vec::with_capacity(prices.len().min(max_levels));
    for price_micros in prices.into_iter().take(max_levels) {
        let level = store::load_level(scope, book, side, price_micros)?;
        if level.order_count == 0 {
            return Err(corrupt("book side", format!("price {price_micros} listed without a level")));
        }
        levels.push(DepthLevel {
            price: Price::from_micros(price_micros),
            total: Lots::new(level.total_lots),
            order_count: level.order_count,
        });
    }
    Ok(levels)
}
