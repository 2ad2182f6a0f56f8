//! Trading ops: place, cancel, cancel-all. The book matches; this file validates orders against the market
//! (mode, tick, size, time in force, reduce-only), settles every fill into both positions with fees to the
//! fee pool, and refuses the whole op if the taker ends up taking more risk than its margin covers.
//! The op runs in one tx scope, so a refusal at any point writes nothing.

use shardex_core::{
    pb::{self, CancelReason, MarketMode, OrderType, TimeInForce},
    perp::{fee, health, Health, MarketMath},
    AccountId, Lots, Price, Usd,
};

use super::{funding, mode, oracle, positions};
use crate::{
    book::{self, Book, BookLimits, Incoming, MatchOutcome, NewOrder, Side},
    error::ExecError,
    exec::BlockCtx,
    records::{collateral, credit_account, load_account},
    view::TxScope,
};

/// The market's math (lot size, margins and the initial-margin floor) from its record.
pub fn market_math(market: &pb::MarketRecord) -> Result<MarketMath, ExecError> {
    MarketMath::new(market.lot_size, market.initial_margin_bps, market.maintenance_margin_bps)
        .map(|m| m.with_min_initial_margin(market.min_initial_margin_micros))
        .map_err(|e| ExecError::Corrupt { what: "market params", detail: e.to_string() })
}

/// Most orders a new price level may evict from a full side (part of the protocol): the bound on the
/// work of one eviction, and the depth a level needs to hold its place against better prices.
pub const MAX_EVICTED_ORDERS: usize = 64;

/// The market's book limits.
pub fn book_limits(market: &pb::MarketRecord) -> BookLimits {
    BookLimits {
        max_price_levels: market.max_price_levels as usize,
        max_open_orders_per_account: market.max_open_orders as usize,
        max_fills_per_order: market.max_fills_per_order as usize,
        max_evicted_orders: MAX_EVICTED_ORDERS,
    }
}

fn overflow(what: &'static str) -> impl Fn(shardex_core::money::Overflow) -> ExecError {
    move |_| ExecError::Overflow(what)
}

/// Lots an account would hold if every resting order on its worse side filled.
fn worst_case_lots(size: i64, orders: &pb::AccountOrdersRecord) -> u128 {
    let size = i128::from(size);
    let buys = (size + i128::from(orders.open_buy_lots)).unsigned_abs();
    let sells = (size - i128::from(orders.open_sell_lots)).unsigned_abs();
    buys.max(sells)
}

fn side_of(raw: i32) -> Result<Side, ExecError> {
    match pb::Side::try_from(raw) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        _ => Err(ExecError::InvalidOp("order side must be buy or sell".into())),
    }
}

/// How an order may trade, after validation.
pub(crate) struct Plan {
    pub(crate) side: Side,
    pub(crate) lots: Lots,
    pub(crate) limit: Option<Price>,
    pub(crate) rest_remainder: bool,
    pub(crate) post_only: bool,
}

