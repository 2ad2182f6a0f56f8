//! The collateral ledger: deposits from the on-ramp, withdrawals, and the free collateral both withdraw and
//! transfer-out may take.

use shardex_core::{pb, perp::health, AccountId, Lots, Usd};

use super::{funding, oracle, positions, trade};
use crate::{
    book,
    error::ExecError,
    exec::BlockCtx,
    records::{collateral, credit, credit_account, load_account, load_totals, store_account, store_totals},
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

    let balance = credit_account(scope, &account, amount)?;

    let mut totals = load_totals(scope)?;
    totals.deposited_micros =
        totals.deposited_micros.checked_add(d.amount_micros).ok_or(ExecError::Overflow("deposited total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(&account, amount, balance, pb::CollateralReason::Deposit)])
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
) -> Result<(Usd, pb::AccountRecord), ExecError> {
    if market.kind == pb::MarketKind::Options as i32 {
        let record = load_account(scope, account)?;
        let free = super::options::trade::free_collateral(scope, market, account, collateral(&record), ctx)?;
        return Ok((free, record));
    }
    funding::settle(scope, account)?;
    let record = load_account(scope, account)?;
    let position = positions::load(scope, account)?;
    let orders = book::account_orders(scope, account)?;
    if position.size_lots == 0 && orders.open_buy_lots == 0 && orders.open_sell_lots == 0 {
        return Ok((collateral(&record), record));
    }
    let mark = oracle::fresh_mark(scope, market, ctx)?;
    let math = trade::market_math(market)?;
    let (buys, sells) = (Lots::new(orders.open_buy_lots), Lots::new(orders.open_sell_lots));
    let free = health(&math, collateral(&record), &positions::perp(&position), buys, sells, mark)
        .map_err(|_| ExecError::Overflow("health"))?
        .free_collateral;
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
        return Err(ExecError::InsufficientCollateral {
            requested_micros: w.amount_micros,
            free_micros: free.micros(),
        });
    }
    let taken = amount.checked_neg().map_err(|_| ExecError::Overflow("amount"))?;
    let balance = credit(&mut record, taken)?;
    store_account(scope, signer, &record)?;

    let mut totals = load_totals(scope)?;
    totals.withdrawn_micros =
        totals.withdrawn_micros.checked_add(w.amount_micros).ok_or(ExecError::Overflow("withdrawn total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(signer, taken, balance, pb::CollateralReason::Withdraw)])
}

/// A positive wire amount as [`Usd`].
pub fn positive_amount(micros: u64) -> Result<Usd, ExecError> {
    if micros == 0 {
        return Err(ExecError::InvalidOp("amount must be positive".into()));
    }
    Usd::from_u64_micros(micros).map_err(|_| ExecError::Overflow("amount"))
}

/// A collateral change of `account` by `delta` to `balance`.
pub fn collateral_event(account: &AccountId, delta: Usd, balance: Usd, reason: pb::CollateralReason) -> pb::Event {
    pb::Event {
        account: account.0.to_vec(),
        kind: Some(pb::event::Kind::CollateralChanged(pb::CollateralChanged {
            delta_micros: delta.micros(),
            balance_micros: balance.micros(),
            reason: reason as i32,
        })),
    }
}
