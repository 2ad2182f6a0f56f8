//! A testnet on disk: one directory per node with its genesis, key, data and log, `coordinator/` and
//! `relayer/` directories with their config, data and log, and `network.toml` listing every process, its
//! endpoint and pid.

use std::path::{Path, PathBuf};

use eyre::{eyre, WrapErr};
use serde::{Deserialize, Serialize};
use shardex_core::{
    genesis::{Authorities, Genesis, MarketParams, OptionsParams, Peer, TradingParams, DEFAULT_NONCE_WINDOW},
    validators::ValidatorSet,
    AccountId, ChainId, Keypair, ShardId,
};

/// Chain id of local testnets.
pub const TESTNET_CHAIN_ID: ChainId = ChainId(31_337);

/// The manifest a running testnet leaves in its directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    /// Chain id.
    pub chain_id: ChainId,
    /// One entry per shard node.
    pub nodes: Vec<NodeEntry>,
    /// The coordinator following every shard (absent in manifests written before it was part of `up`).
    #[serde(default)]
    pub coordinator: Option<CoordinatorEntry>,
    /// The bridge relayer between the shards (absent while the bridge is off: one shard, or a genesis
    /// written before it named the coordinator's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayer: Option<RelayerEntry>,
    /// The explorer serving the network's live web page (absent in manifests written before it was part of
    /// `up`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explorer: Option<ExplorerEntry>,
}

/// The explorer of the testnet: a web page of every shard, epoch and bridge message, fed by their gRPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplorerEntry {
    /// Its directory (config, log, `data/http.addr`).
    pub dir: PathBuf,
    /// The page's address (`http://127.0.0.1:PORT`), known once it started.
    pub url: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// Name of the explorer in `status` and `logs`.
pub const EXPLORER: &str = "explorer";

impl ExplorerEntry {
    /// The explorer of the testnet in `dir`, not started.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.join(EXPLORER), url: String::new(), pid: None }
    }
    /// Its log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("explorer.log")
    }
    /// Its TOML config, rewritten by every `up`.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("explorer.toml")
    }
    /// Where it writes its bound address.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

/// The coordinator of the testnet: signs one global commitment per epoch over every shard's latest header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoordinatorEntry {
    /// Its directory (config, data, log); its secret key is `keys/coordinator.key`.
    pub dir: PathBuf,
    /// The public key clients trust for epoch signatures.
    pub public_key: AccountId,
    /// gRPC endpoint (`http://127.0.0.1:PORT`), known once it started.
    pub endpoint: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// Name of the coordinator in `status` and `logs`.
pub const COORDINATOR: &str = "coordinator";

impl CoordinatorEntry {
    /// The coordinator's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("coordinator.log")
    }
    /// Its TOML config, rewritten by every `up` (shard endpoints change with `--base-port 0`).
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("coordinator.toml")
    }
    /// Its data directory (sled database, `rpc.addr`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// Where the running coordinator serves Prometheus metrics (`host:port`).
    pub fn metrics_addr(&self) -> Option<String> {
        metrics_addr(&self.data_dir())
    }
}

/// The bridge relayer of the testnet: carries cross-shard collateral messages between every shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayerEntry {
    /// Its directory (config, data, log); its secret key is `keys/relayer.key`.
    pub dir: PathBuf,
    /// The account that signs its imports, deliveries, acks and refunds.
    pub account: AccountId,
    /// gRPC endpoint of its Bridge service (`http://127.0.0.1:PORT`), known once it started.
    pub endpoint: String,
    /// Process id while running.
    pub pid: Option<u32>,
}

/// Name of the relayer in `status` and `logs`.
pub const RELAYER: &str = "relayer";

impl RelayerEntry {
    /// The relayer's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("relayer.log")
    }
    /// Its TOML config, rewritten by every `up`.
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("relayer.toml")
    }
    /// Its data directory (scan cursors, `rpc.addr`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// Where the running relayer serves Prometheus metrics (`host:port`).
    pub fn metrics_addr(&self) -> Option<String> {
        metrics_addr(&self.data_dir())
    }
}

