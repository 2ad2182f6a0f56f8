//! ed25519 verification throughput under shardex's rule (ZIP-215, small-order keys refused): single
//! verification, one batch on one thread, batches spread over rayon's threads, and whole tx envelopes as a
//! node checks a submitted batch. ed25519-dalek's `verify_strict` (the rule before) is kept for comparison.
//! Messages are domain-separated tx messages of realistic size (120-byte payload).
#![allow(missing_docs)] // criterion macros generate undocumented items

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use shardex_core::{
    pb,
    signing::{self, Domain, Pending},
    tx::{sign_tx, verify_envelopes, TxDomain, DEFAULT_MAX_TX_BYTES},
    AccountId, ChainId, Keypair, ShardId,
};

const CHAIN: ChainId = ChainId(1);
const SHARD: ShardId = ShardId(1);
const PAYLOAD: usize = 120;

fn key(i: usize) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Keypair::from_seed(seed)
}

/// `n` signed payloads by `signers` distinct keys (round robin).
fn items(n: usize, signers: usize) -> Vec<(AccountId, [u8; 64], Vec<u8>)> {
    let keys: Vec<_> = (0..signers).map(key).collect();
    (0..n)
        .map(|i| {
            let k = &keys[i % signers];
            let payload = vec![i as u8; PAYLOAD];
            (k.account(), signing::sign(k, Domain::Tx, CHAIN, SHARD, &payload), payload)
        })
        .collect()
}

fn pending(items: &[(AccountId, [u8; 64], Vec<u8>)]) -> Vec<Pending> {
    items
        .iter()
        .map(|(signer, sig, payload)| Pending::new(signer, sig, Domain::Tx, CHAIN, SHARD, payload).expect("ok"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = items(256, 256);
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let (signer, sig, payload) = &data[i % data.len()];
            i += 1;
            signing::verify(signer, sig, Domain::Tx, CHAIN, SHARD, payload).expect("valid")
        })
    });
    g.bench_function("verify_strict_single", |b| {
        let keys: Vec<_> =
            data.iter().map(|(s, _, _)| ed25519_dalek::VerifyingKey::from_bytes(&s.0).expect("key")).collect();
        let mut i = 0usize;
        b.iter(|| {
            let n = i % data.len();
            i += 1;
            let (_, sig, payload) = &data[n];
            let msg = signing::signing_message(Domain::Tx, CHAIN, SHARD, payload);
            keys[n].verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(sig)).expect("valid")
        })
    });
    for (n, signers) in [(64usize, 64usize), (256, 256), (256, 16)] {
        let data = items(n, signers);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("batch_one_thread/{n}_by_{signers}"), |b| {
            b.iter_batched(
                || data.clone(),
                |batch| assert!(signing::verify_batch(&pending(&batch)).iter().all(Result::is_ok)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("batch_all_threads/{n}_by_{signers}"), |b| {
            b.iter_batched(
                || data.clone(),
                |batch| assert!(signing::verify_each(pending(&batch)).iter().all(Result::is_ok)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    // What a node does with a submitted batch: format checks, hashing and the signatures, over all threads.
    let domain = TxDomain { chain: CHAIN, shard: SHARD };
    let mut g = c.benchmark_group("tx_envelopes");
    for (n, signers) in [(256usize, 256usize), (256, 16)] {
        let keys: Vec<_> = (0..signers).map(key).collect();
        let envelopes: Vec<pb::SignedTx> = (0..n)
            .map(|i| {
                let op = pb::tx_body::Op::Withdraw(pb::Withdraw { amount_micros: i as u64 + 1 });
                sign_tx(&keys[i % signers], domain, i as u64, op)
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_envelopes/{n}_by_{signers}"), |b| {
            b.iter_batched(
                || envelopes.clone(),
                |batch| assert!(verify_envelopes(batch, domain, DEFAULT_MAX_TX_BYTES).iter().all(Result::is_ok)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
