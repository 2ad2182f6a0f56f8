//! The state engine: versioned MPT roots, the flat head table, and staging of a version's writes.

use super::{
    cache::NodeCache,
    commit::Committer,
    error::{Result, StateError},
    keys,
    node::NodeRef,
    record::RootRecord,
    store::NodeReader,
    update::Updater,
};
use alloy_primitives::B256;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Versions kept provable behind the head by default.
pub const DEFAULT_RETENTION_VERSIONS: u64 = 256;

/// Most versions pinned at once ([`StateEngine::pin`]): peers cannot hold back pruning for more snapshots.
pub const MAX_PINNED_VERSIONS: usize = 4;

/// A versioned Ethereum Merkle-Patricia trie over 32-byte (pre-hashed) keys, stored in the
/// node's sled tree under the prefixes of [`keys`]. The engine never writes by itself: every
/// write is staged into a caller-provided [`sled::Batch`], applied atomically by the caller.
#[derive(Clone, Debug)]
pub struct StateEngine {
    pub(super) tree: sled::Tree,
    pub(super) retention_versions: u64,
    /// Upper trie levels, shared by clones.
    cache: Arc<NodeCache>,
    /// Versions held back from pruning until a deadline (snapshots being served), shared by clones.
    pins: Arc<Mutex<BTreeMap<u64, Instant>>>,
}

impl StateEngine {
    /// Opens the engine over `tree` (shared with the node). `retention_versions` is how many
    /// versions behind the head stay provable: `head - retention_versions ..= head`.
    pub fn open(tree: sled::Tree, retention_versions: u64) -> Result<Self> {
        let engine = Self { tree, retention_versions, cache: Arc::default(), pins: Arc::default() };
        // Fail early on an unreadable head rather than at the first block.
        let latest = engine.reader().latest_root()?;
        tracing::debug!(target: "shard::state", latest = ?latest.map(|(v, r)| (v, r.hash)), "state engine opened");
        Ok(engine)
    }

    /// How many versions behind the head stay provable.
    pub fn retention_versions(&self) -> u64 {
        self.retention_versions
    }

    /// Keeps `version` whole (not pruned) for `lease` from now, or longer if it was pinned longer already:
    /// a snapshot of it is being served. Only a version still stored is pinned, and at most
    /// [`MAX_PINNED_VERSIONS`] at once: a new one beyond that is refused (false) until a pin expires. Pins
    /// live in memory only; a restart drops them.
    pub fn pin(&self, version: u64, lease: Duration) -> Result<bool> {
        if self.reader().root_record(version)?.is_none() {
            return Ok(false);
        }
        let now = Instant::now();
        let until = now + lease;
        let mut pins = self.pins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pins.retain(|_, deadline| *deadline > now);
        if !pins.contains_key(&version) && pins.len() >= MAX_PINNED_VERSIONS {
            return Ok(false);
        }
        let deadline = pins.entry(version).or_insert(until);
        *deadline = (*deadline).max(until);
        Ok(true)
    }

    /// The oldest version still pinned (expired pins are dropped).
    pub(super) fn oldest_pinned(&self) -> Option<u64> {
        let now = Instant::now();
        let mut pins = self.pins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pins.retain(|_, until| *until > now);
        pins.keys().next().copied()
    }

    /// Latest version whose root is stored (`None` on an empty store).
    pub fn latest_version(&self) -> Result<Option<u64>> {
        Ok(self.reader().latest_root()?.map(|(version, _)| version))
    }

    /// Oldest version whose root is still stored (`None` on an empty store).
    pub fn oldest_version(&self) -> Result<Option<u64>> {
        self.reader().oldest_version()
    }

    /// State root of `version`.
    pub fn root(&self, version: u64) -> Result<B256> {
        match self.reader().root_record(version)? {
            Some(record) => Ok(record.hash),
            None => Err(self.missing_version(version)?),
        }
    }

