//! Trading an option series on its own book. An order is validated like a perpetual's (mode, premium tick,
//! size, time in force, reduce-only on the series position), on a listed series before its expiry, at a
//! premium no option can be worth more than (the spot for a call, the strike for a put). Each fill moves the
//! premium from buyer to seller at once (the same truncated amount both ways, so it conserves money) and
//! pays fees to the fee pool; the positions change by the lots traded. The op is refused when the taker
//! ends with a larger initial requirement than its collateral covers, or with negative collateral.

use shardex_core::{
    option::series::{OptionKind, SeriesId},
    pb,
    perp::{fee, MarketMath},
    AccountId, Price, Usd,
};

use super::{chain, margin, positions};
use crate::{
    book::{self, Book},
    error::ExecError,
    exec::BlockCtx,
    ops::{mode, oracle, positions as pools, trade},
    records::{collateral, credit_account, load_account},
    view::TxScope,
};

/// The premium moved by `signed_lots` (positive: bought) at `price`, and the fee on it at `fee_bps`:
/// (collateral change, fee).
fn premium_flow(math: &MarketMath, signed_lots: i64, price: Price, fee_bps: u32) -> Result<(Usd, Usd), ExecError> {
    let overflow = |_| ExecError::Overflow("premium");
    let notional = math.notional(signed_lots, price).map_err(overflow)?;
    let paid = fee(notional, fee_bps).map_err(|_| ExecError::Overflow("fee"))?;
    let change = notional.checked_neg().and_then(|n| n.checked_sub(paid)).map_err(overflow)?;
    Ok((change, paid))
}

/// One side of a fill: premium and fee into collateral, fee into the pool, lots into the position.
#[allow(clippy::too_many_arguments)]
fn settle(
    scope: &mut TxScope<'_>,
    math: &MarketMath,
    max_series: u32,
    account: &AccountId,
    s: &SeriesId,
    signed_lots: i64,
    price: Price,
    fee_bps: u32,
    fee_pool: &mut Usd,
    order_id: u64,
) -> Result<pb::OrderFilled, ExecError> {
    let (change, paid) = premium_flow(math, signed_lots, price, fee_bps)?;
    credit_account(scope, account, change)?;
    *fee_pool = fee_pool.checked_add(paid).map_err(|_| ExecError::Overflow("fee pool"))?;
    let mut position = positions::load(scope, account, s)?;
    position.size_lots = position.size_lots.checked_add(signed_lots).ok_or(ExecError::Overflow("position"))?;
    let premium = change.checked_add(paid).and_then(Usd::checked_neg).map_err(|_| ExecError::Overflow("premium"))?;
    position.premium_micros =
        position.premium_micros.checked_add(premium.micros()).ok_or(ExecError::Overflow("premium"))?;
    positions::store(scope, account, s, &position, max_series)?;
    Ok(pb::OrderFilled {
        order_id,
        is_maker: order_id != 0,
        is_buy: signed_lots > 0,
        price_micros: price.micros(),
        lots: signed_lots.unsigned_abs(),
        fee_micros: paid.micros(),
        realized_pnl_micros: 0,
        position_lots: position.size_lots,
        series: s.to_bytes().to_vec(),
    })
}

/// The series an order names, if it is listed and not yet expired at block time (and the order is
/// reduce-only inside the settlement window or while the expiry's volatility is stale, and post-only while
/// its volatility band is tripped).
fn tradable(
    scope: &mut TxScope<'_>,
    p: &pb::OptionsParams,
    o: &pb::PlaceOrder,
    now_ms: u64,
) -> Result<SeriesId, ExecError> {
    let s = chain::series_id(&o.series)?;
    chain::ensure_listed(scope, &s)?;
    if now_ms >= s.expiry_ms {
        return Err(ExecError::InvalidOp(format!(
            "series expired at {} ms (block time {now_ms} ms): trading is closed",
            s.expiry_ms
        )));
    }
    if now_ms >= s.expiry_ms.saturating_sub(p.settle_window_ms) && !o.reduce_only {
        return Err(ExecError::MarketMode(format!(
            "series expiring at {} ms is in its settlement window: orders must be reduce-only",
            s.expiry_ms
        )));
    }
    let expiry = chain::load_expiry(scope, s.expiry_ms)?.unwrap_or_default();
    let post_only = o.time_in_force == pb::TimeInForce::PostOnly as i32;
    if now_ms < expiry.post_only_until_ms && !post_only {
        return Err(ExecError::MarketMode(format!(
            "expiry {} ms is post-only until {} ms: its volatility jumped beyond the market's band",
            s.expiry_ms, expiry.post_only_until_ms
        )));
    }
    let vol_ms = expiry.vol_timestamp_ms;
    let age = now_ms.saturating_sub(vol_ms);
    if vol_ms != 0 && age > p.vol_max_age_ms && !o.reduce_only {
        return Err(ExecError::StalePrice(format!(
            "the volatility of expiry {} ms is {age} ms old (the market allows {} ms): orders must be reduce-only \
             until the oracle updates it",
            s.expiry_ms, p.vol_max_age_ms
        )));
    }
    Ok(s)
}

