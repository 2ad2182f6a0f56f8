//! Relayer configuration: a TOML file with sections `[node] [coordinator] [relay] [follow] [rpc] [log]` and
//! one `[[shards]]` table per shard; every scalar overridable by a `--section.key` flag, the shard list by
//! repeated `--shard ENDPOINT=GENESIS_FILE`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
pub use shardex_service::config::ConfigError;
pub use shardex_service::config::ShardSection;
use shardex_service::{
    config::{check, read_toml, set, set_shards},
    grpc::{stream_checks, ServerLimitFlags, ServerLimits, StreamLimitFlags},
    metrics::{MetricsFlags, MetricsSection},
    process::LogFormat,
};

use crate::tracker::TrackerLimits;

/// The whole configuration after merging file and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayerConfig {
    /// Paths.
    pub node: NodeSection,
    /// The coordinator followed.
    pub coordinator: CoordinatorSection,
    /// Relaying.
    pub relay: RelaySection,
    /// Following shards and the coordinator.
    pub follow: FollowSection,
    /// gRPC.
    pub rpc: RpcSection,
    /// Logging.
    pub log: LogSection,
    /// Prometheus metrics.
    pub metrics: MetricsSection,
    /// The shards relayed between.
    pub shards: Vec<ShardSection>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Data directory (sled store of scan cursors, `rpc.addr`).
    pub data_dir: PathBuf,
    /// File holding the relayer's ed25519 secret key (hex); it signs the relayer's txs on every shard.
    pub key_file: PathBuf,
}

/// `[coordinator]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorSection {
    /// gRPC endpoint.
    pub endpoint: String,
    /// The coordinator's public key (hex); epochs signed by another key are ignored.
    pub key: String,
}

/// `[relay]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySection {
    /// Time between passes over the open messages when nothing new arrives, ms.
    pub poll_interval_ms: u64,
    /// First retry delay of a failed step, ms (doubles per consecutive failure).
    pub min_backoff_ms: u64,
    /// Largest retry delay, ms.
    pub max_backoff_ms: u64,
    /// How long a message waits for the block of an accepted deliver/ack/refund before trying again, ms.
    pub inflight_ms: u64,
    /// Steps run for one message in one pass (import then deliver is two).
    pub max_steps_per_pass: u32,
    /// Messages worked on at once in a pass (their reads and proofs overlap; txs to one shard still go one
    /// after another, in nonce order).
    pub max_concurrent: usize,
    /// Open messages tracked at once; scanning pauses beyond.
    pub max_open: usize,
    /// Closed messages remembered for queries.
    pub max_recent_closed: usize,
    /// Lock-to-credit samples kept for percentiles.
    pub latency_window: usize,
    /// How often scan cursors are persisted, ms.
    pub cursor_flush_ms: u64,
}

/// `[follow]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FollowSection {
    /// First reconnect delay of a shard or coordinator stream, ms (doubles per failure).
    pub min_backoff_ms: u64,
    /// Largest reconnect delay, ms.
    pub max_backoff_ms: u64,
    /// Events buffered between the followers and the relaying loop.
    pub max_buffered_events: usize,
}

/// `[rpc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcSection {
    /// Listen address; port 0 picks a free port (written to `<data_dir>/rpc.addr`).
    pub addr: String,
    /// Largest gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Lifecycle events the relayer keeps for stream subscribers that are behind; one further behind is ended
    /// with `DATA_LOSS`.
    pub stream_buffer: usize,
    /// Concurrent `StreamLifecycle` subscribers.
    pub max_subscribers: usize,
    /// A stream with nothing to send for this long ends with `UNAVAILABLE` (resubscribe), ms.
    pub stream_idle_ms: u64,
    /// A stream whose client reads nothing for this long while its buffer is full is dropped with
    /// `RESOURCE_EXHAUSTED` (`SLOW_CONSUMER`), ms.
    pub stream_stall_ms: u64,
    /// `[rpc.limits]`: per-connection limits.
    pub limits: ServerLimits,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter.
    pub filter: String,
    /// `text` (one readable line per event) or `json` (one JSON object per line).
    pub format: LogFormat,
}

