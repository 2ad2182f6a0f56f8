//! Closing an outgoing message on its source, exactly once: an ack proven from the destination releases the
//! escrow (the amount has left this shard), or a proven non-delivery past expiry refunds it. Both prove the
//! destination's state under its entry in an imported epoch and its header certified by its genesis
//! validator set (this shard's `[[peers]]`). Both need the escrow `Locked`; each leaves it `Acked` or
//! `Refunded` for good.

use prost::Message;
use shardex_core::{
    bridge::{self, verify_entry, verify_record, BridgeError, MAX_PROVEN_VALUE_BYTES},
    pb, AccountId, ShardId, Usd,
};

use super::{
    check_certified, coordinator_of, corrupt_below_zero, epoch_root, load_escrow, message_event, overflow, peer,
    peer_validators, schedule_prune, store_escrow, Here,
};
use crate::{
    error::ExecError,
    exec::BlockCtx,
    ops::ledger::collateral_event,
    records::{collateral, credit, load_account, load_totals, store_account, store_totals},
    view::TxScope,
};

/// The escrow of (dst, seq) when it is still locked; otherwise why not: closed by the op now asked for
/// (`closing`) is a duplicate, closed the other way or never sent is the wrong state.
fn locked(
    scope: &mut TxScope<'_>,
    dst: ShardId,
    seq: u64,
    closing: pb::MessageState,
) -> Result<pb::BridgeEscrowRecord, ExecError> {
    let escrow = load_escrow(scope, dst, seq)?;
    let what = format!("message {seq} to shard {dst}");
    let state = pb::MessageState::try_from(escrow.state).unwrap_or_default();
    let done = |s: pb::MessageState| if s == pb::MessageState::Acked { "acknowledged" } else { "refunded" };
    Err(match state {
        pb::MessageState::Locked => return Ok(escrow),
        pb::MessageState::Unspecified => BridgeError::MessageState(format!("{what} was never sent from this shard")),
        s if s == closing => BridgeError::Duplicate(format!("{what} was already {}", done(s))),
        s => BridgeError::MessageState(format!("{what} was already {}, it cannot be {}", done(s), done(closing))),
    }
    .into())
}

fn sender_of(escrow: &pb::BridgeEscrowRecord) -> Result<AccountId, ExecError> {
    AccountId::from_slice(&escrow.sender)
        .map_err(|e| ExecError::Corrupt { what: "bridge escrow", detail: e.to_string() })
}

/// The outbox message the escrow stands for (what events report).
fn message_of(here: &Here, dst: ShardId, seq: u64, escrow: &pb::BridgeEscrowRecord) -> pb::OutboxMessage {
    pb::OutboxMessage {
        src_shard: here.shard.0,
        dst_shard: dst.0,
        seq,
        account: escrow.recipient.clone(),
        amount_micros: escrow.amount_micros,
        expiry_epoch: escrow.expiry_epoch,
        is_ack: false,
    }
}

/// Takes the escrow out of the running totals and the sender's escrow balance, marking it `state`, and lists
/// the message for pruning after the market's retention.
fn close(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    dst: ShardId,
    seq: u64,
    mut escrow: pb::BridgeEscrowRecord,
    state: pb::MessageState,
    ctx: &BlockCtx,
) -> Result<pb::AccountRecord, ExecError> {
    let sender = sender_of(&escrow)?;
    let mut account = load_account(scope, &sender)?;
    account.escrow_micros =
        account.escrow_micros.checked_sub(escrow.amount_micros).ok_or_else(corrupt_below_zero("account escrow"))?;
    let mut totals = load_totals(scope)?;
    totals.escrowed_micros =
        totals.escrowed_micros.checked_sub(escrow.amount_micros).ok_or_else(corrupt_below_zero("escrowed total"))?;
    if state == pb::MessageState::Acked {
        totals.bridged_out_micros =
            totals.bridged_out_micros.checked_add(escrow.amount_micros).ok_or_else(overflow("bridged out"))?;
    } else {
        let amount = Usd::from_u64_micros(escrow.amount_micros).map_err(|_| ExecError::Overflow("amount"))?;
        credit(&mut account, amount)?;
    }
    store_totals(scope, &totals);
    store_account(scope, &sender, &account)?;
    escrow.state = state as i32;
    escrow.closed_height = ctx.height;
    store_escrow(scope, dst, seq, &escrow);
    schedule_prune(scope, market, ctx, dst, seq, false)?;
    Ok(account)
}

