//! Two real `shard-node` processes and a real `coordinator`: deposits on both shards are verified from
//! the coordinator's signature down to the account record (through the SDK's one-call check and through
//! the `shardex` CLI); then the coordinator is SIGKILLed while a shard moves on, restarted on the same
//! data directory, and the epoch chain continues without a gap, a fork or a re-signed number.

mod support;

use std::{collections::BTreeMap, process::Command, time::Duration};

use shardex_client::{CoordinatorClient, ShardClient, Wallet};
use shardex_core::{
    coordpb,
    global::{epoch_hash, verify_epoch},
    AccountId, ChainId, Keypair, B256,
};
use support::{wait_for, CoordinatorProcess, ShardKeys, ShardProcess};

const CHAIN: ChainId = ChainId(9);
const USD: u64 = 1_000_000;
const FINAL: Duration = Duration::from_secs(20);

async fn deposit(client: &ShardClient, authority: &Keypair, to: &AccountId, usd: u64) -> u64 {
    let mut w = Wallet::new(authority.clone(), client).await.expect("wallet");
    let h = w.deposit(client, to, usd * USD).await.expect("deposit admitted");
    client.wait_final(h, FINAL).await.expect("deposit final").height
}

/// Waits for an epoch whose entry for `shard` is at `height` or above.
async fn epoch_with(coord: &CoordinatorClient, shard: u32, height: u64) -> coordpb::ShardInclusion {
    wait_for(Duration::from_secs(20), "an epoch committing the deposit", || async {
        let inc = coord.inclusion(0, shard).await.ok()?;
        (inc.entry.as_ref()?.height >= height).then_some(inc)
    })
    .await
}

