//! A coordinator process following a fake shard of four validators that streams forged headers: every
//! malformed certificate (too little power, a duplicated signer, a stranger, a broken signature, signatures
//! of another round, too many signatures), a wrong parent and a replayed height. Each is rejected with its
//! reason (status and log), no epoch ever commits one, and the genuine headers around them are accepted.
//! Then two validly certified headers at one height: the pair is kept as evidence (gRPC), the shard is held
//! (its next header refused), and an operator's `--release-shard` lets it continue.

mod support;

use std::time::Duration;

use shardex_core::{
    block::decode_header,
    genesis::{Authorities, Genesis},
    global::verify_epoch,
    validators::ValidatorSet,
    ChainId, Keypair, ShardId, B256,
};
use support::{
    fake_shard::{self, finalize, finalize_at, header, Script},
    wait_for, CoordinatorProcess,
};

const CHAIN: ChainId = ChainId(41);
const SHARD: ShardId = ShardId(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificates_are_rejected_and_equivocation_holds_the_shard() {
    let bins = support::bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let v: Vec<Keypair> = (30u8..34).map(|i| Keypair::from_seed([i; 32])).collect();
    let intruder = Keypair::from_seed([39; 32]);
    let other = Keypair::from_seed([38; 32]).account();
    let mut genesis = Genesis::example(Authorities { deposit: other, oracle: other, admin: other }, v[0].account());
    genesis.validators = ValidatorSet::equal(&v.iter().map(Keypair::account).collect::<Vec<_>>()).expect("set");
    (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
    let genesis_path = dir.path().join("fake-genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).expect("write genesis");

    let t0 = genesis.genesis_time_ms;
    let quorum = [&v[0], &v[1], &v[2]];
    let (g, g_hash) = finalize(&header(CHAIN, SHARD, 0, B256::ZERO, t0), &[]);
    let (h1, h1_hash) = finalize(&header(CHAIN, SHARD, 1, g_hash, t0 + 10), &quorum);
    let (h2, h2_hash) = finalize(&header(CHAIN, SHARD, 2, h1_hash, t0 + 20), &[&v[1], &v[2], &v[3]]);
    let (h3, h3_hash) = finalize(&header(CHAIN, SHARD, 3, h2_hash, t0 + 30), &quorum);
    let at2 = |ts: u64| header(CHAIN, SHARD, 2, h1_hash, ts);
    let (two_of_four, _) = finalize(&at2(t0 + 21), &[&v[0], &v[1]]);
    let (duplicated, _) = finalize(&at2(t0 + 22), &[&v[0], &v[1], &v[1]]);
    let (stranger, _) = finalize(&at2(t0 + 23), &[&v[0], &v[1], &v[2], &intruder]);
    let (mut broken, _) = finalize(&at2(t0 + 24), &quorum);
    broken.signatures[1].signature[10] ^= 1;
    let (mut other_round, _) = finalize_at(&at2(t0 + 25), &quorum, 1);
    other_round.round = 0;
    let (mut too_many, _) = finalize(&at2(t0 + 26), &[&v[0], &v[1], &v[2], &v[3]]);
    too_many.signatures.push(too_many.signatures[0].clone());
    let (wrong_parent, _) = finalize(&header(CHAIN, SHARD, 2, B256::repeat_byte(0xab), t0 + 27), &quorum);
    // A second certified header at height 2: v1 and v2 signed both (more than a third equivocated).
    let (fork2, fork2_hash) = finalize(&at2(t0 + 28), &quorum);
    let endpoint = fake_shard::serve(Script {
        chain: CHAIN,
        shard: SHARD,
        chain_headers: vec![g, h1.clone(), h2.clone(), h3.clone()],
        stream: vec![
            h1.clone(),
            two_of_four,
            duplicated,
            stranger,
            broken,
            other_round,
            too_many,
            wrong_parent,
            h1,
            h2,
            fork2,
            h3,
        ],
    })
    .await;

    let coord_key = Keypair::from_seed([35; 32]);
    let shards = [(endpoint, genesis_path)];
    let mut coordinator = CoordinatorProcess::start(&bins, &dir.path().join("coord"), coord_key.clone(), &shards, &[]);
    let client = coordinator.client().await;

    let status = wait_for(Duration::from_secs(20), "the coordinator to accept height 2 and see the fork", || async {
        let s = client.status().await.ok()?;
        let shard = s.shards.iter().find(|s| s.shard_id == SHARD.0)?.clone();
        (shard.accepted_height == 2 && shard.rejected_headers >= 10).then_some(shard)
    })
    .await;
    let reasons: Vec<(u64, &str)> = status.recent_rejections.iter().map(|r| (r.height, r.reason.as_str())).collect();
    assert_eq!(
        reasons,
        vec![
            (2, "NO_QUORUM"),
            (2, "DUPLICATE_SIGNER"),
            (2, "UNKNOWN_SIGNER"),
            (2, "BAD_SIGNATURE"),
            (2, "BAD_SIGNATURE"),
            (2, "TOO_MANY_SIGNATURES"),
            (2, "WRONG_PARENT"),
            (1, "REPLAYED_HEIGHT"),
            (2, "EQUIVOCATION"),
            (3, "SHARD_HELD"),
        ],
        "{status:?}"
    );
    assert_eq!(status.accepted_hash, h2_hash.to_vec());
    assert_eq!((status.held_at_height, status.equivocations), (2, 1), "{status:?}");

    // The evidence: the accepted header and the conflicting one, both certified.
    let evidence = client.evidence(SHARD.0).await.expect("evidence");
    assert_eq!(evidence.len(), 1);
    let e = &evidence[0];
    let hash_of = |fh: &Option<shardex_core::pb::FinalizedHeader>| {
        decode_header(fh.as_ref().expect("header")).expect("decodes").hash
    };
    assert_eq!(
        (e.shard_id, e.height, hash_of(&e.accepted), hash_of(&e.conflicting)),
        (SHARD.0, 2, h2_hash, fork2_hash)
    );

    // Every epoch committed only genuine headers, and none beyond the hold.
    let latest = wait_for(Duration::from_secs(10), "an epoch with height 2", || async {
        let inc = client.inclusion(0, SHARD.0).await.ok()?;
        (inc.entry.as_ref()?.height == 2).then_some(inc.epoch?)
    })
    .await;
    let latest = verify_epoch(&latest, &coord_key.account(), CHAIN).expect("signed by the coordinator");
    for n in 1..=latest.record.number {
        match client.inclusion(n, SHARD.0).await {
            Ok(inc) => {
                let e = inc.entry.expect("entry");
                let committed = B256::from_slice(&e.block_hash);
                assert!(
                    (e.height == 1 && committed == h1_hash) || (e.height == 2 && committed == h2_hash),
                    "epoch {n} commits {e:?}"
                );
            }
            Err(err) => assert_eq!(err.code(), Some(tonic::Code::NotFound), "epoch {n}: {err}"),
        }
    }
    let log = coordinator.log();
    for reason in [
        "NO_QUORUM",
        "DUPLICATE_SIGNER",
        "UNKNOWN_SIGNER",
        "BAD_SIGNATURE",
        "TOO_MANY_SIGNATURES",
        "WRONG_PARENT",
        "REPLAYED_HEIGHT",
        "EQUIVOCATION",
        "SHARD_HELD",
    ] {
        assert!(
            log.lines().any(|l| l.contains("coordinator::follow") && l.contains(reason) && l.contains("shard=7")),
            "log does not name {reason}:\n{log}"
        );
    }

    // A restart keeps the hold (the genuine height 3 is refused again)...
    coordinator.kill9();
    let mut coordinator = CoordinatorProcess::start(&bins, &dir.path().join("coord"), coord_key.clone(), &shards, &[]);
    let client = coordinator.client().await;
    let status = wait_for(Duration::from_secs(20), "height 3 refused again after a restart", || async {
        let s = client.status().await.ok()?;
        let shard = s.shards.iter().find(|s| s.shard_id == SHARD.0)?.clone();
        shard.recent_rejections.iter().any(|r| r.reason == "SHARD_HELD").then_some(shard)
    })
    .await;
    assert_eq!((status.accepted_height, status.held_at_height), (2, 2), "{status:?}");
    // ...and the operator's release lets the shard continue with its genuine chain.
    coordinator.kill9();
    let coordinator =
        CoordinatorProcess::start(&bins, &dir.path().join("coord"), coord_key, &shards, &["--release-shard", "7"]);
    let client = coordinator.client().await;
    let status = wait_for(Duration::from_secs(20), "height 3 after the release", || async {
        let s = client.status().await.ok()?;
        let shard = s.shards.iter().find(|s| s.shard_id == SHARD.0)?.clone();
        (shard.accepted_height == 3).then_some(shard)
    })
    .await;
    assert_eq!((status.accepted_hash, status.held_at_height, status.equivocations), (h3_hash.to_vec(), 0, 1));
    assert_eq!(client.evidence(SHARD.0).await.expect("evidence").len(), 1, "the evidence stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_streams_are_bounded_idle_ones_end_and_far_starts_are_refused() {
    use tokio_stream::StreamExt;

    let bins = support::bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let v = Keypair::from_seed([50; 32]);
    let other = Keypair::from_seed([51; 32]).account();
    let mut genesis = Genesis::example(Authorities { deposit: other, oracle: other, admin: other }, v.account());
    (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
    let genesis_path = dir.path().join("fake-genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).expect("write genesis");
    let t0 = genesis.genesis_time_ms;
    let (g, g_hash) = finalize(&header(CHAIN, SHARD, 0, B256::ZERO, t0), &[]);
    let (h1, _) = finalize(&header(CHAIN, SHARD, 1, g_hash, t0 + 10), &[&v]);
    let endpoint =
        fake_shard::serve(Script { chain: CHAIN, shard: SHARD, chain_headers: vec![g, h1.clone()], stream: vec![h1] })
            .await;
    let shards = [(endpoint, genesis_path)];
    let limits = ["--rpc.max-subscribers", "1", "--rpc.stream-idle-ms", "1000"];
    let coordinator =
        CoordinatorProcess::start(&bins, &dir.path().join("coord"), Keypair::from_seed([52; 32]), &shards, &limits);
    let client = coordinator.client().await;
    let latest = wait_for(Duration::from_secs(20), "a first epoch", || async {
        let e = client.latest_epoch().await.ok()?;
        use prost::Message;
        Some(shardex_core::coordpb::EpochRecord::decode(e.record.as_slice()).ok()?.number)
    })
    .await;

    let far = client.stream_epochs(latest + 10_000).await.err().expect("a start 10000 epochs ahead is refused");
    assert_eq!(far.code(), Some(tonic::Code::NotFound), "{far}");

    // A start a little ahead waits, quietly, in the only slot.
    let mut quiet = client.stream_epochs(latest + 500).await.expect("a near-future start");
    let refused = client.stream_epochs(0).await.err().expect("the one slot is taken");
    assert_eq!(refused.code(), Some(tonic::Code::Unavailable), "{refused}");

    // With nothing to send for a second, the stream ends with UNAVAILABLE and frees its slot.
    let end = tokio::time::timeout(Duration::from_secs(5), quiet.next())
        .await
        .expect("the idle stream ends in time")
        .expect("a final status")
        .expect_err("an error status");
    assert_eq!(end.code(), tonic::Code::Unavailable, "{end:?}");
    assert!(end.message().contains("resubscribe"), "{end:?}");
    let mut again =
        wait_for(Duration::from_secs(5), "the freed slot", || async { client.stream_epochs(0).await.ok() }).await;
    let first = tokio::time::timeout(Duration::from_secs(5), again.next()).await.expect("in time").expect("an epoch");
    assert!(first.is_ok(), "{first:?}");
}
