//! State sync between real `shard-node` processes on loopback ports chosen at run time.
//!
//! Four validators serve snapshots over libp2p (`--sync.listen`); one of them corrupts every chunk it serves
//! (`SHARDEX_CORRUPT_SNAPSHOT`). After 100,000 accounts exist, a follower starts on an empty data directory
//! with `--sync snapshot`: it must refuse the corrupt peer's chunk, finish from the others, serve account
//! proofs that verify against a coordinator-signed epoch, hold no block below its snapshot, and follow the
//! blocks decided after it. Then a validator's data directory is deleted and the validator restarted with
//! `--sync snapshot`: it must rejoin consensus, proven by the set deciding new blocks while another
//! validator is down (three of four votes are needed, so the rejoined one must be voting).

mod support;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use shardex_client::{CoordinatorClient, ShardClient};
use shardex_core::{
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{sign_tx, TxDomain},
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId, B256,
};
use shardex_test_support::{sibling_bin, start_coordinator, wait_for, ServerProcess, ShardNodeProcess};
use support::set::SetPorts;

const CHAIN: ChainId = ChainId(63);
const SHARD: ShardId = ShardId(1);
const VALIDATORS: usize = 4;
/// Accounts that exist before the follower starts.
const ACCOUNTS: u32 = 100_000;
/// Deposits per batch (at most the genesis nonce window).
const BATCH: usize = 1_000;
/// The validator that corrupts every snapshot chunk it serves.
const LIAR: usize = 2;
/// The validator whose data directory is deleted.
const WIPED: usize = 3;
const USD: i64 = 1_000_000;

fn node_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shard-node"))
}

struct Net {
    dir: PathBuf,
    genesis: Genesis,
    keys: Vec<Keypair>,
    ports: SetPorts,
}

impl Net {
    fn endpoint(&self, i: usize) -> String {
        self.ports.endpoint(i)
    }

    /// Starts node `i` (a validator below [`VALIDATORS`], else a follower) serving snapshots on a port of
    /// its choosing; `extra` comes last.
    fn start(&self, i: usize, extra: &[&str], envs: &[(&str, &str)]) -> ShardNodeProcess {
        let own = self.ports.node_args(&self.keys, VALIDATORS, i);
        let mut args: Vec<&str> = own.iter().map(String::as_str).collect();
        args.extend(["--sync.listen", "/ip4/127.0.0.1/tcp/0"]);
        args.extend(extra);
        ShardNodeProcess::start_with_env(
            node_bin(),
            &self.dir.join(format!("n{i}")),
            &self.genesis,
            &self.keys[i],
            &args,
            envs,
        )
    }
}

/// The snapshot address node `n` listens on.
fn sync_addr(n: &ShardNodeProcess) -> String {
    std::fs::read_to_string(n.dir.join("data").join("sync.addr")).expect("sync.addr").trim().to_owned()
}

async fn height(endpoint: &str) -> Option<u64> {
    let c = ShardClient::connect(endpoint).await.ok()?;
    c.status().await.ok().map(|s| s.height)
}

fn account(i: u32) -> AccountId {
    let mut id = [0x5a; 32];
    id[..4].copy_from_slice(&i.to_be_bytes());
    AccountId(id)
}

