//! `shardex --output json` on every command against a live two-shard network (BTC-PERP and ETH-OPTIONS, one
//! validator each, with the coordinator and the relayer): each prints one JSON document whose figures are
//! the exact ones (money as decimal USD strings), and a refused command still fails with its reason.

mod support;

use std::{path::Path, process::Command};

use serde_json::Value;
use support::{bin_dir, testnet, text, Down};

/// The endpoint `up` printed for `name`.
fn endpoint(up: &str, name: &str) -> String {
    up.lines()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(name)).then(|| words.nth(1).map(str::to_owned)).flatten()
        })
        .unwrap_or_else(|| panic!("`up` names no endpoint for {name}: {up}"))
}

/// Runs `shardex --output json --node NODE ARGS…` and parses its stdout.
fn json(bins: &Path, node: &str, args: &[&str]) -> Value {
    let out = Command::new(bins.join("shardex"))
        .args(["--output", "json", "--node", node])
        .args(args)
        .output()
        .expect("run shardex");
    assert!(out.status.success(), "shardex {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("shardex {args:?} printed no JSON ({e}): {}", text(&out)))
}

#[test]
fn every_command_prints_json() {
    let bins = bin_dir();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let up = testnet(&dir, &bins, &["up", "--base-port", "0", "--shards", "BTC-PERP,ETH-OPTIONS", "--sequencers", "1"]);
    let _down = Down(&dir, &bins);
    let out = text(&up);
    assert!(up.status.success(), "{out}");
    let (btc, opt, relayer) =
        (endpoint(&out, "btc-perp-0"), endpoint(&out, "eth-options-0"), endpoint(&out, "relayer"));
    let path = |p: &str| dir.join(p).to_str().expect("utf8").to_owned();
    let (deposit_key, oracle_key, admin_key) =
        (path("keys/deposit.key"), path("keys/oracle.key"), path("keys/admin.key"));
    let genesis = path("btc-perp-0/genesis.toml");

    let key = path("dora.key");
    let dora = json(&bins, &btc, &["keys", "new", "--out", &key]);
    let dora = dora["account"].as_str().expect("account").to_owned();
    assert_eq!(json(&bins, &btc, &["keys", "show", &key])["account"], dora.as_str());

    let status = json(&bins, &btc, &["status"]);
    assert_eq!((status["symbol"].as_str(), status["consensus_engine"].as_str()), (Some("BTC-PERP"), Some("solo")));

    let dep = json(&bins, &btc, &["deposit", "--key", &deposit_key, "--to", &dora, "--amount", "1500.25"]);
    assert_eq!(dep["status"], "included", "{dep}");
    let credit = &dep["events"][0];
    assert_eq!((credit["kind"].as_str(), credit["account"].as_str()), (Some("CollateralChanged"), Some(dora.as_str())));
    let tx_hash = dep["tx_hash"].as_str().expect("hash").to_owned();
    let height = dep["height"].as_u64().expect("height");

    let acct = json(&bins, &btc, &["account", &dora, "--prove", "--genesis", &genesis]);
    assert_eq!(acct["record"]["collateral_usd"], "1500.250000", "{acct}");
    assert_eq!(acct["proof"]["header_certified_by_genesis_validators"], true, "{acct}");
    assert_eq!(json(&bins, &btc, &["account", &dora])["record"]["nonces"], serde_json::json!([]));

    assert_eq!(json(&bins, &btc, &["oracle", "--key", &oracle_key, "--price", "100000"])["status"], "included");
    let order =
        json(&bins, &btc, &["order", "buy", "--key", &key, "--lots", "2", "--price", "99000", "--tif", "post-only"]);
    assert!(order["events"].as_array().is_some_and(|e| e.iter().any(|e| e["kind"] == "OrderPlaced")), "{order}");
    let book = json(&bins, &btc, &["book", "--levels", "3"]);
    assert_eq!(
        (book["bids"][0]["price_usd"].as_str(), book["bids"][0]["lots"].as_u64()),
        (Some("99000.000000"), Some(2))
    );
    let pos = json(&bins, &btc, &["positions", &dora, "--prove"]);
    assert_eq!(
        (pos["orders"][0]["remaining_lots"].as_u64(), pos["collateral_usd"].as_str()),
        (Some(2), Some("1500.250000"))
    );
    assert_eq!(pos["health"]["mark_usd"], "100000.000000", "{pos}");
    let cancel = json(&bins, &btc, &["cancel", "--key", &key, "--all", "--no-wait"]);
    assert_eq!(cancel["status"], "admitted", "{cancel}");

    let tx = json(&bins, &btc, &["tx", &tx_hash]);
    assert_eq!((tx["status"].as_str(), tx["height"].as_u64()), (Some("included"), Some(height)));
    let block = json(&bins, &btc, &["block", &height.to_string()]);
    assert!(
        block["receipts"].as_array().is_some_and(|r| r.iter().any(|r| r["tx_hash"] == tx_hash.as_str())),
        "{block}"
    );
    let ledger = json(&bins, &btc, &["ledger", "--genesis", &genesis]);
    assert_eq!(
        (ledger["conservation_holds"].as_bool(), ledger["deposited_usd"].as_str()),
        (Some(true), Some("1500.250000"))
    );
    let history = json(&bins, &btc, &["history", &dora, "--genesis", &genesis]);
    assert!(history["entries"].as_array().is_some_and(|e| e.len() >= 2), "{history}");
    let mode = json(&bins, &btc, &["mode", "--key", &admin_key, "normal", "--reason", "json"]);
    assert_eq!(mode["status"], "included", "{mode}");

    // The options shard: its (empty) chain and, once it has a spot price, an account's Greeks.
    assert_eq!(json(&bins, &opt, &["oracle", "--key", &oracle_key, "--price", "3000"])["status"], "included");
    let chain = json(&bins, &opt, &["options", "list"]);
    assert_eq!((chain["series_count"].as_u64(), chain["proven"].as_bool()), (Some(0), Some(true)), "{chain}");
    let greeks = json(&bins, &opt, &["greeks", &dora]);
    assert_eq!(
        (greeks["series"].as_array().map(Vec::len), greeks["total"]["delta_units"].as_str()),
        (Some(0), Some("0.000000"))
    );

    // A transfer to the options shard, and its message as the relayer and both shards prove it.
    let transfer = json(&bins, &btc, &["transfer", "--key", &key, "--to-shard", "2", "--amount", "10"]);
    assert_eq!(transfer["amount_usd"], "10.000000", "{transfer}");
    let seq = transfer["message"]["seq"].as_u64().expect("seq").to_string();
    let message = json(&bins, &btc, &["message", "1", "2", &seq, "--bridge", &relayer]);
    assert_eq!(
        (message["proofs_verified"].as_bool(), message["source"]["amount_usd"].as_str()),
        (Some(true), Some("10.000000"))
    );

    // A refusal is still an error: non-zero exit, the reason on stderr, nothing on stdout.
    let over = Command::new(bins.join("shardex"))
        .args(["--output", "json", "--node", &btc, "withdraw", "--key", &key, "--amount", "99999"])
        .output()
        .expect("run shardex");
    assert!(!over.status.success() && over.stdout.is_empty(), "{}", text(&over));
    assert!(String::from_utf8_lossy(&over.stderr).contains("INSUFFICIENT_COLLATERAL"), "{}", text(&over));
}
