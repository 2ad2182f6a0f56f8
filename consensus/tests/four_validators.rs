//! Four validators of one shard, in process, on loopback ports chosen at run time, deciding blocks of a toy
//! application through the real engine, network, WAL and host. Every decided header's certificate must pass
//! `shardex_core::block::verify_finalized`; every height has one hash on every node; with one validator
//! stopped the rest go on, with two stopped they halt. Followers (full nodes outside the set) decide the
//! same chain, one from the start and one that joins late and catches up by value sync; a follower whose
//! application cannot replay a certified block stops with an error instead of stalling.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use malachitebft_core_types::LinearTimeouts;
use prost::Message;
use shardex_consensus::{
    engine::{start, EngineSettings, Role, Running},
    store::ProposalStore,
    AppError, AppHead, BlockApp, BlockBody, ShardCtx, StreamLimits, Verdict,
};
use shardex_core::{
    block::{verify_finalized, Certificate},
    hash::b256_from_slice,
    pb,
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId, B256,
};

const CTX: ShardCtx = ShardCtx { chain: ChainId(77), shard: ShardId(3) };

/// A chain of headers with one made-up tx each; validation checks height, parent and proposer.
struct ToyApp {
    me: AccountId,
    validators: ValidatorSet,
    chain: Mutex<Vec<(BlockBody, Certificate)>>,
    /// This node re-executes the block at this height differently (a non-deterministic application).
    diverge_at: Option<u64>,
}

impl ToyApp {
    fn header(body: &BlockBody) -> Result<pb::BlockHeader, AppError> {
        pb::BlockHeader::decode(body.header.as_slice()).map_err(|e| AppError(e.to_string()))
    }

    fn hashes(&self) -> Vec<B256> {
        self.chain.lock().expect("lock").iter().map(|(b, _)| b.hash()).collect()
    }
}

#[async_trait]
impl BlockApp for ToyApp {
    fn head(&self) -> Result<AppHead, AppError> {
        let chain = self.chain.lock().expect("lock");
        Ok(match chain.last() {
            None => AppHead { height: 0, hash: B256::ZERO, proposer: None },
            Some((body, _)) => {
                let h = Self::header(body)?;
                AppHead { height: h.height, hash: body.hash(), proposer: AccountId::from_slice(&h.proposer).ok() }
            }
        })
    }

    async fn build(&self, height: u64, _deadline: Instant) -> Result<BlockBody, AppError> {
        let head = self.head()?;
        let header = pb::BlockHeader {
            chain_id: CTX.chain.0,
            shard_id: CTX.shard.0,
            height,
            parent_hash: head.hash.to_vec(),
            timestamp_ms: height,
            tx_root: vec![0; 32],
            receipts_root: vec![0; 32],
            state_root: vec![height as u8; 32],
            events_root: vec![0; 32],
            proposer: self.me.0.to_vec(),
            ..Default::default()
        };
        Ok(BlockBody { header: header.encode_to_vec(), txs: vec![format!("tx at {height}").into_bytes()] })
    }

    async fn validate(&self, proposer: Option<AccountId>, body: &BlockBody) -> Result<Verdict, AppError> {
        let head = self.head()?;
        let Ok(h) = Self::header(body) else { return Ok(Verdict::Invalid("undecodable".into())) };
        let parent = b256_from_slice(&h.parent_hash).unwrap_or_default();
        let by = AccountId::from_slice(&h.proposer).ok();
        Ok(if h.height != head.height + 1 || parent != head.hash {
            Verdict::Invalid(format!("height {} parent {parent} does not extend {}", h.height, head.height))
        } else if self.diverge_at == Some(h.height) {
            Verdict::Invalid("re-execution rebuilds another state root".into())
        } else if proposer.is_some() && by != proposer {
            Verdict::Invalid("header names another proposer".into())
        } else {
            Verdict::Valid
        })
    }