/// One shard node of the testnet: a validator of its shard, or a follower (a read replica of its set).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node name, e.g. `btc-perp-0` (the shard's validator 0).
    pub name: String,
    /// Market symbol.
    pub symbol: String,
    /// Shard id.
    pub shard_id: ShardId,
    /// Its directory.
    pub dir: PathBuf,
    /// gRPC endpoint (`http://127.0.0.1:PORT`), known once it started.
    pub endpoint: String,
    /// Process id while running.
    pub pid: Option<u32>,
    /// Its block interval, as `up` started it (restarts keep it).
    #[serde(default = "default_block_interval_ms")]
    pub block_interval_ms: u64,
    /// Its position in the shard's genesis validator set.
    #[serde(default)]
    pub validator: usize,
    /// Its gRPC port, fixed by `up` before any node starts (the validators forward submissions to each other).
    #[serde(default)]
    pub rpc_port: u16,
    /// Its consensus (libp2p) port while its shard has several validators; 0 runs the solo engine.
    #[serde(default)]
    pub p2p_port: u16,
    /// A follower: outside the genesis set, it re-executes the validators' blocks and serves reads.
    #[serde(default)]
    pub follower: bool,
    /// Its state-sync (libp2p) port, where it serves snapshots, while its shard has several validators; 0:
    /// it serves none.
    #[serde(default)]
    pub sync_port: u16,
}

/// The metrics address a server wrote into its data directory `data`, if it serves metrics.
fn metrics_addr(data: &Path) -> Option<String> {
    std::fs::read_to_string(data.join(shardex_service::metrics::ADDR_FILE)).ok().map(|a| a.trim().to_owned())
}

fn default_block_interval_ms() -> u64 {
    100
}

impl NodeEntry {
    /// The node's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    /// Where the running node serves Prometheus metrics (`host:port`).
    pub fn metrics_addr(&self) -> Option<String> {
        metrics_addr(&self.dir.join("data"))
    }
    /// Its genesis file.
    pub fn genesis_file(&self) -> PathBuf {
        self.dir.join("genesis.toml")
    }

    /// Its consensus listen address.
    pub fn p2p_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port)
    }

    /// Its state-sync listen address.
    pub fn sync_addr(&self) -> String {
        format!("/ip4/127.0.0.1/tcp/{}", self.sync_port)
    }
}

/// The reference price of a testnet market in whole USD. The demo and the load both publish it, so
/// neither trips the price band for the other.
pub fn reference_price_usd(symbol: &str) -> u64 {
    match symbol {
        s if s.starts_with("BTC") => 100_000,
        s if s.starts_with("ETH") => 3_000,
        s if s.starts_with("SOL") => 150,
        _ => 100,
    }
}

/// True for the symbol of an options market (`ETH-OPTIONS`): its shard lists option series on the
/// underlying named before the dash.
pub fn is_options(symbol: &str) -> bool {
    symbol.ends_with("-OPTIONS")
}

/// Reference market parameters for a symbol.
fn market(symbol: &str) -> MarketParams {
    if is_options(symbol) {
        return options_market(symbol);
    }
    let (tick, lot) = match symbol {
        s if s.starts_with("BTC") => (100_000, 1_000),
        s if s.starts_with("ETH") => (10_000, 10_000),
        _ => (1_000, 100_000),
    };
    MarketParams {
        symbol: symbol.to_owned(),
        tick_size_micros: tick,
        lot_size: lot,
        initial_margin_bps: 1_000,
        maintenance_margin_bps: 500,
        nonce_window: DEFAULT_NONCE_WINDOW,
        trading: Default::default(),
        options: None,
    }
}

