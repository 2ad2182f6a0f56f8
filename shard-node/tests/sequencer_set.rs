//! One shard run by four validators (real `shard-node` processes under Malachite) and a real coordinator
//! following all four, under a steady load of deposits sent to random live validators. The current leader is
//! SIGKILLed again and again (once right after it logged its proposal, the other times at seeded random
//! moments) and restarted on its data. After each kill a block from another proposer must be final within
//! 2 s, and the restarted validator must catch up. Then two of four are killed: the shard halts without a
//! fork, and resumes when one returns. At the end: one hash per height on every validator and in every
//! coordinator epoch, every certificate verifies, every tx seen final is still included where it was, and
//! all validators hold one state root.

mod support;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardex_client::{CoordinatorClient, ShardClient};
use shardex_core::{
    block::{decode_header, verify_finalized},
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{sign_tx, TxDomain},
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId, B256,
};
use shardex_test_support::{free_port, sibling_bin, start_coordinator, wait_for, ServerProcess, ShardNodeProcess};

const CHAIN: ChainId = ChainId(61);
const SHARD: ShardId = ShardId(1);
const VALIDATORS: usize = 4;
/// Leader kills, one of them right after the leader logged its proposal.
const KILLS: usize = 10;
/// A block by another proposer must be final within this of each kill.
const TAKEOVER: Duration = Duration::from_secs(2);

fn seed() -> u64 {
    std::env::var("SHARDEX_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5e9_5e7)
}

/// The coordinator binary of this profile.
fn coordinator_bin() -> PathBuf {
    sibling_bin(Path::new(env!("CARGO_BIN_EXE_shard-node")), "coordinator")
}

struct Set {
    keys: Vec<Keypair>,
    nodes: Vec<ShardNodeProcess>,
    rpc_ports: Vec<u16>,
    genesis_path: PathBuf,
    genesis: Genesis,
}

impl Set {
    fn start(dir: &Path, deposit: &Keypair) -> Self {
        let keys: Vec<Keypair> = (0..VALIDATORS).map(|i| Keypair::from_seed([0x40 + i as u8; 32])).collect();
        let authority = Keypair::from_seed([0x4f; 32]).account();
        let mut genesis = Genesis::example(
            Authorities { deposit: deposit.account(), oracle: authority, admin: authority },
            keys[0].account(),
        );
        genesis.validators = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("set");
        (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
        let rpc_ports: Vec<u16> = (0..VALIDATORS).map(|_| free_port()).collect();
        let p2p_ports: Vec<u16> = (0..VALIDATORS).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let rpc = format!("127.0.0.1:{}", rpc_ports[i]);
            let listen = format!("/ip4/127.0.0.1/tcp/{}", p2p_ports[i]);
            let peers: Vec<String> = (0..VALIDATORS)
                .filter(|j| *j != i)
                .map(|j| {
                    format!(
                        "{}@/ip4/127.0.0.1/tcp/{}@http://127.0.0.1:{}",
                        keys[j].account(),
                        p2p_ports[j],
                        rpc_ports[j]
                    )
                })
                .collect();
            let mut args = vec![
                "--rpc.addr",
                &rpc,
                "--block.interval-ms",
                "50",
                "--consensus.engine",
                "malachite",
                "--consensus.listen",
                &listen,
                "--log.filter",
                "info,shard::consensus=debug,arc_malachitebft=warn,libp2p=warn",
            ];
            for p in &peers {
                args.extend(["--consensus.peer", p.as_str()]);
            }
            nodes.push(ShardNodeProcess::start(
                Path::new(env!("CARGO_BIN_EXE_shard-node")),
                &dir.join(format!("v{i}")),
                &genesis,
                key,
                &args,
            ));
        }
        let genesis_path = nodes[0].genesis_path();
        Self { keys, nodes, rpc_ports, genesis_path, genesis }
    }

    fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.rpc_ports[i])
    }

    fn index_of(&self, key: &AccountId) -> Option<usize> {
        self.keys.iter().position(|k| k.account() == *key)
    }
}

