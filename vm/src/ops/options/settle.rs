//! Settlement at expiry. The settlement price of an expiry is the time-weighted average of the oracle's
//! spot over the `settle_window_ms` before it, integrated on chain as oracle updates arrive: each update
//! adds the previous price times the part of the window it stood for. The first update at or after the
//! expiry fixes the price (`ExpirySettled`), and the expiry leaves the chain's live list. Should no oracle
//! price come, the admin may fix it (`SetSettlementPrice`), but only `settle_grace_ms` after the expiry.
//!
//! Positions are then settled by anyone's `SettleExpired` (series, up to 64 accounts): each account is paid
//! its intrinsic value, `lots · lot_size · (S − K)⁺ / 10^6` for a call ((K − S)⁺ for a put), rounded toward
//! −∞ (a long receives the floor, a short pays the ceiling), its position closes and its resting orders on
//! the series are cancelled. The two sides of a series settle in different txs, so the payments pass
//! through the market's funding pool (an options market has no funding): shorts pay into it, longs are
//! paid from it, and once every holder settled it keeps only the rounding dust, never less than zero.

use prost::Message;
use shardex_core::{
    option::series::{self, SeriesId},
    pb::{self, CancelReason},
    state_key, AccountId, Price, Usd,
};

use super::{chain, positions};
use crate::{
    book::{self, Book},
    error::ExecError,
    ops::trade,
    records::{credit_account, load_record},
    view::TxScope,
};

/// Most accounts one `SettleExpired` settles.
pub const MAX_SETTLE_ACCOUNTS: usize = 64;

/// The accumulator as stored: Σ price × ms, u128 big-endian.
fn sum_of(e: &pb::ExpiryRecord) -> Result<u128, ExecError> {
    match e.twap_sum.len() {
        0 => Ok(0),
        16 => Ok(u128::from_be_bytes(e.twap_sum.as_slice().try_into().unwrap_or([0; 16]))),
        n => Err(ExecError::Corrupt { what: "expiry", detail: format!("settlement accumulator of {n} bytes") }),
    }
}

/// Integrates the oracle's previous price (`prev`, if any) up to the new update at `now_price`/`now_ms` into
/// every live expiry whose settlement window it overlaps, and fixes the price of every expiry the update
/// reaches. Called by the oracle update on an options market; bounded by the chain's live expiries.
pub fn integrate(
    scope: &mut TxScope<'_>,
    p: &pb::OptionsParams,
    prev: Option<&pb::OracleRecord>,
    now_price: u64,
    now_ms: u64,
) -> Result<Vec<pb::Event>, ExecError> {
    let mut chain: pb::OptionChainRecord = load_record(scope, &series::chain_key(), "option chain")?;
    let mut events = Vec::new();
    let mut still_live = Vec::with_capacity(chain.expiries.len());
    for expiry_ms in chain.expiries.clone() {
        let start = expiry_ms.saturating_sub(p.settle_window_ms);
        if now_ms <= start {
            still_live.push(expiry_ms);
            continue;
        }
        let Some(mut expiry) = chain::load_expiry(scope, expiry_ms)? else {
            return Err(ExecError::Corrupt {
                what: "option chain",
                detail: format!("expiry {expiry_ms} has no record"),
            });
        };
        let mut sum = sum_of(&expiry)?;
        if let Some(prev) = prev {
            let (from, to) = (prev.timestamp_ms.max(start), now_ms.min(expiry_ms));
            if to > from {
                let part = u128::from(prev.price_micros) * u128::from(to - from);
                sum = sum.checked_add(part).ok_or(ExecError::Overflow("settlement accumulator"))?;
                expiry.twap_covered_ms += to - from;
            }
        }
        expiry.twap_sum = sum.to_be_bytes().to_vec();
        if now_ms >= expiry_ms {
            // The average over the part of the window that had a price; with none (the market's first price
            // came after the expiry), this update's price.
            let price = match u128::from(expiry.twap_covered_ms) {
                0 => now_price,
                covered => u64::try_from(sum / covered).map_err(|_| ExecError::Overflow("settlement price"))?,
            };
            events.push(fix(&mut chain, &mut expiry, expiry_ms, price));
        } else {
            still_live.push(expiry_ms);
        }
        scope.write(series::expiry_key(expiry_ms), expiry.encode_to_vec());
    }
    if still_live.len() != chain.expiries.len() {
        chain.expiries = still_live;
        scope.write(series::chain_key(), chain.encode_to_vec());
    }
    Ok(events)
}

/// Fixes `expiry`'s settlement price and takes its series off the chain's live count (the caller takes the
/// expiry off the live list and writes both records); the `ExpirySettled` event.
fn fix(chain: &mut pb::OptionChainRecord, expiry: &mut pb::ExpiryRecord, expiry_ms: u64, price: u64) -> pb::Event {
    expiry.settle_price_micros = price;
    chain.series_count = chain.series_count.saturating_sub(u32::try_from(expiry.series.len()).unwrap_or(u32::MAX));
    pb::Event {
        account: Vec::new(),
        kind: Some(pb::event::Kind::ExpirySettled(pb::ExpirySettled { expiry_ms, settle_price_micros: price })),
    }
}

