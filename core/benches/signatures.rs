//! ed25519 verification throughput: strict single verification (admission path) vs. batch verification,
//! over domain-separated tx messages of realistic size.
#![allow(missing_docs)] // criterion macros generate undocumented items

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shardex_core::{
    signing::{self, Domain},
    AccountId, ChainId, Keypair, ShardId,
};

const CHAIN: ChainId = ChainId(1);
const SHARD: ShardId = ShardId(1);

fn items(n: usize) -> Vec<(AccountId, [u8; 64], Vec<u8>)> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let k = Keypair::from_seed(seed);
            let payload = vec![i as u8; 120];
            let sig = signing::sign(&k, Domain::Tx, CHAIN, SHARD, &payload);
            (k.account(), sig, signing::signing_message(Domain::Tx, CHAIN, SHARD, &payload))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = items(256);
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_strict/single", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (signer, sig, msg) = &data[i % data.len()];
            i += 1;
            let payload = &msg[msg.len() - 120..];
            signing::verify(signer, sig, Domain::Tx, CHAIN, SHARD, payload).expect("valid")
        })
    });
    for n in [64usize, 256] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_batch/{n}"), |b| {
            b.iter_batched(
                || data[..n].to_vec(),
                |batch| signing::verify_batch(&batch).expect("valid"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
