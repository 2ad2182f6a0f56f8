//! The cross-shard collateral bridge in the VM (DESIGN.md §7): import a coordinator-signed epoch, lock
//! collateral into an outgoing message, deliver a proven message, release escrow on a proven ack, refund
//! escrow on a proven non-delivery. Proof checks are `shardex_core::bridge`'s; this module holds the state
//! transitions. Every op naming another shard needs it to be a bridge peer (genesis `[[peers]]`, stored at
//! namespace 0x17), and deliveries, acks and refunds carry that shard's header certified by its validator
//! set. Every refusal happens before any write is kept (a failed tx's scope is dropped).
//!
//! Settled messages leave state after the genesis `bridge_retention_blocks`: an ack or refund on the source,
//! and a delivery on the destination, list the message under the height that many blocks later
//! ([`schedule_prune`]); that block's begin-block deletes the source's outbox message and escrow, or the
//! destination's ack ([`prune_settled`]). The destination's inbox receipt is never pruned: it is what stops a
//! second delivery, and what a refund must prove absent.

mod deliver;
mod import;
mod settle;
mod transfer;

pub use deliver::deliver;
pub use import::import;
pub use settle::{ack, refund};
pub use transfer::transfer_out;

use crate::exec::BlockCtx;

use prost::Message;
use shardex_core::{
    bridge::{self, BridgeError},
    pb,
    validators::ValidatorSet,
    AccountId, ChainId, ShardId,
};

use crate::{error::ExecError, records::load_record, view::TxScope};

/// The chain and shard executing the op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Here {
    /// This chain.
    pub chain: ChainId,
    /// This shard.
    pub shard: ShardId,
}

/// The coordinator key of the market; none refuses every bridge op.
fn coordinator_of(market: &pb::MarketRecord) -> Result<AccountId, ExecError> {
    if market.coordinator_key.is_empty() {
        return Err(BridgeError::NotEnabled.into());
    }
    AccountId::from_slice(&market.coordinator_key)
        .map_err(|e| ExecError::Corrupt { what: "market coordinator key", detail: e.to_string() })
}

/// A peer shard named by an op: neither shard 0 (no shard) nor this one.
fn peer(here: &Here, raw: u32, role: &str) -> Result<ShardId, ExecError> {
    if raw == 0 || raw == here.shard.0 {
        return Err(BridgeError::WrongShard(format!(
            "the {role} shard must be another shard than {}, got {raw}",
            here.shard
        ))
        .into());
    }
    Ok(ShardId(raw))
}

/// Refuses an op naming a shard that is not a bridge peer of this one: genesis wrote no validator set for it
/// (`[[peers]]`). Only looks for the record; [`peer_validators`] decodes it.
fn require_peer(scope: &mut TxScope<'_>, here: &Here, peer: ShardId) -> Result<(), ExecError> {
    if scope.read(&bridge::peer_key(peer))?.is_some() {
        return Ok(());
    }
    Err(BridgeError::NotPeer { shard: here.shard, peer }.into())
}

/// The genesis validator set of `peer`, a bridge peer of this shard; refused when genesis lists none.
fn peer_validators(scope: &mut TxScope<'_>, here: &Here, peer: ShardId) -> Result<ValidatorSet, ExecError> {
    let record: pb::BridgePeerRecord = load_record(scope, &bridge::peer_key(peer), "bridge peer")?;
    bridge::peer_set(&record)
        .map_err(|e| ExecError::Corrupt { what: "bridge peer", detail: format!("shard {peer}: {e}") })?
        .ok_or_else(|| BridgeError::NotPeer { shard: here.shard, peer }.into())
}

/// Checks that `header` is `peer`'s finalized header of the block `entry` commits, certified by a quorum of
/// `validators`, and charges gas for every signature it carried (all were verified).
fn check_certified(
    scope: &mut TxScope<'_>,
    here: &Here,
    peer: ShardId,
    validators: &ValidatorSet,
    entry: &bridge::ProvenEntry,
    header: Option<&pb::FinalizedHeader>,
) -> Result<(), ExecError> {
    bridge::verify_certified_entry(&entry.entry, header, here.chain, peer, validators)?;
    scope.charge_signatures(header.map_or(0, |h| h.signatures.len() as u64));
    Ok(())
}

