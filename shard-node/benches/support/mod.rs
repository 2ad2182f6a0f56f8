//! A state store of N leaves on disk, built as the benchmarks need it (shared by the bench targets; not
//! every target uses every part).
#![allow(dead_code)]

use alloy_primitives::{keccak256, B256};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_shard_node::state::StateEngine;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// Keys per version while building the store.
const BUILD_KEYS_PER_VERSION: u64 = 20_000;
/// Retention while benchmarking (pruning runs every version, as in the node).
const RETENTION_VERSIONS: u64 = 16;
/// Size of every value (a typical protobuf record).
const VALUE_BYTES: usize = 64;
/// One in this many touched keys is a new key.
const INSERT_EVERY: usize = 10;

pub type Changes = BTreeMap<B256, Option<Vec<u8>>>;

pub fn state_key(index: u64) -> B256 {
    keccak256(index.to_be_bytes())
}

pub fn value(version: u64, index: u64) -> Vec<u8> {
    let seed = keccak256([version.to_be_bytes(), index.to_be_bytes()].concat());
    seed.iter().cycle().take(VALUE_BYTES).copied().collect()
}

pub fn env_sizes(name: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(name) {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().replace('_', "").parse().unwrap_or_else(|e| panic!("{name}: bad size {s:?}: {e}")))
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// A store on disk and the next version / key index to use.
pub struct Store {
    _dir: tempfile::TempDir,
    pub tree: sled::Tree,
    pub engine: StateEngine,
    pub next_version: u64,
    pub next_index: u64,
    rng: ChaCha8Rng,
    pub apply_total: Duration,
    pub applied: u32,
    /// Untimed pause after each applied version (`SHARDEX_BENCH_IDLE_MS`, default 0): the gap between
    /// blocks in which a node's sled writes its log and the engine's reclaimer frees sled's garbage. With
    /// none, that background work competes with the next `stage` for the cores.
    pub idle: Duration,
}

impl Store {
    pub fn build(leaves: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path()).cache_capacity(4 << 30).open().expect("sled");
        let tree = db.open_tree("shard").expect("tree");
        let engine = StateEngine::open(tree.clone(), RETENTION_VERSIONS).expect("engine");
        let mut store = Self {
            _dir: dir,
            tree,
            engine,
            next_version: 0,
            next_index: 0,
            rng: ChaCha8Rng::seed_from_u64(leaves),
            apply_total: Duration::ZERO,
            applied: 0,
            idle: Duration::ZERO,
        };
        while store.next_index < leaves {
            let end = (store.next_index + BUILD_KEYS_PER_VERSION).min(leaves);
            let changes = (store.next_index..end).map(|i| (state_key(i), Some(value(0, i)))).collect();
            store.next_index = end;
            store.commit(&changes);
        }
        // Empty versions until the build's stale nodes are pruned, so that pruning them does not
        // run during the measurement.
        for _ in 0..=RETENTION_VERSIONS {
            store.commit(&Changes::new());
        }
        store.apply_total = Duration::ZERO;
        store.applied = 0;
        store.idle = Duration::from_millis(env_sizes("SHARDEX_BENCH_IDLE_MS", &[0]).first().copied().unwrap_or(0));
        store
    }

    /// A block touching `touched` keys: updates of random existing keys and some inserts.
    pub fn block(&mut self, touched: u64) -> Changes {
        let version = self.next_version;
        let mut changes = Changes::new();
        while (changes.len() as u64) < touched {
            let index = if changes.len() % INSERT_EVERY == INSERT_EVERY - 1 {
                self.next_index += 1;
                self.next_index - 1
            } else {
                self.rng.gen_range(0..self.next_index)
            };
            changes.insert(state_key(index), Some(value(version, index)));
        }
        changes
    }

    /// Stages, prunes and applies one version; returns the time spent in `stage`.
    pub fn commit(&mut self, changes: &Changes) -> Duration {
        let mut batch = sled::Batch::default();
        let start = Instant::now();
        let root = self.engine.stage(self.next_version, changes, &mut batch).expect("stage");
        let staged = start.elapsed();
        std::hint::black_box(root);
        let start = Instant::now();
        self.engine.stage_prune(self.next_version, &mut batch).expect("prune");
        self.tree.apply_batch(batch).expect("apply");
        self.apply_total += start.elapsed();
        self.applied += 1;
        self.next_version += 1;
        if !self.idle.is_zero() {
            std::thread::sleep(self.idle);
        }
        staged
    }
}