pub(crate) fn validate(market: &pb::MarketRecord, o: &pb::PlaceOrder, position_lots: i64) -> Result<Plan, ExecError> {
    let side = side_of(o.side)?;
    let order_type =
        OrderType::try_from(o.order_type).map_err(|_| ExecError::InvalidOp("unknown order type".into()))?;
    let tif =
        TimeInForce::try_from(o.time_in_force).map_err(|_| ExecError::InvalidOp("unknown time in force".into()))?;
    if o.size_lots == 0 || o.size_lots > market.max_order_lots {
        return Err(ExecError::InvalidOp(format!("order size must be 1 to {} lots", market.max_order_lots)));
    }
    let (limit, rest_remainder, post_only) = match (order_type, tif) {
        (OrderType::Limit, TimeInForce::Gtc) => (Some(o.price_micros), true, false),
        (OrderType::Limit, TimeInForce::Ioc) => (Some(o.price_micros), false, false),
        (OrderType::Limit, TimeInForce::PostOnly) => (Some(o.price_micros), true, true),
        // A market order's price, if given, is the worst it accepts.
        (OrderType::Market, TimeInForce::Unspecified | TimeInForce::Ioc) => {
            ((o.price_micros != 0).then_some(o.price_micros), false, false)
        }
        _ => return Err(ExecError::InvalidOp("limit orders take gtc, ioc or post-only; market orders ioc".into())),
    };
    if let Some(price) = limit {
        if price == 0 || market.tick_size_micros == 0 || price % market.tick_size_micros != 0 {
            return Err(ExecError::InvalidOp(format!(
                "price {price} must be a positive multiple of the tick {}",
                market.tick_size_micros
            )));
        }
    }
    let mode = MarketMode::try_from(market.mode).unwrap_or(MarketMode::Unspecified);
    match mode {
        MarketMode::Normal => {}
        MarketMode::PostOnly if post_only => {}
        MarketMode::ReduceOnly if o.reduce_only => {}
        _ => return Err(ExecError::MarketMode(format!("the market is in {} mode", mode.as_str_name()))),
    }
    let mut lots = o.size_lots;
    if o.reduce_only {
        let reducible = match side {
            Side::Buy if position_lots < 0 => position_lots.unsigned_abs(),
            Side::Sell if position_lots > 0 => position_lots.unsigned_abs(),
            _ => return Err(ExecError::InvalidOp("a reduce-only order must reduce the position".into())),
        };
        lots = lots.min(reducible);
    }
    Ok(Plan { side, lots: Lots::new(lots), limit: limit.map(Price::from_micros), rest_remainder, post_only })
}

impl Plan {
    /// The order as it meets `book`.
    pub(crate) fn incoming(&self, book: Book, owner: &AccountId) -> Incoming {
        Incoming { book, owner: *owner, side: self.side, limit_price: self.limit, lots: self.lots }
    }

    /// +1 for a buy, −1 for a sell: the sign of the taker's fills.
    pub(crate) fn taker_sign(&self) -> i64 {
        if self.side == Side::Buy {
            1
        } else {
            -1
        }
    }
}

/// The owner, lots and price of a fill of `lots` against `maker_order`.
pub(crate) fn maker_fill(maker_order: &pb::OrderRecord, lots: Lots) -> Result<(AccountId, i64, Price), ExecError> {
    let maker = AccountId::from_slice(&maker_order.owner)
        .map_err(|e| ExecError::Corrupt { what: "order owner", detail: e.to_string() })?;
    let lots = lots.signed(true).map_err(|_| ExecError::Overflow("fill lots"))?;
    Ok((maker, lots, Price::from_micros(maker_order.price_micros)))
}

/// The health of a perpetual account with `collateral`, its stored position and resting orders, at `mark`.
pub fn health_of(
    math: &MarketMath,
    collateral: Usd,
    position: &pb::PositionRecord,
    orders: &pb::AccountOrdersRecord,
    mark: Price,
) -> Result<Health, ExecError> {
    let (buys, sells) = (Lots::new(orders.open_buy_lots), Lots::new(orders.open_sell_lots));
    health(math, collateral, &positions::perp(position), buys, sells, mark).map_err(overflow("health"))
}

/// The fee of `fee_bps` on a fill of `signed_lots` at `price`.
fn fill_fee(math: &MarketMath, signed_lots: i64, price: Price, fee_bps: u32) -> Result<Usd, ExecError> {
    let notional = math.notional(signed_lots, price).map_err(overflow("notional"))?;
    fee(notional, fee_bps).map_err(overflow("fee"))
}

/// An order that may rest must be priced within `price_band_bps` of the mark (the circuit breaker's band: the
/// price cannot get further within its window without tripping it). Far-away orders would hold price
/// levels at no risk, so a little margin could fill every level of a side and shut new prices out.
fn check_resting_band(market: &pb::MarketRecord, price: u64, mark: u64) -> Result<(), ExecError> {
    let reach = u128::from(mark) * u128::from(market.price_band_bps) / 10_000;
    let low = u128::from(mark).saturating_sub(reach);
    let high = u128::from(mark) + reach;
    if !(low..=high).contains(&u128::from(price)) {
        return Err(ExecError::InvalidOp(format!(
            "an order that may rest must be priced within {} bps of the mark {mark}: {low}..={high}, not {price}",
            market.price_band_bps
        )));
    }
    Ok(())
}

