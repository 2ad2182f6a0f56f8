//! A testnet on disk: one directory per node with its genesis, key, data and log, and `network.toml`
//! listing every node, its endpoint and pid.

use std::path::{Path, PathBuf};

use eyre::{eyre, WrapErr};
use serde::{Deserialize, Serialize};
use shardex_core::{
    genesis::{Authorities, Genesis, MarketParams, DEFAULT_NONCE_WINDOW},
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
}

/// One shard node of the testnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Node name, e.g. `btc-perp-0`.
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
}

impl NodeEntry {
    /// The node's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    /// Its genesis file.
    pub fn genesis_file(&self) -> PathBuf {
        self.dir.join("genesis.toml")
    }
}

/// Reference market parameters for a symbol.
fn market(symbol: &str) -> MarketParams {
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
    }
}

/// Reads a key file.
pub fn read_key(path: &Path) -> eyre::Result<Keypair> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("reading {}", path.display()))?;
    Keypair::from_secret_hex(&text).wrap_err_with(|| format!("key {}", path.display()))
}

fn write_key(path: &Path, key: &Keypair) -> eyre::Result<()> {
    std::fs::write(path, key.secret_hex()).wrap_err_with(|| format!("writing {}", path.display()))
}

/// Creates keys and genesis files for `symbols` under `dir` (shared authority keys in `dir/keys`).
pub fn generate(dir: &Path, symbols: &[String], genesis_time_ms: u64) -> eyre::Result<Network> {
    let keys_dir = dir.join("keys");
    std::fs::create_dir_all(&keys_dir).wrap_err_with(|| format!("creating {}", keys_dir.display()))?;
    let authority = |name: &str| -> eyre::Result<AccountId> {
        let k = Keypair::generate();
        write_key(&keys_dir.join(format!("{name}.key")), &k)?;
        Ok(k.account())
    };
    let authorities =
        Authorities { deposit: authority("deposit")?, oracle: authority("oracle")?, admin: authority("admin")? };
    let mut nodes = Vec::new();
    for (i, symbol) in symbols.iter().enumerate() {
        let shard_id = ShardId(u32::try_from(i + 1).map_err(|_| eyre!("too many shards"))?);
        let name = format!("{}-0", symbol.to_lowercase());
        let node_dir = dir.join(&name);
        std::fs::create_dir_all(&node_dir).wrap_err_with(|| format!("creating {}", node_dir.display()))?;
        let node_key = Keypair::generate();
        write_key(&node_dir.join("node.key"), &node_key)?;
        let genesis = Genesis {
            chain_id: TESTNET_CHAIN_ID,
            shard_id,
            genesis_time_ms,
            market: market(symbol),
            authorities: authorities.clone(),
            sequencers: vec![node_key.account()],
            // The bridge is not wired into the testnet yet (no coordinator or relayer is started).
            coordinator: None,
        };
        genesis.validate()?;
        std::fs::write(node_dir.join("genesis.toml"), genesis.to_toml())?;
        nodes.push(NodeEntry {
            name,
            symbol: symbol.clone(),
            shard_id,
            dir: node_dir,
            endpoint: String::new(),
            pid: None,
        });
    }
    Ok(Network { chain_id: TESTNET_CHAIN_ID, nodes })
}

impl Network {
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

    /// The node called `name`.
    pub fn node(&self, name: &str) -> eyre::Result<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            eyre!("no node {name:?}; nodes are {}", names.join(", "))
        })
    }
}
