//! End to end: `testnet up`, `status`, `demo`, `down` as real processes (three shard nodes and the
//! coordinator) on free ports; the network is always stopped, even when an assertion fails.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use shardex_core::Keypair;

use support::{bin_dir, testnet, text, Down};

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
    assert!(out.contains("proof       verified") && out.contains("signed by the genesis sequencer set"), "{out}");

    let hist =
        shardex(bins, &endpoint, &["history", &carol, "--genesis", genesis.to_str().expect("utf8"), "--limit", "10"]);
    let out = text(&hist);
    assert!(hist.status.success(), "{out}");
    assert!(out.contains("collateral +1500.250000 USD -> 1500.250000 USD"), "{out}");
    assert!(out.contains("collateral -0.250000 USD -> 1500.000000 USD"), "{out}");
    assert!(out.contains(&format!("height {block} ")) && out.contains(&hash), "{out}");
    assert!(out.contains("2 entries up to height") && out.contains("proven against a header signed"), "{out}");
    // The demo's trading moved the market: its funding and mode changes are in the market history.
    let market = shardex(bins, &endpoint, &["history", "--market", "--genesis", genesis.to_str().expect("utf8")]);
    assert!(market.status.success(), "{}", text(&market));
    // After the demo's trading, the shard's proven totals and pools balance.
    let ledger = shardex(bins, &endpoint, &["ledger", "--genesis", genesis.to_str().expect("utf8")]);
    let out = text(&ledger);
    assert!(ledger.status.success(), "{out}");
    assert!(out.contains("signed by the genesis sequencer set") && out.contains("conservation    holds"), "{out}");

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

#[test]
fn up_demo_status_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let bins = bin_dir();
    let _down = Down(&dir, &bins);

    let up = testnet(
        &dir,
        &bins,
        &["up", "--base-port", "0", "--block-interval-ms", "20", "--shards", "BTC-PERP,ETH-PERP,SOL-PERP"],
    );
    let out = text(&up);
    assert!(up.status.success(), "up failed:\n{out}");
    assert!(out.contains("sol-perp-0"), "{out}");
    let coord_row = out.lines().find(|l| l.starts_with("coordinator ")).unwrap_or_else(|| panic!("{out}"));
    assert!(coord_row.contains("http://127.0.0.1:"), "{out}");
    // Fresh shards have no block yet: the first epoch commits none of them, and up says so.
    assert!(out.contains("coordinator key ") && out.contains("commits 0 of 3 shards"), "{out}");

    let again = testnet(&dir, &bins, &["up", "--base-port", "0"]);
    assert!(!again.status.success(), "a second `up` must refuse while running");

    let demo = testnet(&dir, &bins, &["demo"]);
    let out = text(&demo);
    assert!(demo.status.success(), "demo failed:\n{out}");
    assert!(out.contains("demo complete"), "{out}");
    assert_eq!(out.matches("refused as expected").count(), 4, "{out}");
    assert!(out.contains("LIQUIDATABLE") && out.contains("MODE_CAUSE_PRICE_BAND"), "{out}");
    assert!(out.contains("= deposits - withdrawals (positions proven)"), "{out}");
    assert_eq!(out.matches("proven at height").count(), 6, "{out}");
    assert!(out.contains("commits all 3 shards"), "{out}");
    assert_eq!(out.matches("(global root 0x").count(), 6, "{out}");

    cli_walkthrough(&dir, &bins);

    let status = testnet(&dir, &bins, &["status"]);
    let out = text(&status);
    assert!(status.status.success(), "{out}");
    assert_eq!(out.lines().filter(|l| l.contains("-perp-0")).count(), 3, "{out}");
    assert!(!out.contains("stopped") && !out.contains("unreachable"), "{out}");
    let modes = ["normal", "post-only", "reduce-only", "settlement-only"];
    assert!(out.lines().filter(|l| l.contains("-perp-0")).all(|l| modes.iter().any(|m| l.contains(m))), "{out}");
    // Each shard row carries the coordinator's view of it; the coordinator line its latest epoch.
    assert_eq!(out.lines().filter(|l| l.contains("-perp-0") && l.contains(" | ")).count(), 3, "{out}");
    let coord = out.lines().find(|l| l.starts_with("coordinator ")).unwrap_or_else(|| panic!("{out}"));
    assert!(coord.contains("epoch ") && coord.contains("ms ago") && coord.contains("global root 0x"), "{out}");

    let logs = testnet(&dir, &bins, &["logs", "coordinator", "--tail", "5"]);
    assert!(logs.status.success() && !text(&logs).trim().is_empty(), "{}", text(&logs));

    let down = testnet(&dir, &bins, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(text(&down).matches("stopped ").count(), 4, "{}", text(&down));
    assert!(text(&down).contains("stopped coordinator"), "{}", text(&down));
    let after = text(&testnet(&dir, &bins, &["status"]));
    assert_eq!(after.matches("stopped").count(), 4, "{after}");
    assert!(after.lines().any(|l| l.starts_with("coordinator ") && l.contains("stopped")), "{after}");
}
