//! The state engine: versioned MPT roots, the flat head table, and staging of a version's writes.

use super::{
    cache::NodeCache,
    error::{Result, StateError},
    keys,
    node::NodeRef,
    record::RootRecord,
    resident::{Heads, Resident},
    store::NodeReader,
    wide::{stage_serial, stage_wide, Staged},
};
use alloy_primitives::{keccak256, B256};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// Versions kept provable behind the head by default.
pub const DEFAULT_RETENTION_VERSIONS: u64 = 256;

/// Fewest changes in a version for the root's subtries to be updated and hashed on several threads (below it,
/// handing work to the pool costs more than it saves).
pub const PARALLEL_HASH_MIN_CHANGES: usize = 256;

/// Writes of a version per flush of sled's garbage collector before the next version (see
/// [`StateEngine::reclaim_sled_garbage`]).
const GARBAGE_WRITES_PER_FLUSH: usize = 32;

/// Most versions pinned at once ([`StateEngine::pin`]): peers cannot hold back pruning for more snapshots.
pub const MAX_PINNED_VERSIONS: usize = 4;

/// A versioned Ethereum Merkle-Patricia trie over 32-byte (pre-hashed) keys, stored in the
/// node's sled tree under the prefixes of [`keys`]. The engine never writes by itself: every
/// write is staged into a caller-provided [`sled::Batch`], applied atomically by the caller.
#[derive(Clone, Debug)]
pub struct StateEngine {
    pub(super) tree: sled::Tree,
    pub(super) retention_versions: u64,
    /// Upper trie levels as stored, for reads (proofs, snapshots, loads), shared by clones.
    cache: Arc<NodeCache>,
    /// The in-memory tries of the latest staged versions, shared by clones.
    heads: Arc<Heads>,
    /// Threads that hash a wide version's subtries.
    hash_threads: usize,
    /// Records the last staged version wrote, shared by clones (see [`StateEngine::reclaim_sled_garbage`]).
    last_writes: Arc<AtomicUsize>,
    /// The thread that frees memory off the staging path (sled's garbage, replaced in-memory tries); `None` if
    /// it could not start.
    reclaimer: Option<mpsc::Sender<Chore>>,
    /// Versions held back from pruning until a deadline (snapshots being served), shared by clones.
    pins: Arc<Mutex<BTreeMap<u64, Instant>>>,
}

