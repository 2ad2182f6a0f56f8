//! Coordinator configuration: a TOML file with sections `[node] [epoch] [rpc] [follow] [log]` and one
//! `[[shards]]` table per followed shard; every scalar overridable by a `--section.key` flag, and the
//! shard list by repeated `--shard ENDPOINT=GENESIS_FILE`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use serde::{Deserialize, Serialize};
use shardex_core::ChainId;
pub use shardex_service::config::ConfigError;
pub use shardex_service::config::ShardSection;
use shardex_service::{
    config::{check, read_toml, set, set_shards},
    grpc::{stream_checks, ServerLimitFlags, ServerLimits, StreamLimitFlags},
    metrics::{MetricsFlags, MetricsSection},
    process::LogFormat,
};

use crate::{
    error::CoordinatorError,
    follower::{FollowLimits, ShardSpec},
    registry::ShardView,
    rpc::RpcLimits,
    runtime::EpochSettings,
};

/// The whole configuration after merging file and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordConfig {
    /// Paths.
    pub node: NodeSection,
    /// Epoch production.
    pub epoch: EpochSection,
    /// gRPC.
    pub rpc: RpcSection,
    /// Following shards.
    pub follow: FollowSection,
    /// Logging.
    pub log: LogSection,
    /// Prometheus metrics.
    pub metrics: MetricsSection,
    /// The shards to follow.
    pub shards: Vec<ShardSection>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Data directory (sled database, `rpc.addr`).
    pub data_dir: PathBuf,
    /// File holding the coordinator's ed25519 secret key (hex).
    pub key_file: PathBuf,
}

/// `[epoch]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpochSection {
    /// Time between epochs, ms.
    pub interval_ms: u64,
    /// Epochs kept in storage; older ones (and headers only they refer to) are pruned.
    pub retention_epochs: u64,
}

/// `[rpc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address; port 0 picks a free port (written to `<data_dir>/rpc.addr`).
    pub addr: String,
    /// Largest gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Concurrent epoch-stream subscribers.
    pub max_subscribers: usize,
    /// An epoch stream with nothing to send for this long ends with `UNAVAILABLE` (resubscribe), ms.
    pub stream_idle_ms: u64,
    /// A stream whose client reads nothing for this long while its buffer is full is dropped with
    /// `RESOURCE_EXHAUSTED` (`SLOW_CONSUMER`), ms.
    pub stream_stall_ms: u64,
    /// `[rpc.limits]`: per-connection limits.
    pub limits: ServerLimits,
}

