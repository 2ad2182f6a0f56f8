//! Writing the changed nodes of a staged version into the caller's batch.

use super::{
    cache::NodeCache,
    keys,
    node::{ChildRef, Kind, MemNode, NodeRef},
    record::{encode_branch, encode_extension, encode_leaf, EncodedNode},
};
use alloy_primitives::{keccak256, B256};
use alloy_trie::{nodes::RlpNode, Nibbles};

/// Writes every dirty node at `(version, path)` into `batch`.
pub(crate) struct Committer<'a> {
    version: u64,
    batch: &'a mut sled::Batch,
    cache: &'a NodeCache,
    /// Number of node records written (for tracing).
    pub(crate) written: usize,
}

impl<'a> Committer<'a> {
    /// Writes nodes of `version` into `batch`.
    pub(crate) fn new(version: u64, batch: &'a mut sled::Batch, cache: &'a NodeCache) -> Self {
        Self { version, batch, cache, written: 0 }
    }

    /// Commits the trie rooted at `root`; returns the root hash and the root node's version.
    pub(crate) fn commit_root(&mut self, root: NodeRef) -> (B256, u64) {
        let root = self.commit(root, Nibbles::new());
        // The root hash is always `keccak256(rlp(root))`; a reference shorter than 32 bytes is
        // that RLP itself.
        let hash = root.rlp.as_hash().unwrap_or_else(|| keccak256(root.rlp.as_slice()));
        (hash, root.version)
    }

    /// Commits a subtree at `path` and returns the reference its parent embeds.
    fn commit(&mut self, node: NodeRef, path: Nibbles) -> ChildRef {
        match node {
            NodeRef::Stored(child) => child,
            NodeRef::Mem(node) => self.commit_mem(*node, path),
        }
    }

    /// Writes an in-memory node (unless unmodified) and returns its reference.
    fn commit_mem(&mut self, node: MemNode, path: Nibbles) -> ChildRef {
        // Unmodified nodes are never written again (their children are unmodified too).
        if let Some(origin) = node.origin {
            return origin;
        }
        let encoded = match node.kind {
            Kind::Leaf { key, value } => encode_leaf(&key, &value),
            Kind::Extension { key, child } => {
                let child = self.commit(*child, path.join(&key));
                encode_extension(&key, &child)
            }
            Kind::Branch { children } => {
                let mut refs: [Option<ChildRef>; 16] = Default::default();
                for ((nibble, child), slot) in (0u8..).zip(*children).zip(refs.iter_mut()) {
                    if let Some(child) = child {
                        let mut child_path = path;
                        child_path.push(nibble);
                        *slot = Some(self.commit(child, child_path));
                    }
                }
                encode_branch(&refs)
            }
        };
        let reference = RlpNode::from_rlp(encoded.rlp());
        self.cache.put(&path, self.version, &reference, &encoded.bytes);
        self.write(&path, encoded);
        ChildRef { version: self.version, rlp: reference }
    }

    fn write(&mut self, path: &Nibbles, encoded: EncodedNode) {
        self.batch.insert(keys::node_key(self.version, path), encoded.bytes);
        self.written += 1;
    }
}
