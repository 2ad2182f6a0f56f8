//! Oracle prices: signed by the market's oracle key, strictly increasing timestamps, not too far ahead of
//! block time. The latest price is the mark; its age against block time decides staleness.

use prost::Message;
use shardex_core::{
    pb::{self, MarketMode, ModeCause},
    state_key, AccountId, Price,
};

use super::mode;

use crate::{error::ExecError, exec::BlockCtx, view::TxScope};

/// The latest oracle record (None before the first update).
pub fn load(scope: &mut TxScope<'_>) -> Result<Option<pb::OracleRecord>, ExecError> {
    scope
        .read(&state_key::oracle_key())?
        .map(|b| {
            pb::OracleRecord::decode(b.as_slice())
                .map_err(|e| ExecError::Corrupt { what: "oracle", detail: e.to_string() })
        })
        .transpose()
}

/// The mark price if the oracle is fresh at `ctx`'s block time, else `StalePrice`.
pub fn fresh_mark(scope: &mut TxScope<'_>, market: &pb::MarketRecord, ctx: &BlockCtx) -> Result<Price, ExecError> {
    let Some(o) = load(scope)? else {
        return Err(ExecError::StalePrice("no oracle price yet".into()));
    };
    let age = ctx.timestamp_ms.saturating_sub(o.timestamp_ms);
    if age > market.oracle_max_age_ms {
        return Err(ExecError::StalePrice(format!(
            "oracle price is {age} ms old, the market allows {} ms",
            market.oracle_max_age_ms
        )));
    }
    Ok(Price::from_micros(o.price_micros))
}

/// Begin-block rule: an oracle price older than `oracle_max_age_ms` at block time puts the market in
/// reduce-only mode until the next fresh price (a market that never had a price is left alone: its orders
/// are refused as stale anyway).
pub fn stale_rule(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    ctx: &BlockCtx,
) -> Result<Option<pb::Event>, ExecError> {
    let Some(o) = load(scope)? else { return Ok(None) };
    if ctx.timestamp_ms.saturating_sub(o.timestamp_ms) > market.oracle_max_age_ms {
        let t = mode::Transition {
            to: MarketMode::ReduceOnly,
            cause: ModeCause::OracleStale,
            reason: format!("no oracle price since {} ms", o.timestamp_ms),
            now_ms: ctx.timestamp_ms,
            until_ms: 0,
        };
        // A market-wide event: no account.
        return Ok(mode::raise(scope, market, &AccountId([0; 32]), t).map(|e| pb::Event { account: Vec::new(), ..e }));
    }
    Ok(None)
}

