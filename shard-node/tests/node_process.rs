//! A real `shard-node` process: deposits and withdrawals through the SDK over gRPC, bad inputs that each
//! get a distinct error and change nothing, then SIGKILL and restart with the same height, root,
//! balances and verifying proofs.

mod support;

use std::time::Duration;

use prost::Message;
use shardex_client::{ClientError, ShardClient, Wallet};
use shardex_core::{
    pb::{self, tx_body::Op},
    tx::{sign_body, sign_tx, TxDomain},
    validators::ValidatorSet,
    AccountId, ChainId, Reason, ShardId, B256,
};
use shardex_test_support::{metric_sample, scrape_metrics};
use support::{account, NodeProcess, TestKeys};
use tonic::Code;

const FINAL: Duration = Duration::from_secs(20);
const USD: u64 = 1_000_000;

async fn snapshot(client: &ShardClient, accounts: &[AccountId]) -> (u64, Vec<u8>, Vec<Option<pb::AccountRecord>>) {
    let status = client.status().await.expect("status");
    let mut records = Vec::new();
    for a in accounts {
        records.push(client.account(a).await.expect("account"));
    }
    (status.height, status.state_root, records)
}

fn expect_reject<T: std::fmt::Debug>(r: Result<T, ClientError>, code: Code, reason: Reason) {
    match r {
        Err(e) => {
            assert_eq!(e.code(), Some(code), "wrong code for {reason}: {e}");
            assert_eq!(e.reason(), Some(reason), "wrong reason: {e}");
        }
        Ok(v) => panic!("expected {reason}, got {v:?}"),
    }
}

/// Sends `body` as the request bytes of `ShardService/<method>`, bypassing every typed encoder.
async fn raw_call(endpoint: &str, method: &str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = format!("/shardex.shard.v1.ShardService/{method}").parse().expect("path");
    grpc.unary(tonic::Request::new(body), path, RawCodec).await.map(tonic::Response::into_inner)
}

