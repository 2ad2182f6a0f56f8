//! Followers of a four-validator shard, as real `shard-node` processes on loopback ports chosen at run time:
//! one follows from genesis, one starts while the set is under load and catches up by value sync, and the
//! first is SIGKILLed and restarted on its data. Deposits go to validators and to the follower (which
//! forwards them to the proposer). At the end every height has one header on every node, each follower's
//! header is certified by the genesis set, followers answer tx status and account queries as the validators
//! do, say they are followers, and never proposed a block. Then the first follower is restarted with a
//! divergence injected at a later height: it must exit naming that height, and the set goes on. Health says
//! NOT_SERVING while validator 0 runs alone at genesis, and SERVING on every node once blocks are decided.

mod support;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use shardex_client::ShardClient;
use shardex_core::{
    block::{decode_header, verify_finalized},
    genesis::{Authorities, Genesis},
    pb::{self, tx_body::Op},
    tx::{sign_tx, TxDomain},
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId, B256,
};
use shardex_test_support::{wait_for, ShardNodeProcess};
use support::set::SetPorts;

const CHAIN: ChainId = ChainId(62);
const SHARD: ShardId = ShardId(1);
const VALIDATORS: usize = 4;

/// Starts node `i`: a validator for `i < VALIDATORS`, else a follower; every node dials the validators.
fn start(dir: &Path, genesis: &Genesis, keys: &[Keypair], ports: &SetPorts, i: usize) -> ShardNodeProcess {
    let args = ports.node_args(keys, VALIDATORS, i);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ShardNodeProcess::start(
        Path::new(env!("CARGO_BIN_EXE_shard-node")),
        &dir.join(format!("n{i}")),
        genesis,
        &keys[i],
        &args,
    )
}

/// The node's health for the Shard service: Some(true) for SERVING, None while it does not answer.
async fn serving(endpoint: String) -> Option<bool> {
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest};
    let channel = tonic::transport::Endpoint::from_shared(endpoint).ok()?.connect().await.ok()?;
    let request = HealthCheckRequest { service: "shardex.shard.v1.ShardService".into() };
    let status = HealthClient::new(channel).check(request).await.ok()?.into_inner().status;
    Some(status == ServingStatus::Serving as i32)
}

async fn height(endpoint: &str) -> Option<u64> {
    let c = ShardClient::connect(endpoint).await.ok()?;
    c.status().await.ok().map(|s| s.height)
}

