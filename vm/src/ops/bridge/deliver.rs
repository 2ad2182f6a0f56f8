//! Delivery on the destination: the message is proven under the source's state root, which is proven under
//! an imported epoch's global root and carried by the source's header certified by its genesis validator
//! set (this shard's `[[peers]]`); it is credited once (the inbox receipt), only while this shard's latest
//! imported epoch is at most its expiry, and acknowledged in this shard's outbox at (src ‖ seq ‖ 0x01).

use prost::Message;
use shardex_core::{
    bridge::{self, verify_entry, verify_record, BridgeError},
    pb, AccountId,
};

use super::{
    check_certified, coordinator_of, epoch_root, load_latest, message_event, overflow, peer, peer_validators,
    schedule_prune, Here,
};
use crate::{
    error::ExecError,
    exec::BlockCtx,
    ops::ledger::{collateral_event, positive_amount},
    records::{credit_account, load_totals, store_totals},
    view::TxScope,
};

/// Credits a proven message of another shard.
pub fn deliver(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    here: &Here,
    d: &pb::DeliverMessage,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    coordinator_of(market)?;
    let m = d.message.as_ref().ok_or_else(|| BridgeError::Invalid("deliver-message carries no message".into()))?;
    if m.is_ack {
        return Err(BridgeError::Invalid("an acknowledgement is settled with ack-message, not delivered".into()).into());
    }
    if m.dst_shard != here.shard.0 {
        return Err(
            BridgeError::WrongShard(format!("message is for shard {}, this is {}", m.dst_shard, here.shard)).into()
        );
    }
    let src = peer(here, m.src_shard, "source")?;
    let validators = peer_validators(scope, here, src)?;
    let account =
        AccountId::from_slice(&m.account).map_err(|e| BridgeError::Invalid(format!("message account: {e}")))?;
    let amount = positive_amount(m.amount_micros)?;
    if m.seq == 0 {
        return Err(BridgeError::Invalid("message seqs start at 1".into()).into());
    }

    let global_root = epoch_root(scope, d.epoch)?;
    let receipt_key = bridge::inbox_key(src, m.seq);
    if scope.read(&receipt_key)?.is_some() {
        return Err(BridgeError::Duplicate(format!("message {} from shard {src} was already delivered", m.seq)).into());
    }
    let latest = load_latest(scope)?;
    if latest.epoch > m.expiry_epoch {
        return Err(BridgeError::Expired(format!(
            "message expired at epoch {}; this shard imported epoch {}",
            m.expiry_epoch, latest.epoch
        ))
        .into());
    }
    let proven = verify_entry(global_root, src, &d.src_entry, &d.header_proof)?;
    check_certified(scope, here, src, &validators, &proven, d.src_header.as_ref())?;
    let key = bridge::outbox_key(here.shard, m.seq);
    verify_record("message proof", proven.state_root, key, Some(&m.encode_to_vec()), &d.message_proof)?;
    scope.charge_proof_nodes((d.header_proof.len() + d.message_proof.len()) as u64);

    let balance = credit_account(scope, &account, amount)?;
    let mut totals = load_totals(scope)?;
    totals.bridged_in_micros =
        totals.bridged_in_micros.checked_add(m.amount_micros).ok_or_else(overflow("bridged in"))?;
    store_totals(scope, &totals);

    scope.write(receipt_key, pb::InboxReceipt { delivered_height: ctx.height }.encode_to_vec());
    let ack = pb::OutboxMessage { src_shard: here.shard.0, dst_shard: src.0, is_ack: true, ..m.clone() };
    scope.write(bridge::ack_key(src, m.seq), ack.encode_to_vec());
    schedule_prune(scope, market, ctx, src, m.seq, true)?;

    Ok(vec![
        collateral_event(&account, amount, balance, pb::CollateralReason::BridgeIn),
        message_event(&account.0, m, pb::MessageState::Unspecified, true),
    ])
}
