//! Liquidation: anyone may liquidate an account below maintenance margin. The liquidator takes over the
//! position (or part of it) at the mark; the liquidated account pays a penalty on the notional, split
//! between the liquidator and the insurance fund. A bankrupt account's shortfall is covered by the
//! insurance fund; what the fund cannot cover stays as the account's negative collateral and is recorded
//! as bad debt, unless auto-deleveraging applies: when a full close at the mark would leave a shortfall
//! beyond the whole insurance fund, the bankrupt position is closed against the most profitable opposite
//! positions at the bankruptcy price, so they, not the protocol, absorb the loss. Liquidation lots are
//! capped per block.
//!
//! Every liquidation op does bounded work, so no account can make itself too expensive to liquidate: it
//! cancels at most [`MAX_LIQUIDATION_CANCELS`] of the target's resting orders (an op that leaves some
//! does nothing else, and the next op continues), and auto-deleveraging closes against at most
//! [`MAX_DELEVERAGE_COUNTERPARTIES`] positions (the rest of the bankrupt position stays for the next op,
//! which finds the account still liquidatable). Ranking reads each opposite position once and settles
//! funding only for the counterparties it closes against; positions per side are bounded by genesis (8,192),
//! so the worst op fits the tx gas limit (the test `liquidation_bounds` measures it).

use prost::Message;
use shardex_core::{
    pb,
    perp::{fee, MarketMath, Position},
    state_key, AccountId, Price, Usd,
};

use super::{funding, mode, oracle, positions, trade};
use crate::{
    book,
    error::ExecError,
    exec::BlockCtx,
    records::{collateral, credit, credit_account, load_account, load_record, store_account},
    view::TxScope,
};

/// The insurance fund record.
pub fn load_insurance(scope: &mut TxScope<'_>) -> Result<pb::InsuranceFundRecord, ExecError> {
    load_record(scope, &state_key::insurance_key(), "insurance fund")
}

/// Resting orders of the target one liquidation op cancels at most.
pub const MAX_LIQUIDATION_CANCELS: usize = 128;

/// Opposite positions one auto-deleveraging op closes against at most.
pub const MAX_DELEVERAGE_COUNTERPARTIES: usize = 32;

fn cap_key() -> alloy_primitives::B256 {
    state_key::leaf_key(state_key::Namespace::LiquidationCap, &[])
}

/// Moves `signed_lots` of position into `account` at `price`, crediting realized PnL to its collateral.
/// Returns the realized PnL.
fn take(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    math: &shardex_core::perp::MarketMath,
    account: &AccountId,
    signed_lots: i64,
    price: Price,
) -> Result<Usd, ExecError> {
    let mut record = positions::load(scope, account)?;
    let mut pos = positions::perp(&record);
    let realized = pos.apply_fill(math, signed_lots, price).map_err(|_| ExecError::Overflow("position"))?;
    record.size_lots = pos.size_lots;
    record.entry_notional_micros = pos.entry_notional.micros();
    record.realized_pnl_micros =
        record.realized_pnl_micros.checked_add(realized.micros()).ok_or(ExecError::Overflow("realized"))?;
    positions::store(scope, account, &record, market.max_positions_per_side)?;
    credit_account(scope, account, realized)?;
    Ok(realized)
}

/// The price at which closing all of `pos` leaves `collateral + covered` at zero: the bankruptcy price,
/// rounded so that closing there never loses more than `collateral + covered` (up for a long, down for a
/// short; at least 1).
fn bankruptcy_price(math: &MarketMath, pos: &Position, collateral: Usd, covered: Usd) -> Result<Price, ExecError> {
    let scaled_lots = i128::from(pos.size_lots.unsigned_abs()) * i128::from(math.lot_size());
    if scaled_lots == 0 {
        return Err(ExecError::InvalidOp("no position to close".into()));
    }
    let budget = i128::from(collateral) + i128::from(covered);
    let entry = i128::from(pos.entry_notional.micros().unsigned_abs());
    let price = if pos.size_lots > 0 {
        // notional(size, p) >= entry - budget
        let need = (entry - budget) * 1_000_000;
        (need + scaled_lots - 1).div_euclid(scaled_lots)
    } else {
        // notional(|size|, p) <= entry + budget
        ((entry + budget) * 1_000_000).div_euclid(scaled_lots)
    };
    u64::try_from(price.max(1)).map(Price::from_micros).map_err(|_| ExecError::Overflow("bankruptcy price"))
}

