//! Executes one verified tx: nonce, authorization, the op, gas. Money is checked integer arithmetic.

use shardex_core::{nonce::NonceWindow, pb, pb::tx_body::Op, tx::VerifiedTx, AccountId};

use super::{
    error::ExecError,
    gas::GasSchedule,
    records::{load_account, load_market, load_totals, store_account, store_totals},
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
        Self { gas: GasSchedule::V1, max_tx_gas: 100_000 }
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

/// Executes `tx` in `scope`. On error the caller drops the scope, so nothing is written.
pub fn execute(
    scope: &mut TxScope<'_>,
    params: &VmParams,
    tx: &VerifiedTx,
    _ctx: &BlockCtx,
) -> Result<Outcome, ExecError> {
    let market = load_market(scope)?;
    let signer = tx.signer();

    let mut signer_record = load_account(scope, &signer)?;
    let mut window = NonceWindow::from_stored(std::mem::take(&mut signer_record.nonces));
    window.use_nonce(tx.body().nonce, market.nonce_window as usize)?;
    signer_record.nonces = window.as_slice().to_vec();
    store_account(scope, &signer, &signer_record);

    let events = match tx.op() {
        Some(Op::Deposit(d)) => deposit(scope, &market, &signer, d)?,
        Some(Op::Withdraw(w)) => withdraw(scope, &signer, w)?,
        Some(op) => return Err(ExecError::OpNotEnabled(op_name(op))),
        None => return Err(ExecError::InvalidOp("tx body carries no op".into())),
    };

    let gas_used = params.gas.cost(scope.reads(), scope.writes());
    if gas_used > params.max_tx_gas {
        return Err(ExecError::OutOfGas { needed: gas_used, allowed: params.max_tx_gas });
    }
    Ok(Outcome { gas_used, events })
}

fn deposit(
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
    store_account(scope, &account, &record);

    let mut totals = load_totals(scope)?;
    totals.deposited_micros =
        totals.deposited_micros.checked_add(d.amount_micros).ok_or(ExecError::Overflow("deposited total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(&account, amount, record.collateral_micros, pb::CollateralReason::Deposit)])
}

fn withdraw(scope: &mut TxScope<'_>, signer: &AccountId, w: &pb::Withdraw) -> Result<Vec<pb::Event>, ExecError> {
    let amount = positive_amount(w.amount_micros)?;
    let mut record = load_account(scope, signer)?;
    // No positions exist yet, so all collateral is free; margin joins this check with the perpetuals engine.
    let free = record.collateral_micros;
    if amount > free {
        return Err(ExecError::InsufficientCollateral { requested_micros: w.amount_micros, free_micros: free });
    }
    record.collateral_micros -= amount;
    store_account(scope, signer, &record);

    let mut totals = load_totals(scope)?;
    totals.withdrawn_micros =
        totals.withdrawn_micros.checked_add(w.amount_micros).ok_or(ExecError::Overflow("withdrawn total"))?;
    store_totals(scope, &totals);

    Ok(vec![collateral_event(signer, -amount, record.collateral_micros, pb::CollateralReason::Withdraw)])
}

fn positive_amount(micros: u64) -> Result<i64, ExecError> {
    if micros == 0 {
        return Err(ExecError::InvalidOp("amount must be positive".into()));
    }
    i64::try_from(micros).map_err(|_| ExecError::Overflow("amount"))
}

fn collateral_event(account: &AccountId, delta: i64, balance: i64, reason: pb::CollateralReason) -> pb::Event {
    pb::Event {
        account: account.0.to_vec(),
        kind: Some(pb::event::Kind::CollateralChanged(pb::CollateralChanged {
            delta_micros: delta,
            balance_micros: balance,
            reason: reason as i32,
        })),
    }
}

/// Stable op names for errors and logs.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Deposit(_) => "deposit",
        Op::Withdraw(_) => "withdraw",
        Op::PlaceOrder(_) => "place-order",
        Op::CancelOrder(_) => "cancel-order",
        Op::CancelAll(_) => "cancel-all",
        Op::OracleUpdate(_) => "oracle-update",
        Op::Liquidate(_) => "liquidate",
        Op::TransferOut(_) => "transfer-out",
        Op::DeliverMessage(_) => "deliver-message",
        Op::AckMessage(_) => "ack-message",
        Op::TimeoutRefund(_) => "timeout-refund",
        Op::ImportGlobalCommitment(_) => "import-global-commitment",
        Op::SetMarketMode(_) => "set-market-mode",
    }
}
