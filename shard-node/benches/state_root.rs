//! State-root cost per block: stage a block touching `T` keys (updates plus a few inserts) on a
//! store of `N` leaves. The timed part is `StateEngine::stage` (load the touched paths, apply the
//! changes, encode and hash the changed nodes, fill the batch); applying the batch is reported
//! separately on stderr.
//!
//! Sizes: `SHARDEX_BENCH_LEAVES` (default `10000,100000,1000000`) and `SHARDEX_BENCH_TOUCHED`
//! (default `100,1000`), comma-separated.
//!
//! Group `snapshot`: one whole snapshot of the head version of a store of `N` leaves, exported as
//! trie-node chunks of 16,384 and imported (verified, staged, applied, finished) into an empty store on
//! disk; the node count and RLP bytes are reported on stderr. In process: no network.

use alloy_primitives::{keccak256, B256};
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_shard_node::state::{SnapshotImport, StateEngine, MAX_SNAPSHOT_CHUNK_NODES};
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

type Changes = BTreeMap<B256, Option<Vec<u8>>>;

fn state_key(index: u64) -> B256 {
    keccak256(index.to_be_bytes())
}

fn value(version: u64, index: u64) -> Vec<u8> {
    let seed = keccak256([version.to_be_bytes(), index.to_be_bytes()].concat());
    seed.iter().cycle().take(VALUE_BYTES).copied().collect()
}

fn env_sizes(name: &str, default: &[u64]) -> Vec<u64> {
    match std::env::var(name) {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().replace('_', "").parse().unwrap_or_else(|e| panic!("{name}: bad size {s:?}: {e}")))
            .collect(),
        Err(_) => default.to_vec(),
    }
}

/// A store on disk and the next version / key index to use.
struct Store {
    _dir: tempfile::TempDir,
    tree: sled::Tree,
    engine: StateEngine,
    next_version: u64,
    next_index: u64,
    rng: ChaCha8Rng,
    apply_total: Duration,
    applied: u32,
}

impl Store {
    fn build(leaves: u64) -> Self {
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
        store
    }

    /// A block touching `touched` keys: updates of random existing keys and some inserts.
    fn block(&mut self, touched: u64) -> Changes {
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
    fn commit(&mut self, changes: &Changes) -> Duration {
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
        staged
    }
}

fn state_root(c: &mut Criterion) {
    let leaves = env_sizes("SHARDEX_BENCH_LEAVES", &[10_000, 100_000, 1_000_000]);
    let touched = env_sizes("SHARDEX_BENCH_TOUCHED", &[100, 1_000]);
    let mut group = c.benchmark_group("state_root");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for &n in &leaves {
        let start = Instant::now();
        let mut store = Store::build(n);
        eprintln!("built store of {n} leaves in {:.1?} ({} versions)", start.elapsed(), store.next_version);
        for &t in &touched {
            group.throughput(Throughput::Elements(t));
            group.bench_function(BenchmarkId::from_parameter(format!("leaves={n}/touched={t}")), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let changes = store.block(t);
                            store.commit(&changes)
                        })
                        .sum()
                })
            });
            if store.applied > 0 {
                eprintln!(
                    "leaves={n}/touched={t}: prune + apply_batch (untimed above) averaged {:.2?}",
                    store.apply_total / store.applied
                );
            }
            store.apply_total = Duration::ZERO;
            store.applied = 0;
        }
    }
    group.finish();
}

/// Exports the head of `src` and imports it into a fresh store; returns (nodes, RLP bytes).
fn snapshot_once(src: &StateEngine, version: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let tree = db.open_tree("shard").expect("tree");
    let mut import = SnapshotImport::new(version, src.root(version).expect("root"));
    let (mut after, mut nodes, mut bytes) = (None, 0u64, 0u64);
    loop {
        let chunk = src.snapshot_nodes(version, after.as_ref(), MAX_SNAPSHOT_CHUNK_NODES).expect("export");
        if chunk.is_empty() {
            break;
        }
        nodes += chunk.len() as u64;
        bytes += chunk.iter().map(|n| n.rlp.len() as u64).sum::<u64>();
        let mut batch = sled::Batch::default();
        after = import.apply(&chunk, &mut batch).expect("verified chunk");
        tree.apply_batch(batch).expect("apply");
    }
    let mut batch = sled::Batch::default();
    import.finish(&mut batch).expect("complete");
    tree.apply_batch(batch).expect("apply");
    db.flush().expect("flush");
    (nodes, bytes)
}

fn snapshot(c: &mut Criterion) {
    let leaves = env_sizes("SHARDEX_BENCH_LEAVES", &[10_000, 100_000, 1_000_000]);
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for &n in &leaves {
        let store = Store::build(n);
        let version = store.next_version - 1;
        let start = Instant::now();
        let (nodes, bytes) = snapshot_once(&store.engine, version);
        eprintln!("snapshot of {n} leaves: {nodes} nodes, {bytes} bytes of RLP; first run {:.2?}", start.elapsed());
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::from_parameter(format!("leaves={n}")), |b| {
            b.iter(|| snapshot_once(&store.engine, version))
        });
    }
    group.finish();
}

/// `criterion_group!` generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::state_root, super::snapshot);
}
criterion_main!(group::benches);
