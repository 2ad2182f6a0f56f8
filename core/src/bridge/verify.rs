//! The proof checks of deliveries, acks and refunds: a shard's entry under an imported global root, then one
//! record (or its absence) under that entry's state root. Both are standard MPT proofs checked by
//! `core::global` and `core::proof`; this file adds the bounds and the binding of one to the other.

use alloy_primitives::{Bytes, B256};
use prost::Message;

use super::{BridgeError, MAX_PROOF_NODES, MAX_PROOF_NODE_BYTES, MAX_PROVEN_VALUE_BYTES};
use crate::{coordpb, global::verify_entry_under_root, hash::b256_from_slice, ids::ShardId, proof::verify_state_proof};

/// Refuses a proof beyond [`MAX_PROOF_NODES`] nodes or with a node over [`MAX_PROOF_NODE_BYTES`]; returns its
/// node count (what gas charges for).
pub fn check_proof_size(what: &str, nodes: &[Vec<u8>]) -> Result<u64, BridgeError> {
    if nodes.len() > MAX_PROOF_NODES {
        return Err(BridgeError::ProofTooLarge(format!(
            "{what} has {} nodes, at most {MAX_PROOF_NODES} are allowed",
            nodes.len()
        )));
    }
    if let Some(big) = nodes.iter().find(|n| n.len() > MAX_PROOF_NODE_BYTES) {
        return Err(BridgeError::ProofTooLarge(format!(
            "{what} has a {}-byte node, at most {MAX_PROOF_NODE_BYTES} are allowed",
            big.len()
        )));
    }
    Ok(nodes.len() as u64)
}

fn as_bytes(nodes: &[Vec<u8>]) -> Vec<Bytes> {
    nodes.iter().map(|n| Bytes::copy_from_slice(n)).collect()
}

/// A shard entry proven under a global root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenEntry {
    /// The entry (shard, height, block hash, state root).
    pub entry: coordpb::ShardEntry,
    /// Its state root.
    pub state_root: B256,
}

/// Decodes `entry_bytes` (an encoded `ShardEntry`), checks it is `shard`'s and proves it under `global_root`
/// with `proof`.
pub fn verify_entry(
    global_root: B256,
    shard: ShardId,
    entry_bytes: &[u8],
    proof: &[Vec<u8>],
) -> Result<ProvenEntry, BridgeError> {
    if entry_bytes.len() > MAX_PROVEN_VALUE_BYTES {
        return Err(BridgeError::ProofTooLarge(format!("shard entry of {} bytes", entry_bytes.len())));
    }
    check_proof_size("header proof", proof)?;
    let entry = coordpb::ShardEntry::decode(entry_bytes)
        .map_err(|e| BridgeError::InvalidProof(format!("shard entry does not decode: {e}")))?;
    if entry.shard_id != shard.0 {
        return Err(BridgeError::InvalidProof(format!(
            "shard entry is for shard {}, expected {shard}",
            entry.shard_id
        )));
    }
    verify_entry_under_root(global_root, &entry, &as_bytes(proof))
        .map_err(|e| BridgeError::InvalidProof(format!("shard {shard} entry: {e}")))?;
    let state_root = b256_from_slice(&entry.state_root)
        .ok_or_else(|| BridgeError::InvalidProof("entry state root is not 32 bytes".into()))?;
    Ok(ProvenEntry { entry, state_root })
}