/// The latest imported epoch (default: none, epoch 0).
fn load_latest(scope: &mut TxScope<'_>) -> Result<pb::ImportedCommitmentRecord, ExecError> {
    load_record(scope, &bridge::imported_latest_key(), "imported commitment")
}

/// The global root of imported epoch `number`, if it is still retained.
fn epoch_root(scope: &mut TxScope<'_>, number: u64) -> Result<alloy_primitives::B256, ExecError> {
    let record: pb::ImportedCommitmentRecord =
        load_record(scope, &bridge::imported_epoch_key(number), "imported commitment")?;
    if record.epoch != number || number == 0 {
        return Err(BridgeError::UnknownEpoch(number).into());
    }
    shardex_core::hash::b256_from_slice(&record.global_root)
        .ok_or_else(|| ExecError::Corrupt { what: "imported commitment", detail: "root is not 32 bytes".into() })
}

fn load_escrow(scope: &mut TxScope<'_>, dst: ShardId, seq: u64) -> Result<pb::BridgeEscrowRecord, ExecError> {
    load_record(scope, &bridge::escrow_key(dst, seq), "bridge escrow")
}

fn store_escrow(scope: &mut TxScope<'_>, dst: ShardId, seq: u64, record: &pb::BridgeEscrowRecord) {
    scope.write(bridge::escrow_key(dst, seq), record.encode_to_vec());
}

/// Lists a settled message (as a source, or `incoming` as a destination) for pruning by the block
/// `bridge_retention_blocks` after this one; nothing when the market keeps every record.
fn schedule_prune(
    scope: &mut TxScope<'_>,
    market: &pb::MarketRecord,
    ctx: &BlockCtx,
    peer: ShardId,
    seq: u64,
    incoming: bool,
) -> Result<(), ExecError> {
    let retention = market.bridge_retention_blocks;
    if retention == 0 {
        return Ok(());
    }
    let due = ctx.height.checked_add(retention).ok_or_else(overflow("bridge prune height"))?;
    let key = bridge::settled_key(due);
    let mut record: pb::BridgeSettledRecord = load_record(scope, &key, "settled bridge messages")?;
    record.messages.push(pb::SettledMessage { peer_shard: peer.0, seq, incoming });
    scope.write(key, record.encode_to_vec());
    Ok(())
}

/// Begin-block: deletes the records of the messages listed for this height (see the module docs) and the
/// list itself. Returns how many messages were pruned.
pub fn prune_settled(scope: &mut TxScope<'_>, ctx: &BlockCtx) -> Result<usize, ExecError> {
    let key = bridge::settled_key(ctx.height);
    let record: pb::BridgeSettledRecord = load_record(scope, &key, "settled bridge messages")?;
    for m in &record.messages {
        let peer = ShardId(m.peer_shard);
        if m.incoming {
            scope.write(bridge::ack_key(peer, m.seq), Vec::new());
        } else {
            scope.write(bridge::escrow_key(peer, m.seq), Vec::new());
            scope.write(bridge::outbox_key(peer, m.seq), Vec::new());
        }
    }
    if !record.messages.is_empty() {
        scope.write(key, Vec::new());
    }
    Ok(record.messages.len())
}

fn message_event(account: &[u8], m: &pb::OutboxMessage, state: pb::MessageState, delivered: bool) -> pb::Event {
    pb::Event {
        account: account.to_vec(),
        kind: Some(pb::event::Kind::BridgeMessageChanged(pb::BridgeMessageChanged {
            src_shard: m.src_shard,
            dst_shard: m.dst_shard,
            seq: m.seq,
            amount_micros: m.amount_micros,
            state: state as i32,
            delivered,
        })),
    }
}

fn overflow(what: &'static str) -> impl Fn() -> ExecError {
    move || ExecError::Overflow(what)
}

fn corrupt_below_zero(what: &'static str) -> impl Fn() -> ExecError {
    move || ExecError::Corrupt { what, detail: "would go below zero".into() }
}