/// Applies an oracle update and the circuit breaker: a move of more than `price_band_bps` from the
/// window's reference price puts the market in post-only mode for `band_cooldown_ms` (block time), and
/// starts a new window at this price; a breaker whose cooldown ran out returns the market to normal.
pub fn update(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    u: &pb::OracleUpdate,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    if signer.0.as_slice() != market.oracle_key.as_slice() {
        return Err(ExecError::Unauthorized("oracle updates must be signed by the market's oracle key".into()));
    }
    if u.price_micros == 0 {
        return Err(ExecError::InvalidOp("oracle price must be positive".into()));
    }
    let limit = ctx.timestamp_ms.saturating_add(market.oracle_max_future_ms);
    if u.timestamp_ms > limit {
        return Err(ExecError::InvalidOp(format!(
            "oracle timestamp {} is more than {} ms ahead of block time {}",
            u.timestamp_ms, market.oracle_max_future_ms, ctx.timestamp_ms
        )));
    }
    let prev = load(scope)?;
    if let Some(prev) = &prev {
        if u.timestamp_ms <= prev.timestamp_ms {
            return Err(ExecError::InvalidOp(format!(
                "oracle timestamp {} is not after the last one ({})",
                u.timestamp_ms, prev.timestamp_ms
            )));
        }
    }
    let (mut ref_price, mut ref_ms) = match &prev {
        Some(p) if p.band_ref_price_micros != 0 => (p.band_ref_price_micros, p.band_ref_ms),
        _ => (u.price_micros, u.timestamp_ms),
    };
    if u.timestamp_ms.saturating_sub(ref_ms) > market.price_band_window_ms {
        (ref_price, ref_ms) = (u.price_micros, u.timestamp_ms);
    }
    let mut events: Vec<pb::Event> = mode::expire(scope, market, signer, ctx.timestamp_ms).into_iter().collect();
    if market.mode_cause == ModeCause::OracleStale as i32 {
        let t = mode::Transition {
            to: MarketMode::Normal,
            cause: ModeCause::Expired,
            reason: "a fresh oracle price arrived".to_owned(),
            now_ms: ctx.timestamp_ms,
            until_ms: 0,
        };
        events.push(mode::transition(scope, market, signer, t));
    }
    let moved_bps = u128::from(u.price_micros.abs_diff(ref_price)) * 10_000 / u128::from(ref_price.max(1));
    if moved_bps > u128::from(market.price_band_bps) {
        let until = ctx.timestamp_ms.saturating_add(market.band_cooldown_ms);
        let reason = format!("price moved {moved_bps} bps from {ref_price} within the band window");
        let t = mode::Transition {
            to: MarketMode::PostOnly,
            cause: ModeCause::PriceBand,
            reason,
            now_ms: ctx.timestamp_ms,
            until_ms: until,
        };
        events.extend(mode::raise(scope, market, signer, t));
        (ref_price, ref_ms) = (u.price_micros, u.timestamp_ms);
    }
    let record = pb::OracleRecord {
        price_micros: u.price_micros,
        timestamp_ms: u.timestamp_ms,
        band_ref_price_micros: ref_price,
        band_ref_ms: ref_ms,
    };
    scope.write(state_key::oracle_key(), record.encode_to_vec());
    if let Some(p) = market.options.as_ref().filter(|_| market.kind == pb::MarketKind::Options as i32) {
        events.extend(super::options::settle::integrate(scope, p, prev.as_ref(), u.price_micros, u.timestamp_ms)?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use alloy_primitives::B256;

    use super::*;
    use crate::view::Changes;

    fn market(oracle: AccountId) -> pb::MarketRecord {
        pb::MarketRecord {
            oracle_key: oracle.0.to_vec(),
            oracle_max_age_ms: 1_000,
            oracle_max_future_ms: 100,
            price_band_bps: 10_000,
            price_band_window_ms: 1,
            ..Default::default()
        }
    }

    #[test]
    fn updates_must_be_signed_positive_ordered_and_not_ahead_of_block_time() {
        let oracle = AccountId([7; 32]);
        let mut m = market(oracle);
        let base: BTreeMap<B256, Vec<u8>> = BTreeMap::new();
        let mut changes = Changes::new();
        let ctx = BlockCtx { height: 1, timestamp_ms: 10_000 };
        let up = |price, ts| pb::OracleUpdate { price_micros: price, timestamp_ms: ts };

        let mut s = TxScope::new(&base, &changes);
        assert!(matches!(
            update(&mut s, &mut m, &AccountId([8; 32]), &up(5, 9_000), &ctx),
            Err(ExecError::Unauthorized(_))
        ));
        assert!(matches!(update(&mut s, &mut m, &oracle, &up(0, 9_000), &ctx), Err(ExecError::InvalidOp(_))));
        assert!(matches!(update(&mut s, &mut m, &oracle, &up(5, 10_101), &ctx), Err(ExecError::InvalidOp(_))));
        assert!(matches!(fresh_mark(&mut s, &m, &ctx), Err(ExecError::StalePrice(_))));
        update(&mut s, &mut m, &oracle, &up(5, 10_100), &ctx).expect("valid");
        changes.extend(s.into_writes());

        let mut s = TxScope::new(&base, &changes);
        assert!(
            matches!(update(&mut s, &mut m, &oracle, &up(6, 10_100), &ctx), Err(ExecError::InvalidOp(_))),
            "not after last"
        );
        assert_eq!(fresh_mark(&mut s, &m, &ctx), Ok(Price::from_micros(5)));
        let later = BlockCtx { height: 2, timestamp_ms: 11_100 };
        assert_eq!(fresh_mark(&mut s, &m, &later), Ok(Price::from_micros(5)), "exactly max age is still fresh");
        let stale = BlockCtx { height: 3, timestamp_ms: 11_101 };
        assert!(matches!(fresh_mark(&mut s, &m, &stale), Err(ExecError::StalePrice(_))));
    }
}
