//! The global trie: one leaf per shard with an accepted signed header.
//!
//! Key = keccak256(shard id as 4 bytes big-endian), value = the protobuf-encoded `ShardEntry`. The trie is
//! built from scratch per epoch with alloy-trie's `HashBuilder` (a thousand shards is small), so the root
//! and proofs are standard Ethereum MPT ones.

use alloy_primitives::{keccak256, Bytes, B256};
use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles};
use prost::Message;

use crate::{block::DecodedHeader, coordpb, ids::ShardId};

/// The leaf key of `shard`.
pub fn shard_key(shard: ShardId) -> B256 {
    keccak256(shard.0.to_be_bytes())
}

/// The entry committing to a decoded (already verified) header.
pub fn entry_from_header(decoded: &DecodedHeader) -> coordpb::ShardEntry {
    coordpb::ShardEntry {
        shard_id: decoded.header.shard_id,
        height: decoded.header.height,
        block_hash: decoded.hash.to_vec(),
        state_root: decoded.state_root().to_vec(),
    }
}

/// A built global trie: its root and, when asked for, the proof of one shard's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalTrie {
    /// The root over every entry.
    pub root: B256,
    /// Proof nodes (RLP, root first) of the target shard's key, empty when no target was given.
    pub proof: Vec<Bytes>,
}

/// Builds the trie over `entries` (any order; one per shard), retaining the proof of `target`'s key.
pub fn build_global_trie(entries: &[coordpb::ShardEntry], target: Option<ShardId>) -> GlobalTrie {
    let mut leaves: Vec<(B256, Vec<u8>)> =
        entries.iter().map(|e| (shard_key(ShardId(e.shard_id)), e.encode_to_vec())).collect();
    leaves.sort_by_key(|(k, _)| *k);
    debug_assert!(leaves.windows(2).all(|w| w[0].0 != w[1].0), "one entry per shard");
    let mut hb = HashBuilder::default();
    if let Some(t) = target {
        hb = hb.with_proof_retainer(ProofRetainer::new(vec![Nibbles::unpack(shard_key(t))]));
    }
    for (k, v) in &leaves {
        hb.add_leaf(Nibbles::unpack(*k), v);
    }
    let root = hb.root();
    let proof = match target {
        Some(_) => hb.take_proof_nodes().into_nodes_sorted().into_iter().map(|(_, n)| n).collect(),
        None => Vec::new(),
    };
    GlobalTrie { root, proof }
}

/// The root over `entries`.
pub fn global_root(entries: &[coordpb::ShardEntry]) -> B256 {
    build_global_trie(entries, None).root
}
