//! The cross-shard bridge in process: two shards with the same coordinator key in genesis, each listing the
//! other's validator set as a peer, a pure in-test coordinator building real signed epochs over their
//! finalized headers, and relayer steps with real proofs and certified headers. Transfers both ways,
//! delivery, margin use of bridged collateral, acks, an expired message refunded, and every forgery or replay
//! refused with its reason and no state change: among them what the coordinator key alone can sign (a
//! made-up entry) and headers not certified by a quorum of the other shard's validators. Money is conserved
//! on each shard after every step and across both at the end.

mod support;

use prost::Message;
use shardex_core::{
    block::{decode_header, encode_header},
    bridge,
    coordpb::ShardEntry,
    genesis::{Peer, DEFAULT_BRIDGE_RETENTION_BLOCKS},
    global::entry_from_header,
    order::limit_order,
    pb::{self, tx_body::Op},
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, Reason, ShardId,
};
use support::{
    bridge::{
        ack_op, check_conservation, coordinator_key, deliver_op, made_up_state, peer, refund_op, resigned, totals,
        transfer_op, Epoch, TestCoordinator,
    },
    inproc::Net,
};

const USD: u64 = 1_000_000;
const PRICE: u64 = 100_000_000_000;
const A: ShardId = ShardId(1);
const B: ShardId = ShardId(2);

struct World {
    a: Net,
    b: Net,
    coordinator: TestCoordinator,
    oracle: Keypair,
    deposit: Keypair,
    relayer: Keypair,
    alice: Keypair,
    accounts: Vec<AccountId>,
}

/// A shard run by `validators`, trusting `coordinator`, bridging with `peers`.
fn net(
    shard: ShardId,
    oracle: &Keypair,
    deposit: &Keypair,
    coordinator: Option<AccountId>,
    validators: &[Keypair],
    peers: Vec<Peer>,
) -> Net {
    net_retaining(shard, oracle, deposit, coordinator, validators, peers, DEFAULT_BRIDGE_RETENTION_BLOCKS)
}

/// As [`net`], keeping settled bridge records `retention` blocks.
fn net_retaining(
    shard: ShardId,
    oracle: &Keypair,
    deposit: &Keypair,
    coordinator: Option<AccountId>,
    validators: &[Keypair],
    peers: Vec<Peer>,
    retention: u64,
) -> Net {
    Net::with_validators(oracle, deposit, validators, |g| {
        g.bridge_retention_blocks = retention;
        g.shard_id = shard;
        g.coordinator = coordinator;
        g.peers = peers;
        g.market.trading.oracle_max_age_ms = u64::MAX / 4;
    })
}

/// Shards A and B with one validator each, peers of each other.
fn world() -> World {
    world_with(&[Net::validator()])
}

/// Shards A (run by `a_validators`) and B (one validator), each listing the other's set as a peer.
fn world_with(a_validators: &[Keypair]) -> World {
    world_retaining(a_validators, DEFAULT_BRIDGE_RETENTION_BLOCKS)
}

/// As [`world_with`], both shards keeping settled bridge records `retention` blocks.
fn world_retaining(a_validators: &[Keypair], retention: u64) -> World {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let key = coordinator_key();
    let b_validators = [Net::validator()];
    let (ka, kb) = (Some(key.account()), Some(key.account()));
    let mut a = net_retaining(A, &oracle, &deposit, ka, a_validators, vec![peer(B, &b_validators)], retention);
    let mut b = net_retaining(B, &oracle, &deposit, kb, &b_validators, vec![peer(A, a_validators)], retention);
    let alice = Keypair::from_seed([0x11; 32]);
    let relayer = Keypair::from_seed([0x77; 32]);
    for n in [&mut a, &mut b] {
        n.run(&oracle, Op::OracleUpdate(pb::OracleUpdate { price_micros: PRICE, timestamp_ms: n.clock_ms }))
            .expect("oracle");
    }
    let dep = Op::Deposit(pb::Deposit { account: alice.account().0.to_vec(), amount_micros: 10_000 * USD });
    a.run(&deposit, dep).expect("deposit");
    let accounts = vec![alice.account(), relayer.account()];
    World { a, b, coordinator: TestCoordinator::new(key, ChainId(8)), oracle, deposit, relayer, alice, accounts }
}

impl World {
    fn epoch(&mut self) -> Epoch {
        self.coordinator.epoch(&[&self.a, &self.b])
    }

