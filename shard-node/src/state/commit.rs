//! Encoding and hashing the changed nodes of a staged version, and the version's in-memory trie.
//!
//! Every changed node is encoded, hashed and written at `(version, path)`; every node of the result (changed,
//! loaded or untouched) becomes a node of the version's in-memory trie ([`Resident`]).

use super::{
    keys,
    node::{ChildRef, Kind, MemNode, NodeRef},
    record::{encode_branch, encode_extension, encode_leaf, EncodedNode},
    resident::{Resident, Shape},
};
use alloy_trie::{nodes::RlpNode, Nibbles};
use std::sync::Arc;

/// A node record to insert: sled key and record bytes (converted where they are made, on the hashing threads).
pub(crate) type NodeWrite = (sled::IVec, sled::IVec);

/// Writes every dirty node at `(version, path)`.
pub(crate) struct Committer {
    version: u64,
    /// The records written so far.
    pub(crate) writes: Vec<NodeWrite>,
}

impl Committer {
    /// Commits nodes of `version`.
    pub(crate) fn new(version: u64) -> Self {
        Self { version, writes: Vec::new() }
    }

    /// Commits a subtree at `path` and returns it as resident.
    pub(crate) fn commit(&mut self, node: NodeRef, path: Nibbles) -> Arc<Resident> {
        match node {
            NodeRef::Stored(child) => Resident::unloaded(child),
            NodeRef::Resident(node) => node,
            NodeRef::Mem(node) => self.commit_mem(*node, path),
        }
    }

    /// Writes an in-memory node (unless unmodified: then neither are its children) and returns it as resident.
    fn commit_mem(&mut self, node: MemNode, path: Nibbles) -> Arc<Resident> {
        let MemNode { kind, origin } = node;
        let (shape, reference) = match kind {
            Kind::Leaf { key, value } => {
                let reference = self.reference(origin, &path, || encode_leaf(&key, &value));
                (Shape::Leaf { key }, reference)
            }
            Kind::Extension { key, child } => {
                let child = self.commit(*child, path.join(&key));
                let reference = self.reference(origin, &path, || encode_extension(&key, &child.reference));
                (Shape::Extension { key, child }, reference)
            }
            Kind::Branch { children } => {
                let mut slots = empty_slots();
                for ((nibble, child), slot) in (0u8..).zip(*children).zip(slots.iter_mut()) {
                    *slot = child.map(|child| self.commit(child, child_path(path, nibble)));
                }
                return self.branch(&path, slots, origin);
            }
        };
        Arc::new(Resident { reference, shape })
    }

    /// A branch at `path` over committed children: written unless unmodified (`origin`).
    pub(crate) fn branch(
        &mut self,
        path: &Nibbles,
        children: Box<[Option<Arc<Resident>>; 16]>,
        origin: Option<ChildRef>,
    ) -> Arc<Resident> {
        let reference = self.reference(origin, path, || encode_resident_branch(&children));
        Arc::new(Resident { reference, shape: Shape::Branch { children } })
    }

    /// The node's stored reference if it is unmodified, else the reference of its new record, written.
    fn reference(
        &mut self,
        origin: Option<ChildRef>,
        path: &Nibbles,
        encode: impl FnOnce() -> EncodedNode,
    ) -> ChildRef {
        match origin {
            Some(origin) => origin,
            None => self.write(path, encode()),
        }
    }

    fn write(&mut self, path: &Nibbles, encoded: EncodedNode) -> ChildRef {
        let reference = ChildRef { version: self.version, rlp: RlpNode::from_rlp(encoded.rlp()) };
        self.writes.push((keys::node_key(self.version, path).into(), encoded.bytes.into()));
        reference
    }
}

/// Sixteen empty resident child slots.
pub(crate) fn empty_slots() -> Box<[Option<Arc<Resident>>; 16]> {
    Box::new(std::array::from_fn(|_| None))
}

fn encode_resident_branch(children: &[Option<Arc<Resident>>; 16]) -> EncodedNode {
    encode_branch(children.iter().map(|child| child.as_ref().map(|child| &child.reference)))
}

pub(crate) fn child_path(mut path: Nibbles, nibble: u8) -> Nibbles {
    path.push(nibble);
    path
}
