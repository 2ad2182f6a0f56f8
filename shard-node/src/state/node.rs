//! In-memory trie nodes used while a version is being staged.
//!
//! Only the nodes along changed paths are loaded; everything else stays a [`ChildRef`]
//! (the child's version and its RLP reference), which is all a parent needs to re-encode itself.

use super::resident::Resident;
use alloy_trie::{nodes::RlpNode, Nibbles};
use std::sync::Arc;

/// A stored child as seen by its parent: the version it was written at and its RLP reference
/// (`rlp(keccak(rlp(node)))`, or the node's own RLP when that is shorter than 32 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChildRef {
    /// Version the child node was written at (its position is implied by the parent's path).
    pub(crate) version: u64,
    /// The child's RLP reference, exactly as embedded in the parent's RLP.
    pub(crate) rlp: RlpNode,
}

/// A child slot: either still in storage or loaded (and possibly modified) in memory.
#[derive(Debug)]
pub(crate) enum NodeRef {
    /// Not loaded; unchanged by this version.
    Stored(ChildRef),
    /// Loaded or newly created.
    Mem(Box<MemNode>),
    /// Unchanged by this version and held by the in-memory trie of the previous one.
    Resident(Arc<Resident>),
}

/// A node in memory.
#[derive(Debug)]
pub(crate) struct MemNode {
    /// The node's content.
    pub(crate) kind: Kind,
    /// Where the node was loaded from, while it is unmodified and still at that position.
    /// `None` means the node is new or changed and must be written at the staged version.
    pub(crate) origin: Option<ChildRef>,
}

/// The three MPT node shapes (keys are always 64 nibbles, so branches never hold values).
#[derive(Debug)]
pub(crate) enum Kind {
    /// The remaining key nibbles and the value.
    Leaf {
        /// Key suffix below this node's position.
        key: Nibbles,
        /// Non-empty value.
        value: Vec<u8>,
    },
    /// A shared key segment followed by a branch.
    Extension {
        /// Non-empty shared segment.
        key: Nibbles,
        /// The branch below the segment.
        child: Box<NodeRef>,
    },
    /// Sixteen child slots, at least two of them occupied.
    Branch {
        /// Child per nibble.
        children: Box<[Option<NodeRef>; 16]>,
    },
}

impl NodeRef {
    /// A new (dirty) node.
    pub(crate) fn new(kind: Kind) -> Self {
        Self::Mem(Box::new(MemNode { kind, origin: None }))
    }

    /// A new leaf.
    pub(crate) fn leaf(key: Nibbles, value: Vec<u8>) -> Self {
        Self::new(Kind::Leaf { key, value })
    }

    /// A new extension over `child`.
    pub(crate) fn extension(key: Nibbles, child: NodeRef) -> Self {
        Self::new(Kind::Extension { key, child: Box::new(child) })
    }

    /// A new branch.
    pub(crate) fn branch(children: Box<[Option<NodeRef>; 16]>) -> Self {
        Self::new(Kind::Branch { children })
    }

    /// An extension with `key` over `child`, or `child` itself when `key` is empty.
    pub(crate) fn extension_or_child(key: Nibbles, child: NodeRef) -> Self {
        if key.is_empty() {
            child
        } else {
            Self::extension(key, child)
        }
    }
}

/// Sixteen empty child slots.
pub(crate) fn empty_children() -> Box<[Option<NodeRef>; 16]> {
    Box::new(std::array::from_fn(|_| None))
}
