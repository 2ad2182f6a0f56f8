//! A coordinator process following a fake shard that streams forged headers: signed by a key outside the
//! sequencer set, a set member's key with a broken signature, the wrong parent, and a replayed height.
//! Each is rejected with its reason (status and log), no epoch ever commits one, and the genuine headers
//! around them are accepted.

mod support;

use std::time::Duration;

use shardex_core::{
    genesis::{Authorities, Genesis},
    global::verify_epoch,
    ChainId, Keypair, ShardId, B256,
};
use support::{
    fake_shard::{self, finalize, header, Script},
    wait_for, CoordinatorProcess,
};

const CHAIN: ChainId = ChainId(41);
const SHARD: ShardId = ShardId(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_headers_are_rejected_logged_and_never_committed() {
    let bins = support::bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let sequencer = Keypair::from_seed([30; 32]);
    let intruder = Keypair::from_seed([31; 32]);
    let other = Keypair::from_seed([32; 32]).account();
    let mut genesis =
        Genesis::example(Authorities { deposit: other, oracle: other, admin: other }, sequencer.account());
    (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
    let genesis_path = dir.path().join("fake-genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).expect("write genesis");

    let t0 = genesis.genesis_time_ms;
    let (g, g_hash) = finalize(&header(CHAIN, SHARD, 0, B256::ZERO, t0), &[]);
    let (h1, h1_hash) = finalize(&header(CHAIN, SHARD, 1, g_hash, t0 + 10), &[&sequencer]);
    let (h2, h2_hash) = finalize(&header(CHAIN, SHARD, 2, h1_hash, t0 + 20), &[&sequencer]);
    let (wrong_key, _) = finalize(&header(CHAIN, SHARD, 2, h1_hash, t0 + 21), &[&intruder]);
    let (mut bad_sig, _) = finalize(&header(CHAIN, SHARD, 2, h1_hash, t0 + 22), &[&sequencer]);
    bad_sig.signatures[0].signature[10] ^= 1;
    let (wrong_parent, _) = finalize(&header(CHAIN, SHARD, 2, B256::repeat_byte(0xab), t0 + 23), &[&sequencer]);
    let (replay, _) = finalize(&header(CHAIN, SHARD, 1, g_hash, t0 + 24), &[&sequencer]);
    let endpoint = fake_shard::serve(Script {
        chain: CHAIN,
        shard: SHARD,
        chain_headers: vec![g, h1.clone(), h2.clone()],
        stream: vec![h1, wrong_key, bad_sig, wrong_parent, replay, h2],
    })
    .await;

    let coord_key = Keypair::from_seed([33; 32]);
    let coordinator = CoordinatorProcess::start(
        &bins,
        &dir.path().join("coord"),
        coord_key.clone(),
        &[(endpoint, genesis_path)],
        &[],
    );
    let client = coordinator.client().await;

    let status = wait_for(Duration::from_secs(20), "the coordinator to accept height 2", || async {
        let s = client.status().await.ok()?;
        let shard = s.shards.iter().find(|s| s.shard_id == SHARD.0)?.clone();
        (shard.accepted_height == 2 && shard.rejected_headers >= 4).then_some(shard)
    })
    .await;
    assert_eq!(status.rejected_headers, 4, "{status:?}");
    let reasons: Vec<(u64, &str)> = status.recent_rejections.iter().map(|r| (r.height, r.reason.as_str())).collect();
    assert_eq!(
        reasons,
        vec![(2, "UNKNOWN_SIGNER"), (2, "BAD_SIGNATURE"), (2, "WRONG_PARENT"), (1, "REPLAYED_HEIGHT")],
        "{status:?}"
    );
    assert!(status.last_rejection.contains("replayed height 1"), "{}", status.last_rejection);
    assert_eq!(status.accepted_hash, h2_hash.to_vec());

    // Wait for an epoch that commits height 2, then check every epoch only ever committed genuine headers.
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
    for reason in ["UNKNOWN_SIGNER", "BAD_SIGNATURE", "WRONG_PARENT", "REPLAYED_HEIGHT"] {
        assert!(
            log.lines().any(|l| l.contains("coordinator::follow") && l.contains(reason) && l.contains("shard=7")),
            "log does not name {reason}:\n{log}"
        );
    }
}