/// Proves that `key` holds exactly `value` (None: is absent) under `state_root`.
pub fn verify_record(
    what: &str,
    state_root: B256,
    key: B256,
    value: Option<&[u8]>,
    proof: &[Vec<u8>],
) -> Result<(), BridgeError> {
    check_proof_size(what, proof)?;
    verify_state_proof(state_root, key, value, &as_bytes(proof))
        .map_err(|e| BridgeError::InvalidProof(format!("{what} under state root {state_root}: {e}")))
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{bridge::keys, global::build_global_trie, reason::Reason};

    fn state_with(target: B256, leaves: &[(B256, Vec<u8>)]) -> (B256, Vec<Vec<u8>>) {
        let (root, nodes) = crate::proof::trie_with_proof(leaves, target);
        (root, nodes.into_iter().map(|n| n.to_vec()).collect())
    }

    /// A source shard state holding one outbox message, its entry in a global trie of five shards.
    struct Fixture {
        global_root: B256,
        entry_bytes: Vec<u8>,
        header_proof: Vec<Vec<u8>>,
        state_root: B256,
        message: Vec<u8>,
        message_proof: Vec<Vec<u8>>,
    }

    fn fixture() -> Fixture {
        let message = coordpb::ShardEntry { shard_id: 99, ..Default::default() }.encode_to_vec();
        let key = keys::outbox_key(ShardId(2), 1);
        let mut leaves: Vec<(B256, Vec<u8>)> =
            (0u8..30).map(|i| (alloy_primitives::keccak256([i]), vec![i; 40])).collect();
        leaves.push((key, message.clone()));
        let (state_root, message_proof) = state_with(key, &leaves);
        let entries: Vec<coordpb::ShardEntry> = (1u32..=5)
            .map(|s| coordpb::ShardEntry {
                shard_id: s,
                height: 10 + u64::from(s),
                block_hash: vec![s as u8; 32],
                state_root: if s == 1 { state_root.to_vec() } else { vec![0xee; 32] },
            })
            .collect();
        let trie = build_global_trie(&entries, Some(ShardId(1)));
        Fixture {
            global_root: trie.root,
            entry_bytes: entries[0].encode_to_vec(),
            header_proof: trie.proof.iter().map(|n| n.to_vec()).collect(),
            state_root,
            message,
            message_proof,
        }
    }

    #[test]
    fn entry_then_record_verify() {
        let f = fixture();
        let proven = verify_entry(f.global_root, ShardId(1), &f.entry_bytes, &f.header_proof).expect("entry");
        assert_eq!(proven.state_root, f.state_root);
        let key = keys::outbox_key(ShardId(2), 1);
        verify_record("message", proven.state_root, key, Some(&f.message), &f.message_proof).expect("message");
    }

    #[test]
    fn each_forgery_is_refused_with_its_reason() {
        let f = fixture();
        let reason = |r: Result<ProvenEntry, BridgeError>| r.expect_err("refused").reason();
        // Entry claimed for another shard.
        assert_eq!(
            reason(verify_entry(f.global_root, ShardId(2), &f.entry_bytes, &f.header_proof)),
            Reason::InvalidProof
        );
        // Entry with another state root (a forged source state).
        let mut forged = coordpb::ShardEntry::decode(f.entry_bytes.as_slice()).expect("entry");
        forged.state_root = vec![1; 32];
        assert_eq!(
            reason(verify_entry(f.global_root, ShardId(1), &forged.encode_to_vec(), &f.header_proof)),
            Reason::InvalidProof
        );
        // Another global root.
        assert_eq!(reason(verify_entry(B256::ZERO, ShardId(1), &f.entry_bytes, &f.header_proof)), Reason::InvalidProof);
        // Undecodable entry.
        assert_eq!(reason(verify_entry(f.global_root, ShardId(1), &[0xff; 3], &f.header_proof)), Reason::InvalidProof);
        // Oversized proofs and entries.
        let many = vec![vec![0u8; 10]; MAX_PROOF_NODES + 1];
        assert_eq!(reason(verify_entry(f.global_root, ShardId(1), &f.entry_bytes, &many)), Reason::ProofTooLarge);
        let big = vec![vec![0u8; MAX_PROOF_NODE_BYTES + 1]];
        assert_eq!(reason(verify_entry(f.global_root, ShardId(1), &f.entry_bytes, &big)), Reason::ProofTooLarge);
        let huge = vec![0u8; MAX_PROVEN_VALUE_BYTES + 1];
        assert_eq!(reason(verify_entry(f.global_root, ShardId(1), &huge, &f.header_proof)), Reason::ProofTooLarge);

        let key = keys::outbox_key(ShardId(2), 1);
        let record = |key, value: Option<&[u8]>, proof: &[Vec<u8>]| {
            verify_record("message", f.state_root, key, value, proof).expect_err("refused").reason()
        };
        // Tampered value, another key, claimed absent.
        let mut tampered = f.message.clone();
        tampered[1] ^= 1;
        assert_eq!(record(key, Some(&tampered), &f.message_proof), Reason::InvalidProof);
        assert_eq!(record(keys::outbox_key(ShardId(2), 2), Some(&f.message), &f.message_proof), Reason::InvalidProof);
        assert_eq!(record(key, None, &f.message_proof), Reason::InvalidProof);
        assert_eq!(record(key, Some(&f.message), &many), Reason::ProofTooLarge);
    }

    #[test]
    fn absence_is_provable_only_when_absent() {
        let f = fixture();
        let absent = keys::inbox_key(ShardId(2), 7);
        let leaves: Vec<(B256, Vec<u8>)> = (0u8..30).map(|i| (alloy_primitives::keccak256([i]), vec![i; 40])).collect();
        let (root, proof) = state_with(absent, &leaves);
        verify_record("receipt", root, absent, None, &proof).expect("absent");
        assert!(verify_record("receipt", root, absent, Some(&[8]), &proof).is_err());
        // The message's own inclusion proof does not prove the message absent.
        let key = keys::outbox_key(ShardId(2), 1);
        assert!(verify_record("message", f.state_root, key, None, &f.message_proof).is_err());
    }
}