/// Releases the escrow of a message the destination proves it acknowledged.
pub fn ack(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    here: &Here,
    a: &pb::AckMessage,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    coordinator_of(market)?;
    let ack = a.ack.as_ref().ok_or_else(|| BridgeError::Invalid("ack-message carries no ack".into()))?;
    if !ack.is_ack {
        return Err(BridgeError::Invalid("the record is a message, not an acknowledgement".into()).into());
    }
    if ack.dst_shard != here.shard.0 {
        return Err(
            BridgeError::WrongShard(format!("ack is for shard {}, this is {}", ack.dst_shard, here.shard)).into()
        );
    }
    let dst = peer(here, ack.src_shard, "acknowledging")?;
    let validators = peer_validators(scope, here, dst)?;
    let escrow = locked(scope, dst, ack.seq, pb::MessageState::Acked)?;
    let expected = pb::OutboxMessage {
        src_shard: dst.0,
        dst_shard: here.shard.0,
        is_ack: true,
        ..message_of(here, dst, ack.seq, &escrow)
    };
    if *ack != expected {
        return Err(BridgeError::InvalidProof(format!(
            "ack of message {} does not match the message sent (recipient, amount or expiry differ)",
            ack.seq
        ))
        .into());
    }
    let global_root = epoch_root(scope, a.epoch)?;
    let proven = verify_entry(global_root, dst, &a.dst_entry, &a.header_proof)?;
    check_certified(scope, here, dst, &validators, &proven, a.dst_header.as_ref())?;
    let key = bridge::ack_key(here.shard, ack.seq);
    verify_record("ack proof", proven.state_root, key, Some(&ack.encode_to_vec()), &a.ack_proof)?;
    scope.charge_proof_nodes((a.header_proof.len() + a.ack_proof.len()) as u64);

    let sender = escrow.sender.clone();
    let message = message_of(here, dst, ack.seq, &escrow);
    close(scope, market, dst, ack.seq, escrow, pb::MessageState::Acked, ctx)?;
    Ok(vec![message_event(&sender, &message, pb::MessageState::Acked, true)])
}

/// Returns the escrow of a message the destination proves it never received and can no longer receive.
pub fn refund(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    here: &Here,
    r: &pb::TimeoutRefund,
    ctx: &BlockCtx,
) -> Result<Vec<pb::Event>, ExecError> {
    coordinator_of(market)?;
    let dst = peer(here, r.dst_shard, "destination")?;
    let validators = peer_validators(scope, here, dst)?;
    let escrow = locked(scope, dst, r.seq, pb::MessageState::Refunded)?;
    let global_root = epoch_root(scope, r.epoch)?;
    let proven = verify_entry(global_root, dst, &r.dst_entry, &r.header_proof)?;
    check_certified(scope, here, dst, &validators, &proven, r.dst_header.as_ref())?;

    if r.dst_imported.is_empty() {
        return Err(BridgeError::NotExpired(format!(
            "shard {dst} has imported no epoch: message {} cannot have expired there",
            r.seq
        ))
        .into());
    }
    if r.dst_imported.len() > MAX_PROVEN_VALUE_BYTES {
        return Err(BridgeError::ProofTooLarge(format!("imported commitment of {} bytes", r.dst_imported.len())).into());
    }
    let imported_key = bridge::imported_latest_key();
    verify_record(
        "imported-commitment proof",
        proven.state_root,
        imported_key,
        Some(&r.dst_imported),
        &r.imported_proof,
    )?;
    let imported = pb::ImportedCommitmentRecord::decode(r.dst_imported.as_slice())
        .map_err(|e| BridgeError::InvalidProof(format!("imported commitment does not decode: {e}")))?;
    if imported.epoch <= escrow.expiry_epoch {
        return Err(BridgeError::NotExpired(format!(
            "shard {dst} had imported epoch {} at height {}; message {} expires after epoch {}",
            imported.epoch, proven.entry.height, r.seq, escrow.expiry_epoch
        ))
        .into());
    }
    let receipt_key = bridge::inbox_key(here.shard, r.seq);
    verify_record("non-receipt proof", proven.state_root, receipt_key, None, &r.non_receipt_proof)?;
    scope.charge_proof_nodes((r.header_proof.len() + r.imported_proof.len() + r.non_receipt_proof.len()) as u64);

    let sender = sender_of(&escrow)?;
    let message = message_of(here, dst, r.seq, &escrow);
    let amount = Usd::from_u64_micros(escrow.amount_micros).map_err(|_| ExecError::Overflow("amount"))?;
    let account = close(scope, market, dst, r.seq, escrow, pb::MessageState::Refunded, ctx)?;
    Ok(vec![
        collateral_event(&sender, amount, collateral(&account), pb::CollateralReason::BridgeRefund),
        message_event(&sender.0, &message, pb::MessageState::Refunded, false),
    ])
}
