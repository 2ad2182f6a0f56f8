//! The explorer that `testnet up` starts, seen through a real browser: headless Chromium (installed by
//! `scripts/browser-setup.sh`, which `scripts/test.sh` runs first) drives the page while a load with bridge
//! transfers runs, and checks that it shows every shard, updates by itself, lists trades, epochs and bridge
//! messages, and verifies a clicked account on every shard. Its JSON API refuses bad input with clear errors.
//! `testnet top --once` prints the same overview as one terminal screen.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use support::{bin_dir, testnet, text, Down};

/// Kills the background load when dropped, even on a failed assertion.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../explorer/browser")
}

#[test]
fn the_explorer_page_and_top_show_the_network_live() {
    let chromium = std::env::var("SHARDEX_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && browser_dir().join("node_modules/playwright-core").exists(),
        "the browser test needs Chromium ({chromium}) and playwright-core: run scripts/browser-setup.sh"
    );
    let bins = bin_dir();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    let up = testnet(
        &dir,
        &bins,
        &["up", "--base-port", "0", "--shards", "BTC-PERP,ETH-OPTIONS", "--sequencers", "4", "--followers", "0"],
    );
    let _down = Down(&dir, &bins);
    let out = text(&up);
    assert!(up.status.success(), "{out}");
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("explorer: open ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("`up` names no explorer page: {out}"))
        .trim_end_matches('/')
        .to_owned();

    let status = text(&testnet(&dir, &bins, &["status"]));
    assert!(status.lines().any(|l| l.starts_with("explorer") && l.contains("showing 2 shards")), "{status}");

    // Bad input gets a clear error and a fitting status, never a page.
    let (code, body) = shardex_test_support::http_get(&url, "/api/account/not-hex").expect("GET");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not an account id"), "{body}");
    let (code, body) = shardex_test_support::http_get(&url, "/api/nothing").expect("GET");
    assert_eq!(code, 404, "{body}");

    // Orders and bridge transfers while the browser watches.
    let load = Command::new(env!("CARGO_BIN_EXE_testnet"))
        .arg("--dir")
        .arg(&dir)
        .args(["load", "--tps", "20", "--duration", "40", "--bridge-ratio", "0.2"])
        .env("SHARDEX_BIN_DIR", &bins)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start load");
    let _load = Kill(load);

    let shot = std::env::var_os("SHARDEX_EXPLORER_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer.png"));
    let _ = std::fs::remove_file(&shot);
    let check = Command::new("node")
        .arg(browser_dir().join("check.mjs"))
        .arg(&url)
        .arg("2")
        .arg(&shot)
        .arg("--bridge")
        .env("SHARDEX_CHROMIUM", &chromium)
        .output()
        .expect("run node (Node.js is needed for the browser test)");
    let seen = text(&check);
    assert!(check.status.success(), "the browser check failed (screenshot {}): {seen}", shot.display());
    let report: serde_json::Value = serde_json::from_str(seen.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the browser check printed no report ({e}): {seen}"));
    assert_eq!(report["shards"], 2, "{report}");
    assert_eq!(report["verified"], 2, "the clicked account is verified on both shards: {report}");
    assert!(report["trades"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(report["epochs"].as_u64().is_some_and(|n| n > 0), "{report}");
    assert!(report["messages"].as_u64().is_some_and(|n| n > 0), "{report}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} is not a screenshot", shot.display());

    // The overview names every validator of both shards, and one of each set proposes.
    let (code, body) = shardex_test_support::http_get(&url, "/api/overview").expect("GET");
    assert_eq!(code, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    for shard in overview["shards"].as_array().expect("shards") {
        let nodes = shard["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 4, "{shard}");
        assert!(nodes.iter().any(|n| n["role"] == "proposer"), "{shard}");
        assert!(shard["head"]["signatures"].as_u64().is_some_and(|s| s >= 3), "a quorum of 4 certifies: {shard}");
    }
    let logs = text(&testnet(&dir, &bins, &["logs", "explorer"]));
    assert!(logs.contains("explorer serving"), "{logs}");

    // `testnet top` draws the same overview in the terminal; `--once` prints one screen.
    let top = testnet(&dir, &bins, &["top", "--once", "--width", "160", "--height", "40"]);
    let screen = text(&top);
    assert!(top.status.success(), "{screen}");
    for want in ["BTC-PERP", "ETH-OPTIONS", "proposer", "validator", "coordinator epochs", "signed ✓", "bridge ·"] {
        assert!(screen.contains(want), "no {want:?} on the screen:\n{screen}");
    }
    assert_eq!(screen.lines().filter(|l| l.contains("127.0.0.1:")).count(), 8, "every node has a row:\n{screen}");
    let top = testnet(&dir, &bins, &["top"]);
    assert!(!top.status.success() && text(&top).contains("needs a terminal"), "{}", text(&top));
}
