//! The option chain of an options market: the admin lists series, the oracle sets each expiry's volatility
//! by strike. What a listing or an update may be is decided in `shardex_core::option::series`; here it is
//! checked against the chain's state (a series listed once, the caps on expiries and series per expiry, a
//! volatility timestamp that only moves forward) and stored.

use prost::Message;
use shardex_core::{
    option::series::{self, SeriesId},
    pb, AccountId,
};

use crate::{error::ExecError, exec::BlockCtx, records::load_record, view::TxScope};

/// The market's options parameters, or `InvalidOp` on a perpetual market.
pub fn params(market: &pb::MarketRecord) -> Result<&pb::OptionsParams, ExecError> {
    match (&market.options, market.kind == pb::MarketKind::Options as i32) {
        (Some(p), true) => Ok(p),
        _ => Err(ExecError::InvalidOp(format!("{} is not an options market: it lists no series", market.symbol))),
    }
}

/// Refuses a perpetual-only op on an options market, whose orders and liquidations name a series.
pub fn refuse_on_options(market: &pb::MarketRecord, op: &str) -> Result<(), ExecError> {
    if market.kind == pb::MarketKind::Options as i32 {
        return Err(ExecError::InvalidOp(format!(
            "{op} trades a perpetual: {} is an options market, whose orders name a series",
            market.symbol
        )));
    }
    Ok(())
}

fn load_chain(scope: &mut TxScope<'_>) -> Result<pb::OptionChainRecord, ExecError> {
    load_record(scope, &series::chain_key(), "option chain")
}

/// The record of `expiry_ms`, if a series of it was ever listed.
pub fn load_expiry(scope: &mut TxScope<'_>, expiry_ms: u64) -> Result<Option<pb::ExpiryRecord>, ExecError> {
    let key = series::expiry_key(expiry_ms);
    match scope.read(&key)? {
        Some(bytes) => pb::ExpiryRecord::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| ExecError::Corrupt { what: "expiry", detail: e.to_string() }),
        None => Ok(None),
    }
}

/// The series an op's `series` bytes name, or `InvalidOp` when they are not a 17-byte series id.
pub fn series_id(bytes: &[u8]) -> Result<SeriesId, ExecError> {
    SeriesId::from_bytes(bytes)
        .ok_or_else(|| ExecError::InvalidOp(format!("series must be a 17-byte series id, not {} bytes", bytes.len())))
}

/// `InvalidOp` unless `s` was listed.
pub fn ensure_listed(scope: &mut TxScope<'_>, s: &SeriesId) -> Result<(), ExecError> {
    if scope.read(&series::series_key(s))?.is_none() {
        return Err(ExecError::InvalidOp(format!(
            "series {} {:?} {} is not listed",
            s.expiry_ms, s.kind, s.strike_micros
        )));
    }
    Ok(())
}

/// A market-wide event (no account).
fn market_event(kind: pb::event::Kind) -> pb::Event {
    pb::Event { account: Vec::new(), kind: Some(kind) }
}

/// The admin's `ListSeries`: a new series on the tick and step, within the tenor window, in an expiry that
/// is live or may open (at most `max_expiries`), which holds fewer than `max_series_per_expiry`.
pub fn list(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    op: &pb::ListSeries,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = params(market)?;
    if signer.0.as_slice() != market.admin_key.as_slice() {
        return Err(ExecError::Unauthorized("series are listed by the market's admin key".into()));
    }
    let id = series::check_listing(p, op, ctx.timestamp_ms).map_err(ExecError::InvalidOp)?;
    let key = series::series_key(&id);
    if scope.read(&key)?.is_some() {
        return Err(ExecError::InvalidOp(format!(
            "series {} {:?} {} is already listed",
            id.expiry_ms, id.kind, id.strike_micros
        )));
    }
    let mut chain = load_chain(scope)?;
    let mut expiry = match load_expiry(scope, id.expiry_ms)? {
        Some(e) => e,
        None => {
            if chain.expiries.len() >= p.max_expiries as usize {
                return Err(ExecError::InvalidOp(format!(
                    "the chain already has {} live expiries, the market's limit",
                    chain.expiries.len()
                )));
            }
            let at = chain.expiries.partition_point(|e| *e < id.expiry_ms);
            chain.expiries.insert(at, id.expiry_ms);
            pb::ExpiryRecord::default()
        }
    };
    if expiry.series.len() >= p.max_series_per_expiry as usize {
        return Err(ExecError::InvalidOp(format!(
            "expiry {} already has {} series, the market's limit",
            id.expiry_ms,
            expiry.series.len()
        )));
    }
    let at = expiry.series.partition_point(|s| series_order(s) < (id.strike_micros, id.kind as i32));
    expiry.series.insert(at, id.series_ref());
    chain.series_count = chain.series_count.checked_add(1).ok_or(ExecError::Overflow("series count"))?;
    let record = pb::SeriesRecord {
        state: pb::SeriesState::Active as i32,
        listed_height: ctx.height,
        listed_ms: ctx.timestamp_ms,
    };
    scope.write(key, record.encode_to_vec());
    scope.write(series::expiry_key(id.expiry_ms), expiry.encode_to_vec());
    scope.write(series::chain_key(), chain.encode_to_vec());
    Ok(vec![market_event(pb::event::Kind::SeriesListed(listed(&id)))])
}

