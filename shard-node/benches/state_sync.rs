//! State sync over loopback TCP: `SHARDEX_BENCH_PEERS` (default 1) snapshot servers of `shardex-statesync`
//! serve the head version of a store of N leaves (64-byte values); a client imports it into an empty store
//! on disk through the node's own path (`import_chunks` with `PeerSource`s: chunks of `SHARDEX_BENCH_CHUNK`,
//! default 4096, nodes, each verified against its parent's reference, applied as it comes, the next one
//! prefetched from the next peer while the last is verified), finishes the root record and flushes.
//!
//! Sizes: `SHARDEX_BENCH_LEAVES` (default `10000,100000,1000000`); runs per size: `SHARDEX_BENCH_RUNS`
//! (default 3). Prints, per size, the nodes and bytes received and the wall time of each run.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use shardex_shard_node::{
    shard::sync::{import_chunks, SnapshotSource},
    state::{SnapshotImport, StateEngine},
    statesync::{from_wire, to_wire, PeerSource},
};
use shardex_statesync::{Client, Provider, WireNode, WirePath};
use support::{env_sizes, Store};

/// Serves one store's versions as snapshot chunks.
struct EngineProvider(StateEngine);

impl Provider for EngineProvider {
    fn manifest(&self) -> Result<(u64, Vec<u8>), String> {
        Err("the benchmark asks for chunks only".into())
    }

    fn chunk(&self, height: u64, after: Option<&WirePath>, max: u32) -> Result<Vec<WireNode>, String> {
        let after = after.map(from_wire).transpose()?;
        let nodes = self.0.snapshot_nodes(height, after.as_ref(), max as usize).map_err(|e| e.to_string())?;
        Ok(nodes.iter().map(to_wire).collect())
    }
}

struct Run {
    nodes: u64,
    bytes: u64,
    chunks: u64,
    elapsed: Duration,
}

/// Imports `version` (root `root`) from the servers at `addrs` into a fresh store on disk.
fn sync_once(rt: &tokio::runtime::Runtime, addrs: &[libp2p::Multiaddr], root: B256, version: u64, chunk: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let tree = db.open_tree("shard").expect("tree");
    let start = Instant::now();
    let client = Arc::new(rt.block_on(Client::connect(addrs, Duration::from_secs(10))).expect("connect"));
    let mut import = SnapshotImport::new(version, root);
    let mut sources: Vec<PeerSource> = client
        .peers()
        .iter()
        .map(|p| PeerSource::new(Arc::clone(&client), p.clone(), version, rt.handle().clone()))
        .collect();
    let mut dyns: Vec<&mut dyn SnapshotSource> = sources.iter_mut().map(|s| s as &mut dyn SnapshotSource).collect();
    let (chunks, refused) = import_chunks(&tree, &mut import, &mut dyns, chunk, &mut |_, _, _| {}).expect("import");
    assert!(refused.is_empty(), "{refused:?}");
    let (nodes, _) = import.progress();
    let mut batch = sled::Batch::default();
    import.finish(&mut batch).expect("complete");
    tree.apply_batch(batch).expect("apply");
    db.flush().expect("flush");
    let elapsed = start.elapsed();
    Run { nodes, bytes: sources.iter().map(PeerSource::bytes).sum(), chunks, elapsed }
}

fn main() {
    let leaves = env_sizes("SHARDEX_BENCH_LEAVES", &[10_000, 100_000, 1_000_000]);
    let peers = env_sizes("SHARDEX_BENCH_PEERS", &[1])[0];
    let chunk = env_sizes("SHARDEX_BENCH_CHUNK", &[4096])[0] as usize;
    let runs = env_sizes("SHARDEX_BENCH_RUNS", &[3])[0];
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("| leaves | trie nodes | bytes received | chunks | wall time per run | leaves/s (best) |");
    println!("|---|---|---|---|---|---|");
    for &n in &leaves {
        let store = Store::build(n);
        let version = store.next_version - 1;
        let root = store.engine.root(version).expect("root");
        let servers: Vec<shardex_statesync::Server> = (0..peers)
            .map(|_| {
                let key = libp2p_identity::Keypair::generate_ed25519();
                let provider = Arc::new(EngineProvider(store.engine.clone()));
                let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr");
                rt.block_on(shardex_statesync::serve(listen, key, provider)).expect("serve")
            })
            .collect();
        let addrs: Vec<libp2p::Multiaddr> = servers.iter().map(|s| s.listen_addr.clone()).collect();
        let results: Vec<Run> = (0..runs).map(|_| sync_once(&rt, &addrs, root, version, chunk)).collect();
        let times: Vec<String> = results.iter().map(|r| format!("{:.2} s", r.elapsed.as_secs_f64())).collect();
        let best = results.iter().map(|r| r.elapsed).min().unwrap_or_default();
        let first = &results[0];
        println!(
            "| {n} | {} | {:.1} MB | {} | {} | {:.1}k |",
            first.nodes,
            first.bytes as f64 / 1e6,
            first.chunks,
            times.join(", "),
            n as f64 / best.as_secs_f64().max(1e-9) / 1e3
        );
        eprintln!("({peers} peer(s), chunks of {chunk} nodes)");
        drop(servers);
    }
}