/// Auto-deleveraging: closes up to `lots` of the bankrupt `target` against the most profitable opposite
/// positions (by unrealized PnL at `mark`, then account bytes) at `price`, at most
/// [`MAX_DELEVERAGE_COUNTERPARTIES`] of them. Returns the lots closed and whether every profitable opposite
/// position was used (so what is left has no one to absorb it). Funding does not change a position's size
/// or entry, so ranking reads positions as they are and only the counterparties are settled.
#[allow(clippy::too_many_arguments)]
fn deleverage(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    math: &MarketMath,
    target: &AccountId,
    signed_lots: i64,
    price: Price,
    mark: Price,
    events: &mut Vec<pb::Event>,
) -> Result<(u64, bool), ExecError> {
    let mut ranked = Vec::new();
    for account in positions::accounts_on_side_of(scope, -signed_lots)? {
        let p = positions::load(scope, &account)?;
        let upnl = positions::perp(&p).unrealized_pnl(math, mark).map_err(|_| ExecError::Overflow("unrealized pnl"))?;
        if upnl > Usd::ZERO {
            ranked.push((std::cmp::Reverse(upnl), account, p.size_lots));
        }
    }
    ranked.sort();
    let exhaustive = ranked.len() <= MAX_DELEVERAGE_COUNTERPARTIES;
    let sign = signed_lots.signum();
    let mut remaining = signed_lots.unsigned_abs();
    for (_, account, size) in ranked.into_iter().take(MAX_DELEVERAGE_COUNTERPARTIES) {
        if remaining == 0 {
            break;
        }
        funding::settle(scope, &account)?;
        let q = remaining.min(size.unsigned_abs());
        let q_signed = sign * i64::try_from(q).map_err(|_| ExecError::Overflow("lots"))?;
        take(scope, market, math, target, -q_signed, price)?;
        let realized = take(scope, market, math, &account, q_signed, price)?;
        events.push(pb::Event {
            account: account.0.to_vec(),
            kind: Some(pb::event::Kind::Deleveraged(pb::Deleveraged {
                bankrupt_account: target.0.to_vec(),
                lots: -q_signed,
                price_micros: price.micros(),
                realized_pnl_micros: realized.micros(),
            })),
        });
        remaining -= q;
    }
    Ok((signed_lots.unsigned_abs() - remaining, exhaustive))
}

/// The account a `Liquidate` names, which must not be its signer.
pub(crate) fn target_of(l: &pb::Liquidate, liquidator: &AccountId) -> Result<AccountId, ExecError> {
    let target =
        AccountId::from_slice(&l.account).map_err(|e| ExecError::InvalidOp(format!("liquidate account: {e}")))?;
    if &target == liquidator {
        return Err(ExecError::InvalidOp("an account cannot liquidate itself".into()));
    }
    Ok(target)
}

