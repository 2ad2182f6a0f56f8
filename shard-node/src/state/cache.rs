//! Cache of the upper trie levels as read from sled.
//!
//! Staging starts from the in-memory trie of the previous version (`resident.rs`); this cache
//! serves the reads that still go to sled: proofs and snapshot export, which walk from the root,
//! and the loads of staging after a restart. It is filled by those reads. Entries are keyed by
//! position and hold the newest node seen there; a hit requires the parent's exact reference
//! (version and RLP reference), so a stale or never-applied node can never be served in place of
//! the stored one.

use super::node::ChildRef;
use alloy_trie::{nodes::RlpNode, Nibbles};
use std::{collections::HashMap, sync::Mutex};

/// Deepest cached position: depth 3 is at most 1 + 16 + 256 + 4096 nodes (a few MB).
pub(crate) const CACHE_MAX_DEPTH: usize = 3;

/// The newest node seen at each position of the top [`CACHE_MAX_DEPTH`] levels.
#[derive(Default)]
pub(crate) struct NodeCache {
    entries: Mutex<HashMap<Nibbles, Entry>>,
}

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.lock().map(|entries| entries.len()).ok();
        f.debug_struct("NodeCache").field("entries", &len).finish()
    }
}

struct Entry {
    version: u64,
    reference: RlpNode,
    record: Vec<u8>,
}

impl NodeCache {
    /// Whether nodes at `path` are cached.
    pub(crate) fn covers(path: &Nibbles) -> bool {
        path.len() <= CACHE_MAX_DEPTH
    }

    /// The stored record of the node `child` refers to at `path`, if cached.
    pub(crate) fn get(&self, child: &ChildRef, path: &Nibbles) -> Option<Vec<u8>> {
        if !Self::covers(path) {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(path)?;
        (entry.version == child.version && entry.reference == child.rlp).then(|| entry.record.clone())
    }

    /// Remembers the record of a node written or verified at `(version, path)`, unless a newer
    /// version is cached there already.
    pub(crate) fn put(&self, path: &Nibbles, version: u64, reference: &RlpNode, record: &[u8]) {
        if !Self::covers(path) {
            return;
        }
        // A poisoned lock only costs cache hits.
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.get(path).is_some_and(|entry| entry.version > version) {
            return;
        }
        entries.insert(*path, Entry { version, reference: reference.clone(), record: record.to_vec() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    #[test]
    fn hit_needs_exact_version_and_reference() {
        let cache = NodeCache::default();
        let path = Nibbles::from_nibbles([0x1, 0x2]);
        let reference = RlpNode::word_rlp(&B256::repeat_byte(1));
        cache.put(&path, 5, &reference, b"record");
        let hit = ChildRef { version: 5, rlp: reference.clone() };
        assert_eq!(cache.get(&hit, &path).as_deref(), Some(&b"record"[..]));
        assert_eq!(cache.get(&ChildRef { version: 4, rlp: reference.clone() }, &path), None);
        let other = ChildRef { version: 5, rlp: RlpNode::word_rlp(&B256::repeat_byte(2)) };
        assert_eq!(cache.get(&other, &path), None);
        // Older versions never replace newer ones; deep positions are not cached.
        cache.put(&path, 3, &reference, b"old");
        assert_eq!(cache.get(&hit, &path).as_deref(), Some(&b"record"[..]));
        let deep = Nibbles::from_nibbles([0x1; CACHE_MAX_DEPTH + 1]);
        cache.put(&deep, 5, &reference, b"deep");
        assert_eq!(cache.get(&hit, &deep), None);
    }
}
