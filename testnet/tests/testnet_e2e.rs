//! End to end: `testnet up`, `status`, `demo`, `down` as real processes (three shards, two perpetual and one
//! options market, the coordinator and the bridge relayer) on free ports; the network is always stopped,
//! even when an assertion fails.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use shardex_core::Keypair;

use support::{bin_dir, metrics_addrs, sample, scrape, testnet, text, Down};

/// Runs the `shardex` CLI against `endpoint`.
fn shardex(bins: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(bins.join("shardex")).arg("--node").arg(endpoint).args(args).output().expect("run shardex")
}

/// The CLI end to end on one node: new key, deposit, withdraw, proven account, tx, block, refusals.
fn cli_walkthrough(dir: &Path, bins: &Path) {
    let manifest = std::fs::read_to_string(dir.join("network.toml")).expect("manifest");
    let endpoint = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("endpoint = \"").and_then(|r| r.strip_suffix('"')))
        .expect("an endpoint")
        .to_owned();
    let key = dir.join("carol.key");
    let new = shardex(bins, &endpoint, &["keys", "new", "--out", key.to_str().expect("utf8")]);
    assert!(new.status.success(), "{}", text(&new));
    let carol = String::from_utf8_lossy(&new.stdout).trim().to_owned();
    assert_eq!(carol.len(), 64, "{carol}");
    assert!(
        !shardex(bins, &endpoint, &["keys", "new", "--out", key.to_str().expect("utf8")]).status.success(),
        "overwrote a key"
    );

    let deposit_key = dir.join("keys").join("deposit.key");
    let dep = shardex(
        bins,
        &endpoint,
        &["deposit", "--key", deposit_key.to_str().expect("utf8"), "--to", &carol, "--amount", "1500.25"],
    );
    assert!(dep.status.success(), "{}", text(&dep));
    assert!(text(&dep).contains("+1500.250000 USD -> 1500.250000 USD"), "{}", text(&dep));

    let wd = shardex(bins, &endpoint, &["withdraw", "--key", key.to_str().expect("utf8"), "--amount", "0.25"]);
    assert!(wd.status.success(), "{}", text(&wd));
    let hash = text(&wd).split_whitespace().nth(1).expect("tx hash").trim_start_matches("0x").to_owned();
    let block: String =
        text(&wd).split("final in block ").nth(1).expect("height").split_whitespace().next().expect("h").to_owned();

    let over = shardex(bins, &endpoint, &["withdraw", "--key", key.to_str().expect("utf8"), "--amount", "5000"]);
    assert!(!over.status.success());
    assert!(text(&over).contains("INSUFFICIENT_COLLATERAL"), "{}", text(&over));
    let bad = shardex(
        bins,
        &endpoint,
        &["deposit", "--key", deposit_key.to_str().expect("utf8"), "--to", &carol, "--amount", "1.0000001"],
    );
    assert!(!bad.status.success() && text(&bad).contains("more than 6 decimals"), "{}", text(&bad));

    let node_dir = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("dir = \"").and_then(|r| r.strip_suffix('"')))
        .expect("node dir")
        .to_owned();
    let genesis = PathBuf::from(node_dir).join("genesis.toml");
    let acct = shardex(bins, &endpoint, &["account", &carol, "--prove", "--genesis", genesis.to_str().expect("utf8")]);
    let out = text(&acct);
    assert!(acct.status.success(), "{out}");
    assert!(out.contains("collateral  1500.000000 USD"), "{out}");
    assert!(out.contains("proof       verified") && out.contains("certified by the genesis validator set"), "{out}");

    let hist =
        shardex(bins, &endpoint, &["history", &carol, "--genesis", genesis.to_str().expect("utf8"), "--limit", "10"]);
    let out = text(&hist);
    assert!(hist.status.success(), "{out}");
    assert!(out.contains("collateral +1500.250000 USD -> 1500.250000 USD"), "{out}");
    assert!(out.contains("collateral -0.250000 USD -> 1500.000000 USD"), "{out}");
    assert!(out.contains(&format!("height {block} ")) && out.contains(&hash), "{out}");
    assert!(out.contains("2 entries up to height") && out.contains("proven against a header certified"), "{out}");
    // The demo's trading moved the market: its funding and mode changes are in the market history.
    let market = shardex(bins, &endpoint, &["history", "--market", "--genesis", genesis.to_str().expect("utf8")]);
    assert!(market.status.success(), "{}", text(&market));
    // After the demo's trading, the shard's proven totals and pools balance.
    let ledger = shardex(bins, &endpoint, &["ledger", "--genesis", genesis.to_str().expect("utf8")]);
    let out = text(&ledger);
    assert!(ledger.status.success(), "{out}");
    assert!(out.contains("certified by the genesis validator set") && out.contains("conservation    holds"), "{out}");

    let tx = shardex(bins, &endpoint, &["tx", &hash]);
    assert!(text(&tx).contains(&format!("included in block {block}")), "{}", text(&tx));
    let blk = shardex(bins, &endpoint, &["block", &block]);
    assert!(blk.status.success() && text(&blk).contains(&hash), "{}", text(&blk));

    global_walkthrough(dir, bins, &endpoint, &carol, &genesis);
}