pub(crate) fn filled_event(account: &AccountId, fill: pb::OrderFilled) -> pb::Event {
    pb::Event { account: account.0.to_vec(), kind: Some(pb::event::Kind::OrderFilled(fill)) }
}

pub(crate) fn cancelled_event(order: &pb::OrderRecord, reason: CancelReason) -> pb::Event {
    pb::Event {
        account: order.owner.clone(),
        kind: Some(pb::event::Kind::OrderCancelled(pb::OrderCancelled {
            order_id: order.order_id,
            lots: order.remaining_lots,
            reason: reason as i32,
        })),
    }
}

/// Settles one side of a fill: position, realized PnL and fee into collateral, fee into the pool.
#[allow(clippy::too_many_arguments)]
fn settle(
    scope: &mut TxScope<'_>,
    math: &MarketMath,
    max_positions: u32,
    account: &AccountId,
    signed_lots: i64,
    price: Price,
    fee_bps: u32,
    fee_pool: &mut Usd,
    order_id: u64,
) -> Result<pb::OrderFilled, ExecError> {
    funding::settle(scope, account)?;
    let mut record = positions::load(scope, account)?;
    let mut pos = positions::perp(&record);
    let realized = pos.apply_fill(math, signed_lots, price).map_err(overflow("position"))?;
    let paid = fill_fee(math, signed_lots, price, fee_bps)?;
    record.size_lots = pos.size_lots;
    record.entry_notional_micros = pos.entry_notional.micros();
    record.realized_pnl_micros =
        record.realized_pnl_micros.checked_add(realized.micros()).ok_or(ExecError::Overflow("realized"))?;
    positions::store(scope, account, &record, max_positions)?;

    credit_account(scope, account, realized.checked_sub(paid).map_err(overflow("collateral"))?)?;
    *fee_pool = fee_pool.checked_add(paid).map_err(overflow("fee pool"))?;
    Ok(pb::OrderFilled {
        order_id,
        is_maker: order_id != 0,
        is_buy: signed_lots > 0,
        price_micros: price.micros(),
        lots: signed_lots.unsigned_abs(),
        fee_micros: paid.micros(),
        realized_pnl_micros: realized.micros(),
        position_lots: pos.size_lots,
        series: Vec::new(),
    })
}

/// True if `account` can take a fill of `signed_lots` at `price` and pay its fee without its collateral
/// going negative.
fn can_pay(
    scope: &mut TxScope<'_>,
    math: &MarketMath,
    account: &AccountId,
    signed_lots: i64,
    price: Price,
    fee_bps: u32,
) -> Result<bool, ExecError> {
    funding::settle(scope, account)?;
    let mut pos = positions::perp(&positions::load(scope, account)?);
    let realized = pos.apply_fill(math, signed_lots, price).map_err(overflow("position"))?;
    let paid = fill_fee(math, signed_lots, price, fee_bps)?;
    let collateral = collateral(&load_account(scope, account)?);
    Ok(i128::from(collateral) + i128::from(realized) - i128::from(paid) >= 0)
}