/// `[follow]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowSection {
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// First reconnect delay, ms (doubles per failed attempt).
    pub min_backoff_ms: u64,
    /// Largest reconnect delay, ms.
    pub max_backoff_ms: u64,
    /// Most headers fetched one by one to fill a gap in a stream.
    pub max_catchup_blocks: u64,
    /// How often each shard's own head is polled, ms.
    pub status_interval_ms: u64,
    /// Rejections remembered per shard for status.
    pub max_recent_rejections: usize,
    /// With several endpoints for a shard: how long its stream may bring no header before the next endpoint
    /// is followed instead, ms.
    pub stall_timeout_ms: u64,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info,coordinator::follow=debug`.
    pub filter: String,
    /// `text` (one readable line per event) or `json` (one JSON object per line).
    pub format: LogFormat,
}

impl Default for CoordConfig {
    fn default() -> Self {
        let rpc = RpcLimits::default();
        let follow = FollowLimits::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            node: NodeSection {
                data_dir: PathBuf::from("coordinator-data"),
                key_file: PathBuf::from("coordinator.key"),
            },
            epoch: EpochSection { interval_ms: 250, retention_epochs: 100_000 },
            rpc: RpcSection {
                addr: "127.0.0.1:7200".into(),
                max_message_bytes: rpc.max_message_bytes,
                max_subscribers: rpc.max_subscribers,
                stream_idle_ms: ms(rpc.stream_idle),
                stream_stall_ms: ms(rpc.stream_stall),
                limits: ServerLimits::default(),
            },
            follow: FollowSection {
                connect_timeout_ms: ms(follow.connect_timeout),
                min_backoff_ms: ms(follow.min_backoff),
                max_backoff_ms: ms(follow.max_backoff),
                max_catchup_blocks: follow.max_catchup_blocks,
                status_interval_ms: ms(follow.status_interval),
                stall_timeout_ms: ms(follow.stall_timeout),
                max_recent_rejections: 32,
            },
            log: LogSection { filter: "info".into(), format: LogFormat::Text },
            metrics: MetricsSection::default(),
            shards: Vec::new(),
        }
    }
}

impl Default for NodeSection {
    fn default() -> Self {
        CoordConfig::default().node
    }
}
impl Default for EpochSection {
    fn default() -> Self {
        CoordConfig::default().epoch
    }
}
impl Default for RpcSection {
    fn default() -> Self {
        CoordConfig::default().rpc
    }
}
impl Default for FollowSection {
    fn default() -> Self {
        CoordConfig::default().follow
    }
}
impl Default for LogSection {
    fn default() -> Self {
        CoordConfig::default().log
    }
}

/// Flags; each overrides the same key of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Data directory.
    #[arg(long = "node.data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Coordinator secret key file.
    #[arg(long = "node.key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Time between epochs in ms.
    #[arg(long = "epoch.interval-ms", value_name = "MS")]
    pub epoch_interval_ms: Option<u64>,
    /// Epochs kept in storage.
    #[arg(long = "epoch.retention-epochs", value_name = "N")]
    pub epoch_retention_epochs: Option<u64>,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long = "rpc.addr", value_name = "HOST:PORT")]
    pub rpc_addr: Option<String>,
    /// Largest gRPC message in bytes.
    #[arg(long = "rpc.max-message-bytes", value_name = "BYTES")]
    pub rpc_max_message_bytes: Option<usize>,
    /// Stream limits.
    #[command(flatten)]
    pub rpc_streams: StreamLimitFlags,
    /// Per-connection limits.
    #[command(flatten)]
    pub rpc_limits: ServerLimitFlags,
    /// Largest reconnect delay in ms.
    #[arg(long = "follow.max-backoff-ms", value_name = "MS")]
    pub follow_max_backoff_ms: Option<u64>,
    /// Longest wait to connect to a shard node, ms.
    #[arg(long = "follow.connect-timeout-ms", value_name = "MS")]
    pub follow_connect_timeout_ms: Option<u64>,
    /// First reconnect delay, ms.
    #[arg(long = "follow.min-backoff-ms", value_name = "MS")]
    pub follow_min_backoff_ms: Option<u64>,
    /// Most missing headers fetched to close one gap in a header stream.
    #[arg(long = "follow.max-catchup-blocks", value_name = "N")]
    pub follow_max_catchup_blocks: Option<u64>,
    /// Recent rejections kept per shard for status.
    #[arg(long = "follow.max-recent-rejections", value_name = "N")]
    pub follow_max_recent_rejections: Option<usize>,
    /// How often each shard's head is polled, in ms.
    #[arg(long = "follow.status-interval-ms", value_name = "MS")]
    pub follow_status_interval_ms: Option<u64>,
    /// With several endpoints for a shard: ms without a header before the next endpoint is followed.
    #[arg(long = "follow.stall-timeout-ms", value_name = "MS")]
    pub follow_stall_timeout_ms: Option<u64>,
    /// A shard to follow, as ENDPOINT=GENESIS_FILE; repeat per shard, and per validator of a shard (entries
    /// with the same genesis are that shard's endpoints, tried in turn). Replaces the file's [[shards]].
    #[arg(long = "shard", value_name = "ENDPOINT=GENESIS")]
    pub shards: Vec<String>,
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

impl CoordConfig {
    /// Loads `file` (if given), applies `flags`, validates.
    pub fn load(file: Option<&Path>, flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let mut cfg: Self = read_toml(file)?;
        let f = flags.clone();
        set(f.data_dir, &mut cfg.node.data_dir);
        set(f.key_file, &mut cfg.node.key_file);
        set(f.epoch_interval_ms, &mut cfg.epoch.interval_ms);
        set(f.epoch_retention_epochs, &mut cfg.epoch.retention_epochs);
        set(f.rpc_addr, &mut cfg.rpc.addr);
        set(f.rpc_max_message_bytes, &mut cfg.rpc.max_message_bytes);
        f.rpc_streams.apply(&mut cfg.rpc.max_subscribers, &mut cfg.rpc.stream_idle_ms, &mut cfg.rpc.stream_stall_ms);
        f.rpc_limits.apply(&mut cfg.rpc.limits);
        set(f.follow_max_backoff_ms, &mut cfg.follow.max_backoff_ms);
        set(f.follow_connect_timeout_ms, &mut cfg.follow.connect_timeout_ms);
        set(f.follow_min_backoff_ms, &mut cfg.follow.min_backoff_ms);
        set(f.follow_max_catchup_blocks, &mut cfg.follow.max_catchup_blocks);
        set(f.follow_max_recent_rejections, &mut cfg.follow.max_recent_rejections);
        set(f.follow_status_interval_ms, &mut cfg.follow.status_interval_ms);
        set(f.follow_stall_timeout_ms, &mut cfg.follow.stall_timeout_ms);
        set(f.log_filter, &mut cfg.log.filter);
        set(f.log_format, &mut cfg.log.format);
        f.metrics.apply(&mut cfg.metrics);
        set_shards(&f.shards, &mut cfg.shards)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.follow;
        check(self.rpc.limits.checks())?;
        check(stream_checks(self.rpc.max_subscribers, self.rpc.stream_idle_ms, self.rpc.stream_stall_ms))?;
        check([
            ("epoch.interval_ms", (10..=60_000).contains(&self.epoch.interval_ms), "must be 10..=60000"),
            ("epoch.retention_epochs", self.epoch.retention_epochs >= 2, "must be at least 2"),
            ("rpc.max_message_bytes", self.rpc.max_message_bytes >= 64 << 10, "must be at least 65536"),
            ("follow.min_backoff_ms", (1..=f.max_backoff_ms).contains(&f.min_backoff_ms), "must be 1..=max_backoff_ms"),
            ("follow.max_catchup_blocks", f.max_catchup_blocks > 0, "must be positive"),
            ("follow.status_interval_ms", f.status_interval_ms > 0, "must be positive"),
            ("follow.stall_timeout_ms", (100..=600_000).contains(&f.stall_timeout_ms), "must be 100..=600000"),
            ("shards", !self.shards.is_empty() && self.shards.len() <= 4096, "list 1 to 4096 shards"),
        ])
    }

    /// Epoch settings.
    pub fn epoch_settings(&self) -> EpochSettings {
        EpochSettings {
            interval: Duration::from_millis(self.epoch.interval_ms),
            retention_epochs: self.epoch.retention_epochs,
        }
    }

    /// RPC limits.
    pub fn rpc_limits(&self) -> RpcLimits {
        RpcLimits {
            max_message_bytes: self.rpc.max_message_bytes,
            max_subscribers: self.rpc.max_subscribers,
            stream_idle: Duration::from_millis(self.rpc.stream_idle_ms),
            stream_stall: Duration::from_millis(self.rpc.stream_stall_ms),
        }
    }

    /// Follow limits.
    pub fn follow_limits(&self) -> FollowLimits {
        let f = &self.follow;
        FollowLimits {
            connect_timeout: Duration::from_millis(f.connect_timeout_ms),
            min_backoff: Duration::from_millis(f.min_backoff_ms),
            max_backoff: Duration::from_millis(f.max_backoff_ms),
            max_catchup_blocks: f.max_catchup_blocks,
            status_interval: Duration::from_millis(f.status_interval_ms),
            stall_timeout: Duration::from_millis(f.stall_timeout_ms),
            max_message_bytes: self.rpc.max_message_bytes,
        }
    }

    /// Reads every shard's genesis: the common chain and one view per shard. Entries naming the same shard
    /// (with the same genesis) are that shard's several endpoints, followed one at a time with failover.
    pub fn shard_views(&self) -> Result<(ChainId, Vec<ShardView>), CoordinatorError> {
        let views: Vec<ShardView> = shardex_service::config::group_shards(&self.shards)?
            .into_iter()
            .map(|shardex_service::config::ShardEndpoints { genesis: g, endpoints }| ShardView {
                spec: ShardSpec {
                    chain: g.chain_id,
                    shard: g.shard_id,
                    validators: g.validators,
                    genesis_time_ms: g.genesis_time_ms,
                },
                endpoints,
                current: 0,
                head: None,
                connected: false,
                reported_height: 0,
                rejected: 0,
                recent: Default::default(),
                held: None,
                equivocations: 0,
            })
            .collect();
        let chain = views.first().map(|v| v.spec.chain).ok_or_else(|| CoordinatorError::Shards {
            shard: shardex_core::ShardId(0),
            message: "no shards configured".into(),
        })?;
        Ok((chain, views))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coordinator.toml");
        std::fs::write(
            &path,
            "[epoch]\ninterval_ms = 100\n[[shards]]\nendpoint = \"http://127.0.0.1:1\"\ngenesis = \"g1.toml\"\n",
        )
        .expect("write");
        let cfg = CoordConfig::load(Some(&path), &ConfigFlags::default()).expect("valid");
        assert_eq!(cfg.epoch.interval_ms, 100);
        assert_eq!(cfg.shards.len(), 1);
        assert_eq!(cfg.metrics.addr, "", "metrics are off unless asked for");
        let metrics = MetricsFlags { metrics_addr: Some("127.0.0.1:0".into()) };
        let cfg = CoordConfig::load(Some(&path), &ConfigFlags { metrics, ..Default::default() }).expect("valid");
        assert_eq!(cfg.metrics.addr, "127.0.0.1:0");
        let flags = ConfigFlags {
            epoch_interval_ms: Some(250),
            shards: vec!["http://a:1=ga.toml".into(), "http://b:2=gb.toml".into()],
            ..Default::default()
        };
        let cfg = CoordConfig::load(Some(&path), &flags).expect("valid");
        assert_eq!(cfg.epoch.interval_ms, 250);
        assert_eq!(cfg.shards[1], ShardSection { endpoint: "http://b:2".into(), genesis: "gb.toml".into() });
        let bad = ConfigFlags { shards: vec!["nogenesis".into()], ..Default::default() };
        assert!(matches!(CoordConfig::load(None, &bad), Err(ConfigError::Invalid { key: "shard", .. })));
        assert!(matches!(
            CoordConfig::load(None, &ConfigFlags::default()),
            Err(ConfigError::Invalid { key: "shards", .. })
        ));
        std::fs::write(&path, "[epoch]\nbogus = 1\n").expect("write");
        assert!(matches!(CoordConfig::load(Some(&path), &ConfigFlags::default()), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = toml::to_string(&CoordConfig::default()).expect("serializes");
        assert_eq!(toml::from_str::<CoordConfig>(&text).expect("parses"), CoordConfig::default());
    }

    #[test]
    fn every_key_has_a_flag() {
        use clap::Args as _;
        let cmd = ConfigFlags::augment_args(clap::Command::new("flags"));
        let missing = shardex_service::config::keys_without_flags(&CoordConfig::default(), &cmd, &["shards"]);
        assert!(missing.is_empty(), "config keys without a flag (nor an environment variable): {missing:?}");
    }
}
