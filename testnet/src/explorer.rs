//! The testnet's explorer: its config (every node of every shard with its genesis, the coordinator and its
//! key, the relayer), starting it last, and readiness (its page and overview answer).

use std::{path::Path, time::Duration};

use eyre::{bail, WrapErr};
use shardex_explorer::config::{ConfigFlags, ExplorerConfig};

use crate::{
    network::{ExplorerEntry, Network},
    process,
};

/// The explorer listens on `--base-port` + this (7202 by default), next to the relayer.
pub const EXPLORER_PORT_OFFSET: u16 = 102;
/// How long `up` waits for the explorer's overview to name every shard.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The explorer's config for the network as it runs now: every node of every shard with its genesis, the
/// coordinator with its key and the relayer, with the page on `port` (0: any free one).
pub fn config(net: &Network, data_dir: &Path, port: u16) -> eyre::Result<ExplorerConfig> {
    let abs = |p: &Path| std::path::absolute(p).wrap_err_with(|| format!("resolving {}", p.display()));
    let mut cfg = ExplorerConfig::default();
    cfg.node.data_dir = abs(data_dir)?;
    cfg.http.addr = format!("127.0.0.1:{port}");
    if let Some(c) = &net.coordinator {
        cfg.coordinator.endpoint = c.endpoint.clone();
        cfg.coordinator.key = c.public_key.to_hex();
    }
    if let Some(r) = &net.relayer {
        cfg.relayer.endpoint = r.endpoint.clone();
    }
    cfg.shards = net.shard_sections()?;
    Ok(cfg)
}

/// Writes the explorer's TOML config ([`config`]) and checks the explorer would accept it.
pub fn write_config(net: &Network, entry: &ExplorerEntry, port: u16) -> eyre::Result<()> {
    let cfg = config(net, &entry.data_dir(), port)?;
    std::fs::create_dir_all(&entry.dir).wrap_err_with(|| format!("creating {}", entry.dir.display()))?;
    let path = entry.config_file();
    std::fs::write(&path, toml::to_string_pretty(&cfg)?).wrap_err_with(|| format!("writing {}", path.display()))?;
    ExplorerConfig::load(Some(&path), &ConfigFlags::default()).wrap_err("checking the explorer config")?;
    Ok(())
}

/// Starts the explorer of `net` once everything it shows runs, records it in the manifest, and waits until
/// its overview lists every shard. `port` 0 picks a free one.
pub async fn start(dir: &Path, net: &mut Network, bin: &Path, port: u16) -> eyre::Result<()> {
    let mut entry = net.explorer.clone().unwrap_or_else(|| ExplorerEntry::new(dir));
    write_config(net, &entry, port)?;
    let (pid, url) = process::start_explorer(bin, &entry)?;
    (entry.pid, entry.url) = (Some(pid), url);
    net.explorer = Some(entry.clone());
    net.save(dir)?;
    wait_ready(&entry, net.shards().len()).await.wrap_err_with(|| format!("see {}", entry.log_file().display()))
}

/// Waits until the explorer's `/api/overview` answers with `shards` shards.
async fn wait_ready(entry: &ExplorerEntry, shards: usize) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    let mut last_problem = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        match overview_shards(&entry.url) {
            Ok(n) if n == shards => return Ok(()),
            Ok(n) => last_problem = format!("its overview lists {n} of {shards} shards"),
            Err(e) => last_problem = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the explorer is not ready after {} s: {last_problem}", READY_TIMEOUT.as_secs())
}

/// How many shards the explorer at `url` lists.
pub fn overview_shards(url: &str) -> eyre::Result<usize> {
    let (status, body) = shardex_test_support::http_get(url, "/api/overview")?;
    if status != 200 {
        bail!("its overview answers HTTP {status}: {body}");
    }
    let overview: serde_json::Value = serde_json::from_str(&body).wrap_err("the overview is not JSON")?;
    Ok(overview["shards"].as_array().map_or(0, Vec::len))
}