/// Places an order for `signer`.
pub fn place(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    o: &pb::PlaceOrder,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    if o.client_order_id != 0 && book::order_id_by_client_id(scope, signer, o.client_order_id)?.is_some() {
        // Idempotent: the same client order id already rests; placing it again does nothing.
        return Ok(Vec::new());
    }
    let mut events: Vec<pb::Event> = mode::expire(scope, market, signer, ctx.timestamp_ms).into_iter().collect();
    let market: &pb::MarketRecord = market;
    let math = market_math(market)?;
    let limits = book_limits(market);
    funding::settle(scope, signer)?;
    let before_pos = positions::load(scope, signer)?;
    let before_orders = book::account_orders(scope, signer)?;
    let risk_before = worst_case_lots(before_pos.size_lots, &before_orders);
    // The order's own validity and the market mode first, so a refusal names the most specific cause.
    let plan = validate(market, o, before_pos.size_lots)?;
    let mark = oracle::fresh_mark(scope, market, ctx)?;
    if let (true, Some(price)) = (plan.rest_remainder, plan.limit) {
        check_resting_band(market, price.micros(), mark.micros())?;
    }
    if plan.lots.is_zero() {
        return Err(ExecError::InvalidOp("a reduce-only order must reduce the position".into()));
    }
    if plan.post_only {
        let price = plan.limit.unwrap_or_default();
        if book::would_cross(scope, Book::Perp, plan.side, price)? {
            return Err(ExecError::WouldCross { price_micros: price.micros() });
        }
    }
    // An account without equity cannot take more risk: refused before matching touches the book, so an
    // unfunded order sweeping makers costs no more than these reads.
    let mut with_order = before_orders.clone();
    let open = match plan.side {
        Side::Buy => &mut with_order.open_buy_lots,
        Side::Sell => &mut with_order.open_sell_lots,
    };
    *open = open.saturating_add(plan.lots.get());
    if worst_case_lots(before_pos.size_lots, &with_order) > risk_before {
        let collateral = collateral(&load_account(scope, signer)?);
        let h = health_of(&math, collateral, &before_pos, &before_orders, mark)?;
        if h.equity <= Usd::ZERO {
            return Err(ExecError::InsufficientMargin {
                equity_micros: h.equity.micros(),
                required_micros: h.initial_required.micros(),
            });
        }
    }

    let incoming = plan.incoming(Book::Perp, signer);
    let mut fee_pool = positions::load_fee_pool(scope)?;
    let taker_sign = plan.taker_sign();
    let mut fill_events = Vec::new();
    // Each fill settles as the book reaches it, so a maker met twice sees its first fill. A maker that could
    // not pay for its fill (collateral would go negative) has its order cancelled instead: an underwater
    // account waits for liquidation, it does not trade.
    let outcome = book::match_incoming_with(scope, &incoming, &limits, |scope, maker_order, lots| {
        let (maker, lots, price) = maker_fill(maker_order, lots)?;
        if !can_pay(scope, &math, &maker, -taker_sign * lots, price, market.maker_fee_bps)? {
            return Ok(true);
        }
        let m = settle(
            scope,
            &math,
            market.max_positions_per_side,
            &maker,
            -taker_sign * lots,
            price,
            market.maker_fee_bps,
            &mut fee_pool,
            maker_order.order_id,
        )?;
        fill_events.push(filled_event(&maker, m));
        let t = settle(
            scope,
            &math,
            market.max_positions_per_side,
            signer,
            taker_sign * lots,
            price,
            market.taker_fee_bps,
            &mut fee_pool,
            0,
        )?;
        fill_events.push(filled_event(signer, t));
        Ok(false)
    })?;
    positions::store_fee_pool(scope, fee_pool)?;
    events.extend(after_matching(scope, Book::Perp, signer, o, &plan, &outcome, fill_events, &limits, ctx)?);

    // The taker may not end with more risk than its margin covers, nor with negative collateral.
    let after_pos = positions::load(scope, signer)?;
    let after_orders = book::account_orders(scope, signer)?;
    let collateral = collateral(&load_account(scope, signer)?);
    let h = health_of(&math, collateral, &after_pos, &after_orders, mark)?;
    let risk_grew = worst_case_lots(after_pos.size_lots, &after_orders) > risk_before;
    if (risk_grew && !h.can_open) || collateral.is_negative() {
        return Err(ExecError::InsufficientMargin {
            equity_micros: h.equity.micros(),
            required_micros: h.initial_required.micros(),
        });
    }
    Ok(events)
}

