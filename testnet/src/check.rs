//! `testnet check`: black-box invariants of a running network, read over gRPC and verified from proofs, so
//! it works on any shardex network whose genesis files and coordinator key it is given (here: the testnet's
//! manifest).
//!
//! 1. **Heads.** Every node answers, and its head header is certified by its shard's genesis validators.
//! 2. **Replicas.** Nodes of one shard agree on the state root at the lowest of their heads.
//! 3. **Epoch.** One coordinator-signed epoch commits every shard at or above the head read in (1); every
//!    figure below is proven under the state root that epoch commits.
//! 4. **Conservation per shard.** Σ collateral − Σ entry notional + fee pool + insurance fund + funding pool
//!    + escrow = deposited − withdrawn + bridged in − bridged out, from the ledger totals the VM keeps.
//! 5. **Bridge.** No collateral left in escrow (every message acked or refunded), and Σ bridged out =
//!    Σ bridged in over all shards (no message both delivered and refunded, none acked undelivered).
//!
//! Messages in flight are normal on a live network: (3)–(5) are re-read from later epochs until the escrow
//! is empty or `--timeout` passes.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use clap::Args;
use eyre::{bail, ensure, eyre, WrapErr};
use prost::Message;
use shardex_client::{CoordinatorClient, ShardClient};
use shardex_core::{
    block::verify_finalized,
    genesis::Genesis,
    global::VerifiedInclusion,
    ledger::{check_conservation, held_micros, LedgerPools},
    pb, AccountId, Reason, Usd,
};

use crate::network::{Network, NodeEntry};

/// `testnet check` flags.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Seconds to wait for messages in flight to settle and for an epoch committing every shard.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub timeout: u64,
}

/// One node under check.
struct Node {
    entry: NodeEntry,
    client: ShardClient,
    genesis: Genesis,
}

/// A shard's money as one epoch commits it, every record proven under the committed state root.
#[derive(Debug, Clone, Default)]
struct Ledger {
    height: u64,
    totals: pb::LedgerTotalsRecord,
    pools: LedgerPools,
}

/// The outcome of each invariant, printed as it is decided.
#[derive(Default)]
struct Outcome {
    passed: usize,
    failed: Vec<String>,
}

impl Outcome {
    fn record(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("  ok    {name:<13} {detail}");
            }
            Err(why) => {
                println!("  FAIL  {name:<13} {why}");
                self.failed.push(format!("{name}: {why}"));
            }
        }
    }
}