impl Default for RelayerConfig {
    fn default() -> Self {
        let t = TrackerLimits::default();
        Self {
            node: NodeSection { data_dir: "relayer-data".into(), key_file: "relayer.key".into() },
            coordinator: CoordinatorSection { endpoint: "http://127.0.0.1:7200".into(), key: String::new() },
            relay: RelaySection {
                poll_interval_ms: 50,
                min_backoff_ms: t.min_backoff_ms,
                max_backoff_ms: t.max_backoff_ms,
                inflight_ms: 2_000,
                max_steps_per_pass: 4,
                max_concurrent: 32,
                max_open: t.max_open,
                max_recent_closed: t.max_recent_closed,
                latency_window: t.latency_window,
                cursor_flush_ms: 500,
            },
            follow: FollowSection { min_backoff_ms: 50, max_backoff_ms: 2_000, max_buffered_events: 4_096 },
            rpc: RpcSection {
                addr: "127.0.0.1:7300".into(),
                max_message_bytes: 4 << 20,
                stream_buffer: 1_024,
                max_subscribers: 256,
                stream_idle_ms: 600_000,
                stream_stall_ms: 10_000,
                limits: ServerLimits::default(),
            },
            log: LogSection { filter: "info".into(), format: LogFormat::Text },
            metrics: MetricsSection::default(),
            shards: Vec::new(),
        }
    }
}

macro_rules! section_defaults {
    ($($t:ident . $f:ident),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                RelayerConfig::default().$f
            }
        }
    )*};
}
section_defaults!(
    NodeSection.node,
    CoordinatorSection.coordinator,
    RelaySection.relay,
    FollowSection.follow,
    RpcSection.rpc,
    LogSection.log
);

/// Flags; each overrides the same key of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Data directory.
    #[arg(long = "node.data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Relayer secret key file (signs its txs).
    #[arg(long = "node.key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Coordinator gRPC endpoint.
    #[arg(long = "coordinator.endpoint", value_name = "URL")]
    pub coordinator_endpoint: Option<String>,
    /// Coordinator public key (hex).
    #[arg(long = "coordinator.key", value_name = "HEX")]
    pub coordinator_key: Option<String>,
    /// Pass interval in ms when nothing new arrives.
    #[arg(long = "relay.poll-interval-ms", value_name = "MS")]
    pub poll_interval_ms: Option<u64>,
    /// First retry delay in ms.
    #[arg(long = "relay.min-backoff-ms", value_name = "MS")]
    pub relay_min_backoff_ms: Option<u64>,
    /// Largest retry delay in ms.
    #[arg(long = "relay.max-backoff-ms", value_name = "MS")]
    pub relay_max_backoff_ms: Option<u64>,
    /// Wait for the block of an accepted tx, ms.
    #[arg(long = "relay.inflight-ms", value_name = "MS")]
    pub inflight_ms: Option<u64>,
    /// Open messages tracked at once.
    #[arg(long = "relay.max-open", value_name = "N")]
    pub max_open: Option<usize>,
    /// Messages worked on at once in a pass.
    #[arg(long = "relay.max-concurrent", value_name = "N")]
    pub max_concurrent: Option<usize>,
    /// Largest reconnect delay of streams in ms.
    #[arg(long = "follow.max-backoff-ms", value_name = "MS")]
    pub follow_max_backoff_ms: Option<u64>,
    /// First reconnect delay of streams in ms.
    #[arg(long = "follow.min-backoff-ms", value_name = "MS")]
    pub follow_min_backoff_ms: Option<u64>,
    /// Shard events buffered between the followers and the relaying loop.
    #[arg(long = "follow.max-buffered-events", value_name = "N")]
    pub follow_max_buffered_events: Option<usize>,
    /// Steps run on one message in a pass.
    #[arg(long = "relay.max-steps-per-pass", value_name = "N")]
    pub max_steps_per_pass: Option<u32>,
    /// Closed messages remembered for status and lifecycle queries.
    #[arg(long = "relay.max-recent-closed", value_name = "N")]
    pub max_recent_closed: Option<usize>,
    /// Deliveries the lock-to-credit percentiles are computed over.
    #[arg(long = "relay.latency-window", value_name = "N")]
    pub latency_window: Option<usize>,
    /// How often scan cursors are flushed, ms.
    #[arg(long = "relay.cursor-flush-ms", value_name = "MS")]
    pub cursor_flush_ms: Option<u64>,
    /// Largest gRPC message in bytes.
    #[arg(long = "rpc.max-message-bytes", value_name = "BYTES")]
    pub rpc_max_message_bytes: Option<usize>,
    /// Lifecycle events kept for stream subscribers that are behind.
    #[arg(long = "rpc.stream-buffer", value_name = "N")]
    pub rpc_stream_buffer: Option<usize>,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long = "rpc.addr", value_name = "HOST:PORT")]
    pub rpc_addr: Option<String>,
    /// Stream limits.
    #[command(flatten)]
    pub rpc_streams: StreamLimitFlags,
    /// Per-connection limits.
    #[command(flatten)]
    pub rpc_limits: ServerLimitFlags,
    /// A shard, as ENDPOINT=GENESIS_FILE; repeat per shard, and per validator of a shard (entries with the same
    /// genesis file are its endpoints, tried in turn). Replaces the file's [[shards]].
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

