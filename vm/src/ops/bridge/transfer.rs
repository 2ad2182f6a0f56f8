//! Transfer-out: free collateral (what withdraw could take, so the account stays above initial margin) moves
//! into escrow, and an outbox message to the destination is written at (dst ‖ seq).

use prost::Message;
use shardex_core::{
    bridge::{self, BridgeError},
    pb, AccountId,
};

use super::{coordinator_of, load_latest, message_event, overflow, peer, require_peer, store_escrow, Here};
use crate::{
    error::ExecError,
    exec::BlockCtx,
    ops::ledger::{collateral_event, free_collateral, positive_amount},
    records::{credit, load_record, load_totals, store_account, store_totals},
    view::TxScope,
};

/// Locks `t.amount_micros` of the signer's free collateral for `t.recipient` on `t.dst_shard`.
pub fn transfer_out(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    here: &Here,
    signer: &AccountId,
    t: &pb::TransferOut,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    coordinator_of(market)?;
    let dst = peer(here, t.dst_shard, "destination")?;
    // Only a peer's acks and refunds can ever be checked here: escrow to any other shard would stay locked.
    require_peer(scope, here, dst)?;
    let recipient =
        AccountId::from_slice(&t.recipient).map_err(|e| BridgeError::Invalid(format!("transfer recipient: {e}")))?;
    let amount = positive_amount(t.amount_micros)?;
    let latest = load_latest(scope)?;
    if t.expiry_epoch <= latest.epoch {
        return Err(BridgeError::Expired(format!(
            "expiry epoch {} is not above the latest imported epoch {}",
            t.expiry_epoch, latest.epoch
        ))
        .into());
    }
    if t.expiry_epoch - latest.epoch > bridge::MAX_EXPIRY_EPOCHS {
        return Err(BridgeError::Invalid(format!(
            "expiry epoch {} is more than {} epochs above the latest imported epoch {} (a shard that has not \
             imported for long needs a recent epoch imported first)",
            t.expiry_epoch,
            bridge::MAX_EXPIRY_EPOCHS,
            latest.epoch
        ))
        .into());
    }
    let (free, mut record) = free_collateral(scope, market, signer, ctx)?;
    if amount > free {
        return Err(ExecError::InsufficientCollateral {
            requested_micros: t.amount_micros,
            free_micros: free.micros(),
        });
    }
    let taken = amount.checked_neg().map_err(|_| ExecError::Overflow("amount"))?;
    let balance = credit(&mut record, taken)?;
    record.escrow_micros = record.escrow_micros.checked_add(t.amount_micros).ok_or_else(overflow("escrow"))?;
    store_account(scope, signer, &record)?;

    let seq_key = bridge::seq_key(dst);
    let mut seq: pb::BridgeSeqRecord = load_record(scope, &seq_key, "bridge seq")?;
    seq.last_seq = seq.last_seq.checked_add(1).ok_or_else(overflow("bridge seq"))?;
    scope.write(seq_key, seq.encode_to_vec());

    let message = pb::OutboxMessage {
        src_shard: here.shard.0,
        dst_shard: dst.0,
        seq: seq.last_seq,
        account: recipient.0.to_vec(),
        amount_micros: t.amount_micros,
        expiry_epoch: t.expiry_epoch,
        is_ack: false,
    };
    scope.write(bridge::outbox_key(dst, seq.last_seq), message.encode_to_vec());
    let escrow = pb::BridgeEscrowRecord {
        sender: signer.0.to_vec(),
        amount_micros: t.amount_micros,
        state: pb::MessageState::Locked as i32,
        expiry_epoch: t.expiry_epoch,
        recipient: recipient.0.to_vec(),
        locked_height: ctx.height,
        closed_height: 0,
    };
    store_escrow(scope, dst, seq.last_seq, &escrow);

    let mut totals = load_totals(scope)?;
    totals.escrowed_micros = totals.escrowed_micros.checked_add(t.amount_micros).ok_or_else(overflow("escrowed"))?;
    store_totals(scope, &totals);

    Ok(vec![
        collateral_event(signer, taken, balance, pb::CollateralReason::BridgeOut),
        message_event(&signer.0, &message, pb::MessageState::Locked, false),
    ])
}
