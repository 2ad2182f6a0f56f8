//! State-root cost per block: stage a block touching `T` keys (updates plus a few inserts) on a
//! store of `N` leaves. The timed part is `StateEngine::stage` (load the touched paths, apply the
//! changes, encode and hash the changed nodes, fill the batch); applying the batch is reported
//! separately on stderr.
//!
//! Sizes: `SHARDEX_BENCH_LEAVES` (default `10000,100000,1000000`) and `SHARDEX_BENCH_TOUCHED`
//! (default `100,1000,10000`), comma-separated.
//!
//! Group `snapshot`: one whole snapshot of the head version of a store of `N` leaves, exported as
//! trie-node chunks of 16,384 and imported (verified, staged, applied, finished) into an empty store on
//! disk; the node count and RLP bytes are reported on stderr. In process: no network.

mod support;

/// The node's allocator (see `main.rs`), so the figures are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use shardex_shard_node::state::{SnapshotImport, StateEngine, MAX_SNAPSHOT_CHUNK_NODES};
use std::time::{Duration, Instant};
use support::{env_sizes, Store};

fn state_root(c: &mut Criterion) {
    let leaves = env_sizes("SHARDEX_BENCH_LEAVES", &[10_000, 100_000, 1_000_000]);
    let touched = env_sizes("SHARDEX_BENCH_TOUCHED", &[100, 1_000, 10_000]);
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
