//! `testnet load` end to end on testnets of real processes on free ports: on one shard it must exit 0 and
//! report a non-zero accepted rate and latency percentiles (and refuse `--bridge-ratio`); on two shards with
//! `--bridge-ratio` it must also see transfers credited and report lock-to-credit latency. The networks are
//! always stopped.

mod support;

use support::{bin_dir, metrics_addrs, sample, scrape, testnet, text, Down};

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
    assert!(text(&up).contains("bridge off: the network has one shard"), "{}", text(&up));
    let bridged = testnet(&dir, &bins, &["load", "--duration", "1", "--bridge-ratio", "0.5"]);
    assert!(!bridged.status.success(), "{}", text(&bridged));
    assert!(text(&bridged).contains("--bridge-ratio needs at least two shards"), "{}", text(&bridged));

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
    // The node's own block work over the run: blocks written, and admission's reads.
    let work = out.lines().find(|l| l.contains("node the load talks to:")).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(work, "talks to: ") > 0.0 && number_after(work, " each; ") > 0.0, "no blocks:\n{out}");
    assert!(number_after(work, "writing ") > 0.0, "no share of the time writing:\n{out}");
    let cache = work.split("head cache answered ").nth(1).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(cache, "% of ") > 0.0, "no admission reads counted:\n{out}");

    // Every order signed before the clock starts.
    let load = testnet(&dir, &bins, &["load", "--tps", "200", "--duration", "2", "--presign"]);
    let out = text(&load);
    assert!(load.status.success(), "load --presign failed:\n{out}");
    assert!(out.contains("signed all 400 orders ahead"), "{out}");
    assert!(out.contains("signed before the clock started"), "{out}");

    // A wider state and more takers than one funding batch; a second run funds only the missing accounts.
    let load =
        testnet(&dir, &bins, &["load", "--tps", "200", "--duration", "1", "--prefill", "2500", "--accounts", "1500"]);
    let out = text(&load);
    assert!(load.status.success(), "load --prefill failed:\n{out}");
    assert!(out.contains("holds 2500 prefill accounts (2500 funded now"), "{out}");
    assert!(out.contains("funded a market maker and 1500 takers"), "{out}");
    let load = testnet(&dir, &bins, &["load", "--tps", "200", "--duration", "1", "--prefill", "3000"]);
    let out = text(&load);
    assert!(load.status.success(), "second load --prefill failed:\n{out}");
    assert!(
        out.contains("holds 3000 prefill accounts (500 funded now") && out.contains("2500 from earlier runs"),
        "{out}"
    );

    // The node's Prometheus metrics, where `up` said, count the load's orders and blocks.
    let servers = metrics_addrs(&text(&up));
    let (_, addr) = servers.iter().find(|(name, _)| name == "btc-perp-0").unwrap_or_else(|| panic!("{servers:?}"));
    let page = scrape(addr);
    assert!(sample(&page, "shardex_txs_admitted_total") > Some(0.0), "{page}");
    assert!(sample(&page, "shardex_block_write_seconds_count") > Some(0.0), "{page}");

    let down = testnet(&dir, &bins, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
}

/// The percentiles after `label` on `line`, e.g. `lock-to-credit p50 12.0 ms p90 … p99 …`.
fn percentiles(line: &str, label: &str) -> (f64, f64, f64) {
    let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    (number_after(rest, "p50 "), number_after(rest, "p90 "), number_after(rest, "p99 "))
}

#[test]
fn load_with_bridge_transfers_reports_lock_to_credit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let bins = bin_dir();
    let _down = Down(&dir, &bins);

    let args = ["up", "--base-port", "0", "--block-interval-ms", "20", "--shards", "BTC-PERP,ETH-PERP"];
    let up = testnet(&dir, &bins, &args);
    assert!(up.status.success(), "up failed:\n{}", text(&up));

    let args = ["load", "--tps", "100", "--duration", "3", "--accounts", "4", "--bridge-ratio", "0.2"];
    let load = testnet(&dir, &bins, &args);
    let out = text(&load);
    assert!(load.status.success(), "load failed:\n{out}");
    assert!(out.contains("20% of them transfers"), "{out}");
    let transfers = out.lines().find(|l| l.starts_with("transfers: accepted")).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(transfers, "credited ") > 0.0, "no transfer credited:\n{out}");
    let latency = out.lines().find(|l| l.contains("lock-to-credit p50")).unwrap_or_else(|| panic!("{out}"));
    let (p50, p90, p99) = percentiles(latency, "lock-to-credit ");
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "lock-to-credit percentiles out of order:\n{out}");
    let relayer = out.lines().find(|l| l.starts_with("relayer: delivered ")).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(relayer, "relayer: delivered ") > 0.0, "{out}");
    // Orders still ran beside the transfers.
    let shard = out.lines().find(|l| l.starts_with("btc-perp-0: accepted")).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(shard, "accepted ") > 0.0, "{out}");

    let down = testnet(&dir, &bins, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
}

