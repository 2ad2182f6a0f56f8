//! Byte format of stored trie nodes and root records.
//!
//! A node record is a tag, the versions of its children, then the node's standard Ethereum RLP
//! (so a proof is just the stored RLP of each node on the path):
//!
//! - leaf: `0x00 ‖ rlp(leaf)`
//! - extension: `0x01 ‖ child_version(8) ‖ rlp(extension)`
//! - branch: `0x02 ‖ n(1) ‖ n × child_version(8) ‖ rlp(branch)` with children in nibble order.
//!
//! A root record is `root_hash(32)` for the empty trie, `root_hash(32) ‖ root_node_version(8)`
//! otherwise. Decoding never trusts the bytes: every inconsistency is [`StateError::Corrupt`].

use super::{
    error::{Result, StateError},
    node::{ChildRef, Kind, NodeRef},
};
use alloy_primitives::B256;
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::{
    nodes::{BranchNode, ExtensionNode, LeafNode, RlpNode},
    Nibbles, TrieMask, EMPTY_ROOT_HASH,
};

const TAG_LEAF: u8 = 0x00;
const TAG_EXTENSION: u8 = 0x01;
const TAG_BRANCH: u8 = 0x02;
/// Length of every key in nibbles.
pub(crate) const KEY_NIBBLES: usize = 64;

/// An encoded node record and where its RLP starts.
pub(crate) struct EncodedNode {
    /// The full record.
    pub(crate) bytes: Vec<u8>,
    rlp_start: usize,
}

impl EncodedNode {
    /// The node's standard RLP encoding.
    pub(crate) fn rlp(&self) -> &[u8] {
        self.bytes.get(self.rlp_start..).unwrap_or_default()
    }
}

/// Encodes a leaf record.
pub(crate) fn encode_leaf(key: &Nibbles, value: &[u8]) -> EncodedNode {
    let node = LeafNode::new(*key, value.to_vec());
    let mut bytes = Vec::with_capacity(1 + node.length());
    bytes.push(TAG_LEAF);
    node.encode(&mut bytes);
    EncodedNode { bytes, rlp_start: 1 }
}

/// Encodes an extension record.
pub(crate) fn encode_extension(key: &Nibbles, child: &ChildRef) -> EncodedNode {
    let node = ExtensionNode::new(*key, child.rlp.clone());
    let mut bytes = Vec::with_capacity(1 + 8 + node.length());
    bytes.push(TAG_EXTENSION);
    bytes.extend_from_slice(&child.version.to_be_bytes());
    node.encode(&mut bytes);
    EncodedNode { bytes, rlp_start: 1 + 8 }
}

/// Encodes a branch record from its (sixteen) children in nibble order.
pub(crate) fn encode_branch<'c>(children: impl IntoIterator<Item = Option<&'c ChildRef>>) -> EncodedNode {
    let mut mask = TrieMask::default();
    let mut stack = Vec::with_capacity(16);
    let mut versions = Vec::with_capacity(16 * 8);
    for (nibble, child) in (0u8..16).zip(children) {
        if let Some(child) = child {
            mask.set_bit(nibble);
            stack.push(child.rlp.clone());
            versions.extend_from_slice(&child.version.to_be_bytes());
        }
    }
    let node = BranchNode::new(stack, mask);
    let rlp_start = 2 + versions.len();
    let mut bytes = Vec::with_capacity(rlp_start + node.length());
    bytes.push(TAG_BRANCH);
    // At most 16 children.
    bytes.push(node.stack.len() as u8);
    bytes.extend_from_slice(&versions);
    node.encode(&mut bytes);
    EncodedNode { bytes, rlp_start }
}

/// A node decoded from storage: its shape (children as unloaded references) and its RLP.
#[derive(Debug)]
pub(crate) struct DecodedNode {
    /// Shape, with children as [`NodeRef::Stored`].
    pub(crate) kind: Kind,
    /// The node's standard RLP encoding (a proof element).
    pub(crate) rlp: Vec<u8>,
}