    async fn validate_certified(&self, body: &BlockBody, certificate: &Certificate) -> Result<Verdict, AppError> {
        let fh = certificate.clone().finalize(body.header.clone());
        if let Err(e) = verify_finalized(&fh, CTX.chain, CTX.shard, &self.validators) {
            return Ok(Verdict::Invalid(format!("certificate: {e}")));
        }
        match self.validate(None, body).await? {
            Verdict::Valid => Ok(Verdict::Valid),
            Verdict::Invalid(why) if why.starts_with("re-execution") => {
                Err(AppError(format!("certified block {} does not replay here: {why}", body.hash())))
            }
            invalid => Ok(invalid),
        }
    }

    async fn commit(&self, body: &BlockBody, certificate: Certificate) -> Result<(), AppError> {
        let fh = certificate.clone().finalize(body.header.clone());
        verify_finalized(&fh, CTX.chain, CTX.shard, &self.validators)
            .map_err(|e| AppError(format!("engine certificate refused by core: {e}")))?;
        let mut chain = self.chain.lock().expect("lock");
        let h = Self::header(body)?;
        if h.height != chain.len() as u64 + 1 {
            return Err(AppError(format!("commit of {} on {}", h.height, chain.len())));
        }
        chain.push((body.clone(), certificate));
        Ok(())
    }

    fn decided(&self, height: u64) -> Result<Option<(BlockBody, Certificate)>, AppError> {
        let chain = self.chain.lock().expect("lock");
        Ok(height.checked_sub(1).and_then(|i| chain.get(i as usize)).cloned())
    }

    fn history_min_height(&self) -> u64 {
        1
    }

