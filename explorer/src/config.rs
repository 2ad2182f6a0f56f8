//! Explorer configuration: a TOML file with sections `[node] [http] [coordinator] [relayer] [view] [log]` and
//! one `[[shards]]` table per shard endpoint; every scalar overridable by a `--section.key` flag (and its
//! `SHARDEX_EXPLORER_SECTION_KEY` variable), the shard list by repeated `--shard ENDPOINT=GENESIS_FILE`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
pub use shardex_service::config::{ConfigError, ShardSection};
use shardex_service::{
    config::{check, read_toml, set, set_shards},
    process::LogFormat,
};

/// Most shards one explorer shows.
pub const MAX_SHARDS: usize = 64;
/// Most endpoints (validators and followers) one explorer polls, over all shards.
pub const MAX_ENDPOINTS: usize = 512;

/// The whole configuration after merging file, environment and flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplorerConfig {
    /// Paths.
    pub node: NodeSection,
    /// The web page and its JSON API.
    pub http: HttpSection,
    /// The coordinator whose epochs are shown (and that account balances are verified up to).
    pub coordinator: CoordinatorSection,
    /// The relayer whose message lifecycles are shown.
    pub relayer: RelayerSection,
    /// How much is kept and how often nodes are asked.
    pub view: ViewSection,
    /// Logging.
    pub log: LogSection,
    /// Every node shown: entries with the same genesis file are one shard's validators and followers.
    pub shards: Vec<ShardSection>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Where the bound address is written (`http.addr`), for tools to find a port picked at random.
    pub data_dir: PathBuf,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Listen address of the page and its JSON API (port 0 = any free port, written to `<data_dir>/http.addr`).
    pub addr: String,
    /// Requests served at once; more wait.
    pub max_concurrent_requests: usize,
    /// Account lookups (each asks every shard for proofs) running at once; more are answered 503.
    pub max_account_lookups: usize,
}

/// `[coordinator]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorSection {
    /// gRPC endpoint; empty shows no epochs, and balances are verified up to the shards' headers only.
    pub endpoint: String,
    /// The coordinator's public key (hex): epochs are shown as verified only under it.
    pub key: String,
}

/// `[relayer]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayerSection {
    /// gRPC endpoint; empty shows no bridge messages.
    pub endpoint: String,
}

/// `[view]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewSection {
    /// How often every node's status is asked for, ms.
    pub poll_ms: u64,
    /// Price levels shown per side of each book.
    pub book_levels: u32,
    /// Recent trades kept per shard.
    pub trades: usize,
    /// Recent epochs kept.
    pub epochs: usize,
    /// Recent bridge messages kept.
    pub messages: usize,
    /// Longest wait for a node's answer, ms.
    pub timeout_ms: u64,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `tracing` filter.
    pub filter: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for ExplorerConfig {
    fn default() -> Self {
        Self {
            node: NodeSection { data_dir: "explorer-data".into() },
            http: HttpSection { addr: "127.0.0.1:7202".into(), max_concurrent_requests: 64, max_account_lookups: 4 },
            coordinator: CoordinatorSection { endpoint: String::new(), key: String::new() },
            relayer: RelayerSection { endpoint: String::new() },
            view: ViewSection {
                poll_ms: 500,
                book_levels: 10,
                trades: 20,
                epochs: 12,
                messages: 30,
                timeout_ms: 2_000,
            },
            log: LogSection { filter: "info".into(), format: LogFormat::Text },
            shards: Vec::new(),
        }
    }
}

macro_rules! section_defaults {
    ($($t:ident . $f:ident),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                ExplorerConfig::default().$f
            }
        }
    )*};
}
section_defaults!(
    NodeSection.node,
    HttpSection.http,
    CoordinatorSection.coordinator,
    RelayerSection.relayer,
    ViewSection.view,
    LogSection.log
);

/// Flags; each overrides the same key of the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFlags {
    /// Directory the bound address is written to (http.addr).
    #[arg(long = "node.data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address of the page (port 0 = any free port).
    #[arg(long = "http.addr", value_name = "HOST:PORT")]
    pub http_addr: Option<String>,
    /// Requests served at once.
    #[arg(long = "http.max-concurrent-requests", value_name = "N")]
    pub max_concurrent_requests: Option<usize>,
    /// Account lookups running at once.
    #[arg(long = "http.max-account-lookups", value_name = "N")]
    pub max_account_lookups: Option<usize>,
    /// Coordinator gRPC endpoint (empty: none).
    #[arg(long = "coordinator.endpoint", value_name = "URL")]
    pub coordinator_endpoint: Option<String>,
    /// Coordinator public key (hex).
    #[arg(long = "coordinator.key", value_name = "HEX")]
    pub coordinator_key: Option<String>,
    /// Relayer gRPC endpoint (empty: none).
    #[arg(long = "relayer.endpoint", value_name = "URL")]
    pub relayer_endpoint: Option<String>,
    /// How often every node's status is asked for, ms.
    #[arg(long = "view.poll-ms", value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Price levels shown per side.
    #[arg(long = "view.book-levels", value_name = "N")]
    pub book_levels: Option<u32>,
    /// Recent trades kept per shard.
    #[arg(long = "view.trades", value_name = "N")]
    pub trades: Option<usize>,
    /// Recent epochs kept.
    #[arg(long = "view.epochs", value_name = "N")]
    pub epochs: Option<usize>,
    /// Recent bridge messages kept.
    #[arg(long = "view.messages", value_name = "N")]
    pub messages: Option<usize>,
    /// Longest wait for a node's answer, ms.
    #[arg(long = "view.timeout-ms", value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// A node, as ENDPOINT=GENESIS_FILE; repeat per node (entries with the same genesis file are one shard's
    /// nodes). Replaces the file's [[shards]].
    #[arg(long = "shard", value_name = "ENDPOINT=GENESIS")]
    pub shards: Vec<String>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long = "log.filter", value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// Log line format: text or json.
    #[arg(long = "log.format", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