/// Deposits `amount` into each of `accounts`, in batches sent to the validators in turn; each batch is final
/// before the next is sent (the deposit authority's nonces must stay inside the nonce window). Returns the
/// next nonce and the last deposit's hash.
async fn fund(
    net: &Net,
    deposit: &Keypair,
    mut nonce: u64,
    accounts: impl Iterator<Item = AccountId>,
    amount: i64,
) -> (u64, B256) {
    let domain = TxDomain { chain: CHAIN, shard: SHARD };
    let accounts: Vec<AccountId> = accounts.collect();
    let mut last = B256::ZERO;
    for (b, chunk) in accounts.chunks(BATCH).enumerate() {
        let txs: Vec<pb::SignedTx> = chunk
            .iter()
            .map(|a| {
                nonce += 1;
                sign_tx(
                    deposit,
                    domain,
                    nonce,
                    Op::Deposit(pb::Deposit { account: a.0.to_vec(), amount_micros: amount.unsigned_abs() }),
                )
            })
            .collect();
        last = shardex_core::hash::tx_hash(&txs[txs.len() - 1].body);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut turn = b;
        loop {
            assert!(Instant::now() < deadline, "batch {b} was never accepted whole");
            turn += 1;
            let Ok(client) = ShardClient::connect(&net.endpoint(turn % VALIDATORS)).await else { continue };
            match client.submit_batch(txs.clone()).await {
                // A retried batch finds its txs pending or already included.
                Ok(results)
                    if results.iter().all(|r| r.accepted || r.reason == "DUPLICATE_TX" || r.reason == "NONCE_USED") =>
                {
                    break
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = ShardClient::connect(&net.endpoint(0)).await.expect("validator 0");
        wait_for(Duration::from_secs(60), "a deposit batch to be final", || async {
            client.wait_final(last, Duration::from_millis(500)).await.ok()
        })
        .await;
    }
    (nonce, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_state_sync_from_snapshots_past_a_corrupt_peer_and_a_wiped_validator_rejoins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<Keypair> = (0..=VALIDATORS).map(|i| Keypair::from_seed([0x70 + i as u8; 32])).collect();
    let deposit = Keypair::from_seed([0x7e; 32]);
    let authority = Keypair::from_seed([0x7f; 32]).account();
    let mut genesis = Genesis::example(
        Authorities { deposit: deposit.account(), oracle: authority, admin: authority },
        keys[0].account(),
    );
    let validator_keys: Vec<AccountId> = keys[..VALIDATORS].iter().map(Keypair::account).collect();
    genesis.validators = ValidatorSet::equal(&validator_keys).expect("set");
    (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
    genesis.market.nonce_window = 1024;
    let net = Net { dir: dir.path().to_path_buf(), genesis, keys, ports: SetPorts::free(VALIDATORS + 1) };
    let follower = VALIDATORS;

    let mut nodes: Vec<ShardNodeProcess> = (0..VALIDATORS)
        .map(|i| match i {
            LIAR => net.start(i, &[], &[("SHARDEX_CORRUPT_SNAPSHOT", "1")]),
            _ => net.start(i, &[], &[]),
        })
        .collect();
    let coord_key = Keypair::from_seed([0x7d; 32]);
    let genesis_path = nodes[0].genesis_path();
    let shards: Vec<(String, PathBuf)> = (0..VALIDATORS).map(|i| (net.endpoint(i), genesis_path.clone())).collect();
    let coordinator: ServerProcess = start_coordinator(
        &sibling_bin(node_bin(), "coordinator"),
        &dir.path().join("coord"),
        &coord_key,
        &shards,
        &["--log.filter", "info"],
    );
    let coord = coordinator.connect(|e| async move { CoordinatorClient::connect(&e).await }).await;
    wait_for(Duration::from_secs(60), "the set at height 2", || async {
        height(&net.endpoint(0)).await.filter(|h| *h >= 2)
    })
    .await;

    let funding = Instant::now();
    let (nonce, _) = fund(&net, &deposit, 0, (0..ACCOUNTS).map(account), USD).await;
    println!("{ACCOUNTS} accounts funded in {:.1} s", funding.elapsed().as_secs_f64());

    // A follower on an empty data directory, syncing from an honest peer, the liar and another honest peer
    // in small chunks (every peer gets turns).
    let peers = [sync_addr(&nodes[0]), sync_addr(&nodes[LIAR]), sync_addr(&nodes[1])];
    let mut args = vec!["--sync", "snapshot", "--sync.chunk-nodes", "2048"];
    for p in &peers {
        args.extend(["--sync.peer", p.as_str()]);
    }
    let started = Instant::now();
    nodes.push(net.start(follower, &args, &[]));
    let log = nodes[follower].log();
    println!("follower synced and serving after {:.1} s", started.elapsed().as_secs_f64());
    for line in log.lines().filter(|l| l.contains("shard::sync") || l.contains("shard::statesync")) {
        println!("  follower: {line}");
    }
    assert!(log.contains("synced from a snapshot"), "the follower did not sync from a snapshot:\n{log}");
    assert!(
        log.contains("snapshot chunk refused") && log.contains(&peers[1]),
        "the corrupt peer's chunk was not refused by name:\n{log}"
    );
    let f = nodes[follower].client().await;
    let status = f.status().await.expect("status");
    assert_eq!(status.role, "follower");
    let base = status.snapshot_base;
    assert!(base >= 2 && status.height >= base, "synced to height {base}, at {}", status.height);
    let err = f.block(1).await.expect_err("no block below the snapshot");
    assert!(err.to_string().contains("began from a snapshot"), "{err}");

    // Proofs from the follower verify against a coordinator epoch that commits a height it holds.
    wait_for(Duration::from_secs(60), "an epoch the follower can prove against", || async {
        let inclusion = coord.inclusion(0, SHARD.0).await.ok()?;
        let committed = inclusion.entry.as_ref()?.height;
        let fh = height(&net.endpoint(follower)).await?;
        (committed >= base && fh >= committed).then_some(())
    })
    .await;
    for i in (0..ACCOUNTS).step_by(9_973) {
        let verified = f
            .account_global(&coord, &coord_key.account(), 0, &account(i), &net.genesis.validators)
            .await
            .unwrap_or_else(|e| panic!("account {i}: {e}"));
        let record = verified.record.as_ref().unwrap_or_else(|| panic!("account {i} proven absent"));
        assert_eq!(record.collateral_micros, USD, "account {i}");
    }

    // The follower follows live blocks: new deposits reach it.
    let (_, last) = fund(&net, &deposit, nonce, (0..50).map(account), 2 * USD).await;
    wait_for(Duration::from_secs(60), "the follower to see the new deposits final", || async {
        f.wait_final(last, Duration::from_millis(500)).await.ok()
    })
    .await;
    assert_eq!(f.account(&account(7)).await.expect("account").map(|r| r.collateral_micros), Some(3 * USD));

    // A validator loses its data directory and comes back by state sync.
    nodes[WIPED].kill9();
    std::fs::remove_dir_all(nodes[WIPED].dir.join("data")).expect("wipe");
    let wiped_peers = [sync_addr(&nodes[0]), sync_addr(&nodes[1])];
    nodes[WIPED].add_args(&["--sync", "snapshot", "--sync.peer", &wiped_peers[0], "--sync.peer", &wiped_peers[1]]);
    nodes[WIPED].restart();
    let log = nodes[WIPED].log();
    assert!(log.contains("synced from a snapshot"), "the wiped validator did not sync from a snapshot:\n{log}");
    let w = nodes[WIPED].client().await;
    let status = w.status().await.expect("status");
    assert_eq!(status.role, "validator");
    assert!(status.snapshot_base > base, "the wiped validator began at {}", status.snapshot_base);
    let target = height(&net.endpoint(0)).await.expect("validator 0 answers");
    wait_for(Duration::from_secs(60), "the wiped validator at the set's height", || async {
        height(&net.endpoint(WIPED)).await.filter(|h| *h >= target)
    })
    .await;

    // With validator 0 down, blocks need the other three: the rejoined validator must be voting.
    nodes[0].kill9();
    let before = height(&net.endpoint(1)).await.expect("validator 1 answers");
    wait_for(Duration::from_secs(60), "three validators, one of them rejoined, to decide blocks", || async {
        let h1 = height(&net.endpoint(1)).await?;
        let hw = height(&net.endpoint(WIPED)).await?;
        (h1 >= before + 3 && hw >= before + 3).then_some(())
    })
    .await;
    for n in &mut nodes {
        n.kill9();
    }
}
