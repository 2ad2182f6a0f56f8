//! The trie of the latest staged versions, kept in memory between versions.
//!
//! Staging a version needs every node on each touched path. Reading them back from sled costs far more than
//! hashing them, so the engine keeps the trie it computed for each recently staged version as immutable nodes
//! shared between versions (a persistent trie: a version copies only its changed paths). Staging version `v`
//! starts from the in-memory trie of `v - 1` when that trie is exactly the stored latest root (same hash and
//! root-node version), so a proposal that was staged but never applied can never be built upon. Otherwise
//! (after a restart, or on a store written by snapshot sync) it starts from the stored root and loads nodes on
//! demand, as they are reached; each version keeps what it loaded.
//!
//! A resident node knows its reference (version and RLP reference, exactly as stored) and its shape. Leaves
//! keep their key but not their value: updating a leaf in place needs only the new value, and the rare moves
//! (a split on insert, a collapse on delete) read the leaf back from sled. Memory grows with the part of the
//! trie that has been touched since the node started, up to the whole trie's branches and leaf keys (about
//! 180 bytes a leaf, see `docs/benchmarks.md`).

use super::{
    node::{empty_children, ChildRef, Kind, NodeRef},
    record::RootRecord,
};
use alloy_trie::Nibbles;
use std::sync::{Arc, Mutex};

/// Most in-memory tries kept at once: the last applied version's and a few staged proposals for the next.
const MAX_HEADS: usize = 8;

/// An immutable node of an in-memory trie.
#[derive(Debug)]
pub(crate) struct Resident {
    /// The node's version and RLP reference, exactly as its parent embeds it.
    pub(crate) reference: ChildRef,
    /// What is known of the node without reading storage.
    pub(crate) shape: Shape,
}

/// The part of a node kept in memory.
#[derive(Debug)]
pub(crate) enum Shape {
    /// Never loaded: only its reference is known.
    Unloaded,
    /// A leaf, without its value.
    Leaf {
        /// Key suffix below the node's position.
        key: Nibbles,
    },
    /// An extension and its child.
    Extension {
        /// Shared key segment.
        key: Nibbles,
        /// The branch below.
        child: Arc<Resident>,
    },
    /// A branch and its children.
    Branch {
        /// Child per nibble.
        children: Box<[Option<Arc<Resident>>; 16]>,
    },
}

impl Resident {
    /// A node known only by its reference.
    pub(crate) fn unloaded(reference: ChildRef) -> Arc<Self> {
        Arc::new(Self { reference, shape: Shape::Unloaded })
    }

    /// The node as an unmodified in-memory node with resident children, when its shape is known in full
    /// (branches and extensions; a leaf's value and an unloaded node must be read from storage).
    pub(crate) fn expand(&self) -> Option<Kind> {
        match &self.shape {
            Shape::Unloaded | Shape::Leaf { .. } => None,
            Shape::Extension { key, child } => {
                Some(Kind::Extension { key: *key, child: Box::new(NodeRef::Resident(Arc::clone(child))) })
            }
            Shape::Branch { children } => {
                let mut slots = empty_children();
                for (slot, child) in slots.iter_mut().zip(children.iter()) {
                    *slot = child.as_ref().map(|child| NodeRef::Resident(Arc::clone(child)));
                }
                Some(Kind::Branch { children: slots })
            }
        }
    }
}

/// The in-memory tries of the latest staged versions, each named by its version and root record.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    entries: Mutex<Vec<Head>>,
}

#[derive(Debug)]
struct Head {
    version: u64,
    record: RootRecord,
    root: Arc<Resident>,
}

impl Heads {
    /// The in-memory trie of `version` if one was staged with exactly `record` as its root.
    pub(crate) fn get(&self, version: u64, record: &RootRecord) -> Option<Arc<Resident>> {
        // A poisoned lock only costs the in-memory trie: staging falls back to storage.
        let entries = self.entries.lock().ok()?;
        let head = entries.iter().rev().find(|head| head.version == version && head.record == *record)?;
        Some(Arc::clone(&head.root))
    }

    /// Remembers the trie staged for `version`. Tries older than `version - 1` are dropped: nothing stages
    /// on them any more. Returns the tries no longer kept, for the caller to free where it suits.
    #[must_use = "the replaced tries are returned to be dropped off the staging path"]
    pub(crate) fn insert(&self, version: u64, record: RootRecord, root: Arc<Resident>) -> Vec<Arc<Resident>> {
        let Ok(mut entries) = self.entries.lock() else { return vec![root] };
        let mut replaced = Vec::new();
        let mut kept = Vec::with_capacity(entries.len() + 1);
        for head in entries.drain(..) {
            if head.version.saturating_add(1) >= version && head.record != record {
                kept.push(head);
            } else {
                replaced.push(head.root);
            }
        }
        if kept.len() >= MAX_HEADS {
            replaced.push(kept.remove(0).root);
        }
        kept.push(Head { version, record, root });
        *entries = kept;
        replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use alloy_trie::nodes::RlpNode;

    fn record(byte: u8, version: u64) -> RootRecord {
        RootRecord { hash: B256::repeat_byte(byte), node_version: Some(version) }
    }

    fn root(byte: u8, version: u64) -> Arc<Resident> {
        Resident::unloaded(ChildRef { version, rlp: RlpNode::word_rlp(&B256::repeat_byte(byte)) })
    }

    #[test]
    fn a_head_is_found_only_by_its_exact_root_record() {
        let heads = Heads::default();
        let _ = heads.insert(5, record(1, 5), root(1, 5));
        assert!(heads.get(5, &record(1, 5)).is_some());
        // Same hash, other root-node version (a store rewritten by snapshot sync): not the same trie.
        assert!(heads.get(5, &record(1, 4)).is_none());
        assert!(heads.get(5, &record(2, 5)).is_none());
        assert!(heads.get(4, &record(1, 5)).is_none());
    }

    #[test]
    fn competing_proposals_are_kept_and_old_versions_dropped() {
        let heads = Heads::default();
        let _ = heads.insert(5, record(1, 5), root(1, 5));
        for byte in 2..5 {
            let _ = heads.insert(6, record(byte, 6), root(byte, 6));
        }
        assert!(heads.get(5, &record(1, 5)).is_some(), "the base of the proposals stays");
        assert!((2..5).all(|byte| heads.get(6, &record(byte, 6)).is_some()));
        assert_eq!(heads.insert(7, record(9, 7), root(9, 7)).len(), 1, "version 5's trie is handed back");
        assert!(heads.get(5, &record(1, 5)).is_none(), "two versions behind is dropped");
        assert!(heads.get(6, &record(3, 6)).is_some());
        for byte in 10..30 {
            let _ = heads.insert(7, record(byte, 7), root(byte, 7));
        }
        assert!(heads.entries.lock().expect("lock").len() <= MAX_HEADS);
        assert!(heads.get(7, &record(29, 7)).is_some(), "the newest is kept");
    }
}
