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

/// Parses a 32-byte hash from wire bytes.
pub fn b256_from_slice(bytes: &[u8]) -> Option<B256> {
    <[u8; 32]>::try_from(bytes).ok().map(B256::from)
}
