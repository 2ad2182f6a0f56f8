//! Shard-to-epoch lag on real processes: two `shard-node`s (20 ms blocks) and a `coordinator` at 250 ms
//! epochs on loopback, a deposit every 100 ms alternating between the shards. For every block, the time
//! from its finalized header reaching a client (`StreamHeaders`) to the first epoch committing that height
//! reaching the same client (`StreamEpochs`). Prints p50/p90/p99/max.
//!
//! `cargo bench -p shardex-coordinator --bench lag` (`LAG_SECS`, default 60; `EPOCH_MS`, default 250).

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use prost::Message;
use shardex_client::Wallet;
use shardex_core::{block::decode_header, coordpb, pb, Keypair};
use support::{CoordinatorProcess, ShardKeys, ShardProcess};

type Seen = Arc<Mutex<BTreeMap<(u32, u64), Instant>>>;
/// Epoch arrival times with the height each commits per shard.
type Committed = Arc<Mutex<Vec<(Instant, BTreeMap<u32, u64>)>>>;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    // `cargo bench` passes `--bench`; any filter argument other than ours means another bench was asked for.
    if std::env::args().skip(1).any(|a| !a.starts_with("--") && a != "lag") {
        return;
    }
    let secs: u64 = std::env::var("LAG_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let epoch_ms: u64 = std::env::var("EPOCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(secs, epoch_ms));
}

async fn run(secs: u64, epoch_ms: u64) {
    let bins = support::bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = [ShardKeys::new(10), ShardKeys::new(20)];
    let shards: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            ShardProcess::start(&bins, &dir.path().join(format!("s{i}")), &k.genesis(9, i as u32 + 1), &k.node)
        })
        .collect();
    let follow: Vec<_> = shards.iter().map(|s| (s.endpoint.clone(), s.genesis_path())).collect();
    let interval = epoch_ms.to_string();
    let coordinator = CoordinatorProcess::start(
        &bins,
        &dir.path().join("coord"),
        Keypair::from_seed([7; 32]),
        &follow,
        &["--epoch.interval-ms", &interval, "--log.filter", "warn"],
    );
    let coord = coordinator.client().await;

    // Header arrival per (shard, height), as a client following the shard sees it.
    let headers: Seen = Arc::default();
    let mut clients = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        let c = s.client().await;
        let mut stream =
            c.raw().stream_headers(pb::StreamHeadersRequest { from_height: 1 }).await.expect("stream").into_inner();
        let seen = headers.clone();
        let shard = i as u32 + 1;
        tokio::spawn(async move {
            while let Some(Ok(fh)) = stream.next().await {
                if let Ok(d) = decode_header(&fh) {
                    seen.lock().expect("lock").insert((shard, d.header.height), Instant::now());
                }
            }
        });
        clients.push(c);
    }
    // Epoch arrival, and the heights each epoch commits.
    let committed: Committed = Arc::default();
    let mut epochs = coord.stream_epochs(0).await.expect("epochs");
    let (c2, coord2) = (committed.clone(), coord.clone());
    tokio::spawn(async move {
        while let Some(Ok(e)) = epochs.next().await {
            let at = Instant::now();
            let Ok(rec) = coordpb::EpochRecord::decode(e.record.as_slice()) else { continue };
            let mut heights = BTreeMap::new();
            for shard in [1u32, 2] {
                if let Ok(inc) = coord2.inclusion(rec.number, shard).await {
                    heights.insert(shard, inc.entry.map_or(0, |e| e.height));
                }
            }
            c2.lock().expect("lock").push((at, heights));
        }
    });

    let mut wallets = Vec::new();
    for (k, c) in keys.iter().zip(&clients) {
        wallets.push(Wallet::new(k.deposit.clone(), c).await.expect("wallet"));
    }
    let to = Keypair::from_seed([0xa1; 32]).account();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut i = 0usize;
    while Instant::now() < end {
        let s = i % 2;
        let _ = wallets[s].deposit(&clients[s], &to, 1_000_000).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(epoch_ms * 4)).await;

    let headers = headers.lock().expect("lock").clone();
    let committed = committed.lock().expect("lock").clone();
    let mut lags: Vec<Duration> = Vec::new();
    for ((shard, height), seen_at) in &headers {
        let first = committed.iter().find(|(_, hs)| hs.get(shard).is_some_and(|h| h >= height));
        if let Some((at, _)) = first {
            lags.push(at.saturating_duration_since(*seen_at));
        }
    }
    lags.sort();
    let status = coord.status().await.expect("status");
    println!(
        "shard-to-epoch lag: {} blocks over {secs} s, epochs every {epoch_ms} ms ({} epochs): \
         p50 {:?} p90 {:?} p99 {:?} max {:?}; uncommitted at end {}",
        lags.len(),
        committed.len(),
        pct(&lags, 0.5),
        pct(&lags, 0.9),
        pct(&lags, 0.99),
        lags.last().copied().unwrap_or_default(),
        headers.len() - lags.len(),
    );
    for s in status.shards {
        println!(
            "  shard {}: accepted {} reported {} lag {} blocks / {} ms, rejected {}",
            s.shard_id, s.accepted_height, s.reported_height, s.lag_blocks, s.lag_ms, s.rejected_headers
        );
    }
    drop(coordinator);
}
