//! Node configuration: a TOML file with sections `[node] [rpc] [mempool] [block] [state] [consensus] [sync] [log]
//! [metrics]`,
//! every value overridable by a `--section.key` flag. Defaults suit a laptop testnet.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use serde::{Deserialize, Serialize};
pub use shardex_service::config::ConfigError;
use shardex_service::{
    config::{check, read_toml, set},
    grpc::{stream_checks, ServerLimitFlags, ServerLimits, StreamLimitFlags},
    metrics::{MetricsFlags, MetricsSection},
    process::LogFormat,
};

use shardex_core::{block::MAX_CLIENT_RESPONSE_BYTES, AccountId};

use crate::{
    rpc::RpcLimits,
    shard::{Role, ShardConfig, BLOCK_ENVELOPE_BYTES},
};

/// The whole configuration after merging file and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Paths.
    pub node: NodeSection,
    /// gRPC.
    pub rpc: RpcSection,
    /// Mempool limits.
    pub mempool: MempoolSection,
    /// Block production.
    pub block: BlockSection,
    /// State engine.
    pub state: StateSection,
    /// The validator set's consensus.
    pub consensus: ConsensusSection,
    /// State sync: serving snapshots, and starting from one.
    pub sync: SyncSection,
    /// Logging.
    pub log: LogSection,
    /// Prometheus metrics.
    pub metrics: MetricsSection,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Data directory (sled database, `rpc.addr`).
    pub data_dir: PathBuf,
    /// Genesis TOML file.
    pub genesis: PathBuf,
    /// File holding this node's ed25519 secret key (hex).
    pub key_file: PathBuf,
}

/// `[rpc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address; port 0 picks a free port (written to `<data_dir>/rpc.addr`).
    pub addr: String,
    /// Largest gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Largest `SubmitBatch`, txs.
    pub max_batch_txs: usize,
    /// Concurrent stream subscribers (headers and account events together).
    pub max_subscribers: usize,
    /// A stream with nothing to send for this long ends with `UNAVAILABLE` (the client resubscribes), ms.
    pub stream_idle_ms: u64,
    /// A stream whose client reads nothing for this long while its buffer is full is dropped with
    /// `RESOURCE_EXHAUSTED` (`SLOW_CONSUMER`), ms.
    pub stream_stall_ms: u64,
    /// Under a validator set, health reports `NOT_SERVING` while the head block is older than this by the
    /// node's clock (starting behind and catching up, or the set deciding no blocks), ms; 0: always `SERVING`.
    pub health_max_head_age_ms: u64,
    /// `[rpc.limits]`: per-connection limits.
    pub limits: ServerLimits,
}

/// `[mempool]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSection {
    /// Pending txs.
    pub max_txs: usize,
    /// Largest encoded tx, bytes.
    pub max_tx_bytes: usize,
    /// Refused txs per signer between two blocks; past it the signer's txs are refused unexecuted
    /// (`RATE_LIMITED`) until the next block.
    pub max_refusals_per_account: u32,
}

/// `[block]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockSection {
    /// Block interval, ms (a full block is produced sooner).
    pub interval_ms: u64,
    /// Gas per block.
    pub gas_limit: u64,
    /// Txs per block.
    pub max_txs: usize,
    /// Encoded bytes of a block's txs, receipts and begin-block events; at most `rpc.max_message_bytes` less
    /// 64 KiB (header and certificate), so every block can be fetched with `GetBlock`.
    pub max_bytes: usize,
    /// How long after its timestamp a block still takes txs, ms; past it the next tx opens a new block.
    pub max_open_ms: u64,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSection {
    /// Heights below the head that stay provable; older trie nodes are pruned.
    pub retention_blocks: u64,
    /// Blocks kept: 0 keeps every block (an archive node); N keeps the last N (at least
    /// `retention_blocks`), deleting older blocks, their tx index and history entries.
    pub keep_blocks: u64,
    /// Head-state values kept in memory so admission and re-execution rarely read storage (0 turns the cache
    /// off; about 200 bytes each).
    pub head_cache_entries: usize,
}

