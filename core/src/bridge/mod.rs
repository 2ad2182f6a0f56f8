//! The cross-shard collateral bridge (DESIGN.md §7): record keys, protocol limits, refusal reasons and the
//! pure proof checks a shard VM runs on deliveries, acks and refunds. No state, no IO.
//!
//! - [`keys`]: ids and leaf keys of outbox messages, acks, inbox receipts, escrows, seq counters, imported
//!   epochs and peer validator sets.
//! - [`peers`]: the genesis validator sets of the shards this one bridges with, as state holds them.
//! - [`verify`]: a shard entry under an imported global root, the peer's header certified by its validator
//!   set and equal to the entry, then a record (present or absent) under the entry's state root, with
//!   bounded proof sizes.
//! - [`query`]: a client's check of a `GetMessage` answer.

pub mod error;
pub mod keys;
pub mod peers;
pub mod query;
pub mod verify;

pub use error::BridgeError;
pub use keys::*;
pub use peers::{peer_record, peer_set, PeerRecordError};
pub use query::verify_message_response;
pub use verify::{check_proof_size, verify_certified_entry, verify_entry, verify_record, ProvenEntry};

/// Most bridge peers one genesis may list (`[[peers]]`): bounds genesis state and its validation.
pub const MAX_PEERS: usize = 64;

/// How many imported epochs a shard keeps (by import order): deliveries, acks and refunds may be proven
/// against any of them, so a relayer racing a newer import still succeeds.
pub const IMPORTED_EPOCH_WINDOW: usize = 64;

/// Most nodes in one MPT proof. A key is 64 nibbles, so no path in a keccak-keyed trie has more than 64
/// branches and a leaf; real proofs are 5 to 10 nodes.
pub const MAX_PROOF_NODES: usize = 65;

/// Largest node in a proof, bytes. A full branch node is 532 bytes; leaves carry small records.
pub const MAX_PROOF_NODE_BYTES: usize = 1024;

/// Largest encoded `ShardEntry` (or imported-commitment record) accepted as a proven value, bytes.
pub const MAX_PROVEN_VALUE_BYTES: usize = 1024;

/// Furthest a transfer's expiry may lie above the source's latest imported epoch (about 29 days of the
/// coordinator's default 250 ms epochs). Bounds how long collateral can sit in escrow when the destination
/// never delivers: past the expiry, anyone can have it refunded.
pub const MAX_EXPIRY_EPOCHS: u64 = 10_000_000;

/// The last byte of an acknowledgement's outbox id, distinguishing it from an ordinary message's.
pub const ACK_SUFFIX: u8 = 0x01;
