//! Liquidating option positions. An account whose collateral is below its option maintenance requirement
//! may be liquidated by anyone, one series per op: its resting orders are cancelled first (at most 128 an
//! op, like a perpetual's), then the liquidator takes over its position in the named series (up to
//! `max_size_lots`) at the mark. The account pays the liquidation penalty on the transferred premium value
//! (what its collateral can pay), split between liquidator and insurance fund; once it holds no option
//! position, a negative collateral is covered by the fund and what the fund cannot cover is bad debt. The
//! liquidator must carry what it took over.

use shardex_core::{pb, AccountId};

use super::{chain, margin, positions};
use crate::{
    book,
    error::ExecError,
    exec::BlockCtx,
    ops::{liquidate as perp, oracle, trade},
    records::{collateral, credit_account, load_account},
    view::TxScope,
};

/// `Liquidate` with a series on an options market.
pub fn liquidate(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    liquidator: &AccountId,
    l: &pb::Liquidate,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = *chain::params(market)?;
    let s = chain::series_id(&l.series)?;
    let target = perp::target_of(l, liquidator)?;
    let spot = oracle::fresh_mark(scope, market, ctx)?;
    let mut marks = margin::Marks::new(spot, ctx.timestamp_ms);
    let held = collateral(&load_account(scope, &target)?);
    let maintenance = margin::account(scope, market, &p, &target, &mut marks)?.maintenance;
    if held >= maintenance {
        return Err(ExecError::NotLiquidatable {
            equity_micros: held.micros(),
            maintenance_micros: maintenance.micros(),
        });
    }

    let (cancelled, more) = book::cancel_oldest(scope, &target, perp::MAX_LIQUIDATION_CANCELS)?;
    let mut events: Vec<pb::Event> =
        cancelled.iter().map(|o| trade::cancelled_event(o, pb::CancelReason::Liquidation)).collect();
    if more {
        return Ok(events);
    }
    let mut position = positions::load(scope, &target, &s)?;
    if position.size_lots == 0 {
        return Err(ExecError::InvalidOp(format!(
            "the account holds no position in series {} {:?} {}",
            s.expiry_ms, s.kind, s.strike_micros
        )));
    }
    let wanted = if l.max_size_lots == 0 { u64::MAX } else { l.max_size_lots };
    let lots = i64::try_from(position.size_lots.unsigned_abs().min(wanted)).map_err(|_| ExecError::Overflow("lots"))?;
    let signed = position.size_lots.signum() * lots;
    let mark = marks.mark(scope, &s)?;
    let required_before = margin::account(scope, market, &p, liquidator, &mut marks)?.initial;

    // The transfer at the mark: the account closes `signed` lots, the liquidator opens them.
    let math = trade::market_math(market)?;
    let value = math.notional(signed, mark).map_err(|_| ExecError::Overflow("premium"))?;
    credit_account(scope, &target, value)?;
    position.size_lots -= signed;
    position.premium_micros =
        position.premium_micros.checked_sub(value.micros()).ok_or(ExecError::Overflow("premium"))?;
    positions::store(scope, &target, &s, &position, p.max_series_per_account)?;
    credit_account(scope, liquidator, value.checked_neg().map_err(|_| ExecError::Overflow("premium"))?)?;
    let mut taken = positions::load(scope, liquidator, &s)?;
    taken.size_lots = taken.size_lots.checked_add(signed).ok_or(ExecError::Overflow("position"))?;
    taken.premium_micros = taken.premium_micros.checked_add(value.micros()).ok_or(ExecError::Overflow("premium"))?;
    positions::store(scope, liquidator, &s, &taken, p.max_series_per_account)?;

    let flat = positions::held(scope, &target)?.is_empty();
    let mut fund = perp::load_insurance(scope)?;
    let charged = perp::charge(scope, market, &target, liquidator, value, flat, &mut fund)?;

    margin::check_after_op(scope, market, &p, liquidator, &mut marks, required_before)?;
    let report = pb::Liquidated {
        account: target.0.to_vec(),
        liquidator: liquidator.0.to_vec(),
        lots: signed,
        price_micros: mark.micros(),
        penalty_micros: charged.paid.micros(),
        liquidator_reward_micros: charged.reward.micros(),
        insurance_delta_micros: charged.insurance_delta.micros(),
        bad_debt_micros: charged.bad_debt,
        series: l.series.clone(),
    };
    for who in [&target, liquidator] {
        events.push(pb::Event { account: who.0.to_vec(), kind: Some(pb::event::Kind::Liquidated(report.clone())) });
    }
    events.extend(perp::floor_rule(scope, market, liquidator, &fund, ctx));
    Ok(events)
}