/// The default log filter: shardex at info, the consensus engine's own chatter (every step of every round)
/// and libp2p's at warn.
pub const DEFAULT_LOG_FILTER: &str = "info,arc_malachitebft=warn,libp2p=warn";

/// Largest `state.head_cache_entries`.
pub const MAX_HEAD_CACHE_ENTRIES: usize = 1 << 26;

/// Which consensus decides blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// This node alone: its genesis validator set must be this node.
    Solo,
    /// Malachite BFT with the other validators of the genesis set.
    Malachite,
}

/// Another validator of the set: its key, its consensus (libp2p) address and its gRPC endpoint, written
/// `KEY@MULTIADDR@URL`, e.g. `3f1c…@/ip4/127.0.0.1/tcp/7301@http://127.0.0.1:7101`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Its validator key.
    pub key: AccountId,
    /// Its consensus listen address.
    pub p2p: String,
    /// Its gRPC endpoint (submissions are forwarded there while it proposes).
    pub rpc: String,
}

impl std::str::FromStr for PeerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, '@');
        let (Some(key), Some(p2p), Some(rpc)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("{s:?} is not KEY@MULTIADDR@URL"));
        };
        let key = AccountId::from_hex(key).map_err(|e| format!("peer key in {s:?}: {e}"))?;
        if !p2p.starts_with('/') || !(rpc.starts_with("http://") || rpc.starts_with("https://")) {
            return Err(format!("{s:?} is not KEY@MULTIADDR@URL (a multiaddr starts with /, a URL with http://)"));
        }
        Ok(Self { key, p2p: p2p.to_owned(), rpc: rpc.to_owned() })
    }
}

impl std::fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}@{}", self.key, self.p2p, self.rpc)
    }
}