/// An options market of the testnet: premiums on a 0.01 USD tick, lots of 0.01 of the underlying, strikes
/// every 50 USD, and expiries every 10 seconds from 20 seconds to 30 days out, so the demo can list, trade,
/// expire and settle a series within a minute. Settlement averages the last 10 seconds before an expiry;
/// volatility stays fresh for an hour. Standard and portfolio margin at the defaults; no funding.
fn options_market(symbol: &str) -> MarketParams {
    let options = OptionsParams {
        strike_tick_micros: 50_000_000,
        expiry_step_ms: 10_000,
        min_tenor_ms: 20_000,
        max_tenor_ms: 30 * 86_400_000,
        max_expiries: 64,
        max_series_per_expiry: 64,
        settle_window_ms: 10_000,
        vol_max_age_ms: 3_600_000,
        settle_grace_ms: 60_000,
        ..OptionsParams::default()
    };
    MarketParams {
        symbol: symbol.to_owned(),
        tick_size_micros: 10_000,
        lot_size: 10_000,
        initial_margin_bps: 1_000,
        maintenance_margin_bps: 500,
        nonce_window: DEFAULT_NONCE_WINDOW,
        trading: TradingParams { funding_interval_ms: 0, ..Default::default() },
        options: Some(options),
    }
}

fn write_key(path: &Path, key: &Keypair) -> eyre::Result<()> {
    key.write_file(path).wrap_err_with(|| format!("writing {}", path.display()))
}

/// The coordinator's secret key file.
pub fn coordinator_key_file(dir: &Path) -> PathBuf {
    dir.join("keys").join("coordinator.key")
}

/// Creates the coordinator's key (`keys/coordinator.key`) and directory.
pub fn generate_coordinator(dir: &Path) -> eyre::Result<CoordinatorEntry> {
    let key = Keypair::generate();
    write_key(&coordinator_key_file(dir), &key)?;
    let coord_dir = dir.join(COORDINATOR);
    std::fs::create_dir_all(&coord_dir).wrap_err_with(|| format!("creating {}", coord_dir.display()))?;
    Ok(CoordinatorEntry { dir: coord_dir, public_key: key.account(), endpoint: String::new(), pid: None })
}

/// The relayer's secret key file.
pub fn relayer_key_file(dir: &Path) -> PathBuf {
    dir.join("keys").join("relayer.key")
}

/// Creates the relayer's key (`keys/relayer.key`) and directory.
pub fn generate_relayer(dir: &Path) -> eyre::Result<RelayerEntry> {
    let key = Keypair::generate();
    write_key(&relayer_key_file(dir), &key)?;
    let relayer_dir = dir.join(RELAYER);
    std::fs::create_dir_all(&relayer_dir).wrap_err_with(|| format!("creating {}", relayer_dir.display()))?;
    Ok(RelayerEntry { dir: relayer_dir, account: key.account(), endpoint: String::new(), pid: None })
}

/// Most validators per shard a testnet runs.
pub const MAX_SEQUENCERS: usize = 16;

/// Most followers per shard a testnet runs.
pub const MAX_FOLLOWERS: usize = 4;