fn series_order(s: &pb::SeriesRef) -> (u64, i32) {
    (s.strike_micros, s.kind)
}

fn listed(id: &SeriesId) -> pb::SeriesListed {
    pb::SeriesListed { expiry_ms: id.expiry_ms, strike_micros: id.strike_micros, kind: id.kind.to_pb() as i32 }
}

/// The oracle's `VolUpdate`: the points replace the expiry's volatility when the expiry is listed and not
/// yet reached, the timestamp is later than the expiry's last and not beyond the oracle's allowance ahead
/// of block time, and the points pass `check_vol_points`. A move beyond `vol_band_ppm` at any strike makes
/// the expiry post-only for `vol_band_cooldown_ms` (block time).
pub fn update_vol(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    signer: &AccountId,
    op: &pb::VolUpdate,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    let p = params(market)?;
    if signer.0.as_slice() != market.oracle_key.as_slice() {
        return Err(ExecError::Unauthorized("volatility updates must be signed by the market's oracle key".into()));
    }
    series::check_vol_points(p, &op.points).map_err(ExecError::InvalidOp)?;
    let Some(mut expiry) = load_expiry(scope, op.expiry_ms)? else {
        return Err(ExecError::InvalidOp(format!("expiry {} ms has no listed series", op.expiry_ms)));
    };
    if ctx.timestamp_ms >= op.expiry_ms {
        return Err(ExecError::InvalidOp(format!(
            "expiry {} ms is reached (block time {} ms): its volatility is final",
            op.expiry_ms, ctx.timestamp_ms
        )));
    }
    if op.timestamp_ms <= expiry.vol_timestamp_ms {
        return Err(ExecError::InvalidOp(format!(
            "volatility timestamp {} ms must be later than the expiry's last, {} ms",
            op.timestamp_ms, expiry.vol_timestamp_ms
        )));
    }
    let limit = ctx.timestamp_ms.saturating_add(market.oracle_max_future_ms);
    if op.timestamp_ms > limit {
        return Err(ExecError::InvalidOp(format!(
            "volatility timestamp {} ms is beyond block time + {} ms",
            op.timestamp_ms, market.oracle_max_future_ms
        )));
    }
    // The volatility band: a jump beyond it makes the expiry post-only for the cooldown.
    let jump = series::vol_jump(&expiry.vol_points, &op.points);
    let tripped = p.vol_band_ppm != 0 && jump > p.vol_band_ppm;
    if tripped {
        expiry.post_only_until_ms = ctx.timestamp_ms.saturating_add(p.vol_band_cooldown_ms);
    }
    expiry.vol_timestamp_ms = op.timestamp_ms;
    expiry.vol_points.clone_from(&op.points);
    scope.write(series::expiry_key(op.expiry_ms), expiry.encode_to_vec());
    let points = u32::try_from(op.points.len()).map_err(|_| ExecError::Overflow("volatility points"))?;
    Ok(vec![market_event(pb::event::Kind::VolUpdated(pb::VolUpdated {
        expiry_ms: op.expiry_ms,
        timestamp_ms: op.timestamp_ms,
        points,
        jump_ppm: jump,
        post_only_until_ms: if tripped { expiry.post_only_until_ms } else { 0 },
    }))])
}