impl Serialize for PeerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `[consensus]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSection {
    /// `solo` or `malachite`.
    pub engine: EngineKind,
    /// `validator` (the node key is in the genesis set) or `follower` (a read replica under malachite: it
    /// re-executes every certified block, serves queries, and forwards submissions to the proposer).
    pub role: Role,
    /// Consensus (libp2p) listen address, e.g. `/ip4/127.0.0.1/tcp/7300`.
    pub listen: String,
    /// The other validators, `KEY@MULTIADDR@URL` each.
    pub peers: Vec<PeerSpec>,
    /// How long validators wait for a round's proposal, ms (grows by `timeout_delta_ms` per round): a dead
    /// leader costs this much before the next validator proposes.
    pub timeout_propose_ms: u64,
    /// How long validators wait for a quorum of prevotes or precommits, ms.
    pub timeout_vote_ms: u64,
    /// Added to every timeout per round, ms.
    pub timeout_delta_ms: u64,
    /// Longest an idle proposer waits for a first tx before proposing an empty block, ms (at most half of
    /// `timeout_propose_ms`).
    pub max_idle_ms: u64,
    /// How far ahead of this node's clock a proposed block's timestamp may be, ms.
    pub max_future_ms: u64,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            engine: EngineKind::Solo,
            role: Role::Validator,
            listen: String::new(),
            peers: Vec::new(),
            timeout_propose_ms: 800,
            timeout_vote_ms: 300,
            timeout_delta_ms: 200,
            max_idle_ms: 400,
            max_future_ms: 2_000,
        }
    }
}

/// How a node with an empty data directory starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// From the genesis file, receiving and re-executing every block since.
    Replay,
    /// From a snapshot of the newest certified height its `sync.peers` offer, then the blocks after it.
    Snapshot,
}

impl SyncMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Snapshot => "snapshot",
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// `replay` or `snapshot`: how an empty data directory starts (a store that holds a head always resumes
    /// from it).
    pub mode: SyncMode,
    /// Peers to fetch a snapshot from: their `sync.listen` multiaddrs, e.g. `/ip4/127.0.0.1/tcp/7400`.
    pub peers: Vec<String>,
    /// Where to serve snapshots of this node's state (libp2p multiaddr); empty: do not serve.
    pub listen: String,
    /// Trie nodes asked for per chunk (at most 16384).
    pub chunk_nodes: u32,
    /// How long to wait for the snapshot peers' connections, ms.
    pub connect_timeout_ms: u64,
}

impl Default for SyncSection {
    fn default() -> Self {
        Self {
            mode: SyncMode::Replay,
            peers: Vec::new(),
            listen: String::new(),
            chunk_nodes: 4096,
            connect_timeout_ms: 10_000,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info,shard::block=debug`.
    pub filter: String,
    /// `text` (one readable line per event) or `json` (one JSON object per line).
    pub format: LogFormat,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let shard = ShardConfig::default();
        let rpc = RpcLimits::default();
        Self {
            node: NodeSection {
                data_dir: PathBuf::from("data"),
                genesis: PathBuf::from("genesis.toml"),
                key_file: PathBuf::from("node.key"),
            },
            rpc: RpcSection {
                addr: "127.0.0.1:7100".into(),
                max_message_bytes: rpc.max_message_bytes,
                max_batch_txs: rpc.max_batch_txs,
                max_subscribers: rpc.max_subscribers,
                stream_idle_ms: u64::try_from(rpc.stream_idle.as_millis()).unwrap_or(u64::MAX),
                stream_stall_ms: u64::try_from(rpc.stream_stall.as_millis()).unwrap_or(u64::MAX),
                health_max_head_age_ms: u64::try_from(rpc.health_max_head_age.as_millis()).unwrap_or(u64::MAX),
                limits: ServerLimits::default(),
            },
            mempool: MempoolSection {
                max_txs: shard.mempool_max_txs,
                max_tx_bytes: shard.max_tx_bytes,
                max_refusals_per_account: shard.max_refusals_per_signer,
            },
            block: BlockSection {
                interval_ms: 100,
                gas_limit: shard.block_gas_limit,
                max_txs: shard.max_block_txs,
                max_bytes: shard.max_block_bytes,
                max_open_ms: shard.max_open_block_ms,
            },
            state: StateSection {
                retention_blocks: shard.retention_blocks,
                keep_blocks: shard.keep_blocks,
                head_cache_entries: shard.head_cache_entries,
            },
            consensus: ConsensusSection::default(),
            sync: SyncSection::default(),
            log: LogSection { filter: DEFAULT_LOG_FILTER.into(), format: LogFormat::Text },
            metrics: MetricsSection::default(),
        }
    }
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeConfig::default().node
    }
}
impl Default for RpcSection {
    fn default() -> Self {
        NodeConfig::default().rpc
    }
}
impl Default for MempoolSection {
    fn default() -> Self {
        NodeConfig::default().mempool
    }
}
impl Default for BlockSection {
    fn default() -> Self {
        NodeConfig::default().block
    }
}
impl Default for StateSection {
    fn default() -> Self {
        NodeConfig::default().state
    }
}
impl Default for LogSection {
    fn default() -> Self {
        NodeConfig::default().log
    }
}