/// Creates keys and genesis files for `symbols` under `dir`, each shard run by `sequencers` validators (one
/// directory each, `btc-perp-0`, `btc-perp-1`, …, with its key and the shard's genesis), shared authority
/// keys, the coordinator's included, in `dir/keys`. Every genesis names the coordinator's key, so the shards
/// accept its epochs, and lists every other shard with its validator set as a bridge peer, so the bridge
/// runs between any two. Each shard also gets `followers` followers (`btc-perp-f0`, …) with keys of their own.
pub fn generate(
    dir: &Path,
    symbols: &[String],
    sequencers: usize,
    followers: usize,
    genesis_time_ms: u64,
) -> eyre::Result<Network> {
    if !(1..=MAX_SEQUENCERS).contains(&sequencers) {
        return Err(eyre!("--sequencers takes 1 to {MAX_SEQUENCERS} validators per shard"));
    }
    if followers > MAX_FOLLOWERS {
        return Err(eyre!("--followers takes 0 to {MAX_FOLLOWERS} followers per shard"));
    }
    if followers > 0 && sequencers == 1 {
        return Err(eyre!(
            "followers follow a validator set over consensus, and one validator runs the solo engine: use \
             --sequencers 2 or more, or --followers 0"
        ));
    }
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).wrap_err_with(|| format!("creating {}", keys_dir.display()))?;
    let authority = |name: &str| -> eyre::Result<AccountId> {
        let k = Keypair::generate();
        write_key(&keys_dir.join(format!("{name}.key")), &k)?;
        Ok(k.account())
    };
    let authorities =
        Authorities { deposit: authority("deposit")?, oracle: authority("oracle")?, admin: authority("admin")? };
    let coordinator = generate_coordinator(dir)?;
    // Every shard's validator set first: each genesis lists all the others as bridge peers.
    let mut shards = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let shard_id = ShardId(u32::try_from(i + 1).map_err(|_| eyre!("too many shards"))?);
        let keys: Vec<Keypair> = (0..sequencers).map(|_| Keypair::generate()).collect();
        let set = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>())?;
        shards.push((shard_id, symbol, keys, set));
    }
    let mut nodes = Vec::new();
    for (shard_id, symbol, keys, validators) in &shards {
        let shard_id = *shard_id;
        let peers = shards
            .iter()
            .filter(|(other, ..)| *other != shard_id)
            .map(|(other, _, _, set)| Peer { shard_id: *other, validators: set.clone() })
            .collect();
        let genesis = Genesis {
            chain_id: TESTNET_CHAIN_ID,
            shard_id,
            genesis_time_ms,
            market: market(symbol),
            authorities: authorities.clone(),
            validators: validators.clone(),
            coordinator: Some(coordinator.public_key),
            peers,
            bridge_retention_blocks: shardex_core::genesis::DEFAULT_BRIDGE_RETENTION_BLOCKS,
        };
        genesis.validate()?;
        let follower_keys: Vec<Keypair> = (0..followers).map(|_| Keypair::generate()).collect();
        let members = keys.iter().enumerate().map(|(v, k)| (v, k, false));
        let replicas = follower_keys.iter().enumerate().map(|(f, k)| (f, k, true));
        for (v, key, follower) in members.chain(replicas) {
            let name = match follower {
                false => format!("{}-{v}", symbol.to_lowercase()),
                true => format!("{}-f{v}", symbol.to_lowercase()),
            };
            let node_dir = dir.join(&name);
            std::fs::create_dir_all(&node_dir).wrap_err_with(|| format!("creating {}", node_dir.display()))?;
            write_key(&node_dir.join("node.key"), key)?;
            std::fs::write(node_dir.join("genesis.toml"), genesis.to_toml())?;
            nodes.push(NodeEntry {
                name,
                symbol: (*symbol).clone(),
                shard_id,
                dir: node_dir,
                endpoint: String::new(),
                pid: None,
                block_interval_ms: default_block_interval_ms(),
                validator: v,
                rpc_port: 0,
                p2p_port: 0,
                follower,
                sync_port: 0,
            });
        }
    }
    Ok(Network { chain_id: TESTNET_CHAIN_ID, nodes, coordinator: Some(coordinator), relayer: None, explorer: None })
}

impl Network {
    /// Where every server serves Prometheus metrics, as one line (`name host:port, …`), from the address files
    /// the running servers wrote; None when none serves any.
    pub fn metrics_line(&self) -> Option<String> {
        let nodes = self.nodes.iter().filter_map(|n| n.metrics_addr().map(|a| format!("{} {a}", n.name)));
        let coordinator =
            self.coordinator.as_ref().and_then(|c| c.metrics_addr()).map(|a| format!("{COORDINATOR} {a}"));
        let relayer = self.relayer.as_ref().and_then(|r| r.metrics_addr()).map(|a| format!("{RELAYER} {a}"));
        let all: Vec<String> = nodes.chain(coordinator).chain(relayer).collect();
        (!all.is_empty()).then(|| format!("Prometheus metrics (GET http://ADDR/metrics): {}", all.join(", ")))
    }

    /// The manifest path inside `dir`.
    pub fn manifest(dir: &Path) -> PathBuf {
        dir.join("network.toml")
    }