/// Decodes a node record found at `path` (`key` is the sled key, for error context).
pub(crate) fn decode_node(record: &[u8], path: &Nibbles, key: &[u8]) -> Result<DecodedNode> {
    let corrupt = |what| StateError::corrupt(what, key);
    let (&tag, rest) = record.split_first().ok_or_else(|| corrupt("empty node record"))?;
    let (kind, rlp) = match tag {
        TAG_LEAF => {
            let mut buf = rest;
            let leaf = LeafNode::decode(&mut buf).map_err(|_| corrupt("bad leaf rlp"))?;
            if !buf.is_empty() || path.len() + leaf.key.len() != KEY_NIBBLES {
                return Err(corrupt("leaf key does not end at 64 nibbles"));
            }
            if leaf.value.is_empty() {
                return Err(corrupt("leaf with empty value"));
            }
            (Kind::Leaf { key: leaf.key, value: leaf.value }, rest)
        }
        TAG_EXTENSION => {
            let (version, rlp) = split_version(rest).ok_or_else(|| corrupt("short extension"))?;
            let mut buf = rlp;
            let ext = ExtensionNode::decode(&mut buf).map_err(|_| corrupt("bad extension rlp"))?;
            if !buf.is_empty() || ext.key.is_empty() || path.len() + ext.key.len() >= KEY_NIBBLES {
                return Err(corrupt("extension key length out of range"));
            }
            let child = NodeRef::Stored(ChildRef { version, rlp: ext.child });
            (Kind::Extension { key: ext.key, child: Box::new(child) }, rlp)
        }
        TAG_BRANCH => decode_branch(rest, path).map_err(corrupt)?,
        _ => return Err(corrupt("unknown node tag")),
    };
    Ok(DecodedNode { kind, rlp: rlp.to_vec() })
}

fn decode_branch<'a>(rest: &'a [u8], path: &Nibbles) -> std::result::Result<(Kind, &'a [u8]), &'static str> {
    let (&count, rest) = rest.split_first().ok_or("short branch")?;
    let count = usize::from(count);
    if !(2..=16).contains(&count) {
        return Err("branch child count out of range");
    }
    if path.len() >= KEY_NIBBLES {
        return Err("branch below a full key");
    }
    let versions = rest.get(..count * 8).ok_or("short branch versions")?;
    let rlp = rest.get(count * 8..).ok_or("short branch versions")?;
    let mut buf = rlp;
    let node = BranchNode::decode(&mut buf).map_err(|_| "bad branch rlp")?;
    if !buf.is_empty() || node.stack.len() != count || usize::from(node.state_mask.count_bits()) != count {
        return Err("branch children do not match versions");
    }
    let mut children = super::node::empty_children();
    let mut stack = node.stack.into_iter().zip(versions.chunks_exact(8));
    for nibble in 0u8..16 {
        if !node.state_mask.is_bit_set(nibble) {
            continue;
        }
        let (rlp, version) = stack.next().ok_or("branch children do not match versions")?;
        let version = u64::from_be_bytes(version.try_into().map_err(|_| "bad child version")?);
        if let Some(slot) = children.get_mut(usize::from(nibble)) {
            *slot = Some(NodeRef::Stored(ChildRef { version, rlp }));
        }
    }
    Ok((Kind::Branch { children }, rlp))
}

fn split_version(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (version, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*version), rest))
}

/// Checks that `rlp` is the node `expected` refers to: its hash for hashed references, the
/// bytes themselves for inline ones.
pub(crate) fn matches_reference(rlp: &[u8], expected: &RlpNode) -> bool {
    match expected.as_hash() {
        Some(hash) => alloy_primitives::keccak256(rlp) == hash,
        None => rlp == expected.as_slice(),
    }
}

/// The root of one version: its hash and the version of the root node (absent when empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootRecord {
    /// State root hash.
    pub(crate) hash: B256,
    /// Version the root node (at the empty path) was written at; `None` for the empty trie.
    pub(crate) node_version: Option<u64>,
}

impl RootRecord {
    /// The empty trie.
    pub(crate) const EMPTY: Self = Self { hash: EMPTY_ROOT_HASH, node_version: None };