/// `shardex account --prove --global` against the testnet's coordinator: verifies with the coordinator's
/// key from `network.toml` (once an epoch commits carol's withdrawal), fails with any other key.
fn global_walkthrough(dir: &Path, bins: &Path, endpoint: &str, carol: &str, genesis: &Path) {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("network.toml")).expect("manifest")).expect("toml");
    let coord = &manifest["coordinator"];
    let (url, key) = (coord["endpoint"].as_str().expect("endpoint"), coord["public_key"].as_str().expect("key"));
    let global = |key: &str| {
        let genesis = genesis.to_str().expect("utf8");
        let args = ["account", carol, "--prove", "--global", "--coordinator", url, "--coordinator-key", key];
        shardex(bins, endpoint, &[&args[..], &["--genesis", genesis]].concat())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = global(key);
        let out = text(&ok);
        assert!(ok.status.success(), "{out}");
        assert!(out.contains("proof       verified") && out.contains(&format!("signed by coordinator {key}")), "{out}");
        if out.contains("collateral  1500.000000 USD") {
            break;
        }
        assert!(Instant::now() < deadline, "no epoch committed carol's withdrawal:\n{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deposit = std::fs::read_to_string(dir.join("keys").join("deposit.key")).expect("deposit key");
    let wrong = Keypair::from_secret_hex(&deposit).expect("key").account().to_hex();
    let refused = global(&wrong);
    assert!(!refused.status.success(), "verified under a key that is not the coordinator's");
    assert!(text(&refused).contains("not by the trusted coordinator key"), "{}", text(&refused));
}

/// A short `load`, a short seeded `chaos` (faults on every kind of process, then its own `check`), and a
/// final `check` on the healed network.
fn load_chaos_check(dir: &Path, bins: &Path) {
    let load = testnet(dir, bins, &["load", "--tps", "300", "--duration", "3"]);
    let out = text(&load);
    assert!(load.status.success(), "load failed:\n{out}");
    assert_eq!(out.lines().filter(|l| l.contains("-0: accepted")).count(), 3, "{out}");
    assert!(out.contains("eth-options-0: funded a market maker") && out.contains(":3000:call, premium "), "{out}");

    // Seed 13 over 8 s with a fault every ~0.7 s: kills, tears (a crash between a block's write and its
    // flush), a wipe (data directory deleted, back by state sync) and freezes, with one tx in ten a
    // cross-shard transfer; then every shard node's store that began at genesis is replayed from it.
    let args = [
        "chaos",
        "--seed",
        "13",
        "--duration",
        "8",
        "--fault-every-ms",
        "700",
        "--tps",
        "300",
        "--bridge-ratio",
        "0.1",
        "--replay-check",
    ];
    let chaos = testnet(dir, bins, &args);
    let out = text(&chaos);
    assert!(chaos.status.success(), "chaos failed:\n{out}");
    assert!(out.contains("chaos: seed 13 (replay with --seed 13)"), "{out}");
    let faults: Vec<&str> = out.lines().filter(|l| l.starts_with("chaos [")).collect();
    assert!(faults.iter().any(|l| l.contains("SIGKILL")) && faults.iter().any(|l| l.contains("SIGSTOP")), "{out}");
    assert!(faults.iter().any(|l| l.contains("-perp-")), "{out}");
    assert!(
        faults.iter().any(|l| l.contains("crashed before flushing")),
        "no torn node reached its crash point:\n{out}"
    );
    let wiped = faults.iter().filter(|l| l.contains("data directory deleted") && l.contains("from a snapshot")).count();
    assert!(wiped >= 1, "no node was wiped and state-synced:\n{out}");
    assert!(out.contains("transfers: accepted"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("replay-check ") && l.contains("every header equal")).count(),
        15 - wiped,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("replay-check ") && l.contains("skipped; it was wiped")).count(),
        wiped
    );
    assert!(
        out.contains(&format!("replay-check: every one of {} shard nodes that began at genesis reopens", 15 - wiped)),
        "{out}"
    );
    assert!(out.contains("checking the network after the faults") && out.contains("check passed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");

    // With the coordinator frozen no epoch can be had: check must fail, and name the invariant.
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("network.toml")).expect("manifest")).expect("toml");
    let pid = manifest["coordinator"]["pid"].as_integer().expect("coordinator pid").to_string();
    let signal = |sig: &str| Command::new("kill").args([sig, pid.as_str()]).status().expect("kill");
    assert!(signal("-STOP").success());
    let frozen = testnet(dir, bins, &["check", "--timeout", "2"]);
    assert!(signal("-CONT").success());
    let out = text(&frozen);
    assert!(!frozen.status.success(), "check passed without a coordinator:\n{out}");
    assert!(out.contains("FAIL  epoch") && out.contains("invariant(s) failed"), "{out}");

    let check = testnet(dir, bins, &["check", "--timeout", "30"]);
    let out = text(&check);
    assert!(check.status.success(), "check failed:\n{out}");
    // Every node's head is certified, and the four validators and the follower of each shard hold one chain.
    assert_eq!(out.lines().filter(|l| l.contains("ok    head")).count(), 15, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("ok    replicas") && l.contains("4 validators and 1 follower(s) hold one hash"))
            .count(),
        3,
        "{out}"
    );
    assert_eq!(out.lines().filter(|l| l.contains("ok    conservation")).count(), 3, "{out}");
    assert!(out.contains("ok    epoch") && out.contains("ok    bridge"), "{out}");
}