    fn started_round(&self, _height: u64, _round: u32, _proposer: AccountId) {}
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

struct Node {
    app: Arc<ToyApp>,
    running: Option<Running>,
    _db: sled::Db,
}

/// Starts node `i` (listening on `ports[i]`) as `role`, dialing the validators, which listen on the first
/// `validators.len()` ports.
async fn start_node(
    role: Role,
    validators: &ValidatorSet,
    ports: &[u16],
    i: usize,
    dir: &std::path::Path,
    diverge_at: Option<u64>,
) -> Node {
    let me = match &role {
        Role::Validator(k) | Role::Follower(k) => k.account(),
    };
    let app = Arc::new(ToyApp { me, validators: validators.clone(), chain: Mutex::new(Vec::new()), diverge_at });
    let db = sled::open(dir.join(format!("node-{i}"))).expect("db");
    let store = ProposalStore::new(db.open_tree("consensus").expect("tree"));
    let settings = EngineSettings {
        moniker: format!("v{i}"),
        listen: format!("/ip4/127.0.0.1/tcp/{}", ports[i]),
        peers: ports
            .iter()
            .zip(validators.keys())
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (p, key))| (key, format!("/ip4/127.0.0.1/tcp/{p}")))
            .collect(),
        timeouts: LinearTimeouts {
            propose: Duration::from_millis(600),
            propose_delta: Duration::from_millis(200),
            prevote: Duration::from_millis(300),
            prevote_delta: Duration::from_millis(100),
            precommit: Duration::from_millis(300),
            precommit_delta: Duration::from_millis(100),
            rebroadcast: Duration::from_millis(1_000),
            max_timeout: Duration::from_secs(10),
        },
        target_time: Some(Duration::from_millis(30)),
        max_idle: Duration::ZERO,
        wal_path: dir.join(format!("node-{i}/wal")),
        streams: StreamLimits::default(),
        max_sync_batch: 32,
    };
    let running = start(CTX, role, validators.clone(), settings, Arc::clone(&app), store).await.expect("starts");
    Node { app, running: Some(running), _db: db }
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_one_chain(nodes: &[&Node]) {
    let chains: Vec<Vec<B256>> = nodes.iter().map(|n| n.app.hashes()).collect();
    let mut by_height: HashMap<usize, B256> = HashMap::new();
    for chain in &chains {
        for (h, hash) in chain.iter().enumerate() {
            let first = *by_height.entry(h).or_insert(*hash);
            assert_eq!(first, *hash, "two hashes at height {}", h + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_decide_one_chain_survive_one_down_and_halt_with_two_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
    let validators = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("set");
    // Four validators, a follower from the start, one that joins late, and one that cannot replay height 6.
    let ports: Vec<u16> = (0..7).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        nodes.push(start_node(Role::Validator(k.clone()), &validators, &ports, i, dir.path(), None).await);
    }
    let follower = |seed: u8| Role::Follower(Keypair::from_seed([seed; 32]));
    let mut early = start_node(follower(0xf1), &validators, &ports, 4, dir.path(), None).await;
    let mut diverging = start_node(follower(0xf3), &validators, &ports, 6, dir.path(), Some(6)).await;

    wait_for("10 heights on every validator", Duration::from_secs(60), || {
        nodes.iter().all(|n| n.app.hashes().len() >= 10)
    })
    .await;
    assert_one_chain(&nodes.iter().collect::<Vec<_>>());

    // The diverging follower stops on the certified block it cannot replay, saying so, and never commits it.
    let mut stopped = diverging.running.take().expect("running");
    let why = tokio::time::timeout(Duration::from_secs(30), stopped.stopped()).await.expect("the follower stops");
    assert!(why.to_string().contains("does not replay here"), "stopped for another reason: {why}");
    assert_eq!(diverging.app.hashes().len(), 5, "committed up to the height before the one it cannot replay");
    stopped.shutdown().await;

    // A follower started now catches up by value sync; both followers hold the validators' chain.
    let mut late = start_node(follower(0xf2), &validators, &ports, 5, dir.path(), None).await;
    // The validators keep deciding a block every 30 ms: the followers must reach the height they had now.
    let target = nodes[0].app.hashes().len();
    wait_for("the followers at the validators' height", Duration::from_secs(60), || {
        early.app.hashes().len() >= target && late.app.hashes().len() >= target
    })
    .await;
    assert_one_chain(&[&nodes[0], &nodes[1], &nodes[2], &nodes[3], &early, &late]);
    for f in [&early, &late] {
        let chain = f.app.chain.lock().expect("lock");
        for (body, cert) in chain.iter() {
            let fh = cert.clone().finalize(body.header.clone());
            verify_finalized(&fh, CTX.chain, CTX.shard, &validators).expect("a follower's block is certified");
            let h = ToyApp::header(body).expect("header");
            assert!(validators.contains(&AccountId::from_slice(&h.proposer).expect("key")), "a follower proposed");
        }
    }
    for f in [&mut early, &mut late] {
        if let Some(r) = f.running.take() {
            r.shutdown().await;
        }
    }
    // Sticky leader: with everyone up, one validator proposes every block.
    let proposers: Vec<Vec<u8>> = nodes[0]
        .app
        .chain
        .lock()
        .expect("lock")
        .iter()
        .map(|(b, _)| ToyApp::header(b).expect("header").proposer)
        .collect();
    assert!(proposers.windows(2).all(|w| w[0] == w[1]), "the leader changed without a failure");

    // Stop the leader: the other three go on under another proposer.
    let leader = keys.iter().position(|k| k.account().0.to_vec() == proposers[0]).expect("leader is a validator");
    if let Some(r) = nodes[leader].running.take() {
        r.shutdown().await;
    }
    let live: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    let before = nodes[live[0]].app.hashes().len();
    wait_for("5 more heights without the leader", Duration::from_secs(30), || {
        live.iter().all(|&i| nodes[i].app.hashes().len() >= before + 5)
    })
    .await;
    let last = nodes[live[0]].app.chain.lock().expect("lock").last().cloned().expect("a block");
    let new_proposer = ToyApp::header(&last.0).expect("header").proposer;
    assert_ne!(new_proposer, proposers[0], "a new proposer took over");

    // Stop a second one: no quorum, no progress (and no fork).
    if let Some(r) = nodes[live[0]].running.take() {
        r.shutdown().await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = nodes[live[1]].app.hashes().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(nodes[live[1]].app.hashes().len(), stuck, "two of four cannot decide");
    assert_eq!(nodes[live[2]].app.hashes().len(), nodes[live[1]].app.hashes().len());
    assert_one_chain(&nodes.iter().collect::<Vec<_>>());

    for n in &mut nodes {
        if let Some(r) = n.running.take() {
            r.shutdown().await;
        }
    }
}