/// The admin's `SetSettlementPrice`: fixes the price of an expiry the oracle left unsettled for
/// `settle_grace_ms` after it (no oracle price came at or after the expiry).
pub fn set_price(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    op: &pb::SetSettlementPrice,
    now_ms: u64,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = chain::params(market)?;
    if signer.0.as_slice() != market.admin_key.as_slice() {
        return Err(ExecError::Unauthorized("a settlement price is set by the market's admin key".into()));
    }
    if op.price_micros == 0 || op.price_micros > shardex_core::option::black76::MAX_PRICE_MICROS {
        return Err(ExecError::InvalidOp(format!("settlement price {} micro-USD is out of range", op.price_micros)));
    }
    let Some(mut expiry) = chain::load_expiry(scope, op.expiry_ms)? else {
        return Err(ExecError::InvalidOp(format!("expiry {} ms has no listed series", op.expiry_ms)));
    };
    if expiry.settle_price_micros != 0 {
        return Err(ExecError::InvalidOp(format!(
            "expiry {} ms already settles at {} micro-USD",
            op.expiry_ms, expiry.settle_price_micros
        )));
    }
    let allowed = op.expiry_ms.saturating_add(p.settle_grace_ms);
    if now_ms < allowed {
        return Err(ExecError::InvalidOp(format!(
            "the oracle fixes expiry {} ms's price; the admin may only from {allowed} ms (block time {now_ms} ms)",
            op.expiry_ms
        )));
    }
    let mut chain: pb::OptionChainRecord = load_record(scope, &series::chain_key(), "option chain")?;
    let event = fix(&mut chain, &mut expiry, op.expiry_ms, op.price_micros);
    chain.expiries.retain(|e| *e != op.expiry_ms);
    scope.write(series::expiry_key(op.expiry_ms), expiry.encode_to_vec());
    scope.write(series::chain_key(), chain.encode_to_vec());
    Ok(vec![event])
}

/// The payout of `lots` of `s` settled at `price`: floor(lots · lot_size · intrinsic / 10^6).
pub fn payout(s: &SeriesId, lots: i64, lot_size: u64, price: Price) -> Result<Usd, ExecError> {
    let intrinsic = s.intrinsic_micros(price.micros());
    let scaled = i128::from(lots)
        .checked_mul(i128::from(lot_size))
        .and_then(|v| v.checked_mul(i128::from(intrinsic)))
        .ok_or(ExecError::Overflow("settlement payout"))?;
    i64::try_from(scaled.div_euclid(1_000_000))
        .map(Usd::from_micros)
        .map_err(|_| ExecError::Overflow("settlement payout"))
}

/// `SettleExpired`: settles `accounts`' positions in a series whose expiry has its price (see the module
/// docs). Refused when the price is not fixed yet, an account is named twice or none of them holds the
/// series or an order on it.
pub fn settle_expired(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    op: &pb::SettleExpired,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = chain::params(market)?;
    let s = chain::series_id(&op.series)?;
    if op.accounts.is_empty() || op.accounts.len() > MAX_SETTLE_ACCOUNTS {
        return Err(ExecError::InvalidOp(format!(
            "settle 1 to {MAX_SETTLE_ACCOUNTS} accounts, not {}",
            op.accounts.len()
        )));
    }
    chain::ensure_listed(scope, &s)?;
    let price = chain::load_expiry(scope, s.expiry_ms)?.map(|e| e.settle_price_micros).unwrap_or(0);
    if price == 0 {
        return Err(ExecError::InvalidOp(format!(
            "expiry {} ms has no settlement price yet: it is fixed by the first oracle price at or after it",
            s.expiry_ms
        )));
    }
    let mut accounts = Vec::with_capacity(op.accounts.len());
    for raw in &op.accounts {
        let a = AccountId::from_slice(raw).map_err(|e| ExecError::InvalidOp(format!("account: {e}")))?;
        if accounts.contains(&a) {
            return Err(ExecError::InvalidOp(format!("account {a} is named twice")));
        }
        accounts.push(a);
    }
    let mut funding: pb::FundingIndexRecord = load_record(scope, &state_key::funding_key(), "funding")?;
    let mut events = Vec::new();
    for account in &accounts {
        events.extend(cancel_series_orders(scope, account, &s)?);
        let position = positions::load(scope, account, &s)?;
        if position.size_lots == 0 {
            continue;
        }
        let paid = payout(&s, position.size_lots, market.lot_size, Price::from_micros(price))?;
        let balance = credit_account(scope, account, paid)?;
        funding.pool_micros =
            funding.pool_micros.checked_sub(paid.micros()).ok_or(ExecError::Overflow("funding pool"))?;
        positions::store(scope, account, &s, &pb::OptionPositionRecord::default(), p.max_series_per_account)?;
        events.push(pb::Event {
            account: account.0.to_vec(),
            kind: Some(pb::event::Kind::OptionSettled(pb::OptionSettled {
                series: op.series.clone(),
                lots: position.size_lots,
                settle_price_micros: price,
                payout_micros: paid.micros(),
                collateral_micros: balance.micros(),
            })),
        });
    }
    if events.is_empty() {
        return Err(ExecError::InvalidOp("none of the accounts holds the series or an order on it".into()));
    }
    scope.write(state_key::funding_key(), funding.encode_to_vec());
    Ok(events)
}

/// Cancels `account`'s resting orders on `s` (at most its open orders).
fn cancel_series_orders(
    scope: &mut TxScope<'_>,
    account: &AccountId,
    s: &SeriesId,
) -> Result<Vec<pb::Event>, ExecError> {
    let mut events = Vec::new();
    for id in book::account_orders(scope, account)?.order_ids {
        let Some(order) = book::order(scope, id)? else { continue };
        if Book::of(&order)? == Book::Series(*s) {
            let cancelled = book::cancel(scope, id)?;
            events.push(trade::cancelled_event(&cancelled, CancelReason::Expired));
        }
    }
    Ok(events)
}
