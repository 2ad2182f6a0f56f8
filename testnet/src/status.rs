//! `testnet status`: every validator's and follower's height (a follower's lag behind its validators),
//! consensus round and role (which one proposes), state root, mempool and market mode, next to what the coordinator accepted of its shard (height, lag in blocks and ms,
//! rejected headers), then the coordinator's latest epoch and the relayer's backlog, counts and lock-to-credit
//! latency; `--watch` refreshes it.

use std::{collections::BTreeMap, path::Path};

use shardex_client::ShardClient;
use shardex_explorer::view::{mode_name, role};

use crate::{
    coordinator::{self, CoordStatus},
    network::{Network, COORDINATOR, EXPLORER, RELAYER},
    now_ms, process, relayer,
};

/// Reprints the status every `every` until ctrl-c.
pub async fn watch(dir: &Path, every: std::time::Duration) -> eyre::Result<()> {
    loop {
        // Clear the screen and home the cursor, so the table updates in place.
        print!("\x1b[2J\x1b[H");
        print(dir).await?;
        println!("\nrefreshing every {} s; ctrl-c to stop", every.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Prints the status of the network in `dir`.
pub async fn print(dir: &Path) -> eyre::Result<()> {
    let net = Network::load(dir)?;
    let coord: Result<CoordStatus, String> = match &net.coordinator {
        None => Err("not part of this network (run `testnet down` and `testnet up` to add it)".into()),
        Some(c) if !c.pid.is_some_and(process::alive) => Err("stopped".into()),
        Some(c) => coordinator::status(c, net.chain_id).await.map_err(|e| format!("unreachable: {e:#}")),
    };

    println!(
        "{:<16} {:>5} {:<12} {:>8} {:>5} {:<9} {:<20} {:>8} {:<15} | {:>9} {:>5} {:>7} {:>8}",
        "NODE",
        "SHARD",
        "MARKET",
        "HEIGHT",
        "ROUND",
        "ROLE",
        "STATE ROOT",
        "MEMPOOL",
        "MODE",
        "COMMITTED",
        "LAG",
        "LAG MS",
        "REJECTED"
    );
    // Followers' lag is counted against the highest validator of their shard.
    let mut tops: BTreeMap<u32, u64> = BTreeMap::new();
    for n in net.nodes.iter().filter(|n| !n.follower && n.pid.is_some_and(process::alive)) {
        let Ok(client) = ShardClient::connect(&n.endpoint).await else { continue };
        if let Ok(s) = client.status().await {
            let top = tops.entry(n.shard_id.0).or_default();
            *top = (*top).max(s.height);
        }
    }
    for n in &net.nodes {
        let line = match (n.pid.is_some_and(process::alive), ShardClient::connect(&n.endpoint).await) {
            (false, _) => "stopped".to_owned(),
            (true, Err(e)) => format!("unreachable: {e}"),
            (true, Ok(c)) => match (c.status().await, c.market(false).await) {
                (Ok(s), Ok(m)) => {
                    let behind = match (n.follower, tops.get(&n.shard_id.0)) {
                        (true, Some(top)) => format!("  ({} behind its validators)", top.saturating_sub(s.height)),
                        _ => String::new(),
                    };
                    format!(
                        "{:>8} {:>5} {:<9} 0x{:<18} {:>8} {:<15}{behind}",
                        s.height,
                        s.consensus_round,
                        role(&s),
                        &hex::encode(&s.state_root)[..16],
                        s.mempool_txs,
                        mode_name(m.market.map_or(0, |m| m.mode))
                    )
                }
                (Err(e), _) | (_, Err(e)) => format!("error: {e}"),
            },
        };
        // The coordinator's view of the shard, on its first validator's row.
        let first = net.validators_of(n.shard_id).first().is_some_and(|f| f.name == n.name);
        let shard = coord.as_ref().ok().and_then(|c| c.shards.get(&n.shard_id.0)).filter(|_| first);
        let seen = match shard {
            Some(s) => format!(
                " | {:>9} {:>5} {:>7} {:>8}{}",
                s.accepted_height,
                s.lag_blocks,
                s.lag_ms,
                s.rejected_headers,
                if s.connected { "" } else { "  (not connected)" }
            ),
            None => String::new(),
        };
        println!("{:<16} {:>5} {:<12} {line}{seen}", n.name, n.shard_id.0, n.symbol);
    }

    let summary = match (&coord, &net.coordinator) {
        (Err(why), _) => why.clone(),
        (Ok(CoordStatus { latest: None, .. }), _) => "running, no epoch yet".to_owned(),
        (Ok(CoordStatus { latest: Some(e), .. }), entry) => format!(
            "epoch {} signed {} ms ago, global root 0x{}…, key {}…, {}",
            e.record.number,
            now_ms().saturating_sub(e.record.time_ms),
            &hex::encode(e.global_root)[..16],
            entry.as_ref().map_or(String::new(), |c| c.public_key.to_hex()[..16].to_owned()),
            entry.as_ref().map_or("", |c| c.endpoint.as_str()),
        ),
    };
    println!("{COORDINATOR:<16} {summary}");
    println!("{RELAYER:<16} {}", relayer_line(&net).await);
    println!("{EXPLORER:<16} {}", explorer_line(&net));
    if let Some(line) = net.metrics_line() {
        println!("{line}");
    }
    Ok(())
}

/// The relayer's row: what its `GetStatus` reports, or why there is none.
async fn relayer_line(net: &Network) -> String {
    match &net.relayer {
        None => match relayer::bridge_off_reason(net) {
            Ok(Some(why)) => format!("not part of this network (bridge off: {why})"),
            Ok(None) => "not part of this network (run `testnet down` and `testnet up` to add it)".into(),
            Err(e) => format!("not part of this network ({e:#})"),
        },
        Some(r) if !r.pid.is_some_and(process::alive) => "stopped".into(),
        Some(r) => match relayer::status(r).await {
            Ok(s) => relayer::summary(&s, &r.endpoint),
            Err(e) => format!("unreachable: {e:#}"),
        },
    }
}

/// The explorer's row: its page and how many shards it shows, or why there is none.
fn explorer_line(net: &Network) -> String {
    match &net.explorer {
        None => "not part of this network (run `testnet down` and `testnet up` to add it)".into(),
        Some(e) if !e.pid.is_some_and(process::alive) => "stopped".into(),
        Some(e) => match crate::explorer::overview_shards(&e.url) {
            Ok(n) => format!("{}/ showing {n} shards", e.url),
            Err(err) => format!("unreachable: {err:#}"),
        },
    }
}
