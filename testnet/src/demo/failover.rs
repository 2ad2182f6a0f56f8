//! Step 13 of the demo: the first shard's leader fails. Its current proposer is SIGKILLed; trading goes on
//! through another validator, which forwards to the next proposer; the killed validator restarts on its
//! data and catches up with the others by value sync, to the same state root.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use eyre::{ensure, eyre, WrapErr};
use shardex_client::{ShardClient, Wallet};
use shardex_core::{
    genesis::Genesis,
    pb::{self, tx_body::Op},
    AccountId,
};

use super::{order, step, FINAL};
use crate::{network::Network, process};

/// How long the restarted validator may take to catch up before the demo fails.
const CATCH_UP: Duration = Duration::from_secs(30);

/// The validator (by name) whose key is `key` in the first shard's genesis.
fn name_of(net: &Network, genesis: &Genesis, key: &AccountId) -> Option<String> {
    let index = genesis.validators.get(key)?.0;
    let first = net.shards().first().map(|n| n.shard_id)?;
    net.validators_of(first).iter().find(|n| n.validator == index).map(|n| n.name.clone())
}

/// Runs step 13 on the first shard with `mm` placing a post-only bid at `price` through a surviving
/// validator. Skipped on a shard of one validator.
pub(super) async fn leader_failover(
    dir: &Path,
    bin_dir: Option<&Path>,
    mm: &mut Wallet,
    price: u64,
) -> eyre::Result<()> {
    step(13, "The first shard's leader is killed: trading goes on under a new proposer, and it catches up");
    let net = Network::load(dir)?;
    let first = net.shards().first().map(|n| n.shard_id).ok_or_else(|| eyre!("the network has no shards"))?;
    let set: Vec<_> = net.validators_of(first).into_iter().cloned().collect();
    if set.len() < 4 {
        println!(
            "    skipped: the shard has {} validator(s); a set of 4 survives one failure (`testnet up --sequencers 4`)",
            set.len()
        );
        return Ok(());
    }
    let genesis = Genesis::read_file(&set[0].genesis_file())?;
    let status = ShardClient::connect(&set[0].endpoint).await?.status().await?;
    let leader_key = AccountId::from_slice(&status.proposer).map_err(|e| eyre!("proposer: {e}"))?;
    let leader_name = name_of(&net, &genesis, &leader_key)
        .ok_or_else(|| eyre!("proposer {leader_key} is no validator of the shard"))?;
    let leader = set.iter().find(|n| n.name == leader_name).cloned().ok_or_else(|| eyre!("no node {leader_name}"))?;
    let survivor = set.iter().find(|n| n.name != leader_name).cloned().ok_or_else(|| eyre!("no other validator"))?;
    let pid = leader.pid.filter(|p| process::alive(*p)).ok_or_else(|| eyre!("{leader_name} is not running"))?;
    let survivor_client = ShardClient::connect(&survivor.endpoint).await?;

    process::signal(pid, "KILL");
    let killed_at = Instant::now();
    println!("    {leader_name} (validator {}, the proposer) killed with SIGKILL", leader.validator);
    let bid = mm.sign(&survivor_client, Op::PlaceOrder(order(pb::Side::Buy, price, 1, pb::TimeInForce::PostOnly)));
    let hash = survivor_client.submit(bid).await.wrap_err("a post-only bid through another validator")?;
    let inc = survivor_client.wait_final(hash, FINAL).await?;
    let block = survivor_client.block(inc.height).await?;
    let header =
        shardex_core::block::decode_header(block.header.as_ref().ok_or_else(|| eyre!("block without header"))?)?;
    let proposer = AccountId::from_slice(&header.header.proposer).map_err(|e| eyre!("proposer: {e}"))?;
    ensure!(proposer != leader_key, "block {} was proposed by the killed validator", inc.height);
    println!(
        "    a post-only bid sent to {} is final in block {} (round {}) proposed by {}, {} ms after the kill",
        survivor.name,
        inc.height,
        block.header.as_ref().map_or(0, |h| h.round),
        name_of(&net, &genesis, &proposer).unwrap_or_else(|| proposer.to_string()),
        killed_at.elapsed().as_millis()
    );

    let bin = process::bin_path(bin_dir, "shard-node")?;
    let (new_pid, endpoint) = process::start_node(&bin, &leader, &net)?;
    let mut saved = Network::load(dir)?;
    if let Some(n) = saved.nodes.iter_mut().find(|n| n.name == leader_name) {
        n.pid = Some(new_pid);
    }
    saved.save(dir)?;
    let restarted_at = Instant::now();
    let target = survivor_client.status().await?.height;
    let restarted = ShardClient::connect(&endpoint).await?;
    let caught_up = loop {
        let s = restarted.status().await?;
        if s.height >= target {
            break s;
        }
        ensure!(
            restarted_at.elapsed() < CATCH_UP,
            "{leader_name} is at height {} of {target} after {} s",
            s.height,
            CATCH_UP.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let root_there =
        survivor_client.raw().get_header(pb::GetBlockRequest { height: caught_up.height }).await?.into_inner();
    let root_there = shardex_core::block::decode_header(&root_there)?.state_root();
    ensure!(
        root_there.as_slice() == caught_up.state_root.as_slice(),
        "{leader_name} holds another state root than {} at height {}",
        survivor.name,
        caught_up.height
    );
    println!(
        "    {leader_name} restarted on its data (pid {new_pid}), caught up to height {} in {} ms: same root 0x{}…",
        caught_up.height,
        restarted_at.elapsed().as_millis(),
        &hex::encode(&caught_up.state_root)[..12]
    );
    Ok(())
}
