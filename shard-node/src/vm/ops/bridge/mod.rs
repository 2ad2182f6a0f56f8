//! The cross-shard collateral bridge in the VM (DESIGN.md §7): import a coordinator-signed epoch, lock
//! collateral into an outgoing message, deliver a proven message, release escrow on a proven ack, refund
//! escrow on a proven non-delivery. Proof checks are `shardex_core::bridge`'s; this module holds the state
//! transitions. Every op naming another shard needs it to be a bridge peer (genesis `[[peers]]`, stored at
//! namespace 0x17), and deliveries, acks and refunds carry that shard's header certified by its validator
//! set. Every refusal happens before any write is kept (a failed tx's scope is dropped).

mod deliver;
mod import;
mod settle;
mod transfer;

pub use deliver::deliver;
pub use import::import;
pub use settle::{ack, refund};
pub use transfer::transfer_out;

use prost::Message;
use shardex_core::{
    bridge::{self, BridgeError},
    pb,
    validators::ValidatorSet,
    AccountId, ChainId, ShardId,
};

use crate::vm::{error::ExecError, records::load_record, view::TxScope};

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