    /// Value of `key` at the head, from the flat leaf table (no trie walk).
    pub fn get(&self, key: &B256) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(keys::leaf_key(key))?.map(|value| value.to_vec()))
    }

    /// Every `(key, value)` at the head, in key order.
    pub fn iter_leaves(&self) -> impl Iterator<Item = Result<(B256, Vec<u8>)>> {
        self.tree.scan_prefix([keys::LEAF_PREFIX]).map(|entry| {
            let (key, value) = entry?;
            let state_key = keys::decode_leaf_key(&key).ok_or_else(|| StateError::corrupt("bad leaf key", &key))?;
            if value.is_empty() {
                return Err(StateError::corrupt("empty leaf value", &key));
            }
            Ok((state_key, value.to_vec()))
        })
    }

    /// Computes the root of `version` = latest version + `changes` (`None` deletes), staging
    /// every write (nodes, stale index, flat table, root record) in `batch`.
    ///
    /// `version` must be latest + 1, or 0 on an empty store, and the batch of the previous
    /// version must have been applied. Setting an unchanged value or deleting an absent key is a
    /// no-op. On error nothing has been staged.
    pub fn stage(
        &self,
        version: u64,
        changes: &BTreeMap<B256, Option<Vec<u8>>>,
        batch: &mut sled::Batch,
    ) -> Result<B256> {
        let reader = self.reader();
        let latest = reader.latest_root()?;
        let expected = match latest {
            None => Some(0),
            Some((latest, _)) => latest.checked_add(1),
        };
        if expected != Some(version) {
            let expected = expected.unwrap_or(u64::MAX);
            return Err(StateError::NonSequentialVersion { expected, got: version });
        }
        let empty = changes.iter().find(|(_, v)| v.as_ref().is_some_and(Vec::is_empty));
        if let Some((key, _)) = empty {
            return Err(StateError::EmptyValue { key: *key });
        }

        let previous = latest.map_or(RootRecord::EMPTY, |(_, record)| record);
        let mut root = NodeReader::root_ref(&previous).map(NodeRef::Stored);
        let mut updater = Updater::new(reader);
        let mut leaf_writes = Vec::with_capacity(changes.len());
        for (key, change) in changes {
            let (new_root, changed) = updater.apply(root.take(), key, change.as_deref())?;
            root = new_root;
            if changed {
                leaf_writes.push((key, change));
            }
        }

        // Nothing below can fail: from here on every write goes into the batch.
        let mut committer = Committer::new(version, batch, &self.cache);
        let record = match root {
            None => RootRecord::EMPTY,
            Some(root) => {
                let (hash, node_version) = committer.commit_root(root);
                RootRecord { hash, node_version: Some(node_version) }
            }
        };
        let written = committer.written;
        for (chunk, entries) in (0u32..).zip(updater.stale.chunks(keys::STALE_CHUNK_ENTRIES)) {
            let mut record = Vec::with_capacity(entries.len() * 26);
            for (node_version, path) in entries {
                keys::push_stale_entry(&mut record, *node_version, path);
            }
            batch.insert(&keys::stale_key(version, chunk)[..], record);
        }
        for (key, value) in &leaf_writes {
            match value {
                Some(value) => batch.insert(&keys::leaf_key(key)[..], value.as_slice()),
                None => batch.remove(&keys::leaf_key(key)[..]),
            }
        }
        batch.insert(&keys::root_key(version)[..], record.encode());
        tracing::debug!(
            target: "shard::state",
            version,
            root = %record.hash,
            changed_keys = leaf_writes.len(),
            nodes_loaded = updater.loaded,
            nodes_written = written,
            nodes_stale = updater.stale.len(),
            "state version staged"
        );
        Ok(record.hash)
    }

    pub(super) fn reader(&self) -> NodeReader<'_> {
        NodeReader::new(&self.tree, &self.cache)
    }

    /// The error for a version without a root record: pruned, or never committed.
    pub(super) fn missing_version(&self, version: u64) -> Result<StateError> {
        let reader = self.reader();
        let latest = reader.latest_root()?.map(|(v, _)| v);
        let oldest = reader.oldest_version()?;
        Ok(match (oldest, latest) {
            (Some(oldest), Some(_)) if version < oldest => StateError::VersionPruned { version, oldest },
            (Some(_), Some(latest)) if version <= latest => {
                StateError::corrupt("root record missing inside the retention window", keys::root_key(version))
            }
            _ => StateError::VersionNotFound { version, latest },
        })
    }
}