/// Flags; each overrides the same key of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Data directory.
    #[arg(long = "node.data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Genesis TOML file.
    #[arg(long = "node.genesis", value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Node secret key file.
    #[arg(long = "node.key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long = "rpc.addr", value_name = "HOST:PORT")]
    pub rpc_addr: Option<String>,
    /// Largest gRPC message in bytes.
    #[arg(long = "rpc.max-message-bytes", value_name = "BYTES")]
    pub rpc_max_message_bytes: Option<usize>,
    /// Largest SubmitBatch in txs.
    #[arg(long = "rpc.max-batch-txs", value_name = "N")]
    pub rpc_max_batch_txs: Option<usize>,
    /// Under a validator set, health is NOT_SERVING while the head block is older than this, ms (0: never).
    #[arg(long = "rpc.health-max-head-age-ms", value_name = "MS")]
    pub rpc_health_max_head_age_ms: Option<u64>,
    /// Stream limits.
    #[command(flatten)]
    pub rpc_streams: StreamLimitFlags,
    /// Most txs in one block.
    #[arg(long = "block.max-txs", value_name = "N")]
    pub block_max_txs: Option<usize>,
    /// How much each later round of a height adds to its timeouts, ms.
    #[arg(long = "consensus.timeout-delta-ms", value_name = "MS")]
    pub consensus_timeout_delta_ms: Option<u64>,
    /// Furthest ahead of this node's clock a proposed block's time may be, ms.
    #[arg(long = "consensus.max-future-ms", value_name = "MS")]
    pub consensus_max_future_ms: Option<u64>,
    /// Longest wait to connect to a snapshot peer, ms.
    #[arg(long = "sync.connect-timeout-ms", value_name = "MS")]
    pub sync_connect_timeout_ms: Option<u64>,
    /// Per-connection limits.
    #[command(flatten)]
    pub rpc_limits: ServerLimitFlags,
    /// Pending tx limit.
    #[arg(long = "mempool.max-txs", value_name = "N")]
    pub mempool_max_txs: Option<usize>,
    /// Largest encoded tx in bytes.
    #[arg(long = "mempool.max-tx-bytes", value_name = "BYTES")]
    pub mempool_max_tx_bytes: Option<usize>,
    /// Refused txs per account between two blocks before its txs are refused unexecuted.
    #[arg(long = "mempool.max-refusals-per-account", value_name = "N")]
    pub mempool_max_refusals_per_account: Option<u32>,
    /// Block interval in ms.
    #[arg(long = "block.interval-ms", value_name = "MS")]
    pub block_interval_ms: Option<u64>,
    /// Gas per block.
    #[arg(long = "block.gas-limit", value_name = "GAS")]
    pub block_gas_limit: Option<u64>,
    /// Encoded bytes of a block's txs and receipts.
    #[arg(long = "block.max-bytes", value_name = "BYTES")]
    pub block_max_bytes: Option<usize>,
    /// How long an open block keeps taking txs after its timestamp, in ms.
    #[arg(long = "block.max-open-ms", value_name = "MS")]
    pub block_max_open_ms: Option<u64>,
    /// Provable heights kept below the head.
    #[arg(long = "state.retention-blocks", value_name = "N")]
    pub state_retention_blocks: Option<u64>,
    /// Blocks kept: 0 keeps all (archive), N the last N.
    #[arg(long = "state.keep-blocks", value_name = "N")]
    pub state_keep_blocks: Option<u64>,
    /// Head-state values kept in memory for admission and re-execution (0: off).
    #[arg(long = "state.head-cache-entries", value_name = "N")]
    pub state_head_cache_entries: Option<usize>,
    /// Consensus engine: solo (this node alone) or malachite (the genesis validator set).
    #[arg(long = "consensus.engine", value_name = "ENGINE")]
    pub consensus_engine: Option<EngineKind>,
    /// This node's role: validator (its key is in the genesis set) or follower (a read replica).
    #[arg(long = "consensus.role", value_name = "ROLE")]
    pub consensus_role: Option<Role>,
    /// Consensus (libp2p) listen address, e.g. /ip4/127.0.0.1/tcp/7300.
    #[arg(long = "consensus.listen", value_name = "MULTIADDR")]
    pub consensus_listen: Option<String>,
    /// Another validator as KEY@MULTIADDR@URL (repeat for each; replaces the file's list).
    #[arg(long = "consensus.peer", value_name = "KEY@MULTIADDR@URL")]
    pub consensus_peers: Vec<PeerSpec>,
    /// How long validators wait for a round's proposal, in ms.
    #[arg(long = "consensus.timeout-propose-ms", value_name = "MS")]
    pub consensus_timeout_propose_ms: Option<u64>,
    /// How long validators wait for a quorum of votes, in ms.
    #[arg(long = "consensus.timeout-vote-ms", value_name = "MS")]
    pub consensus_timeout_vote_ms: Option<u64>,
    /// Longest an idle proposer waits for a tx before proposing an empty block, in ms.
    #[arg(long = "consensus.max-idle-ms", value_name = "MS")]
    pub consensus_max_idle_ms: Option<u64>,
    /// How an empty data directory starts: replay (from genesis) or snapshot (from sync.peers).
    #[arg(long = "sync", visible_alias = "sync.mode", value_name = "MODE")]
    pub sync_mode: Option<SyncMode>,
    /// A peer to fetch a snapshot from, as its sync.listen multiaddr (repeat for each; replaces the file's).
    #[arg(long = "sync.peer", value_name = "MULTIADDR")]
    pub sync_peers: Vec<String>,
    /// Where to serve state snapshots (libp2p multiaddr; port 0 picks one, written to <data_dir>/sync.addr).
    #[arg(long = "sync.listen", value_name = "MULTIADDR")]
    pub sync_listen: Option<String>,
    /// Trie nodes asked for per snapshot chunk.
    #[arg(long = "sync.chunk-nodes", value_name = "N")]
    pub sync_chunk_nodes: Option<u32>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long = "log.filter", value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// Log line format: text or json.
    #[arg(long = "log.format", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Prometheus metrics.
    #[command(flatten)]
    pub metrics: MetricsFlags,
}

