//! The proof checks of deliveries, acks and refunds: a shard's entry under an imported global root, the
//! other shard's finalized header certified by its genesis validator set and equal to that entry, then one
//! record (or its absence) under the entry's state root. The proofs are standard MPT proofs checked by
//! `core::global` and `core::proof`, the certificate is `core::block::verify_finalized`'s; this file adds
//! the bounds and the binding of one to the next.

use alloy_primitives::{Bytes, B256};
use prost::Message;

use super::{BridgeError, MAX_PROOF_NODES, MAX_PROOF_NODE_BYTES, MAX_PROVEN_VALUE_BYTES};
use crate::{
    block::DecodedHeader,
    coordpb,
    global::{verify_entry_under_root, verify_header_of_entry, GlobalError},
    hash::b256_from_slice,
    ids::{ChainId, ShardId},
    pb,
    proof::verify_state_proof,
    validators::ValidatorSet,
};

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

/// Checks that `header` is `shard`'s finalized header at the block `entry` commits (same hash, height and
/// state root), certified by a quorum of `validators` (that shard's genesis set, as this shard's genesis
/// lists it). With it, an entry is believed only when both the coordinator committed it and the shard's own
/// validators finalized it: no coordinator key, and no key outside a quorum of the shard, makes one up.
pub fn verify_certified_entry(
    entry: &coordpb::ShardEntry,
    header: Option<&pb::FinalizedHeader>,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
) -> Result<DecodedHeader, BridgeError> {
    let fh = header.ok_or_else(|| {
        BridgeError::InvalidProof(format!(
            "no finalized header of shard {shard}: the op must carry the header its entry at height {} commits, \
             certified by shard {shard}'s validators",
            entry.height
        ))
    })?;
    verify_header_of_entry(fh, entry, chain, shard, validators).map_err(|e| match e {
        GlobalError::Header(error) => BridgeError::Uncertified { peer: shard, error },
        other => BridgeError::InvalidProof(format!("certified header of shard {shard}: {other}")),
    })
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
    use crate::{
        block::{decode_header, encode_header},
        bridge::keys,
        global::{build_global_trie, entry_from_header},
        reason::Reason,
        vote::sign_precommit,
        Keypair,
    };

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

    /// A header of shard 1 at `height` with `state_root`, certified by `signers` at round 0.
    fn certified(height: u64, state_root: B256, signers: &[&Keypair]) -> pb::FinalizedHeader {
        let header = pb::BlockHeader {
            chain_id: 8,
            shard_id: 1,
            height,
            parent_hash: vec![1; 32],
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: state_root.to_vec(),
            events_root: vec![5; 32],
            ..Default::default()
        };
        let (bytes, hash) = encode_header(&header);
        pb::FinalizedHeader {
            header: bytes,
            signatures: signers.iter().map(|k| sign_precommit(k, (ChainId(8), ShardId(1)), height, 0, &hash)).collect(),
            round: 0,
        }
    }

    #[test]
    fn a_certified_header_binds_the_entry_to_the_shards_validators() {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let set = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("valid");
        let root = B256::from([9; 32]);
        let good = certified(7, root, &[&keys[0], &keys[1], &keys[2]]);
        let entry = entry_from_header(&decode_header(&good).expect("decodes"));
        let check = |fh: Option<&pb::FinalizedHeader>, entry: &coordpb::ShardEntry| {
            verify_certified_entry(entry, fh, ChainId(8), ShardId(1), &set)
        };
        let ok = check(Some(&good), &entry).expect("3 of 4 certify the entry's block");
        assert_eq!((ok.header.height, ok.state_root()), (7, root));

        let refused = |fh: Option<&pb::FinalizedHeader>, entry: &coordpb::ShardEntry| {
            let e = check(fh, entry).expect_err("refused");
            assert_eq!(e.reason(), Reason::InvalidProof, "{e}");
            e
        };
        let kind = |e: BridgeError| match e {
            BridgeError::Uncertified { peer, error } => {
                assert_eq!(peer, ShardId(1));
                error.kind()
            }
            other => panic!("expected an uncertified header, got {other}"),
        };
        // Missing.
        assert!(refused(None, &entry).to_string().contains("no finalized header of shard 1"));
        // Signed by keys outside the set: the coordinator's, say, alone or beside a quorum.
        let stranger = Keypair::from_seed([0xc0; 32]);
        assert_eq!(kind(refused(Some(&certified(7, root, &[&stranger])), &entry)), "UNKNOWN_SIGNER");
        let padded = certified(7, root, &[&keys[0], &keys[1], &keys[2], &stranger]);
        assert_eq!(kind(refused(Some(&padded), &entry)), "UNKNOWN_SIGNER");
        // Two of four: no quorum.
        assert_eq!(kind(refused(Some(&certified(7, root, &[&keys[0], &keys[1]])), &entry)), "NO_QUORUM");
        // Certified, but another block than the entry's: another height, another state root.
        let other_height = certified(6, root, &[&keys[0], &keys[1], &keys[2]]);
        assert!(refused(Some(&other_height), &entry).to_string().contains("entry commits to"));
        let other_root = certified(7, B256::from([8; 32]), &[&keys[0], &keys[1], &keys[2]]);
        assert!(refused(Some(&other_root), &entry).to_string().contains("entry commits to"));
        // An entry made up around the certified header's hash but with another state root.
        let mut forged = entry.clone();
        forged.state_root = vec![7; 32];
        assert!(refused(Some(&good), &forged).to_string().contains("entry commits to"));
        // Another shard's set.
        let e = verify_certified_entry(&entry, Some(&good), ChainId(8), ShardId(2), &set).expect_err("refused");
        assert!(matches!(&e, BridgeError::Uncertified { error, .. } if error.kind() == "WRONG_CHAIN_OR_SHARD"), "{e}");
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
