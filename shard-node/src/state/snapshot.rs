//! State snapshots as trie nodes: the ground layer of state sync.
//!
//! A serving node exports the trie of one version as its nodes in path order ([`StateEngine::snapshot_nodes`]),
//! in bounded chunks that resume after the last path sent. A new node imports them into an empty store
//! ([`SnapshotImport`]) trusting nothing but the state root it was given (from a certified header or a
//! coordinator epoch): every node must be the one its parent refers to (its keccak256, or its own bytes when
//! inline), so a wrong node is caught in the chunk that carries it, and that chunk stages nothing. Path order
//! puts every parent before its children, so each node is checked as it arrives. The imported version's
//! nodes are written exactly as the engine writes its own (at that version), the flat table is filled from
//! the leaves, and the engine then stages the next versions as if it had computed this one.

use std::collections::BTreeMap;

use alloy_primitives::B256;
use alloy_rlp::Decodable;
use alloy_trie::{
    nodes::{RlpNode, TrieNode},
    Nibbles, EMPTY_ROOT_HASH,
};

use super::{
    error::{Result, StateError},
    keys,
    node::{ChildRef, Kind, NodeRef},
    record::{self, matches_reference, RootRecord, KEY_NIBBLES},
    store::NodeReader,
    StateEngine,
};

/// Most nodes one snapshot chunk may carry.
pub const MAX_SNAPSHOT_CHUNK_NODES: usize = 16_384;

/// One trie node of a snapshot: where it sits and its standard Ethereum RLP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Nibble path from the root.
    pub path: Nibbles,
    /// The node's RLP (what its parent's reference commits to).
    pub rlp: Vec<u8>,
}

impl StateEngine {
    /// Up to `max` (at most [`MAX_SNAPSHOT_CHUNK_NODES`]) nodes of `version`'s trie in path order, starting
    /// after path `after` (None: from the root). Fewer than `max` means the trie has been sent whole.
    pub fn snapshot_nodes(&self, version: u64, after: Option<&Nibbles>, max: usize) -> Result<Vec<SnapshotNode>> {
        let reader = self.reader();
        let Some(root) = reader.root_record(version)? else {
            return Err(self.missing_version(version)?);
        };
        let mut out = Vec::new();
        let max = max.min(MAX_SNAPSHOT_CHUNK_NODES);
        if let Some(root) = NodeReader::root_ref(&root) {
            collect(&reader, root, Nibbles::new(), after, max, &mut out)?;
        }
        Ok(out)
    }
}