impl NodeConfig {
    /// Loads `file` (if given), applies `flags`, validates.
    pub fn load(file: Option<&Path>, flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let mut cfg: Self = read_toml(file)?;
        let f = flags.clone();
        set(f.data_dir, &mut cfg.node.data_dir);
        set(f.genesis, &mut cfg.node.genesis);
        set(f.key_file, &mut cfg.node.key_file);
        set(f.rpc_addr, &mut cfg.rpc.addr);
        set(f.rpc_max_message_bytes, &mut cfg.rpc.max_message_bytes);
        set(f.rpc_max_batch_txs, &mut cfg.rpc.max_batch_txs);
        set(f.rpc_health_max_head_age_ms, &mut cfg.rpc.health_max_head_age_ms);
        f.rpc_streams.apply(&mut cfg.rpc.max_subscribers, &mut cfg.rpc.stream_idle_ms, &mut cfg.rpc.stream_stall_ms);
        f.rpc_limits.apply(&mut cfg.rpc.limits);
        set(f.mempool_max_txs, &mut cfg.mempool.max_txs);
        set(f.mempool_max_tx_bytes, &mut cfg.mempool.max_tx_bytes);
        set(f.mempool_max_refusals_per_account, &mut cfg.mempool.max_refusals_per_account);
        set(f.block_interval_ms, &mut cfg.block.interval_ms);
        set(f.block_max_txs, &mut cfg.block.max_txs);
        set(f.consensus_timeout_delta_ms, &mut cfg.consensus.timeout_delta_ms);
        set(f.consensus_max_future_ms, &mut cfg.consensus.max_future_ms);
        set(f.sync_connect_timeout_ms, &mut cfg.sync.connect_timeout_ms);
        set(f.block_max_open_ms, &mut cfg.block.max_open_ms);
        set(f.block_gas_limit, &mut cfg.block.gas_limit);
        set(f.block_max_bytes, &mut cfg.block.max_bytes);
        set(f.state_retention_blocks, &mut cfg.state.retention_blocks);
        set(f.state_keep_blocks, &mut cfg.state.keep_blocks);
        set(f.state_head_cache_entries, &mut cfg.state.head_cache_entries);
        set(f.consensus_engine, &mut cfg.consensus.engine);
        set(f.consensus_role, &mut cfg.consensus.role);
        set(f.consensus_listen, &mut cfg.consensus.listen);
        if !f.consensus_peers.is_empty() {
            cfg.consensus.peers = f.consensus_peers;
        }
        set(f.consensus_timeout_propose_ms, &mut cfg.consensus.timeout_propose_ms);
        set(f.consensus_timeout_vote_ms, &mut cfg.consensus.timeout_vote_ms);
        set(f.consensus_max_idle_ms, &mut cfg.consensus.max_idle_ms);
        set(f.sync_mode, &mut cfg.sync.mode);
        if !f.sync_peers.is_empty() {
            cfg.sync.peers = f.sync_peers;
        }
        set(f.sync_listen, &mut cfg.sync.listen);
        set(f.sync_chunk_nodes, &mut cfg.sync.chunk_nodes);
        set(f.log_filter, &mut cfg.log.filter);
        set(f.log_format, &mut cfg.log.format);
        f.metrics.apply(&mut cfg.metrics);
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check(self.rpc.limits.checks())?;
        check(stream_checks(self.rpc.max_subscribers, self.rpc.stream_idle_ms, self.rpc.stream_stall_ms))?;
        check([
            ("block.interval_ms", (1..=60_000).contains(&self.block.interval_ms), "must be 1..=60000"),
            ("block.gas_limit", self.block.gas_limit > 0, "must be positive"),
            ("block.max_txs", self.block.max_txs > 0, "must be positive"),
            (
                "block.max_bytes",
                (256 << 10..=self.rpc.max_message_bytes.min(MAX_CLIENT_RESPONSE_BYTES).saturating_sub(BLOCK_ENVELOPE_BYTES))
                    .contains(&self.block.max_bytes),
                "must be 262144..=min(rpc.max_message_bytes, 16 MiB) - 65536 (a block and its certificate must fit one \
                 GetBlock answer that clients accept)",
            ),
            ("block.max_open_ms", (1..=60_000).contains(&self.block.max_open_ms), "must be 1..=60000"),
            ("mempool.max_txs", self.mempool.max_txs > 0, "must be positive"),
            (
                "mempool.max_refusals_per_account",
                (1..=1_000_000).contains(&self.mempool.max_refusals_per_account),
                "must be 1..=1000000",
            ),
            (
                "mempool.max_tx_bytes",
                (256..=self.rpc.max_message_bytes).contains(&self.mempool.max_tx_bytes),
                "must be 256..=rpc.max_message_bytes",
            ),
            ("rpc.max_batch_txs", self.rpc.max_batch_txs > 0, "must be positive"),
            ("state.retention_blocks", self.state.retention_blocks > 0, "must be positive"),
            (
                "state.head_cache_entries",
                self.state.head_cache_entries <= MAX_HEAD_CACHE_ENTRIES,
                "must be at most 67108864 (about 13 GB)",
            ),
            (
                "state.keep_blocks",
                self.state.keep_blocks == 0 || self.state.keep_blocks > self.state.retention_blocks,
                "must be 0 (keep every block) or more than state.retention_blocks: state is provable at the head and \
                 retention_blocks heights behind it, and each proof carries its height's header",
            ),
            (
                "consensus.listen",
                self.consensus.engine == EngineKind::Solo || self.consensus.listen.starts_with('/'),
                "engine malachite needs a libp2p listen multiaddr, e.g. /ip4/127.0.0.1/tcp/7300",
            ),
            (
                "consensus.role",
                self.consensus.role == Role::Validator || self.consensus.engine == EngineKind::Malachite,
                "a follower follows a validator set: it needs consensus.engine = malachite and its consensus.peers",
            ),
            (
                "consensus.timeout_propose_ms",
                (100..=60_000).contains(&self.consensus.timeout_propose_ms),
                "must be 100..=60000",
            ),
            (
                "consensus.timeout_vote_ms",
                (50..=60_000).contains(&self.consensus.timeout_vote_ms),
                "must be 50..=60000",
            ),
            ("consensus.timeout_delta_ms", self.consensus.timeout_delta_ms <= 60_000, "must be at most 60000"),
            (
                "consensus.max_idle_ms",
                self.consensus.max_idle_ms.saturating_mul(2) <= self.consensus.timeout_propose_ms,
                "must be at most half of consensus.timeout_propose_ms (validators would time the proposer out)",
            ),
            ("consensus.max_future_ms", (1..=60_000).contains(&self.consensus.max_future_ms), "must be 1..=60000"),
            (
                "sync.peers",
                self.sync.mode == SyncMode::Replay || !self.sync.peers.is_empty(),
                "sync.mode = snapshot needs the peers to fetch it from (their sync.listen multiaddrs)",
            ),
            (
                "sync.peers",
                self.sync.peers.iter().all(|p| p.parse::<libp2p::Multiaddr>().is_ok()),
                "every peer must be a libp2p multiaddr, e.g. /ip4/127.0.0.1/tcp/7400",
            ),
            (
                "sync.listen",
                self.sync.listen.is_empty() || self.sync.listen.parse::<libp2p::Multiaddr>().is_ok(),
                "must be empty (do not serve) or a libp2p multiaddr, e.g. /ip4/127.0.0.1/tcp/7400",
            ),
            (
                "sync.chunk_nodes",
                (1..=shardex_statesync::MAX_CHUNK_NODES).contains(&self.sync.chunk_nodes),
                "must be 1..=16384",
            ),
            ("sync.connect_timeout_ms", (1..=600_000).contains(&self.sync.connect_timeout_ms), "must be 1..=600000"),
        ])
    }

