//! The collateral ledger: deposits from the on-ramp, withdrawals, and the free collateral both withdraw and
//! transfer-out may take.

use shardex_core::{
    pb,
    perp::{health, Position},
    AccountId,
};

use super::{funding, oracle, positions, trade};
use crate::{
    book,
    error::ExecError,
    exec::BlockCtx,
    records::{load_account, load_totals, store_account, store_totals},
    view::TxScope,
};

/// Credits collateral; only the deposit authority may sign.
pub fn deposit(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    d: &pb::Deposit,
) -> Result<Vec<pb::Event>, ExecError> {
    if signer.0.as_slice() != market.deposit_authority.as_slice() {
        return Err(ExecError::Unauthorized("deposits must be signed by the shard's deposit authority".into()));
    }
    let account =
        AccountId::from_slice(&d.account).map_err(|e| ExecError::InvalidOp(format!("deposit account: {e}")))?;
    let amount = positive_amount(d.amount_micros)?;

    let mut record = load_account(scope, &account)?;
    record.collateral_micros = record.collateral_micros.checked_add(amount).ok_or(ExecError::Overflow("collateral"))?;
    store_account(scope, &account, &record)?;

    let mut totals = load_totals(scope)?;
    totals.deposited_micros =
        totals.deposited_micros.checked_add(d.amount_micros).ok_or(ExecError::Overflow("deposited total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(&account, amount, record.collateral_micros, pb::CollateralReason::Deposit)])
}

/// What `account` may take out of this market (withdraw, transfer-out) at block time: all of its collateral
/// when flat with no resting orders, otherwise what the margin at a fresh mark leaves free
/// (`min(collateral, equity - initial requirement)`; on an options market, what its option margin leaves).
/// Settles pending funding first; returns the free amount and the settled account record.
pub fn free_collateral(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    account: &AccountId,
    ctx: &BlockCtx,
) -> Result<(i64, pb::AccountRecord), ExecError> {
    if market.kind == pb::MarketKind::Options as i32 {
        let record = load_account(scope, account)?;
        let free = super::options::trade::free_collateral(scope, market, account, record.collateral_micros, ctx)?;
        return Ok((free, record));
    }
    funding::settle(scope, account)?;
    let record = load_account(scope, account)?;
    let position = positions::load(scope, account)?;
    let orders = book::account_orders(scope, account)?;
    if position.size_lots == 0 && orders.open_buy_lots == 0 && orders.open_sell_lots == 0 {
        return Ok((record.collateral_micros, record));
    }
    let mark = oracle::fresh_mark(scope, market, ctx)?;
    let math = trade::market_math(market)?;
    let pos = Position { size_lots: position.size_lots, entry_notional_micros: position.entry_notional_micros };
    let free = health(&math, record.collateral_micros, &pos, orders.open_buy_lots, orders.open_sell_lots, mark)
        .map_err(|_| ExecError::Overflow("health"))?
        .free_collateral_micros;
    Ok((free, record))
}

/// Debits the signer's free collateral ([`free_collateral`]).
pub fn withdraw(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    w: &pb::Withdraw,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let amount = positive_amount(w.amount_micros)?;
    let (free, mut record) = free_collateral(scope, market, signer, ctx)?;
    if amount > free {
        return Err(ExecError::InsufficientCollateral { requested_micros: w.amount_micros, free_micros: free });
    }
    record.collateral_micros -= amount;
    store_account(scope, signer, &record)?;

    let mut totals = load_totals(scope)?;
    totals.withdrawn_micros =
        totals.withdrawn_micros.checked_add(w.amount_micros).ok_or(ExecError::Overflow("withdrawn total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(signer, -amount, record.collateral_micros, pb::CollateralReason::Withdraw)])
}

/// A positive amount as i64.
pub fn positive_amount(micros: u64) -> Result<i64, ExecError> {
    if micros == 0 {
        return Err(ExecError::InvalidOp("amount must be positive".into()));
    }
    i64::try_from(micros).map_err(|_| ExecError::Overflow("amount"))
}

/// A collateral change of `account` by `delta` to `balance`.
pub fn collateral_event(account: &AccountId, delta: i64, balance: i64, reason: pb::CollateralReason) -> pb::Event {
    pb::Event {
        account: account.0.to_vec(),
        kind: Some(pb::event::Kind::CollateralChanged(pb::CollateralChanged {
            delta_micros: delta,
            balance_micros: balance,
            reason: reason as i32,
        })),
    }
}