/// The live validators' clients.
async fn clients(set: &Set, live: &[bool]) -> Vec<(usize, ShardClient)> {
    let mut out = Vec::new();
    for (i, up) in live.iter().enumerate() {
        if *up {
            if let Ok(c) = ShardClient::connect(&set.endpoint(i)).await {
                out.push((i, c));
            }
        }
    }
    out
}

/// The proposer and height the first answering live validator reports.
async fn round_view(set: &Set, live: &[bool]) -> Option<(usize, u64)> {
    for (_, c) in clients(set, live).await {
        if let Ok(s) = c.status().await {
            let proposer = AccountId::from_slice(&s.proposer).ok()?;
            return Some((set.index_of(&proposer)?, s.height));
        }
    }
    None
}

/// The proposer recorded in the header at `height` on validator `i`.
async fn proposer_at(set: &Set, i: usize, height: u64) -> Option<usize> {
    let c = ShardClient::connect(&set.endpoint(i)).await.ok()?;
    let fh = c.raw().get_header(pb::GetBlockRequest { height }).await.ok()?.into_inner();
    let h = decode_header(&fh).ok()?;
    set.index_of(&AccountId::from_slice(&h.header.proposer).ok()?)
}

/// Txs seen final: hash → (height, index).
type Finals = Arc<Mutex<BTreeMap<B256, (u64, u32)>>>;