    /// The shard limits.
    pub fn shard(&self) -> ShardConfig {
        ShardConfig {
            role: self.consensus.role,
            block_gas_limit: self.block.gas_limit,
            max_block_txs: self.block.max_txs,
            max_block_bytes: self.block.max_bytes,
            mempool_max_txs: self.mempool.max_txs,
            max_tx_bytes: self.mempool.max_tx_bytes,
            max_refusals_per_signer: self.mempool.max_refusals_per_account,
            retention_blocks: self.state.retention_blocks,
            keep_blocks: self.state.keep_blocks,
            head_cache_entries: self.state.head_cache_entries,
            max_open_block_ms: self.block.max_open_ms,
            ..ShardConfig::default()
        }
    }

    /// The RPC limits.
    pub fn rpc_limits(&self) -> RpcLimits {
        RpcLimits {
            max_message_bytes: self.rpc.max_message_bytes,
            max_batch_txs: self.rpc.max_batch_txs,
            max_subscribers: self.rpc.max_subscribers,
            stream_idle: Duration::from_millis(self.rpc.stream_idle_ms),
            stream_stall: Duration::from_millis(self.rpc.stream_stall_ms),
            health_max_head_age: Duration::from_millis(self.rpc.health_max_head_age_ms),
            ..RpcLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "[block]\ninterval_ms = 50\n[rpc]\naddr = \"127.0.0.1:9\"\n[metrics]\naddr = \"127.0.0.1:1\"\n",
        )
        .expect("write");
        let flags = ConfigFlags { rpc_addr: Some("127.0.0.1:0".into()), ..Default::default() };
        let cfg = NodeConfig::load(Some(&path), &flags).expect("valid");
        assert_eq!(cfg.block.interval_ms, 50);
        assert_eq!(cfg.rpc.addr, "127.0.0.1:0");
        assert_eq!(cfg.metrics.addr, "127.0.0.1:1");
        let metrics = MetricsFlags { metrics_addr: Some("127.0.0.1:0".into()) };
        let flags = ConfigFlags { metrics, ..Default::default() };
        assert_eq!(NodeConfig::load(Some(&path), &flags).expect("valid").metrics.addr, "127.0.0.1:0");
        assert_eq!(NodeConfig::default().metrics.addr, "", "metrics are off unless asked for");
        assert_eq!(cfg.mempool.max_txs, ShardConfig::default().mempool_max_txs);

        std::fs::write(&path, "[block]\ninterval_ms = 0\n").expect("write");
        assert!(matches!(
            NodeConfig::load(Some(&path), &ConfigFlags::default()),
            Err(ConfigError::Invalid { key: "block.interval_ms", .. })
        ));
        // A block bound that GetBlock could not carry (the RPC limit is 4 MiB by default).
        std::fs::write(&path, "[block]\nmax_bytes = 8388608\n").expect("write");
        assert!(matches!(
            NodeConfig::load(Some(&path), &ConfigFlags::default()),
            Err(ConfigError::Invalid { key: "block.max_bytes", .. })
        ));
        std::fs::write(&path, "[block]\nbogus = 1\n").expect("write");
        assert!(matches!(NodeConfig::load(Some(&path), &ConfigFlags::default()), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn server_limits_come_from_the_file_and_flags_and_zero_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "[rpc]\nstream_idle_ms = 5000\n[rpc.limits]\nrequest_timeout_ms = 7000\n")
            .expect("write");
        let flags = ConfigFlags {
            rpc_streams: StreamLimitFlags { max_subscribers: Some(3), ..Default::default() },
            ..Default::default()
        };
        let cfg = NodeConfig::load(Some(&path), &flags).expect("valid");
        assert_eq!(
            (cfg.rpc.stream_idle_ms, cfg.rpc.limits.request_timeout_ms, cfg.rpc.max_subscribers),
            (5000, 7000, 3)
        );
        assert_eq!(cfg.rpc.limits.max_streams_per_connection, ServerLimits::default().max_streams_per_connection);
        assert_eq!(cfg.rpc_limits().stream_idle, Duration::from_secs(5));

        std::fs::write(&path, "[rpc.limits]\nmax_inflight_per_connection = 0\n").expect("write");
        assert!(matches!(
            NodeConfig::load(Some(&path), &ConfigFlags::default()),
            Err(ConfigError::Invalid { key: "rpc.limits.max_inflight_per_connection", .. })
        ));
        std::fs::write(&path, "[rpc]\nstream_idle_ms = 10\n").expect("write");
        assert!(matches!(
            NodeConfig::load(Some(&path), &ConfigFlags::default()),
            Err(ConfigError::Invalid { key: "rpc.stream_idle_ms", .. })
        ));
    }

    #[test]
    fn a_pruned_block_log_keeps_at_least_the_provable_window() {
        let flags = ConfigFlags { state_keep_blocks: Some(100), ..Default::default() };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "state.keep_blocks", .. })));
        // The oldest provable height is retention_blocks behind the head: its block must still be held.
        let flags =
            ConfigFlags { state_keep_blocks: Some(100), state_retention_blocks: Some(100), ..Default::default() };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "state.keep_blocks", .. })));
        let flags =
            ConfigFlags { state_keep_blocks: Some(101), state_retention_blocks: Some(100), ..Default::default() };
        assert_eq!(NodeConfig::load(None, &flags).expect("valid").shard().keep_blocks, 101);
        assert_eq!(NodeConfig::default().shard().keep_blocks, 0, "an archive node by default");
        let flags = ConfigFlags { state_head_cache_entries: Some(MAX_HEAD_CACHE_ENTRIES + 1), ..Default::default() };
        assert!(matches!(
            NodeConfig::load(None, &flags),
            Err(ConfigError::Invalid { key: "state.head_cache_entries", .. })
        ));
        let flags = ConfigFlags { state_head_cache_entries: Some(0), ..Default::default() };
        assert_eq!(NodeConfig::load(None, &flags).expect("valid").shard().head_cache_entries, 0);
    }

    #[test]
    fn snapshot_sync_needs_peers_and_every_address_must_be_a_multiaddr() {
        let flags = ConfigFlags { sync_mode: Some(SyncMode::Snapshot), ..Default::default() };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "sync.peers", .. })));
        let flags = ConfigFlags {
            sync_mode: Some(SyncMode::Snapshot),
            sync_peers: vec!["127.0.0.1:7400".into()],
            ..Default::default()
        };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "sync.peers", .. })));
        let flags = ConfigFlags { sync_listen: Some("0.0.0.0:7400".into()), ..Default::default() };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "sync.listen", .. })));
        let flags = ConfigFlags { sync_chunk_nodes: Some(20_000), ..Default::default() };
        assert!(matches!(NodeConfig::load(None, &flags), Err(ConfigError::Invalid { key: "sync.chunk_nodes", .. })));
        let flags = ConfigFlags {
            sync_mode: Some(SyncMode::Snapshot),
            sync_peers: vec!["/ip4/127.0.0.1/tcp/7400".into()],
            sync_listen: Some("/ip4/127.0.0.1/tcp/0".into()),
            ..Default::default()
        };
        let cfg = NodeConfig::load(None, &flags).expect("valid");
        assert_eq!((cfg.sync.mode, cfg.sync.peers.len(), cfg.sync.chunk_nodes), (SyncMode::Snapshot, 1, 4096));
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = toml::to_string(&NodeConfig::default()).expect("serializes");
        assert_eq!(toml::from_str::<NodeConfig>(&text).expect("parses"), NodeConfig::default());
    }

    #[test]
    fn every_key_has_a_flag() {
        use clap::Args as _;
        let cmd = ConfigFlags::augment_args(clap::Command::new("flags"));
        let missing = shardex_service::config::keys_without_flags(
            &NodeConfig::default(),
            &cmd,
            &["consensus.peers", "sync.peers"],
        );
        assert!(missing.is_empty(), "config keys without a flag (nor an environment variable): {missing:?}");
    }
}
