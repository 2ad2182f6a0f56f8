//! Two shard nodes, the coordinator and two relayers as real processes: collateral goes A → B, is used as
//! margin on B, comes back B → A; a relayer is SIGKILLed and a shard node killed and restarted mid-flight;
//! a message whose destination is down past its expiry is refunded. At the end every message is either
//! delivered and acked or refunded (never both), and each shard conserves money by its ledger totals.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    bridge::verify_message_response,
    order::limit_order,
    pb::{self, tx_body::Op},
    validators::ValidatorSet,
    AccountId, Keypair, Reason, ShardId,
};
use shardex_proto::bridge::v1 as bpb;
use support::*;

const PRICE: u64 = 100_000_000_000;
const WAIT: Duration = Duration::from_secs(20);

fn transfer(dst: u32, to: &AccountId, amount_micros: u64, expiry_epoch: u64) -> Op {
    Op::TransferOut(pb::TransferOut { dst_shard: dst, recipient: to.0.to_vec(), amount_micros, expiry_epoch })
}

/// Submits and waits until final.
async fn run(w: &mut Wallet, c: &ShardClient, op: Op) -> pb::tx_status::Included {
    let hash = w.submit(c, op).await.unwrap();
    c.wait_final(hash, WAIT).await.unwrap()
}