/// Checks the network in `dir`; fails listing every invariant that does not hold.
pub async fn run(dir: &Path, args: &CheckArgs) -> eyre::Result<()> {
    let net = Network::load(dir)?;
    ensure!(!net.nodes.is_empty(), "the network has no shards");
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut nodes = Vec::with_capacity(net.nodes.len());
    for entry in &net.nodes {
        let client =
            ShardClient::connect(&entry.endpoint).await.wrap_err_with(|| format!("connecting to {}", entry.name))?;
        let genesis = Genesis::read_file(&entry.genesis_file())?;
        nodes.push(Node { entry: entry.clone(), client, genesis });
    }
    println!("checking {} node(s) of chain {}", nodes.len(), net.chain_id);
    let mut outcome = Outcome::default();

    // Every validator of a shard must keep up with the others: one left behind (a node that restarted and
    // is still catching up) gets until the deadline.
    let results = loop {
        let mut results = Vec::with_capacity(nodes.len());
        for node in &nodes {
            results.push(finalized_head(node).await);
        }
        let seen: Vec<(u32, &str, Option<u64>)> = nodes
            .iter()
            .zip(&results)
            .map(|(n, r)| (n.entry.shard_id.0, n.entry.name.as_str(), r.as_ref().ok().map(|(h, _)| *h)))
            .collect();
        let lagging = lagging(&seen);
        if lagging.is_empty() || Instant::now() >= deadline {
            for name in lagging {
                outcome.record("lag", Err(name));
            }
            break results;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut heads: BTreeMap<u32, u64> = BTreeMap::new();
    for (node, result) in nodes.iter().zip(results) {
        if let Ok((height, _)) = &result {
            let h = heads.entry(node.entry.shard_id.0).or_insert(*height);
            *h = (*h).min(*height);
        }
        outcome.record("head", result.map(|(_, detail)| detail).map_err(|e| format!("{}: {e:#}", node.entry.name)));
    }
    replicas(&nodes, &heads, &mut outcome).await;

    let Some(coord) = net.coordinator.as_ref().filter(|c| !c.endpoint.is_empty()) else {
        outcome.record("epoch", Err("the network has no coordinator".into()));
        return finish(outcome);
    };
    let coordinator = CoordinatorClient::connect(&coord.endpoint).await.wrap_err("connecting to the coordinator")?;
    let shards: Vec<&Node> = one_per_shard(&nodes);
    let mut waited_note = false;
    let snapshot = loop {
        let snapshot = committed_ledgers(&coordinator, &coord.public_key, &shards, &heads, deadline).await;
        let escrowed: u64 = match &snapshot {
            Ok((_, ledgers)) => ledgers.iter().map(|l| l.totals.escrowed_micros).sum(),
            Err(_) => 0,
        };
        if escrowed == 0 || Instant::now() >= deadline {
            break snapshot;
        }
        if !waited_note {
            println!("  ..    bridge        {} in escrow; waiting for messages in flight to settle", usd(escrowed));
            waited_note = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (epoch, ledgers) = match snapshot {
        Ok(s) => s,
        Err(e) => {
            outcome.record("epoch", Err(format!("{e:#}")));
            return finish(outcome);
        }
    };
    let committed = ledgers.iter().filter(|l| l.height > 0).count();
    outcome.record(
        "epoch",
        Ok(format!(
            "epoch {epoch} signed by {}… commits {} of {} shard(s) at or above their heads{}; every figure below \
             is proven under it",
            &coord.public_key.to_hex()[..16],
            committed,
            shards.len(),
            if committed < shards.len() { " (the others have no block yet)" } else { "" }
        )),
    );
    for (node, ledger) in shards.iter().zip(&ledgers) {
        outcome.record(
            "conservation",
            conservation(ledger)
                .map_err(|e| format!("{}: {e}", node.entry.name))
                .map(|detail| format!("{:<14} height {:>6}: {detail}", node.entry.name, ledger.height)),
        );
    }
    let names: Vec<&str> = shards.iter().map(|n| n.entry.name.as_str()).collect();
    outcome.record("bridge", bridge(&names, &ledgers));
    finish(outcome)
}

fn finish(outcome: Outcome) -> eyre::Result<()> {
    if outcome.failed.is_empty() {
        println!("check passed: {} invariant(s) hold", outcome.passed);
        Ok(())
    } else {
        bail!(
            "{} of {} invariant(s) failed: {}",
            outcome.failed.len(),
            outcome.passed + outcome.failed.len(),
            outcome.failed.join("; ")
        )
    }
}

/// The node's head header, verified as certified by its genesis validators: (height, detail).
async fn finalized_head(node: &Node) -> eyre::Result<(u64, String)> {
    let status = node.client.status().await?;
    if status.height == 0 {
        return Ok((0, format!("{:<14} at genesis (no block yet)", node.entry.name)));
    }
    let fh = node.client.raw().get_header(pb::GetBlockRequest { height: status.height }).await?.into_inner();
    let d = node.client.domain();
    let header = verify_finalized(&fh, d.chain, d.shard, &node.genesis.validators)?;
    ensure!(
        header.header.height == status.height,
        "asked for the header at {}, got {}",
        status.height,
        header.header.height
    );
    Ok((
        status.height,
        format!(
            "{:<14} height {:>6} root 0x{}… certified by its genesis validator set ({})",
            node.entry.name,
            status.height,
            &hex::encode(header.state_root())[..12],
            node.genesis.validators.len()
        ),
    ))
}

/// Nodes of one shard must hold the same state root at the lowest of their heads.
async fn replicas(nodes: &[Node], heads: &BTreeMap<u32, u64>, outcome: &mut Outcome) {
    let mut by_shard: BTreeMap<u32, Vec<&Node>> = BTreeMap::new();
    for n in nodes {
        by_shard.entry(n.entry.shard_id.0).or_default().push(n);
    }
    let replicated: Vec<_> = by_shard.iter().filter(|(_, v)| v.len() > 1).collect();
    if replicated.is_empty() {
        println!("  --    replicas      one node per shard: no replicas to compare");
        return;
    }
    for (shard, group) in replicated {
        let height = heads.get(shard).copied().unwrap_or(0);
        let result = compare_chains(group, height).await;
        outcome.record("replicas", result.map(|(hashes, root)| {
            let followers = group.iter().filter(|n| n.entry.follower).count();
            format!(
                "shard {shard}: {} validators and {followers} follower(s) hold one hash at each of the last {hashes} heights and root 0x{}… at {height}",
                group.len() - followers,
                &hex::encode(root)[..12]
            )
        }).map_err(|e| format!("shard {shard}: {e}")));
    }
}

/// How far a validator may be behind the highest validator of its shard.
const MAX_LAG_BLOCKS: u64 = 64;

/// The validators more than [`MAX_LAG_BLOCKS`] behind the highest of their shard, described, from
/// (shard, name, head height if it answered) of every node.
fn lagging(seen: &[(u32, &str, Option<u64>)]) -> Vec<String> {
    let mut top: BTreeMap<u32, u64> = BTreeMap::new();
    for (shard, _, h) in seen {
        if let Some(h) = h {
            let t = top.entry(*shard).or_insert(*h);
            *t = (*t).max(*h);
        }
    }
    seen.iter()
        .filter_map(|(shard, name, h)| {
            let h = (*h)?;
            let t = top.get(shard).copied().unwrap_or(h);
            (h + MAX_LAG_BLOCKS < t).then(|| format!("{name} is at height {h}, {} blocks behind its shard", t - h))
        })
        .collect()
}

/// How many heights below the lowest head `check` compares across a shard's validators.
const COMPARED_HEIGHTS: u64 = 64;

/// Every validator of a shard must hold the same block hash at each of the last heights up to `height` (the
/// lowest of their heads): one chain, no fork. A node that began from a snapshot holds no block below it, so
/// heights below the highest such base are not compared. Returns how many heights were compared and the
/// state root at `height`.
async fn compare_chains(group: &[&Node], height: u64) -> Result<(u64, shardex_core::B256), String> {
    let mut from = height.saturating_sub(COMPARED_HEIGHTS - 1).max(1);
    for n in group {
        let status = n.client.status().await.map_err(|e| format!("{} status: {e}", n.entry.name))?;
        from = from.max(status.snapshot_base);
    }
    if from > height {
        return Err(format!("a node began from a snapshot above the compared height {height}"));
    }
    let mut root = shardex_core::B256::ZERO;
    for h in from..=height {
        let mut first: Option<(shardex_core::B256, &str)> = None;
        for n in group {
            let fh = n
                .client
                .raw()
                .get_header(pb::GetBlockRequest { height: h })
                .await
                .map_err(|e| format!("{} header {h}: {e}", n.entry.name))?;
            let d = shardex_core::block::decode_header(&fh.into_inner())
                .map_err(|e| format!("{} header {h}: {e}", n.entry.name))?;
            match first {
                None => {
                    first = Some((d.hash, n.entry.name.as_str()));
                    root = d.state_root();
                }
                Some((hash, name)) if hash != d.hash => {
                    return Err(format!("height {h}: {name} holds {hash}, {} holds {}", n.entry.name, d.hash))
                }
                Some(_) => {}
            }
        }
    }
    Ok((height + 1 - from, root))
}

/// One node per shard (the first listed), in manifest order.
fn one_per_shard(nodes: &[Node]) -> Vec<&Node> {
    let mut seen = std::collections::BTreeSet::new();
    nodes.iter().filter(|n| seen.insert(n.entry.shard_id.0)).collect()
}

/// Waits for an epoch committing every shard at or above `heads`, verifies each shard's committed head under
/// it, and proves each shard's ledger records at that head. Returns the epoch number and the ledgers (in
/// `shards` order).
async fn committed_ledgers(
    coordinator: &CoordinatorClient,
    key: &AccountId,
    shards: &[&Node],
    heads: &BTreeMap<u32, u64>,
    deadline: Instant,
) -> eyre::Result<(u64, Vec<Ledger>)> {
    'poll: loop {
        ensure!(Instant::now() < deadline, "no epoch committed every shard at its head before the timeout");
        // A coordinator restarting (after `chaos`) answers again within moments: retry until the deadline.
        let latest = match coordinator.latest_epoch().await {
            Ok(latest) => latest,
            Err(e) if Instant::now() + Duration::from_millis(200) < deadline => {
                tracing::debug!("latest epoch: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'poll;
            }
            Err(e) => return Err(eyre!(e).wrap_err("the coordinator's latest epoch")),
        };
        let number = shardex_core::coordpb::EpochRecord::decode(latest.record.as_slice())
            .wrap_err("the latest epoch record")?
            .number;
        let mut ledgers = Vec::with_capacity(shards.len());
        for node in shards {
            let want = heads.get(&node.entry.shard_id.0).copied().unwrap_or(0);
            let head = match node.client.committed_head(coordinator, key, number, &node.genesis.validators).await {
                Ok(head) if head.entry.height >= want => head,
                // Not committed yet (a shard enters with its first block), or behind the head read earlier.
                Ok(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'poll;
                }
                Err(e) if want == 0 && e.reason() == Some(Reason::NotFound) => {
                    ledgers.push(Ledger::default());
                    continue;
                }
                Err(e) if e.reason() == Some(Reason::NotFound) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'poll;
                }
                Err(e) => return Err(eyre!(e).wrap_err(format!("{} in epoch {number}", node.entry.name))),
            };
            ledgers.push(
                prove_ledger(&node.client, &head).await.wrap_err_with(|| {
                    format!("proving {}'s ledger at height {}", node.entry.name, head.entry.height)
                })?,
            );
        }
        return Ok((number, ledgers));
    }
}

/// The shard's ledger totals and pools at the committed head, proven under the state root the epoch
/// commits (the header is already verified with the inclusion).
async fn prove_ledger(client: &ShardClient, head: &VerifiedInclusion) -> eyre::Result<Ledger> {
    let l = client.ledger(head.entry.height, None).await?;
    ensure!(
        l.height == head.entry.height && l.state_root == head.state_root,
        "ledger proven at height {} root {}, the epoch commits height {} root {}",
        l.height,
        l.state_root,
        head.entry.height,
        head.state_root
    );
    Ok(Ledger { height: l.height, totals: l.totals, pools: l.pools })
}

/// Invariant 4 on one shard's proven ledger.
fn conservation(l: &Ledger) -> Result<String, String> {
    let pools = l.pools;
    check_conservation(&l.totals, &pools).map_err(|e| {
        let t = &l.totals;
        if t.collateral_micros == 0 && t.entry_notional_micros == 0 && t.deposited_micros > 0 {
            // Sums the VM keeps since the ledger totals carry them: a shard from before never wrote them.
            format!("{e} (the totals hold no collateral sum: is this data directory older than the ledger sums?)")
        } else {
            e.to_string()
        }
    })?;
    let t = &l.totals;
    Ok(format!(
        "held {} = deposited {} - withdrawn {} + bridged in {} - bridged out {}",
        usd128(held_micros(t, &pools)),
        usd(t.deposited_micros),
        usd(t.withdrawn_micros),
        usd(t.bridged_in_micros),
        usd(t.bridged_out_micros)
    ))
}

/// Invariant 5 over every shard's proven ledger.
fn bridge(names: &[&str], ledgers: &[Ledger]) -> Result<String, String> {
    let held: Vec<String> = names
        .iter()
        .zip(ledgers)
        .filter(|(_, l)| l.totals.escrowed_micros > 0)
        .map(|(name, l)| format!("{name} holds {} in escrow", usd(l.totals.escrowed_micros)))
        .collect();
    let bridged_in: u128 = ledgers.iter().map(|l| u128::from(l.totals.bridged_in_micros)).sum();
    let bridged_out: u128 = ledgers.iter().map(|l| u128::from(l.totals.bridged_out_micros)).sum();
    if !held.is_empty() {
        return Err(format!("messages unsettled at the timeout: {}", held.join(", ")));
    }
    if bridged_in != bridged_out {
        return Err(format!(
            "bridged in {} != bridged out {} with nothing in escrow",
            usd128(bridged_in),
            usd128(bridged_out)
        ));
    }
    Ok(format!("nothing in escrow; bridged out = bridged in = {} over {} shard(s)", usd128(bridged_in), names.len()))
}

fn usd(micros: u64) -> String {
    Usd::from_micros(i64::try_from(micros).unwrap_or(i64::MAX)).to_string()
}

fn usd128(micros: impl TryInto<i64>) -> String {
    Usd::from_micros(micros.try_into().unwrap_or(i64::MAX)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard where 1,000 USD was deposited, 100 withdrawn, 50 bridged in and 30 bridged out, and what is
    /// left sits in accounts, positions and pools.
    fn balanced() -> Ledger {
        let totals = pb::LedgerTotalsRecord {
            deposited_micros: 1_000_000_000,
            withdrawn_micros: 100_000_000,
            bridged_in_micros: 50_000_000,
            bridged_out_micros: 30_000_000,
            escrowed_micros: 0,
            // 920 held: collateral 935 − entry 20 + fees 3 + insurance 1 + funding 1.
            collateral_micros: 935_000_000,
            entry_notional_micros: 20_000_000,
        };
        let pools = LedgerPools {
            fee_pool_micros: 3_000_000,
            insurance_fund_micros: 1_000_000,
            funding_pool_micros: 1_000_000,
        };
        Ledger { height: 9, totals, pools }
    }

    #[test]
    fn conservation_holds_on_a_balanced_shard_and_fails_on_one_micro_dollar() {
        let ok = conservation(&balanced()).expect("balanced");
        assert!(ok.contains("held 920.000000 USD"), "{ok}");
        let mut created = balanced();
        created.totals.collateral_micros += 1;
        let why = conservation(&created).expect_err("one micro-USD created");
        assert!(why.contains("= 1 micro-USD"), "{why}");
        let mut lost = balanced();
        lost.pools.fee_pool_micros -= 1;
        assert!(conservation(&lost).is_err());
        let mut old = balanced();
        (old.totals.collateral_micros, old.totals.entry_notional_micros) = (0, 0);
        let why = conservation(&old).expect_err("no sums");
        assert!(why.contains("older than the ledger sums"), "{why}");
    }

    #[test]
    fn the_bridge_fails_with_escrow_left_or_unequal_flows() {
        let (a, b) = (balanced(), balanced());
        let mut b_in = b.clone();
        b_in.totals.bridged_in_micros = 30_000_000;
        b_in.totals.bridged_out_micros = 50_000_000;
        assert!(bridge(&["a", "b"], &[a.clone(), b_in.clone()]).is_ok());
        // One message both delivered on b and refunded on a: b counts it in, a never counts it out.
        assert!(bridge(&["a", "b"], &[a.clone(), b]).is_err());
        let mut escrow = a.clone();
        escrow.totals.escrowed_micros = 5;
        let why = bridge(&["a", "b"], &[escrow, b_in]).expect_err("escrow left");
        assert!(why.contains("a holds 0.000005 USD in escrow"), "{why}");
    }

    #[test]
    fn a_validator_far_behind_its_shard_is_named() {
        let seen = [
            (1, "btc-perp-0", Some(95)),
            (1, "btc-perp-1", Some(0)),
            (1, "btc-perp-2", None),
            (2, "eth-perp-0", Some(3)),
        ];
        assert_eq!(lagging(&seen), vec!["btc-perp-1 is at height 0, 95 blocks behind its shard".to_owned()]);
        let close = [(1, "btc-perp-0", Some(95)), (1, "btc-perp-1", Some(95 - MAX_LAG_BLOCKS))];
        assert!(lagging(&close).is_empty());
    }
}
