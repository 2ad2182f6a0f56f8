//! Running the `testnet` binary against the workspace's own binaries, with the network always stopped.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Directory of the binaries under test: `shard-node`, `coordinator`, `relayer` and `shardex` are beside
/// `testnet`, fresh (see `shardex_test_support::workspace_bins`).
pub fn bin_dir() -> PathBuf {
    shardex_test_support::workspace_bins(Path::new(env!("CARGO_BIN_EXE_testnet")))
}

/// Runs `testnet --dir DIR ARGS…` with the binaries of `bins`.
pub fn testnet(dir: &Path, bins: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testnet"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("SHARDEX_BIN_DIR", bins)
        .output()
        .expect("run testnet")
}

/// Stops the network in `.0` (with the binaries of `.1`) when dropped, even on a failed assertion.
pub struct Down<'a>(pub &'a Path, pub &'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = testnet(self.0, self.1, &["down"]);
    }
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every server's metrics address from the `Prometheus metrics` line `testnet up` or `status` printed:
/// (name, host:port).
pub fn metrics_addrs(output: &str) -> Vec<(String, String)> {
    let line = output.lines().find(|l| l.starts_with("Prometheus metrics")).unwrap_or_else(|| panic!("{output}"));
    let list = line.split_once("): ").map_or("", |(_, list)| list);
    list.split(", ")
        .filter_map(|entry| entry.split_once(' ').map(|(name, addr)| (name.to_owned(), addr.to_owned())))
        .collect()
}

#[allow(unused_imports)]
pub use shardex_test_support::{metric_sample as sample, scrape_metrics as scrape};
