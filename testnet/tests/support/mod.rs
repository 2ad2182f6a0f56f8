//! Running the `testnet` binary against the workspace's own binaries, with the network always stopped.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// Directory of the binaries under test. `shard-node`, `coordinator`, `relayer` and `shardex` are built
/// beside `testnet` with the same profile by a nested `cargo build` (a no-op when they are fresh; it keeps a
/// `cargo test -p shardex-testnet` from running missing or stale binaries of the other packages).
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_bins).clone()
}

fn build_bins() -> PathBuf {
    let testnet = PathBuf::from(env!("CARGO_BIN_EXE_testnet"));
    let dir = testnet.parent().expect("bin dir").to_path_buf();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--bins"]);
    for package in ["shardex-shard-node", "shardex-coordinator", "shardex-bridge", "shardex-client"] {
        cmd.args(["-p", package]);
    }
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cargo build");
    assert!(status.success(), "building shard-node, coordinator, relayer and shardex failed");
    dir
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