/// The events of a matched order, in order: the makers cancelled for self-trade or insolvency, the fills,
/// then what became of its remainder: rested on `book` (with any level it evicted) when it may rest, else
/// cancelled as an IOC remainder.
#[allow(clippy::too_many_arguments)]
pub(crate) fn after_matching(
    scope: &mut TxScope<'_>,
    book: Book,
    signer: &AccountId,
    o: &pb::PlaceOrder,
    plan: &Plan,
    outcome: &MatchOutcome,
    fills: Vec<pb::Event>,
    limits: &BookLimits,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let mut events: Vec<pb::Event> =
        outcome.self_trade_cancelled.iter().map(|c| cancelled_event(c, CancelReason::SelfTrade)).collect();
    events.extend(outcome.vetoed.iter().map(|c| cancelled_event(c, CancelReason::Insolvent)));
    events.extend(fills);
    if outcome.remaining.is_zero() {
        return Ok(events);
    }
    match plan.limit {
        Some(price) if plan.rest_remainder && !outcome.stopped_at_fill_limit => {
            let new = NewOrder {
                book,
                owner: *signer,
                side: plan.side,
                price,
                lots: outcome.remaining,
                client_order_id: o.client_order_id,
                reduce_only: o.reduce_only,
                placed_height: ctx.height,
            };
            let book::Rested { order: rested, evicted } = book::rest(scope, &new, limits)?;
            events.extend(evicted.iter().map(|o| cancelled_event(o, CancelReason::Evicted)));
            events.push(pb::Event {
                account: signer.0.to_vec(),
                kind: Some(pb::event::Kind::OrderPlaced(pb::OrderPlaced {
                    order_id: rested.order_id,
                    client_order_id: rested.client_order_id,
                    is_buy: rested.is_buy,
                    price_micros: rested.price_micros,
                    lots: rested.remaining_lots,
                    series: rested.series,
                })),
            });
        }
        _ => events.push(pb::Event {
            account: signer.0.to_vec(),
            kind: Some(pb::event::Kind::OrderCancelled(pb::OrderCancelled {
                order_id: 0,
                lots: outcome.remaining.get(),
                reason: CancelReason::IocRemainder as i32,
            })),
        }),
    }
    Ok(events)
}

/// Cancels one of the signer's orders, by order id or client order id. Allowed in every market mode.
pub fn cancel(scope: &mut TxScope<'_>, signer: &AccountId, c: &pb::CancelOrder) -> Result<Vec<pb::Event>, ExecError> {
    let order_id = match c.target {
        Some(pb::cancel_order::Target::OrderId(id)) => id,
        Some(pb::cancel_order::Target::ClientOrderId(coid)) => book::order_id_by_client_id(scope, signer, coid)?
            .ok_or_else(|| ExecError::InvalidOp(format!("no resting order with client order id {coid}")))?,
        None => return Err(ExecError::InvalidOp("cancel needs an order id or a client order id".into())),
    };
    let order =
        book::order(scope, order_id)?.ok_or_else(|| ExecError::InvalidOp(format!("no resting order {order_id}")))?;
    if order.owner.as_slice() != signer.0.as_slice() {
        return Err(ExecError::Unauthorized(format!("order {order_id} belongs to another account")));
    }
    let cancelled = book::cancel(scope, order_id)?;
    Ok(vec![cancelled_event(&cancelled, CancelReason::User)])
}

/// Cancels every resting order of the signer; refused when there is none, so a tx that would change nothing
/// but a nonce never takes block space (a fresh key could otherwise fill blocks and state for free).
pub fn cancel_all(scope: &mut TxScope<'_>, signer: &AccountId) -> Result<Vec<pb::Event>, ExecError> {
    let cancelled = book::cancel_all(scope, signer)?;
    if cancelled.is_empty() {
        return Err(ExecError::InvalidOp("no resting orders to cancel".into()));
    }
    Ok(cancelled.iter().map(|o| cancelled_event(o, CancelReason::User)).collect())
}
