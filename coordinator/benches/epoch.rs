//! Epoch build time (global trie from scratch + ed25519 signature) and inclusion-proof generation for
//! 1 to 1024 shards. `cargo bench -p shardex-coordinator --bench epoch`

#![allow(missing_docs)] // criterion macros generate undocumented items

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shardex_coordinator::epoch::{build_epoch, EpochLink};
use shardex_core::{coordpb, global::build_global_trie, ChainId, Keypair, ShardId, B256};

fn keccak_entry_seed(shard: u32, height: u64) -> B256 {
    alloy_primitives::keccak256([shard.to_be_bytes().as_slice(), &height.to_be_bytes()].concat())
}

fn entries(n: u32, height: u64) -> BTreeMap<ShardId, coordpb::ShardEntry> {
    (1..=n)
        .map(|s| {
            let e = coordpb::ShardEntry {
                shard_id: s,
                height,
                block_hash: keccak_entry_seed(s, height).to_vec(),
                state_root: keccak_entry_seed(s, height + 1).to_vec(),
            };
            (ShardId(s), e)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = Keypair::from_seed([1; 32]);
    let prev = EpochLink { number: 41, hash: B256::repeat_byte(7), time_ms: 1 };
    let mut g = c.benchmark_group("epoch_build");
    for n in [1u32, 16, 256, 1024] {
        let before = entries(n, 10);
        let now = entries(n, 11);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| build_epoch(&key, ChainId(1), Some(&prev), &before, &now, 2))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("inclusion_proof");
    for n in [1u32, 16, 256, 1024] {
        let list: Vec<coordpb::ShardEntry> = entries(n, 11).into_values().collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| build_global_trie(&list, Some(ShardId(n / 2 + 1))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
