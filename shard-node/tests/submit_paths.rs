//! Against a real `shard-node`: batch and stream submission with per-tx results, the batch limit, a
//! bounded mempool, and a block produced early when pending gas fills it.

mod support;

use std::time::{Duration, Instant};

use shardex_client::Wallet;
use shardex_core::{
    pb::{self, tx_body::Op},
    Reason,
};
use support::{account, NodeProcess, TestKeys};
use tonic::Code;

const USD: u64 = 1_000_000;

fn deposit(to: &shardex_core::AccountId, usd: u64) -> Op {
    Op::Deposit(pb::Deposit { account: to.0.to_vec(), amount_micros: usd * USD })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_and_stream_submission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(50);
    let node = NodeProcess::start(dir.path(), &keys.genesis(1, 1), &keys.node, &["--rpc.max-batch-txs", "4"]);
    let client = node.client().await;
    let (_, alice) = account(51);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");

    // A batch with a good tx, a replay of it, garbage, and another good tx: one result each, in order.
    let good1 = authority.sign(&client, deposit(&alice, 1));
    let replay = good1.clone();
    let included = good1.clone();
    let garbage = pb::SignedTx { body: vec![0xde, 0xad], signature: vec![] };
    let good2 = authority.sign(&client, deposit(&alice, 2));
    let results = client.submit_batch(vec![good1, replay, garbage, good2]).await.expect("batch");
    let summary: Vec<(bool, &str)> = results.iter().map(|r| (r.accepted, r.reason.as_str())).collect();
    assert_eq!(summary, vec![(true, ""), (false, "DUPLICATE_TX"), (false, "MALFORMED"), (true, "")]);

    // Over the batch limit: refused whole.
    let five: Vec<_> = (0..5).map(|_| authority.sign(&client, deposit(&alice, 1))).collect();
    let err = client.submit_batch(five).await.expect_err("too large");
    assert_eq!((err.code(), err.reason()), (Some(Code::InvalidArgument), Some(Reason::BatchTooLarge)));

    // A client stream of 10 txs (more than one batch) gets 10 results.
    let txs: Vec<_> = (0..10).map(|_| authority.sign(&client, deposit(&alice, 1))).collect();
    let resp = client.raw().submit_stream(tokio_stream::iter(txs)).await.expect("stream").into_inner();
    assert_eq!(resp.results.len(), 10);
    assert!(resp.results.iter().all(|r| r.accepted), "{:?}", resp.results);

    let last = shardex_core::B256::from_slice(&resp.results[9].tx_hash);
    client.wait_final(last, Duration::from_secs(10)).await.expect("final");
    let rec = client.account(&alice).await.expect("q").expect("alice");
    assert_eq!(rec.collateral_micros, 13 * USD as i64);

    // Once included, the same tx is still a duplicate (found by the nonce it used), and says where it is.
    let results = client.submit_batch(vec![included]).await.expect("batch");
    assert_eq!((results[0].accepted, results[0].reason.as_str()), (false, "DUPLICATE_TX"));
    assert!(results[0].message.contains("already included, in block"), "{}", results[0].message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_is_produced_early_when_pending_gas_fills_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(60);
    // Blocks every 60 s (and open that long) unless pending gas fills one (a deposit costs 2,600 gas).
    let args = ["--block.interval-ms", "60000", "--block.max-open-ms", "60000", "--block.gas-limit", "3000"];
    let node = NodeProcess::start(dir.path(), &keys.genesis(1, 1), &keys.node, &args);
    let client = node.client().await;
    let (_, alice) = account(61);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");

    let started = Instant::now();
    let first = authority.submit(&client, deposit(&alice, 1)).await.expect("first");
    authority.submit(&client, deposit(&alice, 1)).await.expect("second fills the block");
    let inc = client.wait_final(first, Duration::from_secs(10)).await.expect("final early");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(inc.height, 1);
    // The second did not fit: it waits for the next block.
    assert_eq!(client.status().await.expect("status").mempool_txs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mempool_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(70);
    // Blocks every 60 s and open that long: on a slow machine an overdue block would be sealed early.
    let args = ["--block.interval-ms", "60000", "--block.max-open-ms", "60000", "--mempool.max-txs", "3"];
    let node = NodeProcess::start(dir.path(), &keys.genesis(1, 1), &keys.node, &args);
    let client = node.client().await;
    let (_, alice) = account(71);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    for _ in 0..3 {
        authority.submit(&client, deposit(&alice, 1)).await.expect("fits");
    }
    let err = authority.submit(&client, deposit(&alice, 1)).await.expect_err("mempool full");
    assert_eq!((err.code(), err.reason()), (Some(Code::ResourceExhausted), Some(Reason::MempoolFull)));
    assert_eq!(client.status().await.expect("status").mempool_txs, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tx_larger_than_a_block_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(80);
    let node = NodeProcess::start(dir.path(), &keys.genesis(1, 1), &keys.node, &["--block.gas-limit", "2000"]);
    let client = node.client().await;
    let (_, alice) = account(81);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    let err = authority.submit(&client, deposit(&alice, 1)).await.expect_err("needs 2,600 gas");
    assert_eq!((err.code(), err.reason()), (Some(Code::FailedPrecondition), Some(Reason::GasLimit)));
    assert_eq!(client.status().await.expect("status").mempool_txs, 0);
}