/// The last lines of the log of every node the last line of `out` names (e.g. a node that fell behind), so
/// a failure carries what that node was doing.
fn logs_of_named_nodes(dir: &Path, bins: &Path, out: &str) -> String {
    let last = out.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let mut logs = String::new();
    for name in last.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if name.contains("-perp-") || name.contains("-options-") {
            let tail = testnet(dir, bins, &["logs", name, "--tail", "60"]);
            logs.push_str(&format!("\n--- last log lines of {name} ---\n{}", text(&tail)));
        }
    }
    logs
}

/// Scrapes every server `status` listed while the network runs: 15 shard nodes, the coordinator and the relayer,
/// each with figures of the work the demo just made it do (blocks, epochs, a delivered transfer).
fn every_server_serves_metrics(status: &str) {
    let servers = metrics_addrs(status);
    assert_eq!(servers.len(), 17, "{servers:?}");
    for (name, addr) in &servers {
        let page = scrape(addr);
        let positive = |metric: &str| assert!(sample(&page, metric) > Some(0.0), "{name}: {metric}\n{page}");
        match name.as_str() {
            "coordinator" => {
                positive("shardex_coordinator_epoch");
                positive("shardex_coordinator_epoch_seconds_count");
                positive("shardex_coordinator_shard_height{shard=\"1\"}");
                positive("shardex_coordinator_store_bytes");
                // The relayer and the explorer follow its epochs.
                assert!(sample(&page, "shardex_coordinator_stream_subscribers") >= Some(2.0), "{name}\n{page}");
            }
            "relayer" => {
                positive("shardex_relayer_delivered_total");
                positive("shardex_relayer_lock_to_credit_seconds_count");
                positive("shardex_relayer_store_bytes");
                // The explorer follows its message lifecycles.
                positive("shardex_relayer_stream_subscribers");
            }
            _ => {
                positive("shardex_head_height");
                positive("shardex_block_write_seconds_count");
            }
        }
    }
}

