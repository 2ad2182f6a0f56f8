//! The cross-shard collateral bridge in the VM (DESIGN.md §7): import a coordinator-signed epoch, lock
//! collateral into an outgoing message, deliver a proven message, release escrow on a proven ack, refund
//! escrow on a proven non-delivery. Proof checks are `shardex_core::bridge`'s; this module holds the state
//! transitions. Every refusal happens before any write is kept (a failed tx's scope is dropped).

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
    pb, AccountId, ChainId, ShardId,
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