impl ExplorerConfig {
    /// Loads `file` (if given), applies `flags`, validates.
    pub fn load(file: Option<&Path>, flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let mut cfg: Self = read_toml(file)?;
        let f = flags.clone();
        set(f.data_dir, &mut cfg.node.data_dir);
        set(f.http_addr, &mut cfg.http.addr);
        set(f.max_concurrent_requests, &mut cfg.http.max_concurrent_requests);
        set(f.max_account_lookups, &mut cfg.http.max_account_lookups);
        set(f.coordinator_endpoint, &mut cfg.coordinator.endpoint);
        set(f.coordinator_key, &mut cfg.coordinator.key);
        set(f.relayer_endpoint, &mut cfg.relayer.endpoint);
        set(f.poll_ms, &mut cfg.view.poll_ms);
        set(f.book_levels, &mut cfg.view.book_levels);
        set(f.trades, &mut cfg.view.trades);
        set(f.epochs, &mut cfg.view.epochs);
        set(f.messages, &mut cfg.view.messages);
        set(f.timeout_ms, &mut cfg.view.timeout_ms);
        set(f.log_filter, &mut cfg.log.filter);
        set(f.log_format, &mut cfg.log.format);
        set_shards(&f.shards, &mut cfg.shards)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let (h, v, c) = (&self.http, &self.view, &self.coordinator);
        let key_ok = c.endpoint.is_empty() || hex::decode(c.key.trim()).is_ok_and(|k| k.len() == 32);
        check([
            ("http.addr", !h.addr.is_empty(), "must be HOST:PORT"),
            ("http.max_concurrent_requests", (1..=4_096).contains(&h.max_concurrent_requests), "must be 1..=4096"),
            ("http.max_account_lookups", (1..=64).contains(&h.max_account_lookups), "must be 1..=64"),
            ("coordinator.key", key_ok, "must be the coordinator's 32-byte hex public key"),
            ("view.poll_ms", (50..=60_000).contains(&v.poll_ms), "must be 50..=60000"),
            ("view.book_levels", (1..=100).contains(&v.book_levels), "must be 1..=100"),
            ("view.trades", (1..=1_000).contains(&v.trades), "must be 1..=1000"),
            ("view.epochs", (1..=1_000).contains(&v.epochs), "must be 1..=1000"),
            ("view.messages", (1..=1_000).contains(&v.messages), "must be 1..=1000"),
            ("view.timeout_ms", (100..=60_000).contains(&v.timeout_ms), "must be 100..=60000"),
            ("shards", (1..=MAX_ENDPOINTS).contains(&self.shards.len()), "list 1 to 512 nodes"),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("explorer.toml");
        std::fs::write(
            &path,
            "[view]\npoll_ms = 250\n[[shards]]\nendpoint = \"http://a:1\"\ngenesis = \"a.toml\"\n\
             [[shards]]\nendpoint = \"http://b:1\"\ngenesis = \"a.toml\"\n",
        )
        .expect("write");
        let cfg = ExplorerConfig::load(Some(&path), &ConfigFlags::default()).expect("valid");
        assert_eq!((cfg.view.poll_ms, cfg.shards.len(), cfg.http.addr.as_str()), (250, 2, "127.0.0.1:7202"));

        let flags = ConfigFlags { poll_ms: Some(1_000), http_addr: Some("127.0.0.1:0".into()), ..Default::default() };
        let cfg = ExplorerConfig::load(Some(&path), &flags).expect("valid");
        assert_eq!((cfg.view.poll_ms, cfg.http.addr.as_str()), (1_000, "127.0.0.1:0"));

        for (flags, key) in [
            (ConfigFlags { poll_ms: Some(10), ..Default::default() }, "view.poll_ms"),
            (ConfigFlags { book_levels: Some(0), ..Default::default() }, "view.book_levels"),
            (ConfigFlags { coordinator_endpoint: Some("http://c:1".into()), ..Default::default() }, "coordinator.key"),
            (ConfigFlags { shards: vec!["nogenesis".into()], ..Default::default() }, "shard"),
        ] {
            match ExplorerConfig::load(Some(&path), &flags) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{key}: expected refusal, got {other:?}"),
            }
        }
        match ExplorerConfig::load(None, &ConfigFlags::default()) {
            Err(ConfigError::Invalid { key: "shards", .. }) => {}
            other => panic!("no shards must be refused, got {other:?}"),
        }
        std::fs::write(&path, "[view]\npol_ms = 1\n").expect("write");
        assert!(matches!(ExplorerConfig::load(Some(&path), &ConfigFlags::default()), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn every_key_has_a_flag() {
        use clap::Args as _;
        let cmd = ConfigFlags::augment_args(clap::Command::new("flags"));
        let missing = shardex_service::config::keys_without_flags(&ExplorerConfig::default(), &cmd, &["shards"]);
        assert!(missing.is_empty(), "config keys without a flag (nor an environment variable): {missing:?}");
    }
}