    /// Encodes the record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.hash.to_vec();
        if let Some(version) = self.node_version {
            out.extend_from_slice(&version.to_be_bytes());
        }
        out
    }

    /// Decodes a record (`key` is the sled key, for error context).
    pub(crate) fn decode(bytes: &[u8], key: &[u8]) -> Result<Self> {
        let (hash, rest) = bytes.split_first_chunk::<32>().ok_or_else(|| StateError::corrupt("short root", key))?;
        let hash = B256::from(*hash);
        match rest.len() {
            0 if hash == EMPTY_ROOT_HASH => Ok(Self::EMPTY),
            8 => {
                let version = split_version(rest).map(|(v, _)| v);
                Ok(Self { hash, node_version: version })
            }
            _ => Err(StateError::corrupt("bad root record", key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;

    fn nibbles(n: &[u8]) -> Nibbles {
        Nibbles::from_nibbles(n)
    }

    fn full_path(len: usize) -> Nibbles {
        Nibbles::from_nibbles(vec![0x3; len])
    }

    #[test]
    fn leaf_round_trip_matches_alloy_rlp() {
        let key = nibbles(&[0x6, 0x4, 0x6, 0xf]);
        let enc = encode_leaf(&key, &hex!("76657262"));
        assert_eq!(enc.rlp(), hex!("c98320646f8476657262"));
        let dec = decode_node(&enc.bytes, &full_path(60), b"k").expect("decodes");
        assert_eq!(dec.rlp, enc.rlp());
        match dec.kind {
            Kind::Leaf { key: k, value } => {
                assert_eq!(k, key);
                assert_eq!(value, hex!("76657262"));
            }
            other => panic!("not a leaf: {other:?}"),
        }
        // The leaf must end exactly at 64 nibbles.
        assert!(decode_node(&enc.bytes, &full_path(59), b"k").is_err());
    }

    #[test]
    fn extension_round_trip() {
        let child = ChildRef { version: 77, rlp: RlpNode::word_rlp(&B256::repeat_byte(9)) };
        let key = nibbles(&[0xa, 0xb, 0xc]);
        let enc = encode_extension(&key, &child);
        let dec = decode_node(&enc.bytes, &full_path(10), b"k").expect("decodes");
        assert_eq!(dec.rlp, enc.rlp());
        match dec.kind {
            Kind::Extension { key: k, child: c } => {
                assert_eq!(k, key);
                assert!(matches!(*c, NodeRef::Stored(ref r) if *r == child));
            }
            other => panic!("not an extension: {other:?}"),
        }
    }

    #[test]
    fn branch_round_trip_with_inline_child() {
        let hashed = ChildRef { version: 3, rlp: RlpNode::word_rlp(&B256::repeat_byte(1)) };
        let inline_leaf = encode_leaf(&nibbles(&[0x1]), &[0x05]);
        assert!(inline_leaf.rlp().len() < 32);
        let inline = ChildRef { version: 8, rlp: RlpNode::from_rlp(inline_leaf.rlp()) };
        let mut children: [Option<ChildRef>; 16] = Default::default();
        children[2] = Some(hashed.clone());
        children[15] = Some(inline.clone());
        let enc = encode_branch(children.iter().map(Option::as_ref));
        let expected =
            BranchNode::new(vec![hashed.rlp.clone(), inline.rlp.clone()], TrieMask::new((1 << 2) | (1 << 15)));
        assert_eq!(enc.rlp(), alloy_rlp::encode(&expected));
        let dec = decode_node(&enc.bytes, &full_path(62), b"k").expect("decodes");
        let Kind::Branch { children: got } = dec.kind else { panic!("not a branch") };
        for (i, slot) in got.iter().enumerate() {
            match (slot, &children[i]) {
                (None, None) => {}
                (Some(NodeRef::Stored(a)), Some(b)) => assert_eq!(a, b),
                other => panic!("slot {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let child = ChildRef { version: 1, rlp: RlpNode::word_rlp(&B256::ZERO) };
        let mut children: [Option<ChildRef>; 16] = Default::default();
        children[0] = Some(child.clone());
        children[1] = Some(child);
        let branch = encode_branch(children.iter().map(Option::as_ref)).bytes;
        let path = full_path(1);
        for len in 0..branch.len() {
            assert!(decode_node(&branch[..len], &path, b"k").is_err(), "prefix {len}");
        }
        let mut bad_count = branch.clone();
        bad_count[1] = 3;
        assert!(decode_node(&bad_count, &path, b"k").is_err());
        assert!(decode_node(&[0x09, 0xc0], &path, b"k").is_err());
        assert!(decode_node(&[], &path, b"k").is_err());
    }

    #[test]
    fn root_record_round_trip() {
        assert_eq!(RootRecord::decode(&RootRecord::EMPTY.encode(), b"r").expect("decodes"), RootRecord::EMPTY);
        let rec = RootRecord { hash: B256::repeat_byte(4), node_version: Some(12) };
        assert_eq!(RootRecord::decode(&rec.encode(), b"r").expect("decodes"), rec);
        assert!(RootRecord::decode(&B256::repeat_byte(4).0, b"r").is_err());
        assert!(RootRecord::decode(&[0; 35], b"r").is_err());
    }

    #[test]
    fn matches_reference_for_hashed_and_inline() {
        let leaf = encode_leaf(&nibbles(&[0x1, 0x2]), &[0x07]);
        assert!(matches_reference(leaf.rlp(), &RlpNode::from_rlp(leaf.rlp())));
        let big = encode_leaf(&full_path(64), &[0x07; 40]);
        let reference = RlpNode::from_rlp(big.rlp());
        assert!(reference.is_hash());
        assert!(matches_reference(big.rlp(), &reference));
        assert!(!matches_reference(leaf.rlp(), &reference));
    }
}
