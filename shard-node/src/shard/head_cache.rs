//! Committed head values in memory, so that admission and the re-execution of blocks do not read storage for
//! the keys they touch again and again (accounts, positions, book levels, the market record).
//!
//! Storage reads cost more than their own time: sled serialises every read against a batch being applied, so
//! while a decided block is written (tens of milliseconds for a wide block), admission would wait on it while
//! holding the shard lock. With the keys it touches in memory, admission and the write of the previous block
//! run side by side.
//!
//! The cache holds the values of one head height, which it records. [`HeadCache::apply`] writes each committed
//! block's writes in as the head moves past it (`Shard::finish`, the one place the head moves). A reader says
//! which head it reads at: it is answered only at the cache's height, and what it read from storage is kept
//! only if the cache is still at that height. So a re-execution running off the shard lock, whose head a
//! commit can overtake, never leaves a value of an older head behind. A key a block writes never reads from
//! storage while that block is between its write and the head moving, for admission: it reads the block's own
//! pending writes. Absent keys are cached too (`None`), since a first order of a fresh account reads several.
//!
//! Memory is bounded by [`HeadCache::capacity`] entries in two generations: entries go into the young one;
//! when it is full it becomes the old one and the previous old generation is dropped. A hit in the old
//! generation moves the entry back into the young one, so keys read in every block stay.

use std::collections::HashMap;

use alloy_primitives::B256;
use shardex_vm::Changes;

/// Default bound on cached entries: about 200 MB with the node's record sizes (a key, its value and the
/// map's own overhead come to roughly 150 to 250 bytes).
pub const DEFAULT_HEAD_CACHE_ENTRIES: usize = 1 << 20;

/// Head values by state key (`None`: absent at the head), at most [`Self::capacity`] of them.
#[derive(Debug)]
pub(crate) struct HeadCache {
    /// The head height whose values the cache holds.
    height: u64,
    young: HashMap<B256, Option<Vec<u8>>>,
    old: HashMap<B256, Option<Vec<u8>>>,
    /// Entries per generation.
    generation: usize,
    stats: CacheStats,
}

/// Lookups answered from memory and from storage since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answered from memory.
    pub hits: u64,
    /// Read from storage.
    pub misses: u64,
}

impl HeadCache {
    /// An empty cache of the head at `height`, of at most `capacity` entries; 0 turns it off (every read goes
    /// to storage).
    pub(crate) fn new(capacity: usize, height: u64) -> Self {
        Self {
            height,
            young: HashMap::new(),
            old: HashMap::new(),
            generation: capacity / 2,
            stats: CacheStats::default(),
        }
    }

