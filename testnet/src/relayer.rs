//! The testnet's bridge relayer: whether the network can run one, its config (every shard with its genesis,
//! the coordinator and its key), starting it after the coordinator, readiness (its Bridge service answers and
//! follows every shard), and the figures `status` shows.
//!
//! The relayer needs no funds on any shard: gas bounds the work of a block and is not charged to the signer
//! (`shard-node/src/vm/gas.rs`), so its account holds nothing but its nonces.

use std::{path::Path, time::Duration};

use eyre::{bail, eyre, WrapErr};
use prost::Message;
use shardex_bridge::config::{ConfigFlags, RelayerConfig};
use shardex_client::{BridgeClient, CoordinatorClient};
use shardex_core::{coordpb, genesis::Genesis};
use shardex_proto::bridge::v1 as bpb;

use crate::{
    network::{self, relayer_key_file, Network, RelayerEntry},
    process,
};

/// The relayer listens on `--base-port` + this (7201 by default), next to the coordinator.
pub const RELAYER_PORT_OFFSET: u16 = 101;
/// How long `up` waits for the relayer to follow every shard.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the network cannot run the bridge, or None when it can: it needs two shards, a coordinator, and every
/// genesis naming that coordinator's key (a shard refuses every bridge op otherwise).
pub fn bridge_off_reason(net: &Network) -> eyre::Result<Option<String>> {
    if net.shards().len() < 2 {
        return Ok(Some("the network has one shard, so there is nothing to relay".into()));
    }
    let Some(coordinator) = &net.coordinator else {
        return Ok(Some("the network has no coordinator".into()));
    };
    for node in &net.nodes {
        let genesis = Genesis::read_file(&node.genesis_file())?;
        match genesis.coordinator {
            None => {
                return Ok(Some(format!(
                    "the genesis of {} names no coordinator key (it was written before the bridge was part of the \
                     testnet), so that shard refuses every bridge op; a new network directory has the bridge",
                    node.name
                )))
            }
            Some(key) if key != coordinator.public_key => {
                return Ok(Some(format!(
                    "the genesis of {} trusts coordinator key {key}, not this network's {}",
                    node.name, coordinator.public_key
                )))
            }
            Some(_) => {}
        }
        let shards = net.shards();
        if let Some(missing) = shards.iter().find(|other| {
            other.shard_id != node.shard_id && !genesis.peers.iter().any(|p| p.shard_id == other.shard_id)
        }) {
            return Ok(Some(format!(
                "the genesis of {} does not list shard {} ({}) as a bridge peer (it was written before shards named \
                 each other's validators), so they refuse each other's messages; a new network directory has the bridge",
                node.name, missing.shard_id, missing.symbol
            )));
        }
    }
    Ok(None)
}

/// Writes the relayer's TOML config for the network as it runs now (shard and coordinator endpoints known)
/// and checks the relayer would accept it. Paths are absolute, so the file works from any directory.
pub fn write_config(dir: &Path, net: &Network, entry: &RelayerEntry, port: u16) -> eyre::Result<()> {
    let abs = |p: &Path| std::path::absolute(p).wrap_err_with(|| format!("resolving {}", p.display()));
    let coordinator = net.coordinator.as_ref().ok_or_else(|| eyre!("the network has no coordinator"))?;
    let mut cfg = RelayerConfig::default();
    cfg.node.data_dir = abs(&entry.data_dir())?;
    cfg.node.key_file = abs(&relayer_key_file(dir))?;
    cfg.coordinator.endpoint = coordinator.endpoint.clone();
    cfg.coordinator.key = coordinator.public_key.to_hex();
    cfg.rpc.addr = format!("127.0.0.1:{port}");
    cfg.metrics.addr = "127.0.0.1:0".into();
    cfg.shards = net.shard_sections()?;
    let path = entry.config_file();
    std::fs::write(&path, toml::to_string_pretty(&cfg)?).wrap_err_with(|| format!("writing {}", path.display()))?;
    RelayerConfig::load(Some(&path), &ConfigFlags::default()).wrap_err("checking the relayer config")?;
    Ok(())
}

/// Starts the relayer of `net` (creating its key and directory the first time) once the shards and the
/// coordinator run, records it in the manifest, and waits until it follows every shard. `port` 0 picks a
/// free one.
pub async fn start(dir: &Path, net: &mut Network, bin: &Path, port: u16) -> eyre::Result<bpb::RelayerStatus> {
    let mut entry = match net.relayer.clone() {
        Some(entry) => entry,
        None => network::generate_relayer(dir)?,
    };
    write_config(dir, net, &entry, port)?;
    let (pid, endpoint) = process::start_relayer(bin, &entry, None)?;
    (entry.pid, entry.endpoint) = (Some(pid), endpoint);
    net.relayer = Some(entry.clone());
    net.save(dir)?;
    wait_ready(&entry, net.shards().len()).await.wrap_err_with(|| format!("see {}", entry.log_file().display()))
}

/// Waits until the relayer answers `GetStatus` and follows `shards` shards, each connected.
pub async fn wait_ready(entry: &RelayerEntry, shards: usize) -> eyre::Result<bpb::RelayerStatus> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut last_problem = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        match status(entry).await {
            Ok(s) if s.shards.len() == shards && s.shards.iter().all(|c| c.connected) => return Ok(s),
            Ok(s) => {
                let connected = s.shards.iter().filter(|c| c.connected).count();
                last_problem = format!("following {connected} of {shards} shards");
            }
            Err(e) => last_problem = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the relayer is not ready after {} s: {last_problem}", READY_TIMEOUT.as_secs())
}