/// Sends deposits in small batches to random live validators (retrying NO_LEADER like any SDK client) and
/// records each one seen final, until `stop`.
async fn load(
    endpoints: Vec<String>,
    live: Arc<Mutex<Vec<bool>>>,
    deposit: Keypair,
    finals: Finals,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let domain = TxDomain { chain: CHAIN, shard: SHARD };
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x10ad);
    let mut nonce = 0u64;
    let mut sent = 0u64;
    let mut pending: Vec<B256> = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let up: Vec<usize> =
            live.lock().expect("lock").iter().enumerate().filter(|(_, u)| **u).map(|(i, _)| i).collect();
        let Some(&i) = up.get(rng.gen_range(0..up.len().max(1))) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(client) = ShardClient::connect(&endpoints[i]).await else { continue };
        let txs: Vec<pb::SignedTx> = (0..5)
            .map(|_| {
                nonce += 1;
                let to = Keypair::from_seed([(nonce % 200) as u8; 32]).account();
                sign_tx(
                    &deposit,
                    domain,
                    nonce,
                    Op::Deposit(pb::Deposit { account: to.0.to_vec(), amount_micros: nonce }),
                )
            })
            .collect();
        let hashes: Vec<B256> = txs.iter().map(|t| shardex_core::hash::tx_hash(&t.body)).collect();
        if client.submit_batch(txs).await.is_ok() {
            sent += hashes.len() as u64;
            pending.extend(hashes);
        }
        // Whatever became final since, on this validator.
        let mut still = Vec::new();
        for h in pending.drain(..) {
            match client.tx_status(h).await.ok().and_then(|s| s.status) {
                Some(pb::tx_status::Status::Included(inc)) => {
                    finals.lock().expect("lock").insert(h, (inc.height, inc.index));
                }
                _ => still.push(h),
            }
        }
        // A tx its leader admitted and then lost to a SIGKILL is never final: stop asking after a while.
        let keep = still.len().saturating_sub(400);
        pending = still.split_off(keep);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_survive_leader_kills_halt_without_two_and_never_fork() {
    let seed = seed();
    println!("seed {seed} (replay with SHARDEX_TEST_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let deposit = Keypair::from_seed([0x4e; 32]);
    let mut set = Set::start(dir.path(), &deposit);
    let coord_key = Keypair::from_seed([0x4d; 32]);
    let shards: Vec<(String, PathBuf)> = (0..VALIDATORS).map(|i| (set.endpoint(i), set.genesis_path.clone())).collect();
    let coordinator: ServerProcess = start_coordinator(
        &coordinator_bin(),
        &dir.path().join("coord"),
        &coord_key,
        &shards,
        &["--log.filter", "info"],
    );
    let coord = coordinator.connect(|e| async move { CoordinatorClient::connect(&e).await }).await;

    let live = Arc::new(Mutex::new(vec![true; VALIDATORS]));
    let up = || live.lock().expect("lock").clone();
    wait_for(Duration::from_secs(60), "the set to decide 5 blocks", || async {
        round_view(&set, &up()).await.filter(|(_, h)| *h >= 5)
    })
    .await;

    let finals: Finals = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let endpoints: Vec<String> = (0..VALIDATORS).map(|i| set.endpoint(i)).collect();
    let loader = tokio::spawn(load(endpoints, live.clone(), deposit.clone(), finals.clone(), stop.clone()));

    let right_after_proposing = rng.gen_range(0..KILLS);
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..900))).await;
        let (leader, _) = round_view(&set, &up()).await.expect("a live validator answers");
        if kill == right_after_proposing {
            // Wait for the leader's next "proposing" line, then kill at once: its proposal is out, the votes
            // on it are not.
            let log = set.nodes[leader].dir.join("node.log");
            let seen = std::fs::read_to_string(&log).unwrap_or_default().matches("proposing").count();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(&log).unwrap_or_default().matches("proposing").count() == seen {
                assert!(Instant::now() < deadline, "validator {leader} proposed nothing for 10 s");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let (_, height_at_kill) = round_view(&set, &up()).await.expect("status");
        set.nodes[leader].kill9();
        let killed_at = Instant::now();
        live.lock().expect("lock")[leader] = false;
        let witness = (0..VALIDATORS).find(|i| *i != leader).expect("another validator");
        // A block above the kill, proposed by someone else, final within TAKEOVER.
        let (height, proposer, took) = loop {
            if let Some((h, p)) = first_other_proposer(&set, witness, height_at_kill, leader).await {
                break (h, p, killed_at.elapsed());
            }
            assert!(
                killed_at.elapsed() < TAKEOVER * 3,
                "kill {kill}: no block by another proposer after {:?}",
                killed_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let when = if kill == right_after_proposing { " right after it proposed" } else { "" };
        println!(
            "kill {kill}: validator {leader} down{when} at height {height_at_kill}; height {height} by validator \
             {proposer} after {} ms",
            took.as_millis()
        );
        assert!(took <= TAKEOVER, "kill {kill}: the takeover took {took:?}");

        set.nodes[leader].restart();
        live.lock().expect("lock")[leader] = true;
        let target = round_view(&set, &up()).await.map_or(0, |(_, h)| h);
        wait_for(Duration::from_secs(30), "the restarted validator to catch up", || async {
            let c = ShardClient::connect(&set.endpoint(leader)).await.ok()?;
            (c.status().await.ok()?.height >= target).then_some(())
        })
        .await;
    }

    // Two of four down: no quorum, no progress, no fork.
    let (a, b) = (1, 2);
    for i in [a, b] {
        set.nodes[i].kill9();
        live.lock().expect("lock")[i] = false;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let halted = round_view(&set, &up()).await.map_or(0, |(_, h)| h);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = round_view(&set, &up()).await.map_or(0, |(_, h)| h);
    assert!(still <= halted + 1, "two of four down, yet the shard went from {halted} to {still}");
    set.nodes[a].restart();
    live.lock().expect("lock")[a] = true;
    wait_for(Duration::from_secs(30), "progress with three of four back", || async {
        round_view(&set, &up()).await.filter(|(_, h)| *h >= still + 3)
    })
    .await;
    set.nodes[b].restart();
    live.lock().expect("lock")[b] = true;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = loader.await.expect("load task");
    let seen_final = finals.lock().expect("lock").clone();
    assert!(seen_final.len() > 50, "only {} of {sent} txs became final", seen_final.len());

    // Every validator at one height with one root; one hash per height everywhere; every header certified.
    let all = vec![true; VALIDATORS];
    let top = wait_for(Duration::from_secs(30), "every validator at one height", || async {
        let mut heights = Vec::new();
        for (_, c) in clients(&set, &all).await {
            heights.push(c.status().await.ok()?.height);
        }
        (heights.len() == VALIDATORS && heights.iter().min() == heights.iter().max()).then(|| heights[0])
    })
    .await;
    let mut hashes: Vec<B256> = vec![B256::ZERO; top as usize + 1];
    let mut roots = Vec::new();
    for (i, c) in clients(&set, &all).await {
        for h in 1..=top {
            let fh = c.raw().get_header(pb::GetBlockRequest { height: h }).await.expect("header").into_inner();
            let d = verify_finalized(&fh, CHAIN, SHARD, &set.genesis.validators)
                .unwrap_or_else(|e| panic!("validator {i} height {h}: {e}"));
            if i == 0 {
                hashes[h as usize] = d.hash;
            } else {
                assert_eq!(d.hash, hashes[h as usize], "validator {i} forks at height {h}");
            }
            if h == top {
                roots.push(d.state_root());
            }
        }
        for (tx, (height, index)) in &seen_final {
            match c.tx_status(*tx).await.expect("tx status").status {
                Some(pb::tx_status::Status::Included(inc)) => {
                    assert_eq!((inc.height, inc.index), (*height, *index), "validator {i}: tx {tx} moved")
                }
                other => panic!("validator {i}: tx {tx} seen final at {height} is now {other:?}"),
            }
        }
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "state roots differ at {top}: {roots:?}");
    // No validator ever saw another sign two things for one step (the engine's evidence, which the host logs),
    // restarted ones included: the WAL and the kept proposals make a restarted validator repeat itself.
    for (i, n) in set.nodes.iter().enumerate() {
        let log = n.log();
        assert!(!log.contains("equivocated"), "validator {i} logged equivocation:\n{log}");
        assert!(!log.contains("diverged"), "validator {i} diverged:\n{log}");
    }

    // The coordinator committed only those hashes, and saw no equivocation.
    let status = coord.status().await.expect("status");
    let shard = status.shards.iter().find(|s| s.shard_id == SHARD.0).expect("followed");
    assert_eq!((shard.held_at_height, shard.equivocations), (0, 0), "{shard:?}");
    let latest = coord.latest_epoch().await.expect("epoch");
    let latest =
        shardex_core::global::verify_epoch(&latest, &coord_key.account(), CHAIN).expect("signed").record.number;
    let mut committed = 0;
    for n in 1..=latest {
        let Ok(inc) = coord.inclusion(n, SHARD.0).await else { continue };
        let e = inc.entry.expect("entry");
        if e.height <= top {
            assert_eq!(
                B256::from_slice(&e.block_hash),
                hashes[e.height as usize],
                "epoch {n} commits another block at {}",
                e.height
            );
            committed += 1;
        }
    }
    assert!(committed > 10, "the coordinator committed {committed} epochs of the shard");
    println!("{sent} txs sent, {} seen final; {top} heights on 4 validators; {latest} epochs", seen_final.len());
}

/// The first height above `from` on validator `i` proposed by another validator than `not`.
async fn first_other_proposer(set: &Set, i: usize, from: u64, not: usize) -> Option<(u64, usize)> {
    let c = ShardClient::connect(&set.endpoint(i)).await.ok()?;
    let head = c.status().await.ok()?.height;
    for h in from + 1..=head {
        if let Some(p) = proposer_at(set, i, h).await.filter(|p| *p != not) {
            return Some((h, p));
        }
    }
    None
}