/// Depth-first, children in nibble order: appends the nodes of the subtree at `path` that come after
/// `after`, until `out` holds `max`. Subtrees wholly at or before `after` are not read.
fn collect(
    reader: &NodeReader<'_>,
    child: ChildRef,
    path: Nibbles,
    after: Option<&Nibbles>,
    max: usize,
    out: &mut Vec<SnapshotNode>,
) -> Result<()> {
    if out.len() >= max {
        return Ok(());
    }
    let inside_cursor = after.is_some_and(|a| a.starts_with(&path));
    if after.is_some_and(|a| path <= *a && !inside_cursor) {
        return Ok(()); // the whole subtree was sent before
    }
    let node = reader.load(&child, &path)?;
    if after.is_none_or(|a| path > *a) {
        out.push(SnapshotNode { path, rlp: node.rlp });
    }
    let stored = |r: &NodeRef| match r {
        NodeRef::Stored(c) => Ok(c.clone()),
        NodeRef::Mem(_) | NodeRef::Resident(_) => {
            Err(StateError::corrupt("a decoded node holds a loaded child", path.pack()))
        }
    };
    match node.kind {
        Kind::Leaf { .. } => Ok(()),
        Kind::Extension { key, child } => {
            let child = stored(&child)?;
            collect(reader, child, path.join(&key), after, max, out)
        }
        Kind::Branch { children } => {
            for (nibble, slot) in (0u8..).zip(children.iter()) {
                let Some(slot) = slot else { continue };
                let child = stored(slot)?;
                let mut below = path;
                below.push(nibble);
                collect(reader, child, below, after, max, out)?;
                if out.len() >= max {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// Why a snapshot chunk was refused: the peer that sent it is wrong (or lying), not this node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// A node no verified parent refers to at that path (out of order, repeated, or invented).
    #[error("snapshot node at path {path:?} is not expected there")]
    Unexpected {
        /// The node's path.
        path: Nibbles,
    },
    /// A node whose bytes are not what its parent commits to.
    #[error("snapshot node at path {path:?} does not match its parent's reference")]
    Mismatch {
        /// The node's path.
        path: Nibbles,
    },
    /// A node that hashes right but is not a well-formed trie node of 32-byte keys.
    #[error("snapshot node at path {path:?} is malformed: {why}")]
    Malformed {
        /// The node's path.
        path: Nibbles,
        /// What is wrong.
        why: &'static str,
    },
    /// A chunk above [`MAX_SNAPSHOT_CHUNK_NODES`].
    #[error("snapshot chunk of {0} nodes, more than {MAX_SNAPSHOT_CHUNK_NODES}")]
    TooLarge(usize),
    /// The import was finished while nodes were still missing.
    #[error("snapshot incomplete: {0} node(s) still missing")]
    Incomplete(usize),
}

/// Imports one version's trie, chunk by chunk, verifying every node against the root it started from.
#[derive(Debug)]
pub struct SnapshotImport {
    version: u64,
    root: B256,
    /// Paths whose node is still to come, with the reference their verified parent holds.
    pending: BTreeMap<Nibbles, RlpNode>,
    nodes: u64,
    leaves: u64,
}

impl SnapshotImport {
    /// An import of `version` whose state root is `root`.
    pub fn new(version: u64, root: B256) -> Self {
        let mut pending = BTreeMap::new();
        if root != EMPTY_ROOT_HASH {
            pending.insert(Nibbles::new(), RlpNode::word_rlp(&root));
        }
        Self { version, root, pending, nodes: 0, leaves: 0 }
    }

    /// True once every node has arrived.
    pub fn is_complete(&self) -> bool {
        self.pending.is_empty()
    }

    /// Nodes and leaves imported so far.
    pub fn progress(&self) -> (u64, u64) {
        (self.nodes, self.leaves)
    }

    /// Verifies `chunk` and, only if every node in it is right, stages its nodes and leaves into `batch`.
    /// Returns the last path applied (where the next chunk resumes).
    pub fn apply(
        &mut self,
        chunk: &[SnapshotNode],
        batch: &mut sled::Batch,
    ) -> std::result::Result<Option<Nibbles>, SnapshotError> {
        if chunk.len() > MAX_SNAPSHOT_CHUNK_NODES {
            return Err(SnapshotError::TooLarge(chunk.len()));
        }
        let mut pending = self.pending.clone();
        let mut writes: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(chunk.len() * 2);
        let mut leaves = 0u64;
        for node in chunk {
            let path = node.path;
            let expected = pending.remove(&path).ok_or(SnapshotError::Unexpected { path })?;
            if !matches_reference(&node.rlp, &expected) {
                return Err(SnapshotError::Mismatch { path });
            }
            let malformed = |why| SnapshotError::Malformed { path, why };
            let mut buf = node.rlp.as_slice();
            let decoded = TrieNode::decode(&mut buf).map_err(|_| malformed("not trie node rlp"))?;
            if !buf.is_empty() {
                return Err(malformed("trailing bytes"));
            }
            let child = |rlp: RlpNode| ChildRef { version: self.version, rlp };
            let encoded = match decoded {
                TrieNode::Leaf(leaf) => {
                    let full = path.join(&leaf.key);
                    if full.len() != KEY_NIBBLES || leaf.value.is_empty() {
                        return Err(malformed("leaf key does not end at 64 nibbles, or empty value"));
                    }
                    writes.push((keys::leaf_key(&B256::from_slice(&full.pack())).to_vec(), leaf.value.clone()));
                    leaves += 1;
                    record::encode_leaf(&leaf.key, &leaf.value)
                }
                TrieNode::Extension(ext) => {
                    let below = path.join(&ext.key);
                    if ext.key.is_empty() || below.len() >= KEY_NIBBLES {
                        return Err(malformed("extension key length out of range"));
                    }
                    pending.insert(below, ext.child.clone());
                    record::encode_extension(&ext.key, &child(ext.child))
                }
                TrieNode::Branch(branch) => {
                    if path.len() >= KEY_NIBBLES || branch.state_mask.count_bits() < 2 {
                        return Err(malformed("branch below a full key, or with fewer than two children"));
                    }
                    let mut children: [Option<ChildRef>; 16] = std::array::from_fn(|_| None);
                    let mut stack = branch.stack.into_iter();
                    for nibble in 0u8..16 {
                        if !branch.state_mask.is_bit_set(nibble) {
                            continue;
                        }
                        let rlp = stack.next().ok_or_else(|| malformed("branch mask and children differ"))?;
                        let mut below = path;
                        below.push(nibble);
                        pending.insert(below, rlp.clone());
                        children[usize::from(nibble)] = Some(child(rlp));
                    }
                    record::encode_branch(children.iter().map(Option::as_ref))
                }
                TrieNode::EmptyRoot => return Err(malformed("empty node inside a trie")),
            };
            if encoded.rlp() != node.rlp.as_slice() {
                return Err(malformed("not the canonical encoding of its node"));
            }
            writes.push((keys::node_key(self.version, &path), encoded.bytes));
        }
        for (key, value) in writes {
            batch.insert(key, value);
        }
        self.pending = pending;
        self.nodes += chunk.len() as u64;
        self.leaves += leaves;
        Ok(chunk.last().map(|n| n.path))
    }

    /// Stages the version's root record once every node has arrived: the engine's latest version is then
    /// this one.
    pub fn finish(self, batch: &mut sled::Batch) -> std::result::Result<(), SnapshotError> {
        if !self.pending.is_empty() {
            return Err(SnapshotError::Incomplete(self.pending.len()));
        }
        let record = if self.root == EMPTY_ROOT_HASH {
            RootRecord::EMPTY
        } else {
            RootRecord { hash: self.root, node_version: Some(self.version) }
        };
        batch.insert(&keys::root_key(self.version)[..], record.encode());
        Ok(())
    }
}
