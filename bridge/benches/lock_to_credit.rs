//! Lock-to-credit latency across shards on loopback (DESIGN.md §10: p50 ≤ 500 ms): two shard nodes, the
//! coordinator (100 ms epochs) and one relayer as real processes; N transfers A → B one after another, each
//! timed from submitting the transfer-out to B reporting the credited collateral (polled every 2 ms).
//! `SHARDEX_BENCH_TRANSFERS` sets N (default 50).

#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use shardex_client::Wallet;
use shardex_core::{pb, Keypair};
use support::*;

fn main() {
    let n: usize = std::env::var("SHARDEX_BENCH_TRANSFERS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(bench(n));
}

async fn bench(n: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node_a = start_shard(&root.join("a"), 1);
    let node_b = start_shard(&root.join("b"), 2);
    let coordinator = start_coordinator(&root.join("coordinator"), &[&node_a, &node_b]);
    let relayer = start_relayer(&root.join("r1"), 0x71, &coordinator.endpoint, &[&node_a, &node_b]);
    let (a, b) = (node_a.client().await, node_b.client().await);
    let alice = Keypair::from_seed([0xa1; 32]);
    let me = alice.account();
    let mut deposit = Wallet::new(deposit_key(), &a).await.unwrap();
    let h = deposit
        .submit(&a, pb::tx_body::Op::Deposit(pb::Deposit { account: me.0.to_vec(), amount_micros: 1_000_000 * USD }))
        .await
        .unwrap();
    a.wait_final(h, Duration::from_secs(20)).await.unwrap();
    let mut wallet = Wallet::new(alice, &a).await.unwrap();

    let mut samples = Vec::with_capacity(n);
    for i in 0..=n {
        let before = collateral(&b, &me).await;
        let start = Instant::now();
        let op = pb::tx_body::Op::TransferOut(pb::TransferOut {
            dst_shard: 2,
            recipient: me.0.to_vec(),
            amount_micros: USD,
            expiry_epoch: 1_000_000,
        });
        wallet.submit(&a, op).await.unwrap();
        loop {
            if collateral(&b, &me).await > before {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "transfer {i} not credited");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if i > 0 {
            samples.push(start.elapsed().as_millis() as u64); // the first one warms connections up
        }
    }
    samples.sort_unstable();
    let q = |p: f64| shardex_bridge::tracker::quantile(&samples, p);
    println!("lock_to_credit: {n} transfers A → B, submit → credit visible on B (client side)");
    println!("  p50 {} ms  p90 {} ms  p99 {} ms  min {} ms  max {} ms", q(0.5), q(0.9), q(0.99), q(0.0), q(1.0));
    let status = bridge_client(&relayer).await.status().await.unwrap();
    println!(
        "  relayer block-time lock→credit: p50 {} ms p99 {} ms over {} messages; submitted {} duplicates {}",
        status.latency_p50_ms, status.latency_p99_ms, status.latency_samples, status.submitted, status.duplicates
    );
}