    fn on(&mut self, shard: ShardId) -> &mut Net {
        if shard == A {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    /// Runs `op` signed by the relayer on `shard`; must succeed.
    fn relay(&mut self, shard: ShardId, op: Op) {
        let relayer = self.relayer.clone();
        self.on(shard).run(&relayer, op).expect("relayed op succeeds");
        self.conserved("after a relayed op");
    }

    fn conserved(&self, context: &str) {
        check_conservation(&self.a, &self.accounts, context);
        check_conservation(&self.b, &self.accounts, context);
    }

    fn collateral(&self, shard: ShardId, who: &AccountId) -> (i64, u64) {
        let n = if shard == A { &self.a } else { &self.b };
        let r = n.shard.view().account(who, None, false).expect("account").expect("head").record.unwrap_or_default();
        (r.collateral_micros, r.escrow_micros)
    }
}

/// `op` signed by `key` on `net` is refused with `reason` and the state root does not move; returns the
/// refusal's message.
fn refused(net: &mut Net, key: &Keypair, op: Op, reason: Reason, what: &str) -> String {
    let root = net.shard.head().state_root;
    let height = net.shard.head().height;
    let verdict = net.run(key, op);
    let err = verdict.expect_err(what);
    assert_eq!(err.reason, reason, "{what}: {err}");
    assert_eq!((net.shard.head().height, net.shard.head().state_root), (height, root), "{what} changed state");
    err.message
}

/// As [`refused`], and the message names `needle` (a certificate's refusal kind, say).
fn refused_naming(net: &mut Net, key: &Keypair, op: Op, reason: Reason, needle: &str, what: &str) {
    let message = refused(net, key, op, reason, what);
    assert!(message.contains(needle), "{what}: {message:?} does not name {needle}");
}

fn deliver_parts(op: &Op) -> pb::DeliverMessage {
    match op {
        Op::DeliverMessage(d) => d.clone(),
        _ => panic!("not a delivery"),
    }
}

#[test]
fn without_a_coordinator_key_every_bridge_op_is_refused() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let mut n = net(A, &oracle, &deposit, None, &[Net::validator()], Vec::new());
    let alice = Keypair::from_seed([0x11; 32]);
    n.run(&deposit, Op::Deposit(pb::Deposit { account: alice.account().0.to_vec(), amount_micros: USD }))
        .expect("deposit");
    let mut c = TestCoordinator::new(coordinator_key(), ChainId(8));
    let epoch = c.epoch(&[&n]);
    refused(&mut n, &alice, transfer_op(B, &alice.account(), USD, 5), Reason::OpNotEnabled, "transfer");
    refused(&mut n, &alice, epoch.import_op(), Reason::OpNotEnabled, "import");
    let refund = Op::TimeoutRefund(pb::TimeoutRefund { dst_shard: 2, seq: 1, ..Default::default() });
    refused(&mut n, &alice, refund, Reason::OpNotEnabled, "refund");
}

#[test]
fn transfers_both_ways_with_acks_refunds_and_every_forgery_refused() {
    let mut w = world();
    let alice = w.alice.clone();
    let me = alice.account();
    let relayer = w.relayer.clone();
    w.conserved("start");

    // Transfer-out refusals.
    refused(&mut w.a, &alice, transfer_op(A, &me, USD, 5), Reason::WrongShard, "transfer to itself");
    refused(&mut w.a, &alice, transfer_op(B, &me, 0, 5), Reason::InvalidOp, "zero amount");
    refused(&mut w.a, &alice, transfer_op(B, &me, 1, 0), Reason::Expired, "already expired");
    let forever = transfer_op(B, &me, 1, bridge::MAX_EXPIRY_EPOCHS + 1);
    refused(&mut w.a, &alice, forever, Reason::InvalidOp, "expiry beyond the bound");
    refused(&mut w.a, &alice, transfer_op(B, &me, 10_001 * USD, 5), Reason::InsufficientCollateral, "above free");

    // Bridged collateral cannot be used before it arrives.
    let order = || Op::PlaceOrder(limit_order(pb::Side::Buy, PRICE - 10 * 100_000, 50, pb::TimeInForce::Gtc));
    refused(&mut w.b, &alice, order(), Reason::InsufficientMargin, "order before delivery");

    // 1. A → B: 1,000 USD locked; margin on A drops at once.
    w.a.run(&alice, transfer_op(B, &me, 1_000 * USD, 10)).expect("transfer");
    assert_eq!(w.collateral(A, &me), (9_000 * USD as i64, 1_000 * USD));
    let view = w.a.shard.view().message(B, 1, false, false).expect("message");
    assert_eq!(view.escrow.expect("escrow").state, pb::MessageState::Locked as i32);
    w.conserved("after transfer-out");

    // Import: a forged signature, then the real epoch, then a replay of it.
    let e1 = w.epoch();
    let forger = Keypair::from_seed([0xee; 32]);
    let mut forged = e1.signed.clone();
    forged.signature = shardex_core::global::sign_epoch(
        &forger,
        &shardex_core::coordpb::EpochRecord::decode(e1.signed.record.as_slice()).expect("record"),
    )
    .0
    .signature;
    let forged_import = Op::ImportGlobalCommitment(pb::ImportGlobalCommitment {
        epoch_record: forged.record,
        signature: forged.signature,
    });
    refused(&mut w.b, &relayer, forged_import, Reason::BadSignature, "epoch signed by another key");
    let undelivered = deliver_op(&w.a, &e1, B, 1).expect("message in epoch 1");
    refused(&mut w.b, &relayer, undelivered, Reason::UnknownEpoch, "delivery against an epoch not imported");
    w.relay(B, e1.import_op());
    refused(&mut w.b, &relayer, e1.import_op(), Reason::Duplicate, "re-import");
    let head = w.b.shard.view().block(w.b.shard.head().height).expect("block").expect("head").header.expect("header");
    assert_eq!(shardex_core::block::decode_header(&head).expect("decodes").header.last_imported_epoch, 1);

    // Delivery forgeries on B.
    let good = deliver_parts(&deliver_op(&w.a, &e1, B, 1).expect("deliverable"));
    let forge = |f: &dyn Fn(&mut pb::DeliverMessage)| {
        let mut d = good.clone();
        f(&mut d);
        Op::DeliverMessage(d)
    };
    let tampered = forge(&|d| d.message.as_mut().expect("message").amount_micros *= 10);
    refused(&mut w.b, &relayer, tampered, Reason::InvalidProof, "tampered amount");
    let other_key_proof = support::bridge::prove(&w.a, bridge::escrow_key(B, 1), e1.entry(A).expect("entry").2).nodes;
    let wrong_key = forge(&|d| d.message_proof = other_key_proof.clone());
    refused(&mut w.b, &relayer, wrong_key, Reason::InvalidProof, "proof of another key");
    let (b_entry, b_proof, _) = e1.entry(B).expect("B entry");
    let wrong_entry = forge(&|d| (d.src_entry, d.header_proof) = (b_entry.clone(), b_proof.clone()));
    refused(&mut w.b, &relayer, wrong_entry, Reason::InvalidProof, "another shard's entry");
    let wrong_dst = forge(&|d| d.message.as_mut().expect("message").dst_shard = 3);
    refused(&mut w.b, &relayer, wrong_dst, Reason::WrongShard, "wrong destination");
    let huge = forge(&|d| d.message_proof = vec![vec![0; 100]; bridge::MAX_PROOF_NODES + 1]);
    refused(&mut w.b, &relayer, huge, Reason::ProofTooLarge, "oversized proof");
    let as_ack = forge(&|d| d.message.as_mut().expect("message").is_ack = true);
    refused(&mut w.b, &relayer, as_ack, Reason::InvalidOp, "an ack delivered as a message");

    // 2. Deliver, then replay.
    w.relay(B, Op::DeliverMessage(good.clone()));
    assert_eq!(w.collateral(B, &me), (1_000 * USD as i64, 0));
    let gas = w.b.shard.view().block(w.b.shard.head().height).expect("block").expect("head").receipts[0].gas_used;
    let nodes = (good.header_proof.len() + good.message_proof.len()) as u64;
    assert!(gas >= 1_000 + 300 * nodes, "proof nodes are charged: gas {gas} for {nodes} nodes");
    refused(&mut w.b, &relayer, Op::DeliverMessage(good.clone()), Reason::Duplicate, "replayed delivery");
    let incoming = w.b.shard.view().message(A, 1, true, true).expect("incoming");
    assert!(incoming.receipt.is_some() && incoming.ack.as_ref().is_some_and(|a| a.is_ack));
    let (proofs, header) = incoming.proofs.clone().expect("proven");
    let mut resp = pb::GetMessageResponse {
        height: incoming.height,
        state_root: incoming.state_root.to_vec(),
        receipt: incoming.receipt,
        ack: incoming.ack.clone(),
        proofs,
        header: Some(header),
        ..Default::default()
    };
    let validators = ValidatorSet::equal(&[Keypair::from_seed([1; 32]).account()]).expect("valid key");
    let verify =
        |r: &pb::GetMessageResponse| bridge::verify_message_response(r, ChainId(8), B, A, 1, true, Some(&validators));
    verify(&resp).expect("GetMessage answer verifies");
    resp.ack.as_mut().expect("ack").amount_micros += 1;
    assert!(verify(&resp).is_err(), "a changed record fails its proof");

    // 3. The bridged collateral carries margin on B.
    w.b.run(&alice, order()).expect("order backed by bridged collateral");
    w.conserved("after the order on B");

    // 4. Ack on A, then replays of it and a refund of the acked message.
    let e2 = w.epoch();
    w.relay(A, e2.import_op());
    let ack1 = ack_op(&w.b, &e2, A, 1).expect("ack in epoch 2");
    w.relay(A, ack1.clone());
    assert_eq!(w.collateral(A, &me), (9_000 * USD as i64, 0));
    assert_eq!(totals(&w.a).bridged_out_micros, 1_000 * USD);
    assert_eq!(
        w.a.shard.view().message(B, 1, false, false).expect("m").escrow.expect("e").state,
        pb::MessageState::Acked as i32
    );
    refused(&mut w.a, &relayer, ack1.clone(), Reason::Duplicate, "ack twice");
    let refund1 = refund_op(&w.b, &e2, A, 1).expect("refund op");
    refused(&mut w.a, &relayer, refund1, Reason::MessageState, "refund of a delivered and acked message");

    // 5. B → A: the resting order's initial margin (500 USD) is not free.
    refused(&mut w.b, &alice, transfer_op(A, &me, 600 * USD, 6), Reason::InsufficientCollateral, "under margin");
    w.b.run(&alice, transfer_op(A, &me, 400 * USD, 6)).expect("transfer back");
    let e3 = w.epoch();
    w.relay(A, e3.import_op());
    w.relay(A, deliver_op(&w.b, &e3, A, 1).expect("B's message"));
    assert_eq!(w.collateral(A, &me), (9_400 * USD as i64, 0));
    let e4 = w.epoch();
    w.relay(B, e4.import_op());
    w.relay(B, ack_op(&w.a, &e4, B, 1).expect("A's ack"));
    assert_eq!(w.collateral(B, &me), (600 * USD as i64, 0));

    // 6. A message that expires undelivered (A imported 3, B 4: expiry 4 is deliverable until B imports 5).
    w.a.run(&alice, transfer_op(B, &me, 300 * USD, 4)).expect("expiring transfer");
    let e5 = w.epoch();
    w.relay(A, e5.import_op());
    let early = refund_op(&w.b, &e5, A, 2).expect("refund op");
    refused(&mut w.a, &relayer, early, Reason::NotExpired, "refund before the destination passed expiry");
    w.relay(B, e5.import_op());
    let late = deliver_op(&w.a, &e5, B, 2).expect("message in epoch 5");
    refused(&mut w.b, &relayer, late, Reason::Expired, "delivery after expiry");
    let e6 = w.epoch();
    w.relay(A, e6.import_op());
    let refund2 = refund_op(&w.b, &e6, A, 2).expect("refund op");
    w.relay(A, refund2.clone());
    assert_eq!(w.collateral(A, &me), (9_400 * USD as i64, 0));
    refused(&mut w.a, &relayer, refund2, Reason::Duplicate, "refund twice");
    let mut forged_ack = match ack1 {
        Op::AckMessage(a) => a,
        _ => unreachable!(),
    };
    forged_ack.ack.as_mut().expect("ack").seq = 2;
    refused(&mut w.a, &relayer, Op::AckMessage(forged_ack), Reason::MessageState, "ack after refund");

    // 7. Delivered, not yet acked, then past expiry on B: the receipt blocks the refund; the ack still works.
    w.a.run(&alice, transfer_op(B, &me, 100 * USD, 7)).expect("transfer");
    let e7 = w.epoch();
    w.relay(B, e7.import_op());
    w.relay(B, deliver_op(&w.a, &e7, B, 3).expect("message 3"));
    let e8 = w.epoch();
    w.relay(B, e8.import_op());
    w.relay(A, e8.import_op());
    let e9 = w.epoch();
    w.relay(A, e9.import_op());
    let refund3 = refund_op(&w.b, &e9, A, 3).expect("refund op");
    refused(&mut w.a, &relayer, refund3, Reason::InvalidProof, "refund with the receipt present");
    // Proven against an older imported epoch still inside the window.
    w.relay(A, ack_op(&w.b, &e8, A, 3).expect("ack of 3"));

    let (ta, tb) = (totals(&w.a), totals(&w.b));
    assert_eq!((ta.escrowed_micros, tb.escrowed_micros), (0, 0));
    assert_eq!(ta.bridged_out_micros + tb.bridged_out_micros, ta.bridged_in_micros + tb.bridged_in_micros);
    assert_eq!(ta.bridged_out_micros, 1_100 * USD);
    assert_eq!(tb.bridged_in_micros, 1_100 * USD);
    w.conserved("end");
    let _ = (&w.oracle, &w.deposit);
}

#[test]
fn an_import_must_extend_the_imported_chain_and_a_number_signed_twice_is_a_conflict() {
    let mut w = world();
    let relayer = w.relayer.clone();
    let e1 = w.epoch();
    w.relay(B, e1.import_op());
    // The same key, another history (a coordinator restored from an old store): epoch 1 again, then 2 on it.
    let mut rogue = TestCoordinator::new(coordinator_key(), w.coordinator.chain());
    let r1 = rogue.epoch_of(Vec::new());
    let r2 = rogue.epoch_of(Vec::new());
    refused_naming(
        &mut w.b,
        &relayer,
        r1.import_op(),
        Reason::InvalidProof,
        "two epochs with one number",
        "epoch 1 re-signed",
    );
    refused_naming(
        &mut w.b,
        &relayer,
        r2.import_op(),
        Reason::InvalidProof,
        "does not extend",
        "epoch 2 off the chain",
    );
    // A harmless repeat is still a duplicate; the genuine next epoch imports.
    refused(&mut w.b, &relayer, e1.import_op(), Reason::Duplicate, "re-import");
    let e2 = w.epoch();
    w.relay(B, e2.import_op());
    // An import may skip epochs (their parents are not known here): 4 after 2.
    let _e3 = w.epoch();
    let e4 = w.epoch();
    w.relay(B, e4.import_op());
    let latest = w.b.shard.view().prove_key(bridge::imported_latest_key(), None).expect("read").expect("head").value;
    assert_eq!(prost::Message::decode(latest.as_slice()).map(|r: pb::ImportedCommitmentRecord| r.epoch), Ok(4));
}

#[test]
fn imported_epochs_are_kept_for_a_window_of_imports() {
    let mut w = world();
    let relayer = w.relayer.clone();
    let total = bridge::IMPORTED_EPOCH_WINDOW as u64 + 2;
    let mut epochs = Vec::new();
    for _ in 0..total {
        let e = w.epoch();
        w.relay(B, e.import_op());
        epochs.push(e);
    }
    let read = |n: u64| {
        let key = bridge::imported_epoch_key(n);
        !w.b.shard.view().prove_key(key, None).expect("read").expect("head").value.is_empty()
    };
    assert!(!read(1) && !read(2), "the two oldest imports left the window");
    assert!((3..=total).all(read), "the last {} imports are kept", bridge::IMPORTED_EPOCH_WINDOW);
    // A message proven against an epoch that left the window is refused; against one inside it, delivered.
    w.a.run(&w.alice.clone(), transfer_op(B, &w.alice.account(), USD, total + 5)).expect("transfer");
    let e = w.epoch();
    w.relay(B, e.import_op());
    let mut stale = deliver_parts(&deliver_op(&w.a, &e, B, 1).expect("message"));
    stale.epoch = 2;
    refused(&mut w.b, &relayer, Op::DeliverMessage(stale), Reason::UnknownEpoch, "epoch out of the window");
    w.relay(B, deliver_op(&w.a, &e, B, 1).expect("message"));
}

fn ack_parts(op: Op) -> pb::AckMessage {
    match op {
        Op::AckMessage(a) => a,
        _ => panic!("not an ack"),
    }
}

fn refund_parts(op: Op) -> pb::TimeoutRefund {
    match op {
        Op::TimeoutRefund(r) => r,
        _ => panic!("not a refund"),
    }
}

/// The source runs four validators of power 1: a certificate needs three. An epoch genuinely signed by the
/// coordinator key commits the source's entry, yet a delivery is refused unless it carries the source's
/// header certified by a quorum of the source's genesis set (listed in the destination's genesis), for the
/// very block the entry commits. Acks and refunds need the destination's header the same way.
#[test]
fn deliveries_acks_and_refunds_need_the_other_shards_certified_header() {
    let a_validators: Vec<Keypair> = (0x41u8..=0x44).map(|b| Keypair::from_seed([b; 32])).collect();
    let k: Vec<&Keypair> = a_validators.iter().collect();
    let mut w = world_with(&a_validators);
    let (alice, relayer, coordinator) = (w.alice.clone(), w.relayer.clone(), coordinator_key());
    let me = alice.account();

    w.a.run(&alice, transfer_op(B, &me, 1_000 * USD, 10)).expect("transfer");
    let e1 = w.epoch();
    w.relay(B, e1.import_op());
    let good = deliver_parts(&deliver_op(&w.a, &e1, B, 1).expect("deliverable"));
    let header = good.src_header.clone().expect("the source header is carried");
    assert_eq!(header.signatures.len(), 4, "the source's blocks are certified by its four validators");
    let deliver =
        |h: Option<pb::FinalizedHeader>| Op::DeliverMessage(pb::DeliverMessage { src_header: h, ..good.clone() });

    // (d) No header: the entry alone, though under a coordinator-signed epoch, credits nothing.
    let what = "delivery without the source header";
    refused_naming(&mut w.b, &relayer, deliver(None), Reason::InvalidProof, "no finalized header of shard 1", what);
    // (a) Signed by keys outside the source's set: the coordinator's alone, or beside a quorum.
    let by_coordinator = resigned(&header, &[&coordinator]);
    let what = "source header signed by the coordinator key";
    refused_naming(&mut w.b, &relayer, deliver(Some(by_coordinator)), Reason::InvalidProof, "UNKNOWN_SIGNER", what);
    let padded = resigned(&header, &[k[0], k[1], k[2], &coordinator]);
    let what = "a stranger's signature beside a quorum";
    refused_naming(&mut w.b, &relayer, deliver(Some(padded)), Reason::InvalidProof, "UNKNOWN_SIGNER", what);
    // (b) Too little voting power: 2 of 4, or 2 of 4 with one of them twice.
    let two = resigned(&header, &[k[0], k[1]]);
    refused_naming(&mut w.b, &relayer, deliver(Some(two)), Reason::InvalidProof, "NO_QUORUM", "2 of 4 validators");
    let twice = resigned(&header, &[k[0], k[1], k[1]]);
    let what = "one validator counted twice";
    refused_naming(&mut w.b, &relayer, deliver(Some(twice)), Reason::InvalidProof, "DUPLICATE_SIGNER", what);
    // (c) Correctly certified, but another block than the entry commits.
    let height = e1.entry(A).expect("A entry").2;
    let older = w.a.header(Some(height - 1));
    let what = "a certified header of another block";
    refused_naming(&mut w.b, &relayer, deliver(Some(older)), Reason::InvalidProof, "entry commits to", what);
    assert_eq!(w.collateral(B, &me), (0, 0), "nothing credited");

    // Three of four is a quorum: delivered, and every precommit checked is charged.
    w.relay(B, deliver(Some(resigned(&header, &[k[0], k[2], k[3]]))));
    assert_eq!(w.collateral(B, &me), (1_000 * USD as i64, 0));
    let gas = w.b.shard.view().block(w.b.shard.head().height).expect("block").expect("head").receipts[0].gas_used;
    let nodes = (good.header_proof.len() + good.message_proof.len()) as u64;
    assert!(gas >= 1_000 + 300 * nodes + 3 * 5_000, "3 signatures are charged: gas {gas}");
    refused(&mut w.b, &relayer, deliver(Some(header)), Reason::Duplicate, "delivered once");

    // Ack on A: B's header (one validator) is needed too.
    let e2 = w.epoch();
    w.relay(A, e2.import_op());
    let ack = ack_parts(ack_op(&w.b, &e2, A, 1).expect("ack in epoch 2"));
    let b_header = ack.dst_header.clone().expect("the destination header is carried");
    let ack_with = |h: Option<pb::FinalizedHeader>| Op::AckMessage(pb::AckMessage { dst_header: h, ..ack.clone() });
    let what = "ack without the destination header";
    refused_naming(&mut w.a, &relayer, ack_with(None), Reason::InvalidProof, "no finalized header of shard 2", what);
    let forged = resigned(&b_header, &[&coordinator]);
    let what = "ack with a header signed by the coordinator key";
    refused_naming(&mut w.a, &relayer, ack_with(Some(forged)), Reason::InvalidProof, "UNKNOWN_SIGNER", what);
    let b_height = e2.entry(B).expect("B entry").2;
    let other = w.b.header(Some(b_height - 1));
    let what = "ack with another certified block";
    refused_naming(&mut w.a, &relayer, ack_with(Some(other)), Reason::InvalidProof, "entry commits to", what);
    assert_eq!(w.collateral(A, &me), (9_000 * USD as i64, 1_000 * USD), "escrow still held");
    w.relay(A, ack_with(Some(b_header)));
    assert_eq!(w.collateral(A, &me), (9_000 * USD as i64, 0));

    // Refund on A of a message B let expire: B's header is needed again.
    w.a.run(&alice, transfer_op(B, &me, 100 * USD, 3)).expect("expiring transfer");
    let e3 = w.epoch();
    w.relay(B, e3.import_op());
    let e4 = w.epoch();
    w.relay(B, e4.import_op());
    let e5 = w.epoch();
    w.relay(A, e5.import_op());
    let refund = refund_parts(refund_op(&w.b, &e5, A, 2).expect("refund op"));
    let b_header = refund.dst_header.clone().expect("the destination header is carried");
    let refund_with =
        |h: Option<pb::FinalizedHeader>| Op::TimeoutRefund(pb::TimeoutRefund { dst_header: h, ..refund.clone() });
    let what = "refund without the destination header";
    refused_naming(&mut w.a, &relayer, refund_with(None), Reason::InvalidProof, "no finalized header of shard 2", what);
    let forged = resigned(&b_header, &[&coordinator]);
    let what = "refund with a header signed by the coordinator key";
    refused_naming(&mut w.a, &relayer, refund_with(Some(forged)), Reason::InvalidProof, "UNKNOWN_SIGNER", what);
    let none = resigned(&b_header, &[]);
    let what = "refund with an empty certificate";
    refused_naming(&mut w.a, &relayer, refund_with(Some(none)), Reason::InvalidProof, "NO_QUORUM", what);
    assert_eq!(w.collateral(A, &me), (8_900 * USD as i64, 100 * USD), "escrow still held");
    w.relay(A, refund_with(Some(b_header)));
    assert_eq!(w.collateral(A, &me), (9_000 * USD as i64, 0));
    w.conserved("end");
}

/// The forgery a coordinator key alone could make: an epoch, genuinely signed by that key and imported,
/// commits a made-up entry of shard A whose state root holds a made-up outbox message of a million USD.
/// The proofs under it all verify; the delivery is refused for want of A's certificate, whatever header
/// it carries, and nothing is credited.
#[test]
fn a_made_up_entry_in_a_coordinator_signed_epoch_credits_nothing() {
    let mut w = world();
    let (relayer, coordinator) = (w.relayer.clone(), coordinator_key());
    let mallory = Keypair::from_seed([0x66; 32]).account();
    let message = pb::OutboxMessage {
        src_shard: A.0,
        dst_shard: B.0,
        seq: 1,
        account: mallory.0.to_vec(),
        amount_micros: 1_000_000 * USD,
        expiry_epoch: 100,
        is_ack: false,
    };
    let key = bridge::outbox_key(B, 1);
    let (fake_root, message_proof) = made_up_state(&[(key, message.encode_to_vec())], key);

    // A header of A's head height over the made-up state, signed by the one key the forger holds.
    let real = w.a.header(None);
    let mut fake = decode_header(&real).expect("decodes").header;
    fake.state_root = fake_root.to_vec();
    let (bytes, hash) = encode_header(&fake);
    let fake_fh = resigned(&pb::FinalizedHeader { header: bytes, ..Default::default() }, &[&coordinator]);
    let fake_entry =
        ShardEntry { shard_id: A.0, height: fake.height, block_hash: hash.to_vec(), state_root: fake_root.to_vec() };
    let b_entry = entry_from_header(&decode_header(&w.b.header(None)).expect("decodes"));
    let epoch = w.coordinator.epoch_of(vec![fake_entry, b_entry]);
    w.relay(B, epoch.import_op());

    let (src_entry, header_proof, _) = epoch.entry(A).expect("A entry");
    let forged = |h: Option<pb::FinalizedHeader>| {
        Op::DeliverMessage(pb::DeliverMessage {
            message: Some(message.clone()),
            src_entry: src_entry.clone(),
            message_proof: message_proof.clone(),
            header_proof: header_proof.clone(),
            epoch: epoch.number,
            src_header: h,
        })
    };
    let what = "made-up entry, no header";
    refused_naming(&mut w.b, &relayer, forged(None), Reason::InvalidProof, "no finalized header of shard 1", what);
    let what = "made-up entry, header signed by the coordinator key";
    refused_naming(&mut w.b, &relayer, forged(Some(fake_fh)), Reason::InvalidProof, "UNKNOWN_SIGNER", what);
    let what = "made-up entry, A's genuine header at that height";
    refused_naming(&mut w.b, &relayer, forged(Some(real)), Reason::InvalidProof, "entry commits to", what);
    assert_eq!(w.collateral(B, &mallory), (0, 0));
    assert_eq!(totals(&w.b).bridged_in_micros, 0);
    w.conserved("end");
}

/// A shard bridges only with the shards its genesis lists in `[[peers]]`: a transfer to another shard is
/// refused (its escrow could never be acked nor refunded), and so is a delivery from one.
#[test]
fn bridge_ops_naming_a_shard_that_is_not_a_peer_are_refused() {
    let (oracle, deposit) = (Keypair::from_seed([2; 32]), Keypair::from_seed([4; 32]));
    let key = coordinator_key();
    let one = [Net::validator()];
    let mut a = net(A, &oracle, &deposit, Some(key.account()), &one, vec![peer(B, &one)]);
    let mut b = net(B, &oracle, &deposit, Some(key.account()), &one, Vec::new());
    let (alice, relayer) = (Keypair::from_seed([0x11; 32]), Keypair::from_seed([0x77; 32]));
    let me = alice.account();
    a.run(&deposit, Op::Deposit(pb::Deposit { account: me.0.to_vec(), amount_micros: 10 * USD })).expect("deposit");
    b.run(&deposit, Op::Deposit(pb::Deposit { account: me.0.to_vec(), amount_micros: 10 * USD })).expect("deposit");

    let what = "transfer to a shard A does not bridge with";
    refused_naming(
        &mut a,
        &alice,
        transfer_op(ShardId(3), &me, USD, 5),
        Reason::OpNotEnabled,
        "not a bridge peer",
        what,
    );
    let what = "transfer from B, which lists no peers";
    refused_naming(&mut b, &alice, transfer_op(A, &me, USD, 5), Reason::OpNotEnabled, "not a bridge peer", what);

    a.run(&alice, transfer_op(B, &me, USD, 5)).expect("A bridges with B");
    let mut c = TestCoordinator::new(key, ChainId(8));
    let e1 = c.epoch(&[&a, &b]);
    b.run(&relayer, e1.import_op()).expect("import");
    let delivery = deliver_op(&a, &e1, B, 1).expect("deliverable");
    let what = "delivery from a shard B does not list";
    refused_naming(&mut b, &relayer, delivery, Reason::OpNotEnabled, "shard 1 is not a bridge peer of shard 2", what);
}

#[test]
fn settled_messages_leave_state_after_the_retention_window_and_are_proven_absent() {
    const KEEP: u64 = 16;
    let mut w = world_retaining(&[Net::validator()], KEEP);
    let (alice, relayer, deposit) = (w.alice.clone(), w.relayer.clone(), w.deposit.clone());
    let me = alice.account();
    // One block on `shard` (a 1-micro deposit to alice, who is in the conservation check).
    let tick = |w: &mut World, shard: ShardId| {
        let op = Op::Deposit(pb::Deposit { account: me.0.to_vec(), amount_micros: 1 });
        w.on(shard).run(&deposit, op).expect("deposit");
    };

    // Message 1, A to B: sent, delivered, acknowledged.
    w.a.run(&alice, transfer_op(B, &me, 100 * USD, 10)).expect("transfer");
    let e1 = w.epoch();
    w.relay(B, e1.import_op());
    let delivery = deliver_op(&w.a, &e1, B, 1).expect("message 1");
    w.relay(B, delivery.clone());
    let delivered_at = w.b.shard.head().height;
    let e2 = w.epoch();
    w.relay(A, e2.import_op());
    let ack = ack_op(&w.b, &e2, A, 1).expect("ack of 1");
    w.relay(A, ack.clone());
    let acked_at = w.a.shard.head().height;
    let settled = w.a.shard.view().message(B, 1, false, false).expect("message");
    assert_eq!(settled.escrow.expect("escrow").state, pb::MessageState::Acked as i32);
    assert!(settled.message.is_some());

    // Until the window ends, every record stays.
    while w.a.shard.head().height < acked_at + KEEP - 1 {
        tick(&mut w, A);
    }
    while w.b.shard.head().height < delivered_at + KEEP - 1 {
        tick(&mut w, B);
    }
    let source = w.a.shard.view().message(B, 1, false, false).expect("message");
    assert!(source.escrow.is_some() && source.message.is_some(), "pruned before the window ended");
    assert!(w.b.shard.view().message(A, 1, true, false).expect("message").ack.is_some());

    // The block that ends the window prunes them; they are proven absent from then on.
    tick(&mut w, A);
    tick(&mut w, B);
    let (ha, hb) = (w.a.shard.head().height, w.b.shard.head().height);
    let absent = |net: &Net, key: shardex_core::B256, height: u64, what: &str| {
        let p = support::bridge::prove(net, key, height);
        assert!(p.value.is_empty(), "{what} is still in state at {height}");
        let root = shardex_core::hash::b256_from_slice(&p.state_root).expect("root");
        bridge::verify_record(what, root, key, None, &p.nodes).unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    absent(&w.a, bridge::escrow_key(B, 1), ha, "A's escrow of message 1");
    absent(&w.a, bridge::outbox_key(B, 1), ha, "A's outbox message 1");
    absent(&w.a, bridge::settled_key(ha), ha, "A's list of messages settled for this height");
    absent(&w.b, bridge::ack_key(A, 1), hb, "B's ack of message 1");
    absent(&w.b, bridge::settled_key(hb), hb, "B's list of messages settled for this height");
    // The retained state of the block before still proves them.
    let before = support::bridge::prove(&w.a, bridge::escrow_key(B, 1), ha - 1);
    assert!(!before.value.is_empty(), "the escrow is provable at the height before pruning");
    // The receipt that stops a second delivery stays.
    let incoming = w.b.shard.view().message(A, 1, true, false).expect("message");
    assert!(incoming.receipt.is_some() && incoming.ack.is_none());

    // Replays stay refused; the next message takes the next seq.
    refused(&mut w.b, &relayer, delivery, Reason::Duplicate, "delivery after the ack was pruned");
    refused(&mut w.a, &relayer, ack, Reason::MessageState, "ack after the escrow was pruned");
    w.a.run(&alice, transfer_op(B, &me, 10 * USD, 20)).expect("transfer");
    assert!(w.a.shard.view().message(B, 2, false, false).expect("message").escrow.is_some());
    w.conserved("after pruning");
    let t = totals(&w.a);
    assert_eq!((t.bridged_out_micros, t.escrowed_micros), (100 * USD, 10 * USD), "pruning moves no money");
    let _ = &w.oracle;
}