fn number(e: &coordpb::SignedEpoch) -> u64 {
    use prost::Message;
    coordpb::EpochRecord::decode(e.record.as_slice()).expect("record").number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_verify_to_a_signed_epoch_and_the_chain_survives_kill9() {
    let bins = support::bin_dir();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = [ShardKeys::new(10), ShardKeys::new(20)];
    let shards: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            ShardProcess::start(
                &bins,
                &dir.path().join(format!("shard-{}", i + 1)),
                &k.genesis(CHAIN.0, i as u32 + 1),
                &k.node,
            )
        })
        .collect();
    let coord_key = Keypair::from_seed([77; 32]);
    let follow: Vec<(String, std::path::PathBuf)> =
        shards.iter().map(|s| (s.endpoint.clone(), s.genesis_path())).collect();
    let mut coordinator = CoordinatorProcess::start(&bins, &dir.path().join("coord"), coord_key.clone(), &follow, &[]);
    let coord = coordinator.client().await;

    let alice = Keypair::from_seed([0xa1; 32]).account();
    let clients = [shards[0].client().await, shards[1].client().await];
    let heights = [
        deposit(&clients[0], &keys[0].deposit, &alice, 1_000).await,
        deposit(&clients[1], &keys[1].deposit, &alice, 250).await,
    ];

    // The SDK's one-call check (core::global::verify_account_global under the hood) on both shards.
    for (i, (client, usd)) in clients.iter().zip([1_000, 250]).enumerate() {
        let shard = i as u32 + 1;
        let inc = epoch_with(&coord, shard, heights[i]).await;
        let epoch = number(inc.epoch.as_ref().expect("epoch"));
        let v = client
            .account_global(&coord, &coord_key.account(), epoch, &alice, &keys[i].validators())
            .await
            .expect("verifies end to end");
        assert_eq!(v.record.map(|r| r.collateral_micros), Some(usd as i64 * USD as i64));
        assert_eq!(v.entry.shard_id, shard);
        assert!(v.entry.height >= heights[i]);
        assert_eq!(v.epoch.record.number, epoch);
        // The same data does not verify against another coordinator key or another shard's validators.
        let wrong_key = Keypair::from_seed([78; 32]).account();
        assert!(client.account_global(&coord, &wrong_key, epoch, &alice, &keys[i].validators()).await.is_err());
        let other_set = keys[1 - i].validators();
        assert!(client.account_global(&coord, &coord_key.account(), epoch, &alice, &other_set).await.is_err());
    }

    // The CLI verifies the same way and says what it verified.
    let out = Command::new(bins.join("shardex"))
        .args(["--node", &shards[0].endpoint, "account", &alice.to_hex(), "--prove", "--global"])
        .args(["--coordinator", &coordinator.endpoint, "--coordinator-key", &coord_key.account().to_hex()])
        .arg("--genesis")
        .arg(shards[0].genesis_path())
        .output()
        .expect("run shardex");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "shardex failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("collateral  1000.000000"), "{text}");
    assert!(text.contains("signed by coordinator"), "{text}");
    assert!(text.contains("proven under global root"), "{text}");
    // A wrong trusted key makes the CLI fail.
    let out = Command::new(bins.join("shardex"))
        .args(["--node", &shards[0].endpoint, "account", &alice.to_hex(), "--prove", "--global"])
        .args(["--coordinator", &coordinator.endpoint, "--coordinator-key", &"11".repeat(32)])
        .arg("--genesis")
        .arg(shards[0].genesis_path())
        .output()
        .expect("run shardex");
    assert!(!out.status.success());

    // Status: both shards followed, caught up, nothing rejected.
    let status = wait_for(Duration::from_secs(10), "both shards caught up", || async {
        let s = coord.status().await.ok()?;
        s.shards.iter().all(|s| s.connected && s.lag_blocks == 0 && s.accepted_height >= 1).then_some(s)
    })
    .await;
    assert!(status.shards.iter().all(|s| s.rejected_headers == 0), "{status:?}");
    assert_eq!(status.coordinator_key, coord_key.account().0.to_vec());

    // Record what was published, SIGKILL, move shard 1 on while the coordinator is down, restart.
    let before_kill = number(&coord.latest_epoch().await.expect("latest"));
    let mut seen: BTreeMap<u64, coordpb::SignedEpoch> = BTreeMap::new();
    for n in 1..=before_kill {
        seen.insert(n, coord.epoch(n).await.expect("epoch"));
    }
    coordinator.kill9();
    let h_down = deposit(&clients[0], &keys[0].deposit, &alice, 5).await;
    coordinator.restart();
    let coord = coordinator.client().await;
    let inc = epoch_with(&coord, 1, h_down).await;
    let after = number(inc.epoch.as_ref().expect("epoch"));
    assert!(after > before_kill);
    let v = clients[0]
        .account_global(&coord, &coord_key.account(), after, &alice, &keys[0].validators())
        .await
        .expect("verifies after restart");
    assert_eq!(v.record.map(|r| r.collateral_micros), Some(1_005 * USD as i64));

    // The chain: every number once, each parent the previous epoch's hash, time monotonic, everything
    // signed by the one key, and nothing published before the kill re-signed differently.
    let mut prev: Option<(B256, u64)> = None;
    let mut idle = 0;
    for n in 1..=after {
        let e = coord.epoch(n).await.expect("every epoch retained");
        if let Some(old) = seen.get(&n) {
            assert_eq!(&e, old, "epoch {n} changed across the restart");
        }
        let v = verify_epoch(&e, &coord_key.account(), CHAIN).expect("signed");
        assert_eq!(v.record.number, n);
        match prev {
            None => assert_eq!(v.parent_hash, B256::ZERO),
            Some((hash, time)) => {
                assert_eq!(v.parent_hash, hash, "epoch {n} does not extend epoch {}", n - 1);
                assert!(v.record.time_ms >= time);
            }
        }
        assert_eq!(v.hash, epoch_hash(&e.record));
        idle += usize::from(v.record.new_headers == 0);
        prev = Some((v.hash, v.record.time_ms));
    }
    assert!(idle > 0, "some epochs carry no new shard header and are marked so");
    let log = coordinator.log();
    assert!(log.contains("resuming the epoch chain"), "{log}");
}