    /// Loads the manifest of `dir`.
    pub fn load(dir: &Path) -> eyre::Result<Self> {
        let path = Self::manifest(dir);
        let text = std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("no testnet in {} (run `testnet up` first)", dir.display()))?;
        toml::from_str(&text).wrap_err_with(|| format!("parsing {}", path.display()))
    }

    /// Writes the manifest atomically.
    pub fn save(&self, dir: &Path) -> eyre::Result<()> {
        let path = Self::manifest(dir);
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, toml::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// The log file of the process called `name` (a node's name, `coordinator` or `relayer`).
    pub fn log_file(&self, name: &str) -> eyre::Result<PathBuf> {
        if let Some(c) = self.coordinator.as_ref().filter(|_| name == COORDINATOR) {
            return Ok(c.log_file());
        }
        if let Some(r) = self.relayer.as_ref().filter(|_| name == RELAYER) {
            return Ok(r.log_file());
        }
        if let Some(e) = self.explorer.as_ref().filter(|_| name == EXPLORER) {
            return Ok(e.log_file());
        }
        match self.nodes.iter().find(|n| n.name == name) {
            Some(n) => Ok(n.log_file()),
            None => {
                let mut names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                if self.coordinator.is_some() {
                    names.push(COORDINATOR);
                }
                if self.relayer.is_some() {
                    names.push(RELAYER);
                }
                if self.explorer.is_some() {
                    names.push(EXPLORER);
                }
                Err(eyre!("no node {name:?}; nodes are {}", names.join(", ")))
            }
        }
    }

    /// Every node as the coordinator's and the relayer's configs list it: its endpoint now and its shard's
    /// genesis file (absolute, so the configs work from any directory). The validators of one shard are its
    /// several endpoints.
    pub fn shard_sections(&self) -> eyre::Result<Vec<shardex_coordinator::config::ShardSection>> {
        self.nodes
            .iter()
            .map(|n| {
                let genesis = n.genesis_file();
                let genesis =
                    std::path::absolute(&genesis).wrap_err_with(|| format!("resolving {}", genesis.display()))?;
                Ok(shardex_coordinator::config::ShardSection { endpoint: n.endpoint.clone(), genesis })
            })
            .collect()
    }

    /// One node per shard, in shard order: validator 0, which clients talk to (it forwards submissions to
    /// whichever validator proposes).
    pub fn shards(&self) -> Vec<&NodeEntry> {
        let mut out: Vec<&NodeEntry> = Vec::new();
        for n in self.nodes.iter().filter(|n| !n.follower) {
            if !out.iter().any(|o| o.shard_id == n.shard_id) {
                out.push(n);
            }
        }
        out.sort_by_key(|n| n.shard_id);
        out
    }

    /// Every validator node of `shard`, in genesis order (followers left out).
    pub fn validators_of(&self, shard: ShardId) -> Vec<&NodeEntry> {
        let mut v: Vec<&NodeEntry> = self.nodes.iter().filter(|n| n.shard_id == shard && !n.follower).collect();
        v.sort_by_key(|n| n.validator);
        v
    }

    /// True while every process of the network runs (the relayer too, when the network has one).
    pub fn all_running(&self, alive: impl Fn(u32) -> bool) -> bool {
        self.nodes.iter().all(|n| n.pid.is_some_and(&alive))
            && self.coordinator.as_ref().is_some_and(|c| c.pid.is_some_and(&alive))
            && self.relayer.as_ref().is_none_or(|r| r.pid.is_some_and(&alive))
            && self.explorer.as_ref().is_none_or(|e| e.pid.is_some_and(&alive))
    }

    /// True while any process of the network runs.
    pub fn any_running(&self, alive: impl Fn(u32) -> bool) -> bool {
        self.nodes.iter().any(|n| n.pid.is_some_and(&alive))
            || self.coordinator.as_ref().is_some_and(|c| c.pid.is_some_and(&alive))
            || self.relayer.as_ref().is_some_and(|r| r.pid.is_some_and(&alive))
            || self.explorer.as_ref().is_some_and(|e| e.pid.is_some_and(&alive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every secret a new testnet writes (authorities, the coordinator's, every validator's) is readable by
    /// its owner only.
    #[cfg(unix)]
    #[test]
    fn every_key_file_is_written_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let net = generate(tmp.path(), &["BTC-PERP".into(), "ETH-PERP".into()], 2, 1, 1).expect("generate");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(tmp.path().join("keys")).expect("keys dir").map(|e| e.expect("entry").path()).collect();
        files.extend(net.nodes.iter().map(|n| n.dir.join("node.key")));
        assert!(files.len() >= 8, "{files:?}");
        for f in files {
            let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
        }
    }
}