/// A codec that passes bytes through untouched, so a test can send what no typed client would.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self {
        RawCodec
    }
    fn decoder(&mut self) -> Self {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_withdrawals_bad_inputs_and_kill9_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(10);
    let genesis = keys.genesis(77, 3);
    let args = [
        "--mempool.max-tx-bytes",
        "1024",
        "--metrics.addr",
        "127.0.0.1:0",
        "--log.format",
        "json",
        "--log.filter",
        "info,shard::block=debug",
    ];
    let mut node = NodeProcess::start(dir.path(), &genesis, &keys.node, &args);
    let client = node.client().await;
    assert_eq!(client.domain(), TxDomain { chain: ChainId(77), shard: ShardId(3) });

    let (alice_key, alice) = account(101);
    let (bob_key, bob) = account(102);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");

    // Deposits and withdrawals, each waited on until final.
    for (to, usd) in [(alice, 1_000), (bob, 250), (alice, 500)] {
        let h = authority.deposit(&client, &to, usd * USD).await.expect("deposit admitted");
        client.wait_final(h, FINAL).await.expect("deposit final");
    }
    let mut alice_w = Wallet::new(alice_key.clone(), &client).await.expect("wallet");
    let h = alice_w.withdraw(&client, 300 * USD + 1).await.expect("withdraw admitted");
    let included = client.wait_final(h, FINAL).await.expect("withdraw final");
    assert_eq!(included.receipt.expect("receipt").events.len(), 1);

    let alice_rec = client.account(&alice).await.expect("query").expect("alice exists");
    assert_eq!(alice_rec.collateral_micros, (1_200 * USD - 1) as i64);
    let market = client.market(false).await.expect("market");
    let totals = market.totals.expect("totals");
    assert_eq!((totals.deposited_micros, totals.withdrawn_micros), (1_750 * USD, 300 * USD + 1));

    // A message this shard never sent or received: both records proven absent under a finalized header.
    let validators = ValidatorSet::equal(&[keys.node.account()]).expect("valid key");
    for incoming in [false, true] {
        let m = client.message(ShardId(9), 1, incoming, true, Some(&validators)).await.expect("proven message");
        assert!(m.escrow.is_none() && m.message.is_none() && m.receipt.is_none() && m.ack.is_none());
        assert_eq!(m.proofs.len(), 2);
    }
    assert!(client.message(ShardId(9), 0, false, false, None).await.is_err(), "seq 0 is malformed");

    // Bad inputs: each its own reason, none changes state.
    let before = snapshot(&client, &[alice, bob]).await;
    let domain = client.domain();
    let raw = client.raw();

    let garbage = pb::SignedTx { body: vec![0xff, 0x01, 0x02, 0x03], signature: vec![0; 64] };
    expect_reject(client.submit(garbage).await, Code::InvalidArgument, Reason::Malformed);

    let other_shard = TxDomain { shard: ShardId(4), ..domain };
    let tx = sign_tx(&alice_key, other_shard, 50, Op::Withdraw(pb::Withdraw { amount_micros: 1 }));
    expect_reject(client.submit(tx).await, Code::InvalidArgument, Reason::WrongShard);

    let other_chain = TxDomain { chain: ChainId(78), ..domain };
    let tx = sign_tx(&alice_key, other_chain, 50, Op::Withdraw(pb::Withdraw { amount_micros: 1 }));
    expect_reject(client.submit(tx).await, Code::InvalidArgument, Reason::WrongChain);

    // Right body, signature made for another shard's domain.
    let body = pb::TxBody {
        chain_id: domain.chain.0,
        shard_id: domain.shard.0,
        signer: alice.0.to_vec(),
        nonce: 50,
        op: Some(Op::Withdraw(pb::Withdraw { amount_micros: 1 })),
    };
    expect_reject(
        client.submit(sign_body(&alice_key, other_shard, &body)).await,
        Code::InvalidArgument,
        Reason::BadSignature,
    );
    let mut forged = sign_body(&alice_key, domain, &body);
    forged.signature[10] ^= 0x40;
    expect_reject(client.submit(forged).await, Code::InvalidArgument, Reason::BadSignature);
    // Signed by bob, claiming alice.
    expect_reject(client.submit(sign_body(&bob_key, domain, &body)).await, Code::InvalidArgument, Reason::BadSignature);

    // Reused nonce (alice's withdrawal used nonce 0).
    let reuse = sign_tx(&alice_key, domain, 0, Op::Withdraw(pb::Withdraw { amount_micros: 1 }));
    expect_reject(client.submit(reuse).await, Code::AlreadyExists, Reason::NonceUsed);

    // More than free collateral.
    let too_much = alice_w.sign(&client, Op::Withdraw(pb::Withdraw { amount_micros: 1_200 * USD }));
    expect_reject(client.submit(too_much).await, Code::FailedPrecondition, Reason::InsufficientCollateral);

    // Deposit signed by someone other than the deposit authority.
    let fake_dep =
        sign_tx(&bob_key, domain, 7, Op::Deposit(pb::Deposit { account: bob.0.to_vec(), amount_micros: USD }));
    expect_reject(client.submit(fake_dep).await, Code::PermissionDenied, Reason::Unauthorized);

    // Oversize tx (above mempool.max-tx-bytes) and oversize gRPC message (above rpc.max-message-bytes).
    let big = pb::SignedTx { body: vec![0; 2_000], signature: vec![0; 64] };
    expect_reject(client.submit(big).await, Code::InvalidArgument, Reason::TxTooLarge);
    let huge = pb::SignedTx { body: vec![0; 5 << 20], signature: vec![0; 64] };
    let err = raw.clone().submit_tx(huge).await.expect_err("oversize message refused");
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument),
        "oversize: {err:?}"
    );

    // Malformed query input.
    let bad_query =
        raw.clone().get_account(pb::GetAccountRequest { account: vec![1, 2, 3], prove: false, height: 0 }).await;
    assert_eq!(bad_query.expect_err("short account").code(), Code::InvalidArgument);

    // A rejected tx is reported as such by hash.
    let rejected = sign_tx(&alice_key, domain, 0, Op::Withdraw(pb::Withdraw { amount_micros: 2 }));
    let rejected_hash = shardex_core::hash::tx_hash(&rejected.body);
    let _ = client.submit(rejected).await;
    let st = client.tx_status(rejected_hash).await.expect("status");
    assert!(matches!(st.status, Some(pb::tx_status::Status::Rejected(ref r)) if r.reason == "NONCE_USED"), "{st:?}");

    // Bytes that are no message at all, on the write path and on a query: the caller's fault, never the
    // node's `Internal`, and the node keeps serving.
    for (method, bytes) in [
        ("SubmitTx", vec![0xff, 0xff, 0xff]),
        ("SubmitTx", vec![0x0a, 0x10, 0x01]), // a field claiming 16 bytes, 1 present
        ("GetAccount", vec![0x0b]),           // wire type 3 (start group) is not prost's
    ] {
        let status = raw_call(node.endpoint(), method, bytes.clone()).await.expect_err("garbage refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{method} {bytes:?}: {status:?}");
        let reason = status.metadata().get(shardex_proto::REASON_METADATA_KEY).and_then(|v| v.to_str().ok());
        assert_eq!(reason, Some("MALFORMED"), "{method} {bytes:?}: {status:?}");
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(snapshot(&client, &[alice, bob]).await, before, "a bad input changed state");

    // The withdrawal after the refused one still works (its nonce was skipped, not reused).
    let h = alice_w.withdraw(&client, 100 * USD).await.expect("withdraw");
    let last = client.wait_final(h, FINAL).await.expect("final");

    // Its metrics count what happened: admissions, refusals by reason, block work, the head and the store.
    let metrics =
        scrape_until(&node.dir.join("data"), |m| metric_sample(m, "shardex_head_height") >= Some(last.height as f64))
            .await;
    assert!(metric_sample(&metrics, "shardex_txs_admitted_total") >= Some(5.0), "{metrics}");
    for reason in ["MALFORMED", "WRONG_SHARD"] {
        let refused = metric_sample(&metrics, &format!("shardex_txs_refused_total{{reason=\"{reason}\"}}"));
        assert!(refused >= Some(1.0), "{reason} refusals not counted:\n{metrics}");
    }
    for histogram in [
        "shardex_block_build_seconds",
        "shardex_block_stage_seconds",
        "shardex_block_write_seconds",
        "shardex_block_flush_seconds",
    ] {
        assert!(
            metric_sample(&metrics, &format!("{histogram}_count")) >= Some(last.height as f64),
            "{histogram}:\n{metrics}"
        );
    }
    assert!(metric_sample(&metrics, "shardex_store_bytes") > Some(0.0), "{metrics}");

    // With --log.format json every log line is one JSON object (stdout's ready line aside).
    let log = node.log();
    let events: Vec<&str> = log.lines().filter(|l| !l.starts_with("shard-node ready")).collect();
    assert!(events.iter().all(|l| l.starts_with("{\"timestamp\":") && l.ends_with('}')), "{log}");
    assert!(
        events.iter().any(|l| l.contains("\"message\":\"shard opened\"") && l.contains("\"level\":\"INFO\"")),
        "{log}"
    );
    // Block production runs in a `block` span naming its height: its events carry it.
    let produced = format!("\"span\":{{\"height\":{},\"name\":\"block\"}}", last.height);
    assert!(events.iter().any(|l| l.contains("block produced") && l.contains(&produced)), "no {produced}:\n{log}");

    // SIGKILL and restart: same height, root, balances; proofs verify against the signed header.
    let before_kill = snapshot(&client, &[alice, bob]).await;
    assert_eq!(before_kill.0, last.height);
    node.kill9();
    node.restart();
    let client = node.client().await;
    let after = snapshot(&client, &[alice, bob]).await;
    assert_eq!(after, before_kill, "restart lost or changed state");
    let alice_after = after.2[0].as_ref().expect("alice");
    assert_eq!(alice_after.collateral_micros, (1_100 * USD - 1) as i64);

    for who in [alice, bob, AccountId([0xee; 32])] {
        let v = client.account_proven(&who, 0, Some(&genesis.validators)).await.expect("proof verifies");
        assert!(v.header_checked);
        assert_eq!(B256::from_slice(&after.1), v.state_root);
        assert_eq!(v.record, client.account(&who).await.expect("q"));
    }
    // A proof at an older retained height verifies too, with the older balance.
    let old = client.account_proven(&alice, included.height, Some(&genesis.validators)).await.expect("old proof");
    assert_eq!(old.record.expect("alice then").collateral_micros, (1_200 * USD - 1) as i64);

    // A proof checked against the wrong validator set fails.
    let wrong_set = ValidatorSet::equal(&[shardex_core::Keypair::from_seed([9; 32]).account()]).expect("valid key");
    assert!(matches!(client.account_proven(&alice, 0, Some(&wrong_set)).await, Err(ClientError::Proof(_))));

    // Nonces survive the restart: replay is still refused, the wallet continues.
    let replay = sign_tx(&alice_key, domain, 0, Op::Withdraw(pb::Withdraw { amount_micros: 1 }));
    expect_reject(client.submit(replay).await, Code::AlreadyExists, Reason::NonceUsed);
    let mut alice_w = Wallet::new(alice_key, &client).await.expect("wallet after restart");
    let h = alice_w.withdraw(&client, USD).await.expect("withdraw after restart");
    let inc = client.wait_final(h, FINAL).await.expect("final after restart");
    assert_eq!(inc.height, after.0 + 1);

    // Blocks are served with signatures that verify, and the tx is in the block.
    let block = client.block(inc.height).await.expect("block");
    let fh = block.header.expect("header");
    let d =
        shardex_core::block::verify_finalized(&fh, domain.chain, domain.shard, &genesis.validators).expect("signed");
    assert_eq!(d.header.tx_count, 1);
    assert_eq!(block.txs[0].encode_to_vec().len(), block.txs[0].encoded_len());
}

