//! Market modes: normal → post-only → reduce-only → settlement-only, by severity. The admin key sets any
//! mode; rules raise the mode (a price move beyond the band trips post-only for a cooldown; an insurance
//! fund below its floor forces reduce-only) but never lower one set by someone else, and a rule's mode
//! that runs out returns the market to normal. Every transition is written to the market record and
//! reported as an event.

use prost::Message;
use shardex_core::{
    pb::{self, MarketMode, ModeCause},
    state_key, AccountId,
};

use crate::{error::ExecError, exec::BlockCtx, view::TxScope};

/// Severity order: a rule may only raise it.
fn severity(mode: i32) -> u8 {
    match MarketMode::try_from(mode) {
        Ok(MarketMode::PostOnly) => 1,
        Ok(MarketMode::ReduceOnly) => 2,
        Ok(MarketMode::SettlementOnly) => 3,
        _ => 0,
    }
}

/// A mode change: to what, why, from when, until when (0 = until changed).
pub struct Transition {
    /// The new mode.
    pub to: MarketMode,
    /// What caused it.
    pub cause: ModeCause,
    /// Human-readable detail for the event.
    pub reason: String,
    /// Block time of the change.
    pub now_ms: u64,
    /// When a rule's mode runs out; 0 = until changed.
    pub until_ms: u64,
}

/// Applies `t` to `market`, writing the record; returns the event for `signer`.
pub fn transition(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    t: Transition,
) -> pb::Event {
    let from = market.mode;
    market.mode = t.to as i32;
    market.mode_cause = t.cause as i32;
    market.mode_since_ms = t.now_ms;
    market.mode_until_ms = t.until_ms;
    scope.write(state_key::market_key(), market.encode_to_vec());
    pb::Event {
        account: signer.0.to_vec(),
        kind: Some(pb::event::Kind::MarketModeChanged(pb::MarketModeChanged {
            from,
            to: t.to as i32,
            cause: t.cause as i32,
            reason: t.reason,
            until_ms: t.until_ms,
        })),
    }
}

/// A rule asks for `t`: applied only if it raises the severity.
pub fn raise(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    t: Transition,
) -> Option<pb::Event> {
    (severity(t.to as i32) > severity(market.mode)).then(|| transition(scope, market, signer, t))
}

/// A rule's mode whose time ran out returns the market to normal.
pub fn expire(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    now_ms: u64,
) -> Option<pb::Event> {
    let ran_out = market.mode_until_ms != 0 && now_ms >= market.mode_until_ms;
    ran_out.then(|| {
        let t = Transition {
            to: MarketMode::Normal,
            cause: ModeCause::Expired,
            reason: "the rule's cooldown ended".to_owned(),
            now_ms,
            until_ms: 0,
        };
        transition(scope, market, signer, t)
    })
}

/// The admin's `SetMarketMode`.
pub fn set_by_admin(
    scope: &mut TxScope<'_>,
    market: &mut pb::MarketRecord,
    signer: &AccountId,
    s: &pb::SetMarketMode,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    if signer.0.as_slice() != market.admin_key.as_slice() {
        return Err(ExecError::Unauthorized("market modes are set by the market's admin key".into()));
    }
    let to = match MarketMode::try_from(s.mode) {
        Ok(MarketMode::Unspecified) | Err(_) => return Err(ExecError::InvalidOp("unknown market mode".into())),
        Ok(m) => m,
    };
    if s.reason.len() > 256 {
        return Err(ExecError::InvalidOp("reason is limited to 256 bytes".into()));
    }
    let t = Transition { to, cause: ModeCause::Admin, reason: s.reason.clone(), now_ms: ctx.timestamp_ms, until_ms: 0 };
    Ok(vec![transition(scope, market, signer, t)])
}