#[test]
fn up_demo_status_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let bins = bin_dir();
    let _down = Down(&dir, &bins);

    let up = testnet(
        &dir,
        &bins,
        &["up", "--base-port", "0", "--block-interval-ms", "20", "--shards", "BTC-PERP,ETH-PERP,ETH-OPTIONS"],
    );
    let out = text(&up);
    assert!(up.status.success(), "up failed:\n{out}");
    assert!(out.contains("eth-options-0"), "{out}");
    let coord_row = out.lines().find(|l| l.starts_with("coordinator ")).unwrap_or_else(|| panic!("{out}"));
    assert!(coord_row.contains("http://127.0.0.1:"), "{out}");
    // Four validators and a follower per shard by default, each shard under Malachite.
    assert!(out.contains("eth-options-3") && out.contains("validator 3 of 4, /ip4/127.0.0.1/tcp/"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("eth-options-f0") && l.contains("follower 0, /ip4/")), "{out}");
    assert!(out.contains("coordinator key ") && out.contains(" of 3 shards"), "{out}");
    let relayer_row = out.lines().find(|l| l.starts_with("relayer ")).unwrap_or_else(|| panic!("{out}"));
    assert!(relayer_row.contains("http://127.0.0.1:"), "{out}");
    assert!(out.contains("relayer account ") && out.contains("between all 3 shards (following 3 of them)"), "{out}");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("network.toml")).expect("manifest")).expect("toml");
    let relayer = &manifest["relayer"];
    assert!(relayer["endpoint"].as_str().is_some_and(|e| relayer_row.contains(e)), "{manifest}");
    assert!(relayer["account"].as_str().is_some_and(|a| a.len() == 64), "{manifest}");
    let config = std::fs::read_to_string(dir.join("relayer").join("relayer.toml")).expect("relayer config");
    // The relayer (and the coordinator) reach every shard through each of its four validators and its follower.
    assert_eq!(config.matches("[[shards]]").count(), 15, "{config}");

    let again = testnet(&dir, &bins, &["up", "--base-port", "0"]);
    assert!(!again.status.success(), "a second `up` must refuse while running");

    let demo = testnet(&dir, &bins, &["demo"]);
    let out = text(&demo);
    assert!(demo.status.success(), "demo failed:\n{out}{}", logs_of_named_nodes(&dir, &bins, &out));
    assert!(out.contains("demo complete"), "{out}");
    // The demo restarted a validator (on a new metrics port): `status` lists the addresses as they are now.
    every_server_serves_metrics(&text(&testnet(&dir, &bins, &["status"])));
    assert_eq!(out.matches("refused as expected").count(), 6, "{out}");
    assert!(out.contains("LIQUIDATABLE") && out.contains("MODE_CAUSE_PRICE_BAND"), "{out}");
    assert_eq!(out.matches("= deposits - withdrawals + bridged in - bridged out (proven, height").count(), 3, "{out}");
    // Steps 6 to 8 on the options shard: listing and quotes, a covered call spread margined at its maximum
    // loss, a naked call refused then accepted, Greeks, and the naked call liquidated after a 9% rise.
    assert!(out.contains("[6] eth-options-0: the admin lists ETH options"), "{out}");
    assert!(out.contains("the short is covered, at most 100.000000 USD to lose"), "{out}");
    assert!(out.contains("frank: collateral") && out.contains("maintenance 100.000000 USD"), "{out}");
    assert!(out.contains("grace sells a naked call on 300 USD -> INSUFFICIENT_MARGIN"), "{out}");
    assert!(out.contains("grace Greeks at height") && out.contains("USD/day"), "{out}");
    assert!(out.contains("henry took grace's short of 100 lots"), "{out}");
    // Step 14: the short-dated call expired, settled at the window's average, paid exactly.
    assert!(out.contains("[14] eth-options-0: the short-dated call"), "{out}");
    assert!(out.contains("settlement price ") && out.contains("frank is paid "), "{out}");
    // Step 9: refused for margin on the second shard, the transfer followed through the relayer, accepted.
    assert!(out.contains("[9] erin moves 1000 USD of collateral from btc-perp-0 to eth-perp-0"), "{out}");
    assert!(out.contains("INSUFFICIENT_MARGIN") && out.contains("message 1/2/"), "{out}");
    for stage in ["DELIVERED credited on eth-perp-0", "ACKED     escrow released on btc-perp-0"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with('+') && l.contains(stage)), "{stage}:\n{out}");
    }
    assert!(out.contains("proven: escrow ACKED on btc-perp-0") && out.contains("accepted: order #"), "{out}");
    assert!(out.find("[9] erin").zip(out.find("[10] The price falls")).is_some_and(|(a, b)| a < b), "{out}");
    // Step 13: the first shard's proposer killed, trading on under another, the node back and caught up.
    assert!(out.contains(", the proposer) killed with SIGKILL"), "{out}");
    assert!(out.contains("ms after the kill") && out.contains("same root 0x"), "{out}");
    assert_eq!(out.matches("proven at height").count(), 9, "{out}");
    // Proofs are read from each shard's follower.
    assert_eq!(out.lines().filter(|l| l.contains("read from") && l.contains("-f0")).count(), 3, "{out}");
    assert!(out.contains("commits all 3 shards"), "{out}");
    assert_eq!(out.matches("(global root 0x").count(), 9, "{out}");

    cli_walkthrough(&dir, &bins);
    load_chaos_check(&dir, &bins);

    let status = testnet(&dir, &bins, &["status"]);
    let out = text(&status);
    assert!(status.status.success(), "{out}");
    // The table's rows (the metrics line at the end names every node too).
    let rows = || out.lines().filter(|l| !l.starts_with("Prometheus metrics"));
    let shard_row = |l: &&str| l.contains("-perp-0") || l.contains("-options-0");
    assert_eq!(rows().filter(shard_row).count(), 3, "{out}");
    // Each follower row says what it is and how far behind its validators it is.
    assert_eq!(rows().filter(|l| l.contains("-f0") && l.contains("follower")).count(), 3, "{out}");
    assert!(rows().filter(|l| l.contains("-f0")).all(|l| l.contains("behind its validators")), "{out}");
    assert!(!out.contains("stopped") && !out.contains("unreachable"), "{out}");
    let modes = ["normal", "post-only", "reduce-only", "settlement-only"];
    assert!(rows().filter(shard_row).all(|l| modes.iter().any(|m| l.contains(m))), "{out}");
    // Each shard row carries the coordinator's view of it; the coordinator line its latest epoch.
    assert_eq!(rows().filter(|l| shard_row(l) && l.contains(" | ")).count(), 3, "{out}");
    // The explorer's line: its page shows the three shards, each with its four validators and follower.
    let explorer = out.lines().find(|l| l.starts_with("explorer ")).unwrap_or_else(|| panic!("{out}"));
    assert!(explorer.contains("showing 3 shards"), "{out}");
    let url = explorer.split_whitespace().nth(1).unwrap_or_default().trim_end_matches('/');
    let (code, body) = shardex_test_support::http_get(url, "/api/overview").expect("the explorer answers");
    assert_eq!(code, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    for shard in overview["shards"].as_array().expect("shards") {
        let nodes = shard["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 5, "{shard}");
        assert!(nodes.iter().all(|n| n["error"].is_null()), "every node answers the explorer: {shard}");
    }
    assert!(overview["bridge"]["messages"].as_array().is_some_and(|m| !m.is_empty()), "{overview}");
    let coord = out.lines().find(|l| l.starts_with("coordinator ")).unwrap_or_else(|| panic!("{out}"));
    assert!(coord.contains("epoch ") && coord.contains("ms ago") && coord.contains("global root 0x"), "{out}");

    // The relayer's line: what it carried (the demo's message), its backlog and lock-to-credit latency.
    let relayer = out.lines().find(|l| l.starts_with("relayer ")).unwrap_or_else(|| panic!("{out}"));
    assert!(relayer.contains("lock-to-credit p50 ") && relayer.contains("3/3 shards followed"), "{out}");
    assert!(!relayer.contains("delivered 0 acked 0"), "{out}");

    for name in ["coordinator", "relayer"] {
        let logs = testnet(&dir, &bins, &["logs", name, "--tail", "5"]);
        assert!(logs.status.success() && !text(&logs).trim().is_empty(), "{name}: {}", text(&logs));
    }
    // A node's log holds what it traced (stderr), from opening its state on.
    let logs = testnet(&dir, &bins, &["logs", "btc-perp-0", "--tail", "100000"]);
    assert!(logs.status.success() && text(&logs).contains("shard opened"), "{}", text(&logs));

    let down = testnet(&dir, &bins, &["down"]);
    let out = text(&down);
    assert!(down.status.success(), "{out}");
    assert_eq!(out.matches("stopped ").count(), 18, "{out}");
    let order: Vec<usize> = ["stopped explorer", "stopped relayer", "stopped coordinator", "stopped btc-perp-0"]
        .iter()
        .map(|s| out.find(s).unwrap_or_else(|| panic!("{s}: {out}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "explorer, relayer, coordinator, then nodes:\n{out}");
    let after = text(&testnet(&dir, &bins, &["status"]));
    assert_eq!(after.matches("stopped").count(), 18, "{after}");
    assert!(after.lines().any(|l| l.starts_with("explorer ") && l.contains("stopped")), "{after}");
    assert!(after.lines().any(|l| l.starts_with("coordinator ") && l.contains("stopped")), "{after}");
    assert!(after.lines().any(|l| l.starts_with("relayer ") && l.contains("stopped")), "{after}");
}