impl RelayerConfig {
    /// Loads `file` (if given), applies `flags`, validates.
    pub fn load(file: Option<&Path>, flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let mut cfg: Self = read_toml(file)?;
        let f = flags.clone();
        set(f.data_dir, &mut cfg.node.data_dir);
        set(f.key_file, &mut cfg.node.key_file);
        set(f.coordinator_endpoint, &mut cfg.coordinator.endpoint);
        set(f.coordinator_key, &mut cfg.coordinator.key);
        set(f.poll_interval_ms, &mut cfg.relay.poll_interval_ms);
        set(f.relay_min_backoff_ms, &mut cfg.relay.min_backoff_ms);
        set(f.relay_max_backoff_ms, &mut cfg.relay.max_backoff_ms);
        set(f.inflight_ms, &mut cfg.relay.inflight_ms);
        set(f.max_open, &mut cfg.relay.max_open);
        set(f.max_concurrent, &mut cfg.relay.max_concurrent);
        set(f.follow_max_backoff_ms, &mut cfg.follow.max_backoff_ms);
        set(f.follow_min_backoff_ms, &mut cfg.follow.min_backoff_ms);
        set(f.follow_max_buffered_events, &mut cfg.follow.max_buffered_events);
        set(f.max_steps_per_pass, &mut cfg.relay.max_steps_per_pass);
        set(f.max_recent_closed, &mut cfg.relay.max_recent_closed);
        set(f.latency_window, &mut cfg.relay.latency_window);
        set(f.cursor_flush_ms, &mut cfg.relay.cursor_flush_ms);
        set(f.rpc_max_message_bytes, &mut cfg.rpc.max_message_bytes);
        set(f.rpc_stream_buffer, &mut cfg.rpc.stream_buffer);
        set(f.rpc_addr, &mut cfg.rpc.addr);
        f.rpc_streams.apply(&mut cfg.rpc.max_subscribers, &mut cfg.rpc.stream_idle_ms, &mut cfg.rpc.stream_stall_ms);
        f.rpc_limits.apply(&mut cfg.rpc.limits);
        set(f.log_filter, &mut cfg.log.filter);
        set(f.log_format, &mut cfg.log.format);
        f.metrics.apply(&mut cfg.metrics);
        set_shards(&f.shards, &mut cfg.shards)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let (r, f) = (&self.relay, &self.follow);
        let key_ok = hex::decode(self.coordinator.key.trim()).is_ok_and(|k| k.len() == 32);
        check(self.rpc.limits.checks())?;
        check(stream_checks(self.rpc.max_subscribers, self.rpc.stream_idle_ms, self.rpc.stream_stall_ms))?;
        check([
            ("coordinator.key", key_ok, "must be a 32-byte hex public key"),
            ("relay.poll_interval_ms", (1..=60_000).contains(&r.poll_interval_ms), "must be 1..=60000"),
            ("relay.min_backoff_ms", (1..=r.max_backoff_ms).contains(&r.min_backoff_ms), "must be 1..=max_backoff_ms"),
            ("relay.inflight_ms", r.inflight_ms > 0, "must be positive"),
            ("relay.max_steps_per_pass", r.max_steps_per_pass > 0, "must be positive"),
            ("relay.max_concurrent", (1..=1_024).contains(&r.max_concurrent), "must be 1..=1024"),
            ("relay.max_open", r.max_open > 0, "must be positive"),
            ("relay.latency_window", r.latency_window > 0, "must be positive"),
            ("relay.cursor_flush_ms", r.cursor_flush_ms > 0, "must be positive"),
            ("follow.min_backoff_ms", (1..=f.max_backoff_ms).contains(&f.min_backoff_ms), "must be 1..=max_backoff_ms"),
            ("follow.max_buffered_events", f.max_buffered_events > 0, "must be positive"),
            ("rpc.max_message_bytes", self.rpc.max_message_bytes >= 64 << 10, "must be at least 65536"),
            ("rpc.stream_buffer", self.rpc.stream_buffer > 0, "must be positive"),
            ("shards", (2..=4096).contains(&self.shards.len()), "list 2 to 4096 shards"),
        ])
    }

