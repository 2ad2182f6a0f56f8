//! keccak256 hashing of protocol objects.

use alloy_primitives::{keccak256, B256};

/// Hash of a transaction: keccak256 of its exact body bytes (which include signer and nonce).
pub fn tx_hash(body: &[u8]) -> B256 {
    keccak256(body)
}

/// Hash of a block: keccak256 of the exact encoded header bytes.
pub fn block_hash(header_bytes: &[u8]) -> B256 {
    keccak256(header_bytes)
}

/// Ordered MPT root over encoded items (key = rlp(index)), as Ethereum's transactions root.
pub fn ordered_root<T: AsRef<[u8]>>(items: &[T]) -> B256 {
    alloy_trie::root::ordered_trie_root_with_encoder(items, |item, buf| buf.extend_from_slice(item.as_ref()))
}

/// The MPT key of item `index` in an ordered root: `rlp(index)`.
pub fn ordered_key(index: usize) -> alloy_trie::Nibbles {
    alloy_trie::Nibbles::unpack(alloy_rlp::encode_fixed_size(&index))
}

/// The proof nodes (root first) of item `index` under [`ordered_root`] of `items`; empty when `index` is out
/// of range. Verify with [`crate::proof::verify_ordered_item`].
pub fn ordered_proof<T: AsRef<[u8]>>(items: &[T], index: usize) -> Vec<alloy_primitives::Bytes> {
    ordered_proofs(items, &[index]).pop().unwrap_or_default()
}

/// [`ordered_proof`] for several indices, hashing the trie once.
pub fn ordered_proofs<T: AsRef<[u8]>>(items: &[T], indices: &[usize]) -> Vec<Vec<alloy_primitives::Bytes>> {
    let targets: Vec<alloy_trie::Nibbles> =
        indices.iter().filter(|i| **i < items.len()).map(|i| ordered_key(*i)).collect();
    if targets.is_empty() {
        return vec![Vec::new(); indices.len()];
    }
    let retainer = alloy_trie::proof::ProofRetainer::new(targets);
    let mut hb = alloy_trie::HashBuilder::default().with_proof_retainer(retainer);
    // Leaves in key order, as `ordered_trie_root_with_encoder` adds them.
    for i in 0..items.len() {
        let at = alloy_trie::root::adjust_index_for_rlp(i, items.len());
        hb.add_leaf(ordered_key(at), items[at].as_ref());
    }
    hb.root();
    let nodes = hb.take_proof_nodes();
    indices
        .iter()
        .map(|index| {
            if *index >= items.len() {
                return Vec::new();
            }
            // Nodes under 32 bytes are embedded in their parent, which the verifier decodes in place: only
            // the root and hashed nodes are proof steps.
            nodes
                .matching_nodes_sorted(&ordered_key(*index))
                .into_iter()
                .enumerate()
                .filter(|(position, (_, node))| *position == 0 || node.len() >= 32)
                .map(|(_, (_, node))| node)
                .collect()
        })
        .collect()
}

/// Parses a 32-byte hash from wire bytes.
pub fn b256_from_slice(bytes: &[u8]) -> Option<B256> {
    <[u8; 32]>::try_from(bytes).ok().map(B256::from)
}