/// The relayer's own status (`GetStatus` of its Bridge service).
pub async fn status(entry: &RelayerEntry) -> eyre::Result<bpb::RelayerStatus> {
    let client = BridgeClient::connect(&entry.endpoint).await?;
    Ok(client.status().await?)
}

/// The coordinator's latest epoch number: transfer expiries count from it.
pub async fn latest_epoch(net: &Network) -> eyre::Result<u64> {
    let entry = net.coordinator.as_ref().ok_or_else(|| eyre!("the network has no coordinator"))?;
    let coord = CoordinatorClient::connect(&entry.endpoint).await.wrap_err("connecting to the coordinator")?;
    let latest = coord.latest_epoch().await.wrap_err("the coordinator's latest epoch")?;
    Ok(coordpb::EpochRecord::decode(latest.record.as_slice()).wrap_err("epoch record")?.number)
}

/// Open messages at `stage` in the relayer's backlog.
pub fn backlog(s: &bpb::RelayerStatus, stage: bpb::Stage) -> u64 {
    s.backlog.iter().filter(|c| c.stage == stage as i32).map(|c| c.count).sum()
}

/// `REASON n, …`, or `none`.
pub fn errors(s: &bpb::RelayerStatus) -> String {
    if s.errors.is_empty() {
        return "none".into();
    }
    s.errors.iter().map(|e| format!("{} {}", e.reason, e.count)).collect::<Vec<_>>().join(", ")
}

/// One line of what the relayer reports: closed messages, the open backlog by stage, lock-to-credit
/// latency, its txs, errors, and how far it follows the shards and the coordinator.
pub fn summary(s: &bpb::RelayerStatus, endpoint: &str) -> String {
    let open: u64 = s.backlog.iter().map(|c| c.count).sum();
    let followed = s.shards.iter().filter(|c| c.connected).count();
    format!(
        "delivered {} acked {} refunded {} | open {open} (locked {}, committed {}, delivered {}) | lock-to-credit \
         p50 {} ms p99 {} ms over {} | txs {} submitted, {} duplicates | errors: {} | epoch {}, {followed}/{} \
         shards followed, {endpoint}",
        s.delivered,
        s.acked,
        s.refunded,
        backlog(s, bpb::Stage::Locked),
        backlog(s, bpb::Stage::Committed),
        backlog(s, bpb::Stage::Delivered),
        s.latency_p50_ms,
        s.latency_p99_ms,
        s.latency_samples,
        s.submitted,
        s.duplicates,
        errors(s),
        s.latest_epoch,
        s.shards.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_is_off_with_one_shard_or_a_genesis_not_trusting_the_coordinator() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = network::generate(tmp.path(), &["BTC-PERP".into(), "ETH-PERP".into()], 1, 0, 1).expect("generate");
        assert_eq!(bridge_off_reason(&net).expect("genesis readable"), None, "a new network has the bridge");
        let one = Network { nodes: net.nodes[..1].to_vec(), ..net.clone() };
        assert!(bridge_off_reason(&one).expect("readable").is_some_and(|r| r.contains("one shard")));

        let path = net.nodes[1].genesis_file();
        let mut genesis = Genesis::from_toml(&std::fs::read_to_string(&path).expect("read")).expect("genesis");
        genesis.coordinator = Some(shardex_core::Keypair::generate().account());
        std::fs::write(&path, genesis.to_toml()).expect("write");
        let why = bridge_off_reason(&net).expect("readable").expect("off");
        assert!(why.contains("eth-perp-0 trusts coordinator key"), "{why}");
        // A network written before shards listed each other as bridge peers.
        let mut no_peers = genesis.clone();
        no_peers.coordinator = Some(net.coordinator.as_ref().expect("coordinator").public_key);
        no_peers.peers.clear();
        std::fs::write(&path, no_peers.to_toml()).expect("write");
        let why = bridge_off_reason(&net).expect("readable").expect("off");
        assert!(why.contains("does not list shard 1 (BTC-PERP) as a bridge peer"), "{why}");
        // A network written before the bridge: its genesis names no coordinator.
        genesis.coordinator = None;
        std::fs::write(&path, genesis.to_toml()).expect("write");
        let why = bridge_off_reason(&net).expect("readable").expect("off");
        assert!(why.contains("eth-perp-0 names no coordinator key"), "{why}");
    }

    #[test]
    fn the_summary_names_backlog_latency_and_errors() {
        let s = bpb::RelayerStatus {
            backlog: vec![
                bpb::StageCount { stage: bpb::Stage::Locked as i32, count: 2 },
                bpb::StageCount { stage: bpb::Stage::Delivered as i32, count: 1 },
            ],
            delivered: 5,
            acked: 4,
            latency_p50_ms: 210,
            latency_p99_ms: 480,
            latency_samples: 5,
            errors: vec![bpb::ReasonCount { reason: "UNAVAILABLE".into(), count: 3 }],
            shards: vec![
                bpb::ShardCursor { shard_id: 1, connected: true, ..Default::default() },
                bpb::ShardCursor { shard_id: 2, connected: false, ..Default::default() },
            ],
            latest_epoch: 12,
            ..Default::default()
        };
        let line = summary(&s, "http://127.0.0.1:7201");
        assert!(
            line.starts_with("delivered 5 acked 4 refunded 0 | open 3 (locked 2, committed 0, delivered 1)"),
            "{line}"
        );
        assert!(line.contains("p50 210 ms p99 480 ms over 5") && line.contains("errors: UNAVAILABLE 3"), "{line}");
        assert!(line.contains("epoch 12, 1/2 shards followed, http://127.0.0.1:7201"), "{line}");
        assert_eq!(errors(&bpb::RelayerStatus::default()), "none");
    }
}
