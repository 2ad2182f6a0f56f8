//! Verification of state proofs a client can run without a node: standard Ethereum MPT proofs
//! (alloy-trie `verify_proof`) of a record against a state root carried by a validator-certified header.

use alloy_primitives::{Bytes, B256};
use alloy_trie::{proof::verify_proof, Nibbles};
use prost::Message;

use crate::{
    block::{verify_finalized, HeaderError},
    hash::b256_from_slice,
    ids::{AccountId, ChainId, ShardId},
    pb, state_key,
    validators::ValidatorSet,
};

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// A proof was asked for but the response carries none.
    #[error("response carries no proof")]
    Missing,
    /// The proof is for another key than the one asked about.
    #[error("proof is for key {got}, expected {expected}")]
    WrongKey {
        /// The key of the record asked about.
        expected: B256,
        /// The key in the proof.
        got: String,
    },
    /// The root in the proof is not 32 bytes or differs from the header's.
    #[error("state root mismatch: {0}")]
    RootMismatch(String),
    /// The MPT nodes do not prove the value under the root.
    #[error("MPT proof does not verify: {0}")]
    Invalid(String),
    /// The proven value does not decode as the record, or differs from the record returned.
    #[error("record does not match the proven value: {0}")]
    RecordMismatch(String),
    /// The header is not certified by the validator set.
    #[error("header: {0}")]
    Header(#[from] HeaderError),
}

/// Verifies that `value` (None = absent) is what `key` holds under `root`.
pub fn verify_state_proof(root: B256, key: B256, value: Option<&[u8]>, nodes: &[Bytes]) -> Result<(), ProofError> {
    verify_proof(root, Nibbles::unpack(key), value.map(<[u8]>::to_vec), nodes)
        .map_err(|e| ProofError::Invalid(e.to_string()))
}

/// Verifies that `item` is entry `index` of the ordered root `root` (a block's txs, receipts or events).
pub fn verify_ordered_item(root: B256, index: usize, item: &[u8], nodes: &[Bytes]) -> Result<(), ProofError> {
    let key = crate::hash::ordered_key(index);
    // A trie whose root node is under 32 bytes (a few short items) is hashed for the root, but
    // `verify_proof` matches the first node by its inline form: walk that self-contained node directly.
    if let Some(first) = nodes.first() {
        if first.len() < 32 && alloy_primitives::keccak256(first) == root {
            return if holds_inline(first, &key, item, 0) {
                Ok(())
            } else {
                Err(ProofError::Invalid(format!("the root node does not hold item {index}")))
            };
        }
    }
    verify_proof(root, key, Some(item.to_vec()), nodes).map_err(|e| ProofError::Invalid(e.to_string()))
}

/// True when the inline trie node `rlp` (children embedded, as in any node under 32 bytes) holds `value` at
/// `key`. Bounded by the key length: a deeper walk is refused.
fn holds_inline(rlp: &[u8], key: &Nibbles, value: &[u8], depth: usize) -> bool {
    use alloy_trie::nodes::TrieNode;
    if depth > key.len() || rlp.len() >= 32 {
        return false;
    }
    match <TrieNode as alloy_rlp::Decodable>::decode(&mut &rlp[..]) {
        Ok(TrieNode::Leaf(leaf)) => leaf.key == *key && leaf.value == value,
        Ok(TrieNode::Extension(ext)) => {
            key.starts_with(&ext.key)
                && holds_inline(ext.child.as_slice(), &key.slice(ext.key.len()..), value, depth + 1)
        }
        Ok(TrieNode::Branch(branch)) => {
            let Some(nibble) = key.first() else { return false };
            if !branch.state_mask.is_bit_set(nibble) {
                return false;
            }
            let position = (0..nibble).filter(|n| branch.state_mask.is_bit_set(*n)).count();
            branch
                .stack
                .get(position)
                .is_some_and(|child| holds_inline(child.as_slice(), &key.slice(1..), value, depth + 1))
        }
        _ => false,
    }
}

