//! Liquidation: anyone may liquidate an account below maintenance margin. The liquidator takes over the
//! position (or part of it) at the mark; the liquidated account pays a penalty on the notional, split
//! between the liquidator and the insurance fund. A bankrupt account's shortfall is covered by the
//! insurance fund; what the fund cannot cover stays as the account's negative collateral and is recorded
//! as bad debt. Liquidation lots are capped per block.

use prost::Message;
use shardex_core::{
    pb,
    perp::{fee, health, Position},
    state_key, AccountId,
};

use super::{funding, mode, oracle, positions, trade};
use crate::vm::{
    book,
    error::ExecError,
    exec::BlockCtx,
    records::{load_account, store_account},
    view::TxScope,
};

fn decode<M: Message + Default>(what: &'static str, bytes: Option<Vec<u8>>) -> Result<M, ExecError> {
    bytes
        .map(|b| M::decode(b.as_slice()).map_err(|e| ExecError::Corrupt { what, detail: e.to_string() }))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The insurance fund record.
pub fn load_insurance(scope: &mut TxScope<'_>) -> Result<pb::InsuranceFundRecord, ExecError> {
    let raw = scope.read(&state_key::insurance_key())?;
    decode("insurance fund", raw)
}

fn cap_key() -> alloy_primitives::B256 {
    state_key::leaf_key(state_key::Namespace::LiquidationCap, &[])
}

fn position_of(record: &pb::PositionRecord) -> Position {
    Position { size_lots: record.size_lots, entry_notional_micros: record.entry_notional_micros }
}

/// Moves `signed_lots` of position into `account` at `price`, crediting realized PnL to its collateral.
fn take(
    scope: &mut TxScope<'_>,
    math: &shardex_core::perp::MarketMath,
    account: &AccountId,
    signed_lots: i64,
    price: u64,
) -> Result<(), ExecError> {
    let mut record = positions::load(scope, account)?;
    let mut pos = position_of(&record);
    let realized = pos.apply_fill(math, signed_lots, price).map_err(|_| ExecError::Overflow("position"))?;
    record.size_lots = pos.size_lots;
    record.entry_notional_micros = pos.entry_notional_micros;
    record.realized_pnl_micros =
        record.realized_pnl_micros.checked_add(realized).ok_or(ExecError::Overflow("realized"))?;
    positions::store(scope, account, &record);
    let mut acct = load_account(scope, account)?;
    acct.collateral_micros = acct.collateral_micros.checked_add(realized).ok_or(ExecError::Overflow("collateral"))?;
    store_account(scope, account, &acct);
    Ok(())
}

/// Liquidates `l.account` on behalf of `liquidator`.
pub fn liquidate(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    liquidator: &AccountId,
    l: &pb::Liquidate,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let target =
        AccountId::from_slice(&l.account).map_err(|e| ExecError::InvalidOp(format!("liquidate account: {e}")))?;
    if &target == liquidator {
        return Err(ExecError::InvalidOp("an account cannot liquidate itself".into()));
    }
    let math = trade::market_math(market)?;
    let mark = oracle::fresh_mark(scope, market, ctx)?;
    funding::settle(scope, &target)?;
    funding::settle(scope, liquidator)?;
    let target_pos = positions::load(scope, &target)?;
    let target_collateral = load_account(scope, &target)?.collateral_micros;
    let h = health(&math, target_collateral, &position_of(&target_pos), 0, 0, mark)
        .map_err(|_| ExecError::Overflow("health"))?;
    if !h.liquidatable {
        return Err(ExecError::NotLiquidatable {
            equity_micros: h.equity_micros,
            maintenance_micros: h.maintenance_required_micros,
        });
    }

    // Per-block cap across all liquidations.
    let mut cap: pb::LiquidationCapRecord = decode("liquidation cap", scope.read(&cap_key())?)?;
    if cap.height != ctx.height {
        cap = pb::LiquidationCapRecord { height: ctx.height, lots: 0 };
    }
    let room = market.max_liquidation_lots_per_block.saturating_sub(cap.lots);
    let wanted = if l.max_size_lots == 0 { u64::MAX } else { l.max_size_lots };
    let lots = target_pos.size_lots.unsigned_abs().min(wanted).min(room);
    if lots == 0 {
        return Err(ExecError::InvalidOp("the per-block liquidation cap is reached; retry next block".into()));
    }
    cap.lots += lots;
    scope.write(cap_key(), cap.encode_to_vec());

    // The liquidated account's resting orders go first: they could only add risk.
    let mut events: Vec<pb::Event> = book::cancel_all(scope, &target)?
        .iter()
        .map(|o| pb::Event {
            account: o.owner.clone(),
            kind: Some(pb::event::Kind::OrderCancelled(pb::OrderCancelled {
                order_id: o.order_id,
                lots: o.remaining_lots,
                reason: pb::CancelReason::Liquidation as i32,
            })),
        })
        .collect();

    let sign = target_pos.size_lots.signum();
    let signed = sign * i64::try_from(lots).map_err(|_| ExecError::Overflow("lots"))?;
    let liquidator_risk_before = positions::load(scope, liquidator)?.size_lots.unsigned_abs();
    take(scope, &math, &target, -signed, mark)?;
    take(scope, &math, liquidator, signed, mark)?;

    // Penalty: what the account can pay of it, split between liquidator and fund.
    let notional = math.notional(signed, mark).map_err(|_| ExecError::Overflow("notional"))?;
    let penalty = fee(notional, market.liquidation_penalty_bps).map_err(|_| ExecError::Overflow("penalty"))?;
    let mut target_acct = load_account(scope, &target)?;
    let paid = penalty.min(target_acct.collateral_micros.max(0));
    target_acct.collateral_micros -= paid;
    let reward = i64::try_from(i128::from(paid) * i128::from(market.liquidator_share_bps) / 10_000)
        .map_err(|_| ExecError::Overflow("reward"))?;
    let mut fund = load_insurance(scope)?;
    let mut insurance_delta = paid - reward;

    // A bankrupt, fully closed account: the fund covers what it can; the rest is recorded bad debt.
    let flat = positions::load(scope, &target)?.size_lots == 0;
    let mut bad_debt = 0u64;
    if flat && target_acct.collateral_micros < 0 {
        let shortfall = target_acct.collateral_micros.unsigned_abs();
        let available =
            u64::try_from(fund.balance_micros.checked_add(insurance_delta).ok_or(ExecError::Overflow("fund"))?.max(0))
                .unwrap_or(0);
        let cover = shortfall.min(available);
        let cover_i = i64::try_from(cover).map_err(|_| ExecError::Overflow("cover"))?;
        target_acct.collateral_micros += cover_i;
        insurance_delta -= cover_i;
        bad_debt = shortfall - cover;
    }
    store_account(scope, &target, &target_acct);
    fund.balance_micros = fund.balance_micros.checked_add(insurance_delta).ok_or(ExecError::Overflow("fund"))?;
    fund.bad_debt_micros = fund.bad_debt_micros.checked_add(bad_debt).ok_or(ExecError::Overflow("bad debt"))?;
    scope.write(state_key::insurance_key(), fund.encode_to_vec());

    let mut liq_acct = load_account(scope, liquidator)?;
    liq_acct.collateral_micros = liq_acct.collateral_micros.checked_add(reward).ok_or(ExecError::Overflow("reward"))?;
    store_account(scope, liquidator, &liq_acct);

    // The liquidator must carry what it took over.
    let liq_pos = positions::load(scope, liquidator)?;
    let orders = book::account_orders(scope, liquidator)?;
    let lh = health(
        &math,
        liq_acct.collateral_micros,
        &position_of(&liq_pos),
        orders.open_buy_lots,
        orders.open_sell_lots,
        mark,
    )
    .map_err(|_| ExecError::Overflow("health"))?;
    if liq_pos.size_lots.unsigned_abs() > liquidator_risk_before && !lh.can_open {
        return Err(ExecError::InsufficientMargin {
            equity_micros: lh.equity_micros,
            required_micros: lh.initial_required_micros,
        });
    }

    let report = pb::Liquidated {
        account: target.0.to_vec(),
        liquidator: liquidator.0.to_vec(),
        lots: signed,
        price_micros: mark,
        penalty_micros: paid,
        liquidator_reward_micros: reward,
        insurance_delta_micros: insurance_delta,
        bad_debt_micros: bad_debt,
    };
    for who in [&target, liquidator] {
        events.push(pb::Event { account: who.0.to_vec(), kind: Some(pb::event::Kind::Liquidated(report.clone())) });
    }
    if market.insurance_floor_micros > 0
        && fund.balance_micros < i64::try_from(market.insurance_floor_micros).unwrap_or(i64::MAX)
    {
        let reason =
            format!("insurance fund {} below its floor {}", fund.balance_micros, market.insurance_floor_micros);
        let t = mode::Transition {
            to: pb::MarketMode::ReduceOnly,
            cause: pb::ModeCause::InsuranceFloor,
            reason,
            now_ms: ctx.timestamp_ms,
            until_ms: 0,
        };
        events.extend(mode::raise(scope, market, liquidator, t));
    }
    Ok(events)
}