    /// Tracker limits.
    pub fn tracker_limits(&self) -> TrackerLimits {
        let r = &self.relay;
        TrackerLimits {
            max_open: r.max_open,
            max_recent_closed: r.max_recent_closed,
            latency_window: r.latency_window,
            min_backoff_ms: r.min_backoff_ms,
            max_backoff_ms: r.max_backoff_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relayer.toml");
        let key = "11".repeat(32);
        std::fs::write(
            &path,
            format!(
                "[coordinator]\nkey = \"{key}\"\n[relay]\npoll_interval_ms = 20\n[[shards]]\nendpoint = \"http://a:1\"\n\
                 genesis = \"a.toml\"\n[[shards]]\nendpoint = \"http://b:1\"\ngenesis = \"b.toml\"\n"
            ),
        )
        .expect("write");
        let cfg = RelayerConfig::load(Some(&path), &ConfigFlags::default()).expect("valid");
        assert_eq!((cfg.relay.poll_interval_ms, cfg.shards.len()), (20, 2));
        assert_eq!(cfg.metrics.addr, "", "metrics are off unless asked for");
        let metrics = MetricsFlags { metrics_addr: Some("127.0.0.1:0".into()) };
        let cfg = RelayerConfig::load(Some(&path), &ConfigFlags { metrics, ..Default::default() }).expect("valid");
        assert_eq!(cfg.metrics.addr, "127.0.0.1:0");
        let flags =
            ConfigFlags { poll_interval_ms: Some(5), shards: vec!["http://c:1=c.toml".into()], ..Default::default() };
        assert!(matches!(RelayerConfig::load(Some(&path), &flags), Err(ConfigError::Invalid { key: "shards", .. })));
        for n in [0, 1_025] {
            let flags = ConfigFlags { max_concurrent: Some(n), ..Default::default() };
            assert!(matches!(
                RelayerConfig::load(Some(&path), &flags),
                Err(ConfigError::Invalid { key: "relay.max_concurrent", .. })
            ));
        }
        let flags = ConfigFlags { coordinator_key: Some("zz".into()), ..Default::default() };
        assert!(matches!(
            RelayerConfig::load(Some(&path), &flags),
            Err(ConfigError::Invalid { key: "coordinator.key", .. })
        ));
    }

    #[test]
    fn default_config_round_trips_through_toml() {
        let text = toml::to_string(&RelayerConfig::default()).expect("serializes");
        assert_eq!(toml::from_str::<RelayerConfig>(&text).expect("parses"), RelayerConfig::default());
    }

    #[test]
    fn every_key_has_a_flag() {
        use clap::Args as _;
        let cmd = ConfigFlags::augment_args(clap::Command::new("flags"));
        let missing = shardex_service::config::keys_without_flags(&RelayerConfig::default(), &cmd, &["shards"]);
        assert!(missing.is_empty(), "config keys without a flag (nor an environment variable): {missing:?}");
    }
}