/// Checks a `StateProof` for `key` and returns the proven value (None = absent).
pub fn verify_pb_proof(proof: &pb::StateProof, key: B256) -> Result<Option<Vec<u8>>, ProofError> {
    if proof.key.as_slice() != key.as_slice() {
        return Err(ProofError::WrongKey { expected: key, got: hex::encode(&proof.key) });
    }
    let root =
        b256_from_slice(&proof.state_root).ok_or_else(|| ProofError::RootMismatch("root is not 32 bytes".into()))?;
    let nodes: Vec<Bytes> = proof.nodes.iter().map(|n| Bytes::copy_from_slice(n)).collect();
    let value = (!proof.value.is_empty()).then_some(proof.value.as_slice());
    verify_state_proof(root, key, value, &nodes)?;
    Ok(value.map(<[u8]>::to_vec))
}

/// Checks that `proof` proves under the response's `state_root` at its `height` exactly the record the
/// response returned at `key`, and returns the proven record. Absent and all-default are the same record
/// (absent = default: such a record is stored as no key), so `None`, a default record and an absent key all
/// match. Every proven response of the Shard service goes through this.
pub fn verify_returned_record<M: Message + Default + PartialEq>(
    proof: Option<&pb::StateProof>,
    key: B256,
    returned: Option<&M>,
    state_root: &[u8],
    height: u64,
) -> Result<M, ProofError> {
    let proof = proof.ok_or(ProofError::Missing)?;
    if proof.state_root != state_root || proof.height != height {
        return Err(ProofError::RootMismatch(format!(
            "proof of key {key} is at height {} against another root than the response's (height {height})",
            proof.height
        )));
    }
    let proven = verify_pb_proof(proof, key)?
        .map(|v| M::decode(v.as_slice()))
        .transpose()
        .map_err(|e| ProofError::RecordMismatch(format!("proven value at key {key} does not decode: {e}")))?
        .unwrap_or_default();
    if !returned.map_or(proven == M::default(), |r| *r == proven) {
        return Err(ProofError::RecordMismatch(format!(
            "the record returned for key {key} differs from the proven one"
        )));
    }
    Ok(proven)
}

/// Checks that `header` is finalized by a quorum of `validators` for (`chain`, `shard`) and carries
/// `state_root` at `height`: what ties a proven response to the shard's chain.
pub fn verify_header_carries(
    header: Option<&pb::FinalizedHeader>,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
    state_root: &[u8],
    height: u64,
) -> Result<(), ProofError> {
    let decoded = verify_finalized(header.ok_or(ProofError::Missing)?, chain, shard, validators)?;
    if decoded.state_root().as_slice() != state_root || decoded.header.height != height {
        return Err(ProofError::RootMismatch(format!(
            "header {} has root {}, the proofs are against 0x{} at height {height}",
            decoded.header.height,
            decoded.state_root(),
            hex::encode(state_root)
        )));
    }
    Ok(())
}

/// What an account proof established.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAccount {
    /// The record (None: the account has no record at that height).
    pub record: Option<pb::AccountRecord>,
    /// Height proven at.
    pub height: u64,
    /// State root proven against.
    pub state_root: B256,
    /// True when the header's certificate were checked too.
    pub header_checked: bool,
}

/// Verifies a `GetAccountResponse` end to end: MPT proof of the account record → state root, and, when
/// `validators` is given, state root → header signed by a quorum of that set.
pub fn verify_account_response(
    resp: &pb::GetAccountResponse,
    account: &AccountId,
    chain: ChainId,
    shard: ShardId,
    validators: Option<&ValidatorSet>,
) -> Result<VerifiedAccount, ProofError> {
    let proof = resp.proof.as_ref().ok_or(ProofError::Missing)?;
    let value = verify_pb_proof(proof, state_key::account_key(account))?;
    let record = value
        .as_deref()
        .map(pb::AccountRecord::decode)
        .transpose()
        .map_err(|e| ProofError::RecordMismatch(e.to_string()))?;
    if record != resp.account {
        return Err(ProofError::RecordMismatch("the returned account differs from the proven one".into()));
    }
    if proof.state_root != resp.state_root || proof.height != resp.height {
        return Err(ProofError::RootMismatch("response root/height differ from the proof's".into()));
    }
    let state_root =
        b256_from_slice(&proof.state_root).ok_or_else(|| ProofError::RootMismatch("not 32 bytes".into()))?;
    if let Some(set) = validators {
        verify_header_carries(resp.header.as_ref(), chain, shard, set, &proof.state_root, proof.height)?;
    }
    Ok(VerifiedAccount { record, height: proof.height, state_root, header_checked: validators.is_some() })
}