/// Sends deposits in batches of five, alternately to a validator and to the first follower, until `stop`;
/// returns the hashes accepted and how many the follower accepted.
async fn load(
    endpoints: Vec<String>,
    deposit: Keypair,
    recipients: Vec<AccountId>,
    stop: Arc<AtomicBool>,
    via_follower: Arc<AtomicU64>,
) -> Vec<B256> {
    let domain = TxDomain { chain: CHAIN, shard: SHARD };
    let (mut nonce, mut accepted, mut turn) = (0u64, Vec::new(), 0usize);
    while !stop.load(Ordering::Relaxed) {
        turn += 1;
        let to = &endpoints[turn % endpoints.len()];
        let Ok(client) = ShardClient::connect(to).await else { continue };
        let txs: Vec<pb::SignedTx> = (0..5)
            .map(|k| {
                nonce += 1;
                let account = recipients[(nonce as usize + k) % recipients.len()];
                let op = Op::Deposit(pb::Deposit { account: account.0.to_vec(), amount_micros: 1_000 + nonce });
                sign_tx(&deposit, domain, nonce, op)
            })
            .collect();
        let hashes: Vec<B256> = txs.iter().map(|t| shardex_core::hash::tx_hash(&t.body)).collect();
        match client.submit_batch(txs).await {
            Ok(results) if results.iter().all(|r| r.accepted) => {
                if turn % endpoints.len() == 0 {
                    via_follower.fetch_add(hashes.len() as u64, Ordering::Relaxed);
                }
                accepted.extend(hashes);
            }
            // Refused (NO_LEADER while the round changes) or lost: the next batch uses fresh nonces.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_track_a_four_validator_shard_under_load_and_serve_its_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<Keypair> = (0..VALIDATORS + 2).map(|i| Keypair::from_seed([0x60 + i as u8; 32])).collect();
    let deposit = Keypair::from_seed([0x6e; 32]);
    let authority = Keypair::from_seed([0x6f; 32]).account();
    let mut genesis = Genesis::example(
        Authorities { deposit: deposit.account(), oracle: authority, admin: authority },
        keys[0].account(),
    );
    let validator_keys: Vec<AccountId> = keys[..VALIDATORS].iter().map(Keypair::account).collect();
    genesis.validators = ValidatorSet::equal(&validator_keys).expect("set");
    (genesis.chain_id, genesis.shard_id) = (CHAIN, SHARD);
    let ports = SetPorts::free(VALIDATORS + 2);
    let endpoint = |i: usize| ports.endpoint(i);
    let (early, late) = (VALIDATORS, VALIDATORS + 1);

    // Alone, validator 0 decides no block: its head stays genesis (block time in 2023), so its health says it
    // is not current, though it answers.
    let mut nodes = vec![start(dir.path(), &genesis, &keys, &ports, 0)];
    let alone = wait_for(Duration::from_secs(30), "validator 0 answers health", || serving(endpoint(0))).await;
    assert!(!alone, "a validator without a quorum, at genesis, must report NOT_SERVING");
    nodes.extend((1..=early).map(|i| start(dir.path(), &genesis, &keys, &ports, i)));
    wait_for(Duration::from_secs(60), "the set and its follower at height 3", || async {
        match (height(&endpoint(0)).await, height(&endpoint(early)).await) {
            (Some(v), Some(f)) if v >= 3 && f >= 3 => Some(()),
            _ => None,
        }
    })
    .await;
    wait_for(Duration::from_secs(10), "every node reports SERVING once blocks are decided", || async {
        for i in 0..=early {
            if !serving(endpoint(i)).await? {
                return None;
            }
        }
        Some(())
    })
    .await;

    let recipients: Vec<AccountId> = (0..40u8).map(|i| Keypair::from_seed([i; 32]).account()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let via_follower = Arc::new(AtomicU64::new(0));
    let targets = vec![endpoint(early), endpoint(0), endpoint(1), endpoint(2), endpoint(3)];
    let loader = tokio::spawn(load(targets, deposit.clone(), recipients.clone(), stop.clone(), via_follower.clone()));

    // Under load: a second follower joins from genesis by value sync; the first is killed and restarted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    nodes.push(start(dir.path(), &genesis, &keys, &ports, late));
    tokio::time::sleep(Duration::from_secs(2)).await;
    nodes[early].kill9();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[early].restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let accepted = loader.await.expect("load task");
    let via_follower = via_follower.load(Ordering::Relaxed);
    println!("{} deposits accepted, {via_follower} of them through the follower", accepted.len());
    assert!(accepted.len() >= 100, "only {} deposits were accepted", accepted.len());
    assert!(via_follower > 0, "no submission sent to the follower was accepted (forwarded to the proposer)");

    // Every accepted deposit is final, as the late follower reports it.
    let late_client = ShardClient::connect(&endpoint(late)).await.expect("late follower");
    let last = accepted.last().copied().expect("a deposit");
    let included = wait_for(Duration::from_secs(60), "the last deposit final on the late follower", || async {
        late_client.wait_final(last, Duration::from_millis(500)).await.ok()
    })
    .await;
    let target = height(&endpoint(0)).await.expect("validator 0 answers").max(included.height);
    wait_for(Duration::from_secs(60), "every node at the validators' height", || async {
        for i in 0..=late {
            if height(&endpoint(i)).await? < target {
                return None;
            }
        }
        Some(())
    })
    .await;

    println!("every node at height {target} or above");
    // One header per height on every node; the followers' are certified and proposed by validators.
    let clients: Vec<ShardClient> = {
        let mut out = Vec::new();
        for i in 0..=late {
            out.push(ShardClient::connect(&endpoint(i)).await.expect("node answers"));
        }
        out
    };
    for h in 1..=target {
        let mut first: Option<Vec<u8>> = None;
        for (i, c) in clients.iter().enumerate() {
            let fh = c.raw().get_header(pb::GetBlockRequest { height: h }).await.expect("header").into_inner();
            match &first {
                None => first = Some(fh.header.clone()),
                Some(bytes) => assert_eq!(bytes, &fh.header, "node {i} holds another header at height {h}"),
            }
            if i >= VALIDATORS {
                verify_finalized(&fh, CHAIN, SHARD, &genesis.validators)
                    .unwrap_or_else(|e| panic!("follower {i}: header {h} is not certified: {e}"));
                let proposer =
                    AccountId::from_slice(&decode_header(&fh).expect("decodes").header.proposer).expect("proposer key");
                assert!(genesis.validators.contains(&proposer), "height {h} proposed by a non-validator");
            }
        }
    }

    // Reads: every tx's status and every recipient's account agree with validator 0.
    for hash in accepted.iter().step_by(7) {
        let want = clients[0].tx_status(*hash).await.expect("status").status;
        for c in &clients[VALIDATORS..] {
            assert_eq!(c.tx_status(*hash).await.expect("status").status, want, "tx {hash}");
        }
    }
    let mut funded = 0;
    for a in &recipients {
        let want = clients[0].account(a).await.expect("account");
        funded += usize::from(want.as_ref().is_some_and(|r| r.collateral_micros > 0));
        for c in &clients[VALIDATORS..] {
            assert_eq!(c.account(a).await.expect("account"), want, "account {a}");
        }
    }
    assert!(funded > 0, "the load funded no account");
    for c in &clients[VALIDATORS..] {
        assert_eq!(c.status().await.expect("status").role, "follower");
    }
    assert_eq!(clients[0].status().await.expect("status").role, "validator");

    // A follower whose re-execution of a certified block differs (armed by fault injection) stops with an
    // error naming the block, and commits nothing from that height on, while the set goes on.
    let h = height(&endpoint(early)).await.expect("the follower answers");
    nodes[early].kill9();
    let at = h + 5;
    nodes[early].set_env(&[("SHARDEX_DIVERGE_AT", &at.to_string())]);
    nodes[early].restart();
    let exit = tokio::task::block_in_place(|| nodes[early].wait_exit(Duration::from_secs(60)));
    assert!(!exit.success(), "a diverged follower must exit with an error");
    let log = nodes[early].log();
    assert!(
        log.contains(&format!("at height {at} does not replay on this node")) && log.contains("diverged"),
        "the follower's log does not say why it stopped:\n{log}"
    );
    let before = height(&endpoint(0)).await.expect("validator 0 answers");
    wait_for(Duration::from_secs(30), "the set to go on without the follower", || async {
        height(&endpoint(0)).await.filter(|h| *h > before)
    })
    .await;
    for n in &mut nodes {
        n.kill9();
    }
}