async fn wait_closed(src: &ShardClient, dst: &ShardClient, seq: u64, want: pb::MessageState, what: &str) -> u64 {
    wait_for(WAIT, what, || async {
        match message_state(src, dst, seq).await {
            Some((state, delivered)) if state == want => Some(delivered),
            _ => None,
        }
    })
    .await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relayers_carry_collateral_both_ways_through_faults_and_refund_expired_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node_a = start_shard(&root.join("a"), 1);
    let mut node_b = start_shard(&root.join("b"), 2);
    let coordinator = start_coordinator(&root.join("coordinator"), &[&node_a, &node_b]);
    let coord = coordinator_client(&coordinator).await;
    let mut r1 = start_relayer(&root.join("r1"), 0x71, &coordinator.endpoint, &[&node_a, &node_b]);
    let r2 = start_relayer(&root.join("r2"), 0x72, &coordinator.endpoint, &[&node_a, &node_b]);
    let (a, mut b) = (node_a.client().await, node_b.client().await);

    let alice = Keypair::from_seed([0xa1; 32]);
    let me = alice.account();
    let mut deposit = Wallet::new(deposit_key(), &a).await.unwrap();
    run(&mut deposit, &a, Op::Deposit(pb::Deposit { account: me.0.to_vec(), amount_micros: 10_000 * USD })).await;
    let mut on_a = Wallet::new(alice.clone(), &a).await.unwrap();
    let mut on_b = Wallet::new(alice.clone(), &b).await.unwrap();
    let mut oracle = Wallet::new(oracle_key(), &b).await.unwrap();
    run(&mut oracle, &b, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: now_ms() })).await;
    let order = || Op::PlaceOrder(limit_order(pb::Side::Buy, PRICE - 10 * 100_000, 50, pb::TimeInForce::Gtc));
    let refused = on_b.submit(&b, order()).await.expect_err("no collateral on B yet");
    assert_eq!(refused.reason(), Some(Reason::InsufficientMargin), "{refused}");

    // Relayer 2's lifecycle stream, collected in the background from here on.
    let mut lifecycle = bridge_client(&r2).await.stream_lifecycle().await.unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let collector = tokio::spawn(async move {
        while let Some(Ok(event)) = tokio_stream::StreamExt::next(&mut lifecycle).await {
            if seen_tx.send(event).is_err() {
                return;
            }
        }
    });

    // 1. A → B, credited on B by the relayers, then used as margin there.
    let far = 1_000_000;
    run(&mut on_a, &a, transfer(2, &me, 1_000 * USD, far)).await;
    wait_for(WAIT, "credit on B", || async { (collateral(&b, &me).await == 1_000 * USD as i64).then_some(()) }).await;
    run(&mut oracle, &b, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: now_ms() })).await;
    run(&mut on_b, &b, order()).await;
    wait_closed(&a, &b, 1, pb::MessageState::Acked, "ack of A→B #1").await;

    // The stream reported A→B #1 through every stage, in order, up to acked.
    let mut stages = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !stages.contains(&(bpb::Stage::Acked as i32)) {
        let event = tokio::time::timeout_at(deadline, seen_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the lifecycle stream did not report the ack of A→B #1: {stages:?}"))
            .expect("stream open");
        let m = event.message.unwrap_or_default();
        if (m.src_shard, m.dst_shard, m.seq) == (1, 2, 1) {
            stages.push(m.stage);
        }
    }
    let mut sorted = stages.clone();
    sorted.sort_unstable();
    assert_eq!(stages, sorted, "stages arrive in lifecycle order: {stages:?}");
    assert!(stages.contains(&(bpb::Stage::Delivered as i32)), "{stages:?}");
    collector.abort();

    // 2. B → A.
    run(&mut on_b, &b, Op::CancelAll(pb::CancelAll {})).await;
    run(&mut on_b, &b, transfer(1, &me, 400 * USD, far)).await;
    wait_closed(&b, &a, 1, pb::MessageState::Acked, "ack of B→A #1").await;
    assert_eq!(collateral(&a, &me).await, 9_400 * USD as i64);

    // 3. A relayer is SIGKILLed mid-flight: the other completes; the restarted one resumes without harm.
    run(&mut on_a, &a, transfer(2, &me, 100 * USD, far)).await;
    r1.kill9();
    wait_closed(&a, &b, 2, pb::MessageState::Acked, "ack of A→B #2 with one relayer").await;
    r1.restart();

    // 4. The destination node is killed mid-flight and restarted on its port.
    run(&mut on_a, &a, transfer(2, &me, 50 * USD, far)).await;
    node_b.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    node_b.restart();
    b = shard_client(&node_b).await;
    wait_closed(&a, &b, 3, pb::MessageState::Acked, "ack of A→B #3 across a restart of B").await;

    // 5. The destination is down while the expiry passes: refunded once it is back.
    node_b.kill9();
    let latest = |c: shardex_client::CoordinatorClient| async move {
        let e = c.latest_epoch().await.unwrap();
        prost::Message::decode(e.record.as_slice()).map(|r: shardex_core::coordpb::EpochRecord| r.number).unwrap()
    };
    let expiry = latest(coord.clone()).await + 5;
    run(&mut on_a, &a, transfer(2, &me, 25 * USD, expiry)).await;
    wait_for(WAIT, "the expiry to pass at the coordinator", || async {
        (latest(coord.clone()).await > expiry + 2).then_some(())
    })
    .await;
    node_b.restart();
    b = shard_client(&node_b).await;
    let delivered = wait_closed(&a, &b, 4, pb::MessageState::Refunded, "refund of A→B #4").await;
    assert_eq!(delivered, 0, "a refunded message was never delivered");

    // The CLI: a transfer by `shardex transfer`, followed with `shardex message` on the nodes and via a relayer.
    let key_file = root.join("alice.key");
    std::fs::write(&key_file, alice.secret_hex()).unwrap();
    let key_arg = key_file.to_str().unwrap();
    // A destination the transfer could never reach is refused before anything is signed.
    for (to, why) in [("9", "does not list shard 9 as a bridge peer"), ("1", "another shard"), ("0", "another shard")] {
        let args = ["--node", &node_a.endpoint, "transfer", "--key", key_arg, "--to-shard", to, "--amount", "1"];
        let err = shardex_fails(&args);
        assert!(err.contains(why), "--to-shard {to}: {err}");
    }
    let out = shardex(&[
        "--node",
        &node_a.endpoint,
        "transfer",
        "--key",
        key_arg,
        "--to-shard",
        "2",
        "--amount",
        "1",
        "--coordinator",
        &coordinator.endpoint,
    ]);
    assert!(out.contains("message 1/2/5 locked: 1.000000 USD"), "{out}");
    wait_closed(&a, &b, 5, pb::MessageState::Acked, "ack of the CLI transfer").await;
    let out = shardex(&["--node", &node_a.endpoint, "message", "1", "2", "5", "--peer-node", &node_b.endpoint]);
    assert!(out.contains("escrow Acked") && out.contains("delivered at"), "{out}");
    let r2_endpoint = r2.endpoint.clone();
    let out = shardex(&["message", "1", "2", "4", "--bridge", &r2_endpoint]);
    assert!(out.contains("STAGE_REFUNDED") && out.contains("not delivered"), "{out}");

    // Every message ended exactly one way.
    for (src, dst, seq) in [(&a, &b, 1), (&a, &b, 2), (&a, &b, 3), (&a, &b, 5), (&b, &a, 1)] {
        let (state, delivered) = message_state(src, dst, seq).await.unwrap();
        assert_eq!(state, pb::MessageState::Acked);
        assert!(delivered > 0, "acked message {seq} has a receipt");
    }
    assert_eq!(collateral(&a, &me).await, (10_000 - 1_000 + 400 - 100 - 50 - 1) as i64 * USD as i64);
    assert_eq!(collateral(&b, &me).await, (1_000 - 400 + 100 + 50 + 1) as i64 * USD as i64);

    // Conservation per shard, and across shards every bridged-out amount was bridged in.
    let relayers = [Keypair::from_seed([0x71; 32]).account(), Keypair::from_seed([0x72; 32]).account()];
    let accounts = [vec![me, deposit_key().account(), oracle_key().account()], relayers.to_vec()].concat();
    let ta = check_conservation(&a, &accounts).await;
    let tb = check_conservation(&b, &accounts).await;
    assert_eq!((ta.escrowed_micros, tb.escrowed_micros), (0, 0));
    assert_eq!(ta.bridged_out_micros + tb.bridged_out_micros, ta.bridged_in_micros + tb.bridged_in_micros);
    assert_eq!(ta.bridged_out_micros, 1_151 * USD);

    // The Bridge service: the lifecycle with both shards' proofs, and the relayer's counters.
    let bridge = bridge_client(&r2).await;
    let m = bridge.message(1, 2, 1).await.unwrap();
    let life = m.lifecycle.unwrap();
    assert_eq!(life.stage, shardex_proto::bridge::v1::Stage::Acked as i32);
    let validators = |s: u8| ValidatorSet::equal(&[Keypair::from_seed([s; 32]).account()]).expect("valid key");
    verify_message_response(
        &m.source.unwrap(),
        shardex_core::ChainId(CHAIN),
        ShardId(1),
        ShardId(2),
        1,
        false,
        Some(&validators(1)),
    )
    .unwrap();
    verify_message_response(
        &m.destination.unwrap(),
        shardex_core::ChainId(CHAIN),
        ShardId(2),
        ShardId(1),
        1,
        true,
        Some(&validators(2)),
    )
    .unwrap();
    let s2 = bridge.status().await.unwrap();
    let s1 = wait_for(WAIT, "restarted relayer to catch up", || async {
        let s = bridge_client(&r1).await.status().await.ok()?;
        (s.backlog.iter().all(|c| c.count == 0) && s.shards.iter().all(|c| c.connected)).then_some(s)
    })
    .await;
    assert_eq!(s2.shards.len(), 2);
    assert!(s1.submitted + s2.submitted > 0);
    eprintln!(
        "relayer 2: delivered {} acked {} refunded {} submitted {} duplicates {} p50 {} ms p99 {} ms errors {:?}",
        s2.delivered,
        s2.acked,
        s2.refunded,
        s2.submitted,
        s2.duplicates,
        s2.latency_p50_ms,
        s2.latency_p99_ms,
        s2.errors
    );
}
