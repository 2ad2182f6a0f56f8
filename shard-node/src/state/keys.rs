//! Key layout of the state engine inside the node's shared `sled::Tree`.
//!
//! The state engine owns every key whose first byte is in `0x01..=0x0F`; the node owns `0x10..`.
//! All multi-byte integers are big-endian so that sled's byte order is version order.
//!
//! | prefix | key                                                      | value                     |
//! |--------|----------------------------------------------------------|---------------------------|
//! | `0x01` | `key(32)`                                                | head value (flat table)   |
//! | `0x02` | `version(8) ‖ path`                                      | node record               |
//! | `0x03` | `stale_since(8) ‖ chunk(4)`                              | stale entries (see below) |
//! | `0x04` | `version(8)`                                             | root record               |
//!
//! `path` is a nibble path from the root: `nibble_count(1) ‖ packed nibbles` (odd paths are
//! padded with a zero low nibble), so paths of different lengths never collide.
//!
//! The stale index lists, per version `stale_since`, the nodes that version replaced, as
//! concatenated entries `node_version(8) ‖ path` (the node key without its prefix), at most
//! [`STALE_CHUNK_ENTRIES`] per record. One record per chunk instead of one per node roughly halves the
//! sled operations a block costs (a stale entry is written and later deleted).

use alloy_primitives::B256;
use alloy_trie::Nibbles;

/// Flat table of head values: `0x01 ‖ key`.
pub const LEAF_PREFIX: u8 = 0x01;
/// Trie nodes by position and version: `0x02 ‖ version ‖ path`.
pub const NODE_PREFIX: u8 = 0x02;
/// Stale index: `0x03 ‖ stale_since ‖ chunk`.
pub const STALE_PREFIX: u8 = 0x03;
/// Root record per version: `0x04 ‖ version`.
pub const ROOT_PREFIX: u8 = 0x04;
/// Last prefix byte reserved for the state engine (inclusive).
pub const LAST_RESERVED_PREFIX: u8 = 0x0F;

/// Most entries in one stale-index record.
pub const STALE_CHUNK_ENTRIES: usize = 1024;
/// Encoded length of a stale-index key header (`prefix ‖ stale_since`).
const STALE_HEADER_LEN: usize = 1 + 8;

/// `0x01 ‖ key`.
pub(crate) fn leaf_key(key: &B256) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = LEAF_PREFIX;
    out[1..].copy_from_slice(key.as_slice());
    out
}

/// Decodes the state key out of a flat-table key; `None` if it is not `0x01 ‖ 32 bytes`.
pub(crate) fn decode_leaf_key(raw: &[u8]) -> Option<B256> {
    match raw.split_first() {
        Some((&LEAF_PREFIX, rest)) if rest.len() == 32 => Some(B256::from_slice(rest)),
        _ => None,
    }
}

/// Appends the encoding of a nibble path (`count ‖ packed`).
fn push_path(out: &mut Vec<u8>, path: &Nibbles) {
    // A path has at most 64 nibbles, so the count always fits in a byte.
    out.push(path.len() as u8);
    out.extend_from_slice(&path.pack());
}

/// `0x02 ‖ version ‖ path`.
pub(crate) fn node_key(version: u64, path: &Nibbles) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + 1 + 32);
    out.push(NODE_PREFIX);
    out.extend_from_slice(&version.to_be_bytes());
    push_path(&mut out, path);
    out
}

/// `0x03 ‖ stale_since ‖ chunk`.
pub(crate) fn stale_key(stale_since: u64, chunk: u32) -> [u8; STALE_HEADER_LEN + 4] {
    let mut out = [0u8; STALE_HEADER_LEN + 4];
    out[..STALE_HEADER_LEN].copy_from_slice(&stale_since_prefix(stale_since));
    out[STALE_HEADER_LEN..].copy_from_slice(&chunk.to_be_bytes());
    out
}

/// Appends one stale-index entry, `node_version ‖ path`.
pub(crate) fn push_stale_entry(out: &mut Vec<u8>, node_version: u64, path: &Nibbles) {
    out.extend_from_slice(&node_version.to_be_bytes());
    push_path(out, path);
}

/// The node keys (`0x02 ‖ node_version ‖ path`) listed in a stale-index record.
/// `None` if the record does not split into well-formed entries.
pub(crate) fn stale_node_keys(record: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let mut rest = record;
    while !rest.is_empty() {
        let count = usize::from(*rest.get(8)?);
        if count > 64 {
            return None;
        }
        let len = 8 + 1 + count.div_ceil(2);
        let entry = rest.get(..len)?;
        rest = rest.get(len..)?;
        let mut key = Vec::with_capacity(1 + len);
        key.push(NODE_PREFIX);
        key.extend_from_slice(entry);
        keys.push(key);
    }
    Some(keys)
}

/// `0x03 ‖ stale_since`, the first stale-index key of a version.
pub(crate) fn stale_since_prefix(stale_since: u64) -> [u8; STALE_HEADER_LEN] {
    prefixed_version(STALE_PREFIX, stale_since)
}

/// `0x04 ‖ version`.
pub(crate) fn root_key(version: u64) -> [u8; 9] {
    prefixed_version(ROOT_PREFIX, version)
}

/// Decodes the version out of a root-record key.
pub(crate) fn decode_root_key(raw: &[u8]) -> Option<u64> {
    match raw.split_first() {
        Some((&ROOT_PREFIX, rest)) => Some(u64::from_be_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

fn prefixed_version(prefix: u8, version: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = prefix;
    out[1..].copy_from_slice(&version.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_stay_in_reserved_range() {
        for p in [LEAF_PREFIX, NODE_PREFIX, STALE_PREFIX, ROOT_PREFIX] {
            assert!((0x01..=LAST_RESERVED_PREFIX).contains(&p));
        }
    }

    #[test]
    fn paths_of_different_length_do_not_collide() {
        let a = Nibbles::from_nibbles([0x1]);
        let b = Nibbles::from_nibbles([0x1, 0x0]);
        assert_ne!(node_key(7, &a), node_key(7, &b));
        assert_eq!(node_key(7, &Nibbles::new()), vec![NODE_PREFIX, 0, 0, 0, 0, 0, 0, 0, 7, 0]);
    }

    #[test]
    fn stale_entries_map_to_node_keys() {
        let paths = [Nibbles::new(), Nibbles::from_nibbles([0xa, 0xb, 0xc]), Nibbles::from_nibbles([0x1; 64])];
        let mut record = Vec::new();
        for (version, path) in (4u64..).zip(&paths) {
            push_stale_entry(&mut record, version, path);
        }
        let expected: Vec<_> = (4u64..).zip(&paths).map(|(v, p)| node_key(v, p)).collect();
        assert_eq!(stale_node_keys(&record), Some(expected));
        assert_eq!(stale_node_keys(&record[..record.len() - 1]), None);
        assert_eq!(stale_node_keys(&[0, 0, 0, 0, 0, 0, 0, 1, 65]), None);
        assert!(stale_key(9, 2).starts_with(&stale_since_prefix(9)));
        assert!(stale_key(9, u32::MAX) < stale_key(10, 0));
    }

    #[test]
    fn leaf_and_root_keys_round_trip() {
        let key = B256::repeat_byte(0x5a);
        assert_eq!(decode_leaf_key(&leaf_key(&key)), Some(key));
        assert_eq!(decode_root_key(&root_key(42)), Some(42));
        assert_eq!(decode_root_key(&[ROOT_PREFIX, 1]), None);
    }
}