    /// Most entries held at once.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.generation * 2
    }

    /// Entries held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Hits and misses so far.
    pub(crate) fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The value of `key` at head `height` if cached (`Some(None)`: absent there); None also when the cache
    /// holds another height.
    pub(crate) fn get(&mut self, key: &B256, height: u64) -> Option<Option<Vec<u8>>> {
        if height != self.height {
            self.stats.misses += 1;
            return None;
        }
        if let Some(value) = self.young.get(key) {
            self.stats.hits += 1;
            return Some(value.clone());
        }
        match self.old.remove(key) {
            Some(value) => {
                self.stats.hits += 1;
                self.insert(*key, value.clone());
                Some(value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Remembers `value`, read from storage by a reader at head `height`, for `key`: kept only if the cache is
    /// at that height still.
    pub(crate) fn fill(&mut self, key: B256, value: Option<Vec<u8>>, height: u64) {
        if height == self.height {
            self.insert(key, value);
        }
    }

    /// Moves the cache to head `height`, whose block wrote `writes` (`None` deletes). Every written key is
    /// cached with its new value (the keys a block writes are the ones the next blocks read).
    pub(crate) fn apply(&mut self, writes: &Changes, height: u64) {
        for (key, value) in writes {
            self.insert(*key, value.clone());
        }
        self.height = height;
    }

    /// Drops every entry (kept height): what is left after a panic mid-update cannot be trusted.
    pub(crate) fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    /// A key lives in at most one generation, so the young one never shadows a stale old entry that could
    /// come back.
    fn insert(&mut self, key: B256, value: Option<Vec<u8>>) {
        if self.generation == 0 {
            return;
        }
        self.old.remove(&key);
        if self.young.len() >= self.generation && !self.young.contains_key(&key) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> B256 {
        B256::left_padding_from(&n.to_be_bytes())
    }

    #[test]
    fn writes_replace_filled_values_and_deletions_cache_absence() {
        let mut cache = HeadCache::new(8, 0);
        assert_eq!(cache.get(&key(1), 0), None, "a miss");
        cache.fill(key(1), Some(vec![1]), 0);
        cache.fill(key(2), None, 0);
        assert_eq!(cache.get(&key(1), 0), Some(Some(vec![1])));
        assert_eq!(cache.get(&key(2), 0), Some(None), "absence is cached");
        cache.apply(&[(key(1), None), (key(2), Some(vec![2])), (key(3), Some(vec![3]))].into(), 1);
        assert_eq!(cache.get(&key(1), 1), Some(None), "a deletion caches absence");
        assert_eq!(cache.get(&key(2), 1), Some(Some(vec![2])));
        assert_eq!(cache.get(&key(3), 1), Some(Some(vec![3])), "written keys are cached");
        assert_eq!(cache.stats(), CacheStats { hits: 5, misses: 1 });
        // A reader still at height 0 is not answered, and what it read there is not kept.
        assert_eq!(cache.get(&key(2), 0), None);
        cache.fill(key(4), Some(vec![0]), 0);
        assert_eq!(cache.get(&key(4), 1), None);
    }

    proptest::proptest! {
        /// Against a model of every head: whatever mix of readers at the head, readers a commit overtook (they
        /// read at the previous head and fill late) and committed blocks, the cache never holds more than its
        /// capacity and never answers other than the value at the height asked.
        #[test]
        fn answers_only_head_values_within_capacity(
            capacity in 0usize..12,
            steps in proptest::collection::vec((0u32..24, proptest::option::of(0u8..4), 0u8..4), 1..300),
        ) {
            let mut cache = HeadCache::new(capacity, 0);
            let mut heads: Vec<HashMap<B256, Vec<u8>>> = vec![HashMap::new()];
            for (n, value, action) in steps {
                let k = key(n);
                let height = heads.len() - 1;
                match action {
                    0 | 1 => match cache.get(&k, height as u64) {
                        Some(cached) => proptest::prop_assert_eq!(cached.as_ref(), heads[height].get(&k), "key {}", n),
                        None => cache.fill(k, heads[height].get(&k).cloned(), height as u64),
                    },
                    2 if height > 0 => {
                        proptest::prop_assert!(cache.get(&k, height as u64 - 1).is_none(), "answered an old head");
                        cache.fill(k, heads[height - 1].get(&k).cloned(), height as u64 - 1);
                    }
                    _ => {
                        // A block writing this key and the next one.
                        let writes: Changes = [(k, value.map(|v| vec![v])), (key(n + 1), Some(vec![n as u8]))].into();
                        let mut next = heads[height].clone();
                        for (k, v) in &writes {
                            match v {
                                Some(v) => next.insert(*k, v.clone()),
                                None => next.remove(k),
                            };
                        }
                        heads.push(next);
                        cache.apply(&writes, height as u64 + 1);
                    }
                }
                proptest::prop_assert!(cache.len() <= cache.capacity());
            }
            let height = heads.len() - 1;
            for n in 0..25 {
                if let Some(cached) = cache.get(&key(n), height as u64) {
                    proptest::prop_assert_eq!(cached.as_ref(), heads[height].get(&key(n)), "key {} at the end", n);
                }
            }
        }
    }

    #[test]
    fn an_old_entry_read_again_survives_the_next_rotation() {
        let mut cache = HeadCache::new(4, 0);
        cache.fill(key(1), Some(vec![1]), 0);
        cache.fill(key(2), Some(vec![2]), 0);
        cache.fill(key(3), Some(vec![3]), 0); // 1 and 2 old
        assert_eq!(cache.get(&key(1), 0), Some(Some(vec![1]))); // back to young: {3, 1}
        cache.fill(key(4), Some(vec![4]), 0); // rotates: old {3, 1}, young {4}
        cache.fill(key(5), Some(vec![5]), 0); // young {4, 5}
        cache.fill(key(6), Some(vec![6]), 0); // rotates: old {4, 5}; 1 and 3 are dropped
        assert_eq!(cache.get(&key(1), 0), None);
        assert_eq!(cache.get(&key(5), 0), Some(Some(vec![5])));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let mut cache = HeadCache::new(0, 0);
        cache.fill(key(1), Some(vec![1]), 0);
        cache.apply(&[(key(2), None)].into(), 1);
        assert_eq!((cache.get(&key(1), 1), cache.get(&key(2), 1), cache.len()), (None, None, 0));
    }
}
