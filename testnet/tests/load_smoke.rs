//! `testnet load` end to end on a 1-shard testnet of real processes on free ports: it must exit 0 and
//! report a non-zero accepted rate and latency percentiles. The network is always stopped.

mod support;

use support::{bin_dir, testnet, text, Down};

/// The number after `label` on `line`, e.g. `number_after("accepted 198.2 orders/s", "accepted ")`.
fn number_after(line: &str, label: &str) -> f64 {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.parse().unwrap_or_else(|e| panic!("{label:?} in {line:?}: {e}"))
}

#[test]
fn load_reports_rate_and_latency() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let bins = bin_dir();
    let _down = Down(&dir, &bins);

    let up = testnet(&dir, &bins, &["up", "--base-port", "0", "--shards", "BTC-PERP"]);
    assert!(up.status.success(), "up failed:\n{}", text(&up));

    let load = testnet(&dir, &bins, &["load", "--tps", "200", "--duration", "3"]);
    let out = text(&load);
    assert!(load.status.success(), "load failed:\n{out}");
    assert!(out.lines().filter(|l| l.starts_with('[')).count() >= 2, "no progress lines:\n{out}");

    let shard = out.lines().find(|l| l.starts_with("btc-perp-0: accepted")).unwrap_or_else(|| panic!("{out}"));
    let rate = number_after(shard, "accepted ");
    assert!(rate > 0.0, "no accepted rate:\n{out}");
    let (p50, p90, p99) = (number_after(shard, "p50 "), number_after(shard, "p90 "), number_after(shard, "p99 "));
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "latency percentiles out of order:\n{out}");
    assert!(out.contains("client signing:"), "{out}");

    let down = testnet(&dir, &bins, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
}
