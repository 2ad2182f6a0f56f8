//! The shard as the consensus engine's application, in process: one validator builds a block from what it
//! admitted, another re-executes it and votes for it only if it rebuilds the identical header. Every kind of
//! bad proposal (a changed root, a forged tx signature, an extra tx, the wrong height, parent, proposer or
//! time, undecodable bytes, more bytes than the block bound) is judged invalid with a reason and changes nothing; a decided block whose
//! certificate lacks a quorum is refused; a certified one commits on both to the same root. A follower takes
//! certified blocks by value sync whatever its clock, refuses a peer's mismatched ones, and stops on one it
//! cannot replay.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prost::Message;
use shardex_consensus::{BlockApp, BlockBody, Verdict};
use shardex_core::{
    block::Certificate,
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{decode_and_verify, sign_tx, TxDomain, DEFAULT_MAX_TX_BYTES},
    validators::ValidatorSet,
    vote::sign_precommit,
    ChainId, Keypair, ShardId,
};
use shardex_shard_node::{
    consensus::{Forwarder, Leader, Routing, ShardApp, ValidationLimits},
    runtime::{now_ms, NodeHandle},
    shard::{Role, Shard, ShardConfig},
};

const DOMAIN: TxDomain = TxDomain { chain: ChainId(12), shard: ShardId(3) };

struct Validator {
    key: Keypair,
    node: Arc<NodeHandle>,
    app: ShardApp,
    _dir: tempfile::TempDir,
}

fn validator(genesis: &Genesis, key: &Keypair) -> Validator {
    validator_with(genesis, key, ShardConfig::default())
}

fn validator_with(genesis: &Genesis, key: &Keypair, config: ShardConfig) -> Validator {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = shardex_service::storage::open_db(dir.path()).expect("db");
    let shard = Shard::open(db, genesis.clone(), key.clone(), config).expect("open");
    let node = NodeHandle::new(shard);
    let routing = Arc::new(Routing {
        leader: Arc::new(Leader::new(key.account())),
        forwarder: Forwarder::new(Default::default(), 4 << 20),
    });
    let limits = ValidationLimits { max_tx_bytes: DEFAULT_MAX_TX_BYTES, max_future_ms: 2_000 };
    let app = ShardApp::new(Arc::clone(&node), limits, routing);
    Validator { key: key.clone(), node, app, _dir: dir }
}

fn header(body: &BlockBody) -> pb::BlockHeader {
    pb::BlockHeader::decode(body.header.as_slice()).expect("header")
}

fn with_header(body: &BlockBody, change: impl FnOnce(&mut pb::BlockHeader)) -> BlockBody {
    let mut h = header(body);
    change(&mut h);
    BlockBody { header: h.encode_to_vec(), txs: body.txs.clone() }
}

