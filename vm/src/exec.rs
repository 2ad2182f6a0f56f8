//! Executes one verified tx: nonce, authorization, the op, gas. Money is checked integer arithmetic.

use shardex_core::{nonce::NonceWindow, pb, pb::tx_body::Op, tx::VerifiedTx, ChainId, ShardId};

use super::{
    error::ExecError,
    gas::GasSchedule,
    ops,
    ops::{bridge, ledger, liquidate, mode, options, oracle, trade},
    records::{load_account, load_market, store_account},
    totals,
    view::TxScope,
};

/// Consensus parameters the VM needs besides state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmParams {
    /// Gas costs.
    pub gas: GasSchedule,
    /// Largest gas one tx may use.
    pub max_tx_gas: u64,
}

impl Default for VmParams {
    fn default() -> Self {
        Self { gas: GasSchedule::V1, max_tx_gas: 2_000_000 }
    }
}

/// The block a tx executes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCtx {
    /// Height of the block.
    pub height: u64,
    /// Proposer-chosen block time, ms.
    pub timestamp_ms: u64,
}

/// What a successful tx did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Gas charged.
    pub gas_used: u64,
    /// Events for receipts and streams.
    pub events: Vec<pb::Event>,
}

/// Executes `tx` in `scope`. On error the caller drops the scope, so nothing is written. Last, the change of
/// Σ collateral and Σ entry notional made by the op is folded into the ledger totals (`totals::settle`).
pub fn execute(
    scope: &mut TxScope<'_>,
    params: &VmParams,
    tx: &VerifiedTx,
    ctx: &BlockCtx,
) -> Result<Outcome, ExecError> {
    let mut market = load_market(scope)?;
    let signer = tx.signer();

    let mut signer_record = load_account(scope, &signer)?;
    let mut window = NonceWindow::from_stored(std::mem::take(&mut signer_record.nonces));
    window.use_nonce(tx.body().nonce, market.nonce_window as usize)?;
    signer_record.nonces = window.as_slice().to_vec();
    store_account(scope, &signer, &signer_record)?;

    let events = match tx.op() {
        Some(Op::Deposit(d)) => ledger::deposit(scope, &market, &signer, d)?,
        Some(Op::Withdraw(w)) => ledger::withdraw(scope, &market, &signer, w, ctx)?,
        Some(Op::OracleUpdate(u)) => oracle::update(scope, &mut market, &signer, u, ctx)?,
        Some(Op::PlaceOrder(o)) if !o.series.is_empty() => options::trade::place(scope, &mut market, &signer, o, ctx)?,
        Some(Op::PlaceOrder(o)) => {
            options::refuse_on_options(&market, "place_order")?;
            trade::place(scope, &mut market, &signer, o, ctx)?
        }
        Some(Op::CancelOrder(c)) => trade::cancel(scope, &signer, c)?,
        Some(Op::CancelAll(_)) => trade::cancel_all(scope, &signer)?,
        Some(Op::Liquidate(l)) if !l.series.is_empty() => {
            options::liquidate::liquidate(scope, &mut market, &signer, l, ctx)?
        }
        Some(Op::Liquidate(l)) => {
            options::refuse_on_options(&market, "liquidate")?;
            liquidate::liquidate(scope, &mut market, &signer, l, ctx)?
        }
        Some(Op::SetMarketMode(m)) => mode::set_by_admin(scope, &mut market, &signer, m, ctx)?,
        Some(Op::ListSeries(l)) => options::list(scope, &market, &signer, l, ctx)?,
        Some(Op::VolUpdate(v)) => options::update_vol(scope, &market, &signer, v, ctx)?,
        Some(Op::SettleExpired(e)) => options::settle::settle_expired(scope, &market, e)?,
        Some(Op::SetSettlementPrice(x)) => options::settle::set_price(scope, &market, &signer, x, ctx.timestamp_ms)?,
        Some(Op::SetMarginMode(m)) => options::margin::set_mode(scope, &market, &signer, m, ctx)?,
        Some(Op::ImportGlobalCommitment(i)) => bridge::import(scope, &market, &here(tx), i)?,
        Some(Op::TransferOut(t)) => bridge::transfer_out(scope, &market, &here(tx), &signer, t, ctx)?,
        Some(Op::DeliverMessage(d)) => bridge::deliver(scope, &market, &here(tx), d, ctx)?,
        Some(Op::AckMessage(a)) => bridge::ack(scope, &market, &here(tx), a, ctx)?,
        Some(Op::TimeoutRefund(r)) => bridge::refund(scope, &market, &here(tx), r, ctx)?,
        None => return Err(ExecError::InvalidOp("tx body carries no op".into())),
    };

    let gas_used = params.gas.cost_of(&scope.work());
    if gas_used > params.max_tx_gas {
        return Err(ExecError::OutOfGas { needed: gas_used, allowed: params.max_tx_gas });
    }
    totals::settle(scope)?;
    Ok(Outcome { gas_used, events })
}

/// This shard, as the tx names it (admission checked the body's chain and shard are the node's).
fn here(tx: &VerifiedTx) -> bridge::Here {
    bridge::Here { chain: ChainId(tx.body().chain_id), shard: ShardId(tx.body().shard_id) }
}

/// Begin-block work, before the block's txs: the stale-oracle rule, then funding at its interval. Part of consensus: every replica
/// runs it on the same parent state with the same block time.
///
/// Returns the block-level events (market-wide: their `account` is empty). Like a tx, it settles the ledger
/// sums last (no begin-block work stores an account or a position today, so this writes nothing yet).
pub fn begin_block(scope: &mut TxScope<'_>, ctx: &BlockCtx) -> Result<Vec<pb::Event>, ExecError> {
    let mut market = load_market(scope)?;
    let mut events: Vec<pb::Event> = ops::oracle::stale_rule(scope, &mut market, ctx)?.into_iter().collect();
    events.extend(ops::funding::begin_block(scope, &market, ctx)?);
    ops::bridge::prune_settled(scope, ctx)?;
    totals::settle(scope)?;
    Ok(events)
}