/// Places an order on an option series for `signer`.
pub fn place(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    o: &pb::PlaceOrder,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = *chain::params(market)?;
    let s = tradable(scope, &p, o, ctx.timestamp_ms)?;
    if o.client_order_id != 0 && book::order_id_by_client_id(scope, signer, o.client_order_id)?.is_some() {
        // Idempotent: the same client order id already rests; placing it again does nothing.
        return Ok(Vec::new());
    }
    let mut events: Vec<pb::Event> = mode::expire(scope, market, signer, ctx.timestamp_ms).into_iter().collect();
    let market: &pb::MarketRecord = market;
    let math = trade::market_math(market)?;
    let limits = trade::book_limits(market);
    let bk = Book::Series(s);
    let before = positions::load(scope, signer, &s)?;
    let plan = trade::validate(market, o, before.size_lots)?;
    let spot = oracle::fresh_mark(scope, market, ctx)?;
    let cap = match s.kind {
        OptionKind::Call => spot.micros(),
        OptionKind::Put => s.strike_micros,
    };
    if let Some(price) = plan.limit.map(Price::micros).filter(|price| *price > cap) {
        return Err(ExecError::InvalidOp(format!(
            "a premium of {price} micro-USD is more than the option can be worth ({cap}: the {})",
            if s.kind == OptionKind::Call { "spot" } else { "strike" }
        )));
    }
    if plan.lots.is_zero() {
        return Err(ExecError::InvalidOp("a reduce-only order must reduce the position".into()));
    }
    if plan.post_only {
        let price = plan.limit.unwrap_or_default();
        if book::would_cross(scope, bk, plan.side, price)? {
            return Err(ExecError::WouldCross { price_micros: price.micros() });
        }
    }
    let mut marks = margin::Marks::new(spot, ctx.timestamp_ms);
    let required_before = margin::account(scope, market, &p, signer, &mut marks)?.initial;

    let incoming = plan.incoming(bk, signer);
    let mut fee_pool = pools::load_fee_pool(scope)?;
    let taker_sign = plan.taker_sign();
    let mut fill_events = Vec::new();
    // A maker that could not pay for its fill (collateral would go negative) has its order cancelled instead.
    let outcome = book::match_incoming_with(scope, &incoming, &limits, |scope, maker_order, lots| {
        let (maker, lots, price) = trade::maker_fill(maker_order, lots)?;
        let (change, _) = premium_flow(&math, -taker_sign * lots, price, market.maker_fee_bps)?;
        if i128::from(collateral(&load_account(scope, &maker)?)) + i128::from(change) < 0 {
            return Ok(true);
        }
        let max_series = p.max_series_per_account;
        let fill = |scope: &mut TxScope<'_>, who: &AccountId, lots: i64, fee_bps: u32, pool: &mut Usd, id: u64| {
            settle(scope, &math, max_series, who, &s, lots, price, fee_bps, pool, id)
        };
        let m = fill(scope, &maker, -taker_sign * lots, market.maker_fee_bps, &mut fee_pool, maker_order.order_id)?;
        fill_events.push(trade::filled_event(&maker, m));
        let t = fill(scope, signer, taker_sign * lots, market.taker_fee_bps, &mut fee_pool, 0)?;
        fill_events.push(trade::filled_event(signer, t));
        Ok(false)
    })?;
    pools::store_fee_pool(scope, fee_pool)?;
    events.extend(trade::after_matching(scope, bk, signer, o, &plan, &outcome, fill_events, &limits, ctx)?);

    // The taker may not end needing more than its collateral covers (unless the op lowered what it needs),
    // nor with negative collateral.
    margin::check_after_op(scope, market, &p, signer, &mut marks, required_before)?;
    Ok(events)
}

/// What `account` may take out of an options market: all of its collateral without option exposure, else
/// its collateral less its initial requirement at a fresh spot.
pub fn free_collateral(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    account: &AccountId,
    collateral: Usd,
    ctx: &BlockCtx,
) -> Result<Usd, ExecError> {
    if !margin::has_exposure(scope, account)? {
        return Ok(collateral);
    }
    let p = *chain::params(market)?;
    let spot = oracle::fresh_mark(scope, market, ctx)?;
    let mut marks = margin::Marks::new(spot, ctx.timestamp_ms);
    let required = margin::account(scope, market, &p, account, &mut marks)?.initial;
    Ok(Usd::from_micros(collateral.micros().saturating_sub(required.micros())).min(collateral))
}