/// Test fixture for every proof check in this crate: the root of a trie over `leaves` (in any order) built
/// with alloy-trie's `HashBuilder`, and the proof of `target` (present or absent) in it.
#[cfg(test)]
pub(crate) fn trie_with_proof(leaves: &[(B256, Vec<u8>)], target: B256) -> (B256, Vec<Bytes>) {
    use alloy_trie::{proof::ProofRetainer, HashBuilder};
    let mut sorted = leaves.to_vec();
    sorted.sort_by_key(|(k, _)| *k);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![Nibbles::unpack(target)]));
    for (k, v) in &sorted {
        hb.add_leaf(Nibbles::unpack(*k), v);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().into_nodes_sorted().into_iter().map(|(_, n)| n).collect();
    (root, nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proves_present_and_absent_and_rejects_wrong_value() {
        let leaves: Vec<(B256, Vec<u8>)> =
            (0u8..20).map(|i| (alloy_primitives::keccak256([i]), vec![i + 1; 40])).collect();
        let (root, nodes) = trie_with_proof(&leaves, leaves[3].0);
        assert_eq!(verify_state_proof(root, leaves[3].0, Some(&leaves[3].1), &nodes), Ok(()));
        assert!(verify_state_proof(root, leaves[3].0, Some(&[9; 40]), &nodes).is_err());
        assert!(verify_state_proof(root, leaves[3].0, None, &nodes).is_err());

        let absent = alloy_primitives::keccak256([200u8]);
        let (root, nodes) = trie_with_proof(&leaves, absent);
        assert_eq!(verify_state_proof(root, absent, None, &nodes), Ok(()));
        assert!(verify_state_proof(root, absent, Some(&[1]), &nodes).is_err());
    }

    proptest::proptest! {
        /// Every item of an ordered root proves against it (including the rlp index quirks at 0, 0x7f and
        /// 0x80), and a changed item or another index does not.
        #[test]
        fn ordered_items_prove(len in 1usize..300, pick in 0usize..300, byte in 0u8..255) {
            let items: Vec<Vec<u8>> = (0..len).map(|i| vec![byte; 1 + i % 40]).collect();
            let root = crate::hash::ordered_root(&items);
            let index = pick % len;
            let nodes = crate::hash::ordered_proof(&items, index);
            proptest::prop_assert_eq!(verify_ordered_item(root, index, &items[index], &nodes), Ok(()));
            let mut other = items[index].clone();
            other.push(1);
            proptest::prop_assert!(verify_ordered_item(root, index, &other, &nodes).is_err());
            if len > 1 {
                let wrong = (index + 1) % len;
                // (Only when the two items differ: equal tiny items can share inlined nodes on both paths.)
                if items[wrong] != items[index] {
                    proptest::prop_assert!(verify_ordered_item(root, wrong, &items[index], &nodes).is_err());
                }
                // Several proofs from one pass equal the single ones.
                let many = crate::hash::ordered_proofs(&items, &[index, wrong, len + 5]);
                proptest::prop_assert_eq!(&many[0], &nodes);
                proptest::prop_assert_eq!(verify_ordered_item(root, wrong, &items[wrong], &many[1]), Ok(()));
                proptest::prop_assert!(many[2].is_empty());
            }
        }
    }
}
