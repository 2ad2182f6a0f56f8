//! Funding: at the first block at least `funding_interval_ms` after the last funding, the cumulative index
//! moves by the premium of the book's mid over the oracle index, clamped. Positions settle lazily against
//! the index whenever they are touched (before any fill, liquidation or withdrawal), so funding costs no
//! work per position per interval. Payers pay rounded up, receivers get rounded down; the funding pool
//! keeps the difference and the payments not yet claimed, so money is conserved exactly.

use prost::Message;
use shardex_core::{pb, perp::funding_payment, state_key, AccountId, Usd};

use super::{oracle, positions};
use crate::{
    book::{self, Book, Side},
    error::ExecError,
    exec::BlockCtx,
    records::{credit_account, load_record},
    view::TxScope,
};

/// Funding intervals kept in the record's history.
pub const FUNDING_HISTORY_LEN: usize = 64;

/// The funding index record.
pub fn load(scope: &mut TxScope<'_>) -> Result<pb::FundingIndexRecord, ExecError> {
    load_record(scope, &state_key::funding_key(), "funding index")
}

fn store(scope: &mut TxScope<'_>, record: &pb::FundingIndexRecord) {
    scope.write(state_key::funding_key(), record.encode_to_vec());
}

/// Settles `account`'s funding up to the current index: credits or debits collateral, moves the opposite
/// amount through the pool, and marks the position settled. Returns the collateral change.
pub fn settle(scope: &mut TxScope<'_>, account: &AccountId) -> Result<Usd, ExecError> {
    let mut record = positions::load(scope, account)?;
    let mut index = load(scope)?;
    if record.last_funding_index == index.cumulative_index {
        return Ok(Usd::ZERO);
    }
    let delta =
        index.cumulative_index.checked_sub(record.last_funding_index).ok_or(ExecError::Overflow("funding delta"))?;
    let payment = funding_payment(record.size_lots, delta).map_err(|_| ExecError::Overflow("funding payment"))?;
    record.last_funding_index = index.cumulative_index;
    // The size does not change, so the side index and its limit are untouched.
    positions::store(scope, account, &record, u32::MAX)?;
    if payment != Usd::ZERO {
        credit_account(scope, account, payment)?;
        index.pool_micros =
            index.pool_micros.checked_sub(payment.micros()).ok_or(ExecError::Overflow("funding pool"))?;
        store(scope, &index);
    }
    Ok(payment)
}

/// Begin-block work: one funding step (and its event) when the interval has passed, priced from the book's mid against a
/// fresh oracle index. Without a fresh index or a two-sided book the interval passes without funding.
pub fn begin_block(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    ctx: &BlockCtx,
) -> Result<Option<pb::Event>, ExecError> {
    if market.funding_interval_ms == 0 {
        return Ok(None);
    }
    let mut index = load(scope)?;
    if index.last_funding_ms == 0 {
        index.last_funding_ms = ctx.timestamp_ms;
        store(scope, &index);
        return Ok(None);
    }
    if ctx.timestamp_ms < index.last_funding_ms.saturating_add(market.funding_interval_ms) {
        return Ok(None);
    }
    index.last_funding_ms = ctx.timestamp_ms;
    index.last_step = 0;
    let mut point = pb::FundingPoint { time_ms: ctx.timestamp_ms, ..Default::default() };
    let bid = book::best_price(scope, Book::Perp, Side::Buy)?;
    let ask = book::best_price(scope, Book::Perp, Side::Sell)?;
    if let (Ok(index_price), Some(bid), Some(ask)) = (oracle::fresh_mark(scope, market, ctx), bid, ask) {
        let mid = bid.midpoint_floor(ask);
        let math = super::trade::market_math(market)?;
        let step = math
            .premium_index(mid, index_price, market.funding_clamp_bps)
            .map_err(|_| ExecError::Overflow("funding step"))?;
        index.cumulative_index =
            index.cumulative_index.checked_add(step).ok_or(ExecError::Overflow("funding index"))?;
        index.last_step = step;
        point = pb::FundingPoint {
            time_ms: ctx.timestamp_ms,
            step,
            mid_micros: mid.micros(),
            index_micros: index_price.micros(),
        };
    }
    index.history.push(point);
    let excess = index.history.len().saturating_sub(FUNDING_HISTORY_LEN);
    index.history.drain(..excess);
    store(scope, &index);
    let applied = pb::FundingApplied { point: Some(point), cumulative_index: index.cumulative_index };
    Ok(Some(pb::Event { account: Vec::new(), kind: Some(pb::event::Kind::FundingApplied(applied)) }))
}