/// Scrapes the node whose data directory is `data` (its `metrics.addr`) until `done` holds, for up to 10 s.
async fn scrape_until(data: &std::path::Path, done: impl Fn(&str) -> bool) -> String {
    let addr = std::fs::read_to_string(data.join("metrics.addr")).expect("metrics.addr").trim().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = addr.clone();
        let page = tokio::task::spawn_blocking(move || scrape_metrics(&scrape)).await.expect("scrape");
        if done(&page) || std::time::Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The head's height and state root as `shard-node --replay-check` prints them, after asserting it passed.
fn replayed_head(node: &shardex_test_support::ShardNodeProcess) -> (u64, String) {
    let (ok, out, err) = node.replay_check();
    assert!(ok, "replay check failed:\n{out}\n{err}");
    let field = |name: &str| {
        let at = out.find(name).unwrap_or_else(|| panic!("no {name:?} in {out}"));
        out[at + name.len()..].split_whitespace().next().expect("value").to_owned()
    };
    (field(" head ").parse().expect("height"), field(" root "))
}

/// A node that dies between a block's write and its flush (`SHARDEX_CRASH_BEFORE_FLUSH`) reopens to a head
/// whose state is what a replay of its stored blocks from genesis computes, and goes on; the replay check
/// itself refuses a store whose state values were changed behind the trie's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_flush_reopens_to_the_replayed_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = TestKeys::new(40);
    let genesis = keys.genesis(78, 4);
    let mut node = NodeProcess::start(dir.path(), &genesis, &keys.node, &[]);
    let client = node.client().await;
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    let (_, alice) = account(141);
    for _ in 0..3 {
        let h = authority.deposit(&client, &alice, 10 * USD).await.expect("deposit");
        client.wait_final(h, FINAL).await.expect("final");
    }
    let status = client.status().await.expect("status");
    node.kill9();
    let (height, root) = replayed_head(&node);
    assert_eq!((height, root), (status.height, format!("{}", B256::from_slice(&status.state_root))));

    // Armed to abort before flushing the 2nd block it writes: deposits, one block each, until it dies.
    node.set_env(&[("SHARDEX_CRASH_BEFORE_FLUSH", "2")]);
    node.restart();
    let client = node.client().await;
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    for _ in 0..2 {
        let h = authority.deposit(&client, &alice, USD).await.expect("deposit");
        let _ = client.wait_final(h, Duration::from_secs(5)).await; // the second never answers
    }
    let exit = node.wait_exit(Duration::from_secs(20));
    assert!(!exit.success(), "the node aborts: {exit}");
    assert!(node.log().contains("before its flush"), "{}", node.log());

    // Reopens to a replayed head at the first block or at the torn one, whichever reached the disk.
    let (after, _) = replayed_head(&node);
    assert!((height + 1..=height + 2).contains(&after), "head {after} after crashing past {height}");
    node.set_env(&[]);
    node.restart();
    let client = node.client().await;
    assert_eq!(client.status().await.expect("status").height, after);
    let mut authority = Wallet::new(keys.deposit.clone(), &client).await.expect("wallet");
    let h = authority.deposit(&client, &alice, USD).await.expect("deposit after the crash");
    assert_eq!(client.wait_final(h, FINAL).await.expect("final").height, after + 1);
    node.kill9();
    replayed_head(&node);

    // A state value changed on disk without its trie: the check names it, and passes once it is back.
    let db = shardex_service::storage::open_db(&node.dir.join("data").join("db")).expect("db");
    let tree = db.open_tree("shard").expect("tree");
    let (key, value) =
        tree.scan_prefix([shardex_shard_node::state::keys::LEAF_PREFIX]).next().expect("a leaf").expect("read");
    let mut forged = value.to_vec();
    forged[0] ^= 1;
    tree.insert(&key, forged).expect("forge");
    db.flush().expect("flush");
    drop((tree, db));
    let (ok, out, err) = node.replay_check();
    assert!(!ok && err.contains("hash to"), "a forged value passed:\n{out}\n{err}");
    let db = shardex_service::storage::open_db(&node.dir.join("data").join("db")).expect("db");
    db.open_tree("shard").expect("tree").insert(&key, value).expect("restore");
    db.flush().expect("flush");
    drop(db);
    replayed_head(&node);
}