/// Liquidates `l.account` on behalf of `liquidator`.
pub fn liquidate(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    liquidator: &AccountId,
    l: &pb::Liquidate,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let target = target_of(l, liquidator)?;
    let math = trade::market_math(market)?;
    let mark = oracle::fresh_mark(scope, market, ctx)?;
    funding::settle(scope, &target)?;
    funding::settle(scope, liquidator)?;
    let target_pos = positions::load(scope, &target)?;
    let target_collateral = collateral(&load_account(scope, &target)?);
    let h = trade::health_of(&math, target_collateral, &target_pos, &pb::AccountOrdersRecord::default(), mark)?;
    if !h.liquidatable {
        return Err(ExecError::NotLiquidatable {
            equity_micros: h.equity.micros(),
            maintenance_micros: h.maintenance_required.micros(),
        });
    }

    // The liquidated account's resting orders go first: they could only add risk. An op that cannot cancel
    // them all does only that; the next one continues.
    let (cancelled, more_orders) = book::cancel_oldest(scope, &target, MAX_LIQUIDATION_CANCELS)?;
    let mut events: Vec<pb::Event> = cancelled
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
    if more_orders {
        return Ok(events);
    }

    // Per-block cap across all liquidations.
    let mut cap: pb::LiquidationCapRecord = load_record(scope, &cap_key(), "liquidation cap")?;
    if cap.height != ctx.height {
        cap = pb::LiquidationCapRecord { height: ctx.height, lots: 0 };
    }
    let room = market.max_liquidation_lots_per_block.saturating_sub(cap.lots);
    let wanted = if l.max_size_lots == 0 { u64::MAX } else { l.max_size_lots };
    let lots = target_pos.size_lots.unsigned_abs().min(wanted).min(room);
    if lots == 0 {
        return Err(ExecError::InvalidOp("the per-block liquidation cap is reached; retry next block".into()));
    }
    let sign = target_pos.size_lots.signum();
    let signed = sign * i64::try_from(lots).map_err(|_| ExecError::Overflow("lots"))?;
    let liquidator_risk_before = positions::load(scope, liquidator)?.size_lots.unsigned_abs();
    let mut fund = load_insurance(scope)?;

    // A full close at the mark that leaves a shortfall beyond the insurance fund deleverages the most
    // profitable opposite positions at the bankruptcy price instead; whatever they cannot absorb is taken
    // over at the mark as usual.
    let mut at_mark = signed;
    let mut deleveraged = 0u64;
    let full_close = lots == target_pos.size_lots.unsigned_abs();
    if full_close {
        let mut probe = positions::perp(&target_pos);
        let realized = probe.apply_fill(&math, -signed, mark).map_err(|_| ExecError::Overflow("position"))?;
        let after = i128::from(target_collateral) + i128::from(realized);
        let available = i128::from(fund.balance_micros.max(0));
        if after < 0 && -after > available {
            let covered = Usd::from_micros(fund.balance_micros.max(0));
            let price = bankruptcy_price(&math, &positions::perp(&target_pos), target_collateral, covered)?;
            let (closed, exhaustive) = deleverage(scope, market, &math, &target, signed, price, mark, &mut events)?;
            deleveraged = closed;
            // What the counterparties of this op did not absorb waits for the next op while others remain;
            // only when none is left does the liquidator take it over at the mark.
            at_mark = match exhaustive {
                true => signed - sign * i64::try_from(closed).map_err(|_| ExecError::Overflow("lots"))?,
                false => 0,
            };
        }
    }
    if at_mark != 0 {
        take(scope, market, &math, &target, -at_mark, mark)?;
        take(scope, market, &math, liquidator, at_mark, mark)?;
    }
    // The cap counts the lots this op actually closed.
    cap.lots += deleveraged + at_mark.unsigned_abs();
    scope.write(cap_key(), cap.encode_to_vec());

    // Penalty: what the account can pay of it, split between liquidator and fund.
    let notional = math.notional(at_mark, mark).map_err(|_| ExecError::Overflow("notional"))?;
    let flat = positions::load(scope, &target)?.size_lots == 0;
    let charged = charge(scope, market, &target, liquidator, notional, flat, &mut fund)?;
    let liq_collateral = collateral(&load_account(scope, liquidator)?);

    // The liquidator must carry what it took over.
    let liq_pos = positions::load(scope, liquidator)?;
    let orders = book::account_orders(scope, liquidator)?;
    let lh = trade::health_of(&math, liq_collateral, &liq_pos, &orders, mark)?;
    if liq_pos.size_lots.unsigned_abs() > liquidator_risk_before && !lh.can_open {
        return Err(ExecError::InsufficientMargin {
            equity_micros: lh.equity.micros(),
            required_micros: lh.initial_required.micros(),
        });
    }

    let report = pb::Liquidated {
        account: target.0.to_vec(),
        liquidator: liquidator.0.to_vec(),
        lots: at_mark,
        price_micros: mark.micros(),
        penalty_micros: charged.paid.micros(),
        liquidator_reward_micros: charged.reward.micros(),
        insurance_delta_micros: charged.insurance_delta.micros(),
        bad_debt_micros: charged.bad_debt,
        series: Vec::new(),
    };
    for who in [&target, liquidator] {
        events.push(pb::Event { account: who.0.to_vec(), kind: Some(pb::event::Kind::Liquidated(report.clone())) });
    }
    events.extend(floor_rule(scope, market, liquidator, &fund, ctx));
    Ok(events)
}