impl StateEngine {
    /// Opens the engine over `tree` (shared with the node). `retention_versions` is how many
    /// versions behind the head stay provable: `head - retention_versions ..= head`.
    pub fn open(tree: sled::Tree, retention_versions: u64) -> Result<Self> {
        let hash_threads = rayon::current_num_threads().clamp(1, 16);
        let engine = Self {
            tree,
            retention_versions,
            cache: Arc::default(),
            heads: Arc::default(),
            hash_threads,
            last_writes: Arc::default(),
            reclaimer: spawn_reclaimer(),
            pins: Arc::default(),
        };
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
        self.reclaim_sled_garbage();
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

        // Start from the in-memory trie of the latest version when it is exactly the stored one.
        let previous = latest.map_or(RootRecord::EMPTY, |(_, record)| record);
        let resident = latest.and_then(|(latest, record)| self.heads.get(latest, &record));
        let base = || match &resident {
            Some(root) => Some(NodeRef::Resident(Arc::clone(root))),
            None => NodeReader::root_ref(&previous).map(NodeRef::Stored),
        };
        let wide = match base() {
            Some(root) if changes.len() >= PARALLEL_HASH_MIN_CHANGES && self.hash_threads > 1 => {
                stage_wide(reader, version, root, changes, self.hash_threads)?
            }
            _ => None,
        };
        let staged = match wide {
            Some(staged) => staged,
            None => stage_serial(reader, version, base(), changes)?,
        };

        // Nothing below can fail: from here on every write goes into the batch.
        let Staged { root, writes, stale, changed: leaf_writes, loaded } = staged;
        let written = writes.len();
        for (key, node) in writes {
            batch.insert(key, node);
        }
        let record = match root {
            None => RootRecord::EMPTY,
            Some(root) => {
                let rlp = &root.reference.rlp;
                // The root hash is always `keccak256(rlp(root))`; a reference shorter than 32 bytes is that RLP.
                let hash = rlp.as_hash().unwrap_or_else(|| keccak256(rlp.as_slice()));
                let record = RootRecord { hash, node_version: Some(root.reference.version) };
                let replaced = self.heads.insert(version, record, root);
                if !replaced.is_empty() {
                    self.free_off_thread(Chore::DropTries(replaced));
                }
                record
            }
        };
        for (chunk, entries) in (0u32..).zip(stale.chunks(keys::STALE_CHUNK_ENTRIES)) {
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
        let total = written.saturating_add(leaf_writes.len()).saturating_add(stale.len());
        self.count_writes(total);
        tracing::debug!(
            target: "shard::state",
            version,
            root = %record.hash,
            changed_keys = leaf_writes.len(),
            nodes_loaded = loaded,
            nodes_written = written,
            nodes_stale = stale.len(),
            "state version staged"
        );
        Ok(record.hash)
    }

    /// Has sled's deferred frees for the previous version's writes run, off the staging thread.
    ///
    /// sled frees the pages its writes replace through crossbeam-epoch's global collector, which does a little
    /// of that work on every 128th pin of a thread. Staging from the in-memory trie reads sled far less than
    /// it writes, so the garbage of each applied batch would pile up faster than it is freed (measured: memory
    /// grew by about 100 MB/s without bound when staging 10,000 keys a version). A reclaimer thread flushes
    /// the collector in proportion to what the previous version wrote (and pruned) while this one is staged.
    fn reclaim_sled_garbage(&self) {
        let writes = self.last_writes.swap(0, Ordering::Relaxed);
        if writes > 0 {
            self.free_off_thread(Chore::FlushSledGarbage(writes));
        }
    }

    /// Hands `chore` to the reclaimer thread, or does it here if there is none.
    fn free_off_thread(&self, chore: Chore) {
        let unsent = match &self.reclaimer {
            Some(reclaimer) => reclaimer.send(chore).err().map(|mpsc::SendError(chore)| chore),
            None => Some(chore),
        };
        if let Some(chore) = unsent {
            chore.run();
        }
    }

    /// Adds `writes` to what the next [`StateEngine::reclaim_sled_garbage`] frees after.
    pub(super) fn count_writes(&self, writes: usize) {
        self.last_writes.fetch_add(writes, Ordering::Relaxed);
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

/// Work for the reclaimer thread.
enum Chore {
    /// Flush crossbeam-epoch's global collector about enough times to free the garbage of this many sled writes
    /// (each flush frees up to 8 × 64 deferred objects).
    FlushSledGarbage(usize),
    /// Drop in-memory tries no version stages on any more: freeing the nodes a version replaced (about as many
    /// as it wrote) took about 18 ms at 10,000 touched keys over 10^6 leaves, on the staging path.
    DropTries(Vec<Arc<Resident>>),
}

impl Chore {
    fn run(self) {
        match self {
            Self::FlushSledGarbage(writes) => {
                for _ in 0..writes / GARBAGE_WRITES_PER_FLUSH + 1 {
                    crossbeam_epoch::pin().flush();
                }
            }
            Self::DropTries(tries) => drop(tries),
        }
    }
}

/// Starts the reclaimer thread; it ends when the last clone of the engine is dropped.
fn spawn_reclaimer() -> Option<mpsc::Sender<Chore>> {
    let (sender, receiver) = mpsc::channel::<Chore>();
    let spawned = std::thread::Builder::new().name("shardex-reclaim".into()).spawn(move || {
        for chore in receiver {
            chore.run();
        }
    });
    match spawned {
        Ok(_) => Some(sender),
        Err(err) => {
            tracing::warn!(target: "shard::state", %err, "no reclaimer thread: memory is freed while staging");
            None
        }
    }
}
