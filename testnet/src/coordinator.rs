//! The testnet's coordinator: its config (every shard of the network with its genesis), readiness (an epoch
//! that commits every shard), and the figures `status` shows.

use std::{collections::BTreeMap, path::Path, time::Duration};

use eyre::{bail, WrapErr};
use shardex_client::CoordinatorClient;
use shardex_coordinator::config::{ConfigFlags, CoordConfig};
use shardex_core::{
    coordpb,
    global::{verify_epoch, VerifiedEpoch},
    ChainId,
};

use crate::network::{coordinator_key_file, CoordinatorEntry, Network};

/// How long `up` waits for the first epoch committing every shard.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the coordinator's TOML config for the network as it runs now (endpoints known) and checks the
/// coordinator would accept it. Paths are absolute, so the file works from any directory.
pub fn write_config(dir: &Path, net: &Network, entry: &CoordinatorEntry, port: u16, epoch_ms: u64) -> eyre::Result<()> {
    let abs = |p: &Path| std::path::absolute(p).wrap_err_with(|| format!("resolving {}", p.display()));
    let mut cfg = CoordConfig::default();
    cfg.node.data_dir = abs(&entry.data_dir())?;
    cfg.node.key_file = abs(&coordinator_key_file(dir))?;
    cfg.epoch.interval_ms = epoch_ms;
    cfg.rpc.addr = format!("127.0.0.1:{port}");
    cfg.metrics.addr = "127.0.0.1:0".into();
    cfg.shards = net.shard_sections()?;
    let path = entry.config_file();
    std::fs::write(&path, toml::to_string_pretty(&cfg)?).wrap_err_with(|| format!("writing {}", path.display()))?;
    CoordConfig::load(Some(&path), &ConfigFlags::default()).wrap_err("checking the coordinator config")?;
    Ok(())
}

/// Where the coordinator stands once `up` returns.
pub struct Ready {
    /// Its latest epoch, verified under its public key.
    pub epoch: VerifiedEpoch,
    /// Shards the epoch commits; shards without a block yet enter with their first block.
    pub committed: usize,
}

/// Waits until the coordinator follows every shard of `net` up to `heights` (each shard's head, by shard id)
/// and has signed an epoch (verified under its public key) that commits every shard with a block at its
/// head. A shard still at genesis has nothing signed to commit: it enters the epochs with its first block.
pub async fn wait_ready(net: &Network, entry: &CoordinatorEntry, heights: &BTreeMap<u32, u64>) -> eyre::Result<Ready> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut last_problem = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        match check_ready(net, entry, heights).await {
            Ok(Ok(ready)) => return Ok(ready),
            Ok(Err(problem)) => last_problem = problem,
            Err(e) => last_problem = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the coordinator is not ready after {} s: {last_problem}", READY_TIMEOUT.as_secs())
}

async fn check_ready(
    net: &Network,
    entry: &CoordinatorEntry,
    heights: &BTreeMap<u32, u64>,
) -> eyre::Result<Result<Ready, String>> {
    let client = CoordinatorClient::connect(&entry.endpoint).await?;
    let status = client.status().await?;
    for node in net.shards() {
        let head = heights.get(&node.shard_id.0).copied().unwrap_or(0);
        match status.shards.iter().find(|s| s.shard_id == node.shard_id.0) {
            Some(s) if s.connected && s.accepted_height >= head => {}
            Some(s) => return Ok(Err(format!("{} followed to height {} of {head}", node.name, s.accepted_height))),
            None => return Ok(Err(format!("{} is not followed", node.name))),
        }
    }
    let Some(latest) = status.latest else { return Ok(Err("no epoch yet".into())) };
    let epoch = verify_epoch(&latest, &entry.public_key, net.chain_id)?;
    let mut committed = 0;
    for (shard, head) in heights.iter().filter(|(_, h)| **h > 0) {
        match client.inclusion(epoch.record.number, *shard).await.ok().and_then(|i| i.entry) {
            Some(e) if e.height >= *head => committed += 1,
            _ => return Ok(Err(format!("epoch {} does not commit shard {shard} at {head}", epoch.record.number))),
        }
    }
    Ok(Ok(Ready { epoch, committed }))
}

/// What `status` shows of a running coordinator.
pub struct CoordStatus {
    /// The latest epoch, verified under the manifest's public key (None before the first epoch).
    pub latest: Option<VerifiedEpoch>,
    /// Per shard id: the coordinator's view of it.
    pub shards: BTreeMap<u32, coordpb::ShardStatus>,
}

/// Asks the coordinator for its status and checks the latest epoch's signature.
pub async fn status(entry: &CoordinatorEntry, chain: ChainId) -> eyre::Result<CoordStatus> {
    let s = CoordinatorClient::connect(&entry.endpoint).await?.status().await?;
    let latest = match &s.latest {
        Some(signed) => Some(verify_epoch(signed, &entry.public_key, chain).wrap_err("latest epoch")?),
        None => None,
    };
    Ok(CoordStatus { latest, shards: s.shards.into_iter().map(|x| (x.shard_id, x)).collect() })
}