/// What a liquidation's penalty came to: paid by the account, the liquidator's share, the change of the
/// insurance fund (its share, less any shortfall it covered) and the shortfall left as bad debt.
pub(crate) struct Charged {
    pub(crate) paid: Usd,
    pub(crate) reward: Usd,
    pub(crate) insurance_delta: Usd,
    pub(crate) bad_debt: u64,
}

/// Charges `target` the liquidation penalty on `notional` (what its collateral can pay of it) and splits it
/// between `liquidator` and the insurance fund. When the target is left `flat` with negative collateral,
/// the fund covers what it can and the rest is recorded bad debt. Writes the target, the liquidator and the
/// fund (`fund`, as loaded by the caller).
pub(crate) fn charge(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    target: &AccountId,
    liquidator: &AccountId,
    notional: Usd,
    flat: bool,
    fund: &mut pb::InsuranceFundRecord,
) -> Result<Charged, ExecError> {
    let overflow = |what| move |_| ExecError::Overflow(what);
    let penalty = fee(notional, market.liquidation_penalty_bps).map_err(overflow("penalty"))?;
    let mut target_acct = load_account(scope, target)?;
    // Between 0 and the penalty, so every amount below fits.
    let paid = penalty.min(collateral(&target_acct).max(Usd::ZERO));
    credit(&mut target_acct, paid.checked_neg().map_err(overflow("penalty"))?)?;
    let reward = i64::try_from(i128::from(paid) * i128::from(market.liquidator_share_bps) / 10_000)
        .map(Usd::from_micros)
        .map_err(|_| ExecError::Overflow("reward"))?;
    let mut insurance_delta = paid.checked_sub(reward).map_err(overflow("reward"))?;

    // A bankrupt, fully closed account: the fund covers what it can; the rest is recorded bad debt.
    let mut bad_debt = 0u64;
    if flat && collateral(&target_acct).is_negative() {
        let shortfall = collateral(&target_acct).micros().unsigned_abs();
        let available = Usd::from_micros(fund.balance_micros).checked_add(insurance_delta).map_err(overflow("fund"))?;
        let cover = shortfall.min(u64::try_from(available.micros().max(0)).unwrap_or(0));
        let cover = Usd::from_u64_micros(cover).map_err(overflow("cover"))?;
        credit(&mut target_acct, cover)?;
        insurance_delta = insurance_delta.checked_sub(cover).map_err(overflow("fund"))?;
        bad_debt = shortfall - cover.micros().unsigned_abs();
    }
    store_account(scope, target, &target_acct)?;
    fund.balance_micros =
        fund.balance_micros.checked_add(insurance_delta.micros()).ok_or(ExecError::Overflow("fund"))?;
    fund.bad_debt_micros = fund.bad_debt_micros.checked_add(bad_debt).ok_or(ExecError::Overflow("bad debt"))?;
    scope.write(state_key::insurance_key(), fund.encode_to_vec());

    credit_account(scope, liquidator, reward)?;
    Ok(Charged { paid, reward, insurance_delta, bad_debt })
}

/// The insurance-floor rule after a liquidation: a fund below `insurance_floor_micros` puts the market in
/// reduce-only mode.
pub(crate) fn floor_rule(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    liquidator: &AccountId,
    fund: &pb::InsuranceFundRecord,
    ctx: &BlockCtx,
) -> Option<pb::Event> {
    if market.insurance_floor_micros == 0
        || fund.balance_micros >= i64::try_from(market.insurance_floor_micros).unwrap_or(i64::MAX)
    {
        return None;
    }
    let reason = format!("insurance fund {} below its floor {}", fund.balance_micros, market.insurance_floor_micros);
    let t = mode::Transition {
        to: pb::MarketMode::ReduceOnly,
        cause: pb::ModeCause::InsuranceFloor,
        reason,
        now_ms: ctx.timestamp_ms,
        until_ms: 0,
    };
    mode::raise(scope, market, liquidator, t)
}
