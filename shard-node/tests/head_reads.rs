//! Queries of committed state (`NodeHandle::read_head`) take neither the shard lock nor the commit gate, so
//! they never wait behind admission or a block's fsync; and while blocks commit beside them, a read never
//! mixes two heads: a head-state value always equals the value proven at the height it reports.

mod support;

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use shardex_core::{
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, DEFAULT_MAX_TX_BYTES},
    AccountId, Keypair,
};
use shardex_shard_node::sequencer::Consensus;
use support::inproc::Net;

const BLOCKS: u64 = 300;

#[test]
fn head_reads_take_no_lock_and_never_mix_two_heads() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let net = Net::new(&oracle, &deposit, |_| {});
    let domain = net.domain;
    let clock = net.clock_ms;
    let (node, mut consensus, _dir) = net.into_node();
    let alice = AccountId([0xa1; 32]);

    // A read while the shard lock is held (admission, sealing) does not wait for it.
    {
        let held = node.shard();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::sync::Arc::clone(&node);
        std::thread::spawn(move || {
            let _ = tx.send(reader.read_head(|v| v.account(&alice, None, false)).map(|r| r.is_ok()));
        });
        let answered = rx.recv_timeout(Duration::from_secs(5));
        assert!(matches!(answered, Ok(Ok(true))), "a read waited for the shard lock: {answered:?}");
        drop(held);
    }

    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut reads = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let (flat, proven) = node
                            .read_head(|v| {
                                let height = v.head().height;
                                let flat = v.account(&alice, None, false)?.expect("head read");
                                let proven = v.account(&alice, Some(height), true)?.expect("retained");
                                Ok((flat, proven))
                            })
                            .expect("read");
                        assert_eq!(flat.height, proven.height);
                        assert_eq!(flat.state_root, proven.state_root);
                        assert_eq!(flat.record, proven.record, "a head read mixed two heads at {}", flat.height);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        // The writer: one deposit per block, committed as the producer does (write under the gate, then
        // the head moves and the new view is published).
        for nonce in 0..BLOCKS {
            let op = Op::Deposit(pb::Deposit { account: alice.0.to_vec(), amount_micros: 1_000_000 });
            let bytes = prost::Message::encode_to_vec(&sign_tx(&deposit, domain, nonce, op));
            let tx = decode_and_verify(&bytes, domain, DEFAULT_MAX_TX_BYTES).expect("valid");
            let proposal = {
                let mut shard = node.shard();
                shard.admit(tx, clock + nonce).expect("no node error").expect("admitted");
                shard.propose().expect("propose").expect("a block")
            };
            let certificate = consensus.decide(&proposal).expect("decide");
            node.commit(proposal, certificate).expect("commit");
        }
        done.store(true, Ordering::Relaxed);
        let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        assert!(reads > BLOCKS, "readers ran beside the writer ({reads} reads)");
    });
    let last = node.read_head(|v| v.account(&alice, None, false)).expect("read").expect("head");
    assert_eq!(last.height, BLOCKS);
    assert_eq!(last.record.expect("alice").collateral_micros, BLOCKS as i64 * 1_000_000);
}