fn certificate(keys: &[&Keypair], body: &BlockBody) -> Certificate {
    let height = header(body).height;
    let hash = body.hash();
    Certificate {
        round: 0,
        signatures: keys.iter().map(|k| sign_precommit(k, (DOMAIN.chain, DOMAIN.shard), height, 0, &hash)).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_vote_only_for_blocks_they_rebuild_and_commit_only_certified_ones() {
    let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([0x60 + i; 32])).collect();
    let deposit = Keypair::from_seed([0x6f; 32]);
    let other = Keypair::from_seed([0x6e; 32]).account();
    let mut genesis =
        Genesis::example(Authorities { deposit: deposit.account(), oracle: other, admin: other }, keys[0].account());
    genesis.validators = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("set");
    (genesis.chain_id, genesis.shard_id) = (DOMAIN.chain, DOMAIN.shard);
    let a = validator(&genesis, &keys[0]);
    let b = validator(&genesis, &keys[1]);

    // The proposer admits two deposits, then builds its block.
    let alice = Keypair::from_seed([0x61; 32]).account();
    let txs: Vec<pb::SignedTx> = (0..2)
        .map(|n| sign_tx(&deposit, DOMAIN, n, Op::Deposit(pb::Deposit { account: alice.0.to_vec(), amount_micros: 5 })))
        .collect();
    for tx in &txs {
        let verified = decode_and_verify(&tx.encode_to_vec(), DOMAIN, DEFAULT_MAX_TX_BYTES).expect("valid tx");
        a.node.shard().admit(verified, now_ms()).expect("no node error").expect("admitted");
    }
    let body = a.app.build(1, Instant::now() + Duration::from_millis(50)).await.expect("built");
    assert_eq!(body.txs.len(), 2);
    let root_before = b.node.shard().head().state_root;

    // Every tampered proposal is invalid, with a reason.
    let flip = |mut bytes: Vec<u8>, at: usize| {
        let i = at.min(bytes.len() - 1);
        bytes[i] ^= 1;
        bytes
    };
    let mut forged_sig = body.clone();
    let mut tx0 = pb::SignedTx::decode(forged_sig.txs[0].as_slice()).expect("tx");
    tx0.signature = flip(tx0.signature, 5);
    forged_sig.txs[0] = tx0.encode_to_vec();
    let mut extra_tx = body.clone();
    let third = sign_tx(&deposit, DOMAIN, 2, Op::Deposit(pb::Deposit { account: alice.0.to_vec(), amount_micros: 5 }));
    extra_tx.txs.push(third.encode_to_vec());
    let cases: Vec<(&str, BlockBody, Option<shardex_core::AccountId>, &str)> = vec![
        (
            "changed state root",
            with_header(&body, |h| h.state_root = vec![7; 32]),
            Some(keys[0].account()),
            "state_root",
        ),
        ("forged tx signature", forged_sig, Some(keys[0].account()), "tx 0"),
        ("an extra tx", extra_tx, Some(keys[0].account()), "differs"),
        ("next height", with_header(&body, |h| h.height = 2), Some(keys[0].account()), "does not extend"),
        (
            "another parent",
            with_header(&body, |h| h.parent_hash = vec![9; 32]),
            Some(keys[0].account()),
            "does not extend",
        ),
        ("not its proposer", body.clone(), Some(keys[2].account()), "proposer"),
        ("a stranger proposer", with_header(&body, |h| h.proposer = vec![5; 32]), None, "proposer"),
        (
            "from the future",
            with_header(&body, |h| h.timestamp_ms = now_ms() + 60_000),
            Some(keys[0].account()),
            "timestamp",
        ),
        ("undecodable header", BlockBody { header: vec![0xff; 9], txs: vec![] }, None, "does not decode"),
    ];
    for (what, bad, proposer, reason) in cases {
        match b.app.validate(proposer, &bad).await.expect("no node error") {
            Verdict::Invalid(why) => assert!(why.contains(reason), "{what}: {why}"),
            Verdict::Valid => panic!("{what} was judged valid"),
        }
    }
    assert_eq!(b.node.shard().head().state_root, root_before, "judging bad blocks changed state");
    // A validator bounding blocks at 300 bytes refuses this one (two deposits and their receipts are more), so
    // a proposer cannot push a block past what GetBlock can carry.
    let strict = validator_with(&genesis, &keys[2], ShardConfig { max_block_bytes: 300, ..ShardConfig::default() });
    match strict.app.validate(Some(keys[0].account()), &body).await.expect("no node error") {
        Verdict::Invalid(why) => assert!(why.contains("bytes, more than 300 per block"), "{why}"),
        Verdict::Valid => panic!("a block over the byte bound was judged valid"),
    }
    assert_eq!(b.app.validate(Some(keys[0].account()), &body).await.expect("ok"), Verdict::Valid);

    // A decision whose certificate lacks a quorum is refused (the node stops rather than write it).
    let weak = certificate(&[&keys[0], &keys[1]], &body);
    let err = b.app.commit(&body, weak).await.expect_err("two of four is no quorum");
    assert!(err.to_string().contains("NoQuorum") || err.to_string().contains("voting power"), "{err}");
    assert_eq!(b.node.shard().head().height, 0);

    // A certified one commits on both validators to the same header and root.
    let cert = certificate(&[&keys[0], &keys[2], &keys[3]], &body);
    a.app.commit(&body, cert.clone()).await.expect("commits on the proposer");
    b.app.commit(&body, cert).await.expect("commits on the validator");
    let (ha, hb) = (a.node.shard().head().clone(), b.node.shard().head().clone());
    assert_eq!((ha.height, ha.hash, ha.state_root), (hb.height, hb.hash, hb.state_root));
    assert_eq!(ha.proposer, Some(a.key.account()));
    assert_eq!(a.node.shard().mempool_len(), 0, "the proposer's txs were retired");
}

/// A block received by value sync with its certificate: one whose certificate or txs do not match is the
/// peer's fault (invalid, nothing changes); a certified one is taken even when its timestamp is ahead of
/// this node's clock (a vote would refuse it, but it is final); and a certified block that does not replay
/// here stops the node with the height and the differing field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certified_blocks_are_followed_whatever_the_clock_and_one_that_does_not_replay_stops_the_node() {
    let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([0x70 + i; 32])).collect();
    let other = Keypair::from_seed([0x7e; 32]).account();
    let mut genesis = Genesis::example(Authorities { deposit: other, oracle: other, admin: other }, keys[0].account());
    genesis.validators = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("set");
    (genesis.chain_id, genesis.shard_id) = (DOMAIN.chain, DOMAIN.shard);
    let a = validator(&genesis, &keys[0]);
    let follower_key = Keypair::from_seed([0x7f; 32]);
    let follower =
        validator_with(&genesis, &follower_key, ShardConfig { role: Role::Follower, ..ShardConfig::default() });

    // The proposer's clock runs a minute ahead: its empty block is from the follower's future.
    let sealed = a.node.shard().seal_empty(now_ms() + 60_000).expect("no node error").expect("sealed");
    let proposal = sealed.stage().expect("staged");
    let body = BlockBody { header: proposal.header_bytes.clone(), txs: vec![] };
    let quorum = certificate(&[&keys[0], &keys[1], &keys[2]], &body);
    match follower.app.validate(None, &body).await.expect("no node error") {
        Verdict::Invalid(why) => assert!(why.contains("timestamp"), "{why}"),
        Verdict::Valid => panic!("a vote must refuse a block from the future"),
    }

    // Peer faults: no quorum, a certificate for another header, txs the header does not commit to.
    let stray = sign_tx(&keys[0], DOMAIN, 1, Op::Deposit(pb::Deposit { account: other.0.to_vec(), amount_micros: 1 }));
    let with_tx = BlockBody { header: body.header.clone(), txs: vec![stray.encode_to_vec()] };
    let other_header = with_header(&body, |h| h.gas_used += 1);
    let faults = [
        ("no quorum", body.clone(), certificate(&[&keys[0], &keys[1]], &body), "does not verify"),
        ("another header's certificate", other_header.clone(), quorum.clone(), "does not verify"),
        ("txs outside the header", with_tx, quorum.clone(), "txs are not the ones"),
    ];
    for (what, b, cert, reason) in faults {
        match follower.app.validate_certified(&b, &cert).await.expect("a peer fault is no node error") {
            Verdict::Invalid(why) => assert!(why.contains(reason), "{what}: {why}"),
            Verdict::Valid => panic!("{what} was taken"),
        }
    }
    assert_eq!(follower.node.shard().head().height, 0);

    // The certified block is taken and commits to the proposer's header.
    assert_eq!(follower.app.validate_certified(&body, &quorum).await.expect("taken"), Verdict::Valid);
    follower.app.commit(&body, quorum.clone()).await.expect("commits");
    a.app.commit(&body, quorum).await.expect("commits on the proposer");
    assert_eq!(follower.node.shard().head().hash, a.node.shard().head().hash);

    // A certified header whose state root this node does not rebuild: divergence, never a verdict.
    let sealed = a.node.shard().seal_empty(now_ms() + 60_000).expect("no node error").expect("sealed");
    let next = sealed.stage().expect("staged");
    let forked =
        with_header(&BlockBody { header: next.header_bytes.clone(), txs: vec![] }, |h| h.state_root = vec![7; 32]);
    let certified_fork = certificate(&[&keys[0], &keys[1], &keys[2]], &forked);
    let err = follower.app.validate_certified(&forked, &certified_fork).await.expect_err("divergence stops the node");
    let err = err.to_string();
    assert!(err.contains("at height 2") && err.contains("state_root") && err.contains("diverged"), "{err}");
    let err = follower.app.commit(&forked, certified_fork).await.expect_err("and so does its commit");
    assert!(err.to_string().contains("diverged"), "{err}");
    assert_eq!(follower.node.shard().head().height, 1, "the diverging block was not written");
}