/// Every server takes each setting from an environment variable, which a flag overrides; `--print-config`
/// shows the result; a misspelt variable of a server's prefix is refused, naming it. (`testnet` also prints its
/// shell completion script here.)
#[test]
fn servers_take_env_vars_and_print_their_config() {
    let bins = bin_dir();
    let run = |bin: &str, env: &[(&str, &str)], args: &[&str]| {
        let out = std::process::Command::new(bins.join(bin))
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {bin}: {e}"));
        (out.status.success(), text(&out))
    };
    let key = "11".repeat(32);
    let relayer_args = ["--shard", "http://a:1=a.toml", "--shard", "http://b:1=b.toml", "--coordinator.key", &key];
    let cases: [(&str, &str, &str, Vec<&str>); 3] = [
        ("shard-node", "SHARDEX_NODE_BLOCK_INTERVAL_MS", "[block]", vec![]),
        ("coordinator", "SHARDEX_COORDINATOR_EPOCH_INTERVAL_MS", "[epoch]", vec!["--shard", "http://a:1=a.toml"]),
        ("relayer", "SHARDEX_RELAYER_RELAY_POLL_INTERVAL_MS", "[relay]", relayer_args.to_vec()),
    ];
    for (bin, var, section, args) in cases {
        let prefix = var.split('_').take(2).collect::<Vec<_>>().join("_");
        let metrics_var = format!("{prefix}_METRICS_ADDR");
        let env = [(var, "345"), (metrics_var.as_str(), "127.0.0.1:9")];
        let mut with_flag = args.clone();
        with_flag.extend(["--print-config", "--metrics.addr", "127.0.0.1:0"]);
        let (ok, out) = run(bin, &env, &with_flag);
        assert!(ok, "{bin}: {out}");
        let block = out.split(section).nth(1).unwrap_or_else(|| panic!("{bin}: no {section}:\n{out}"));
        assert!(block.lines().take_while(|l| !l.starts_with('[')).any(|l| l.ends_with("= 345")), "{bin}: {out}");
        let metrics = out.split("[metrics]").nth(1).unwrap_or_else(|| panic!("{bin}: {out}"));
        assert!(metrics.contains("addr = \"127.0.0.1:0\""), "{bin}: the flag must win over the variable:\n{out}");

        let typo = format!("{prefix}_METRICS_ADRR");
        let mut print = args.clone();
        print.push("--print-config");
        let (ok, out) = run(bin, &[(typo.as_str(), "x")], &print);
        assert!(!ok && out.contains(&format!("unknown environment variable {typo}")), "{bin}: {out}");
    }
    // The explorer serves no metrics; its page address plays the flag-over-variable part.
    let args = ["--shard", "http://a:1=a.toml", "--print-config", "--http.addr", "127.0.0.1:0"];
    let env = [("SHARDEX_EXPLORER_VIEW_POLL_MS", "345"), ("SHARDEX_EXPLORER_HTTP_ADDR", "127.0.0.1:9")];
    let (ok, out) = run("explorer", &env, &args);
    assert!(ok && out.contains("poll_ms = 345") && out.contains("addr = \"127.0.0.1:0\""), "explorer: {out}");
    let (ok, out) = run("testnet", &[], &["completions", "zsh"]);
    assert!(ok && out.contains("#compdef testnet") && out.contains("chaos") && out.contains("top"), "{out}");
    let (ok, out) = run("explorer", &[("SHARDEX_EXPLORER_VIEW_POL_MS", "1")], &args);
    assert!(!ok && out.contains("unknown environment variable SHARDEX_EXPLORER_VIEW_POL_MS"), "explorer: {out}");
}
