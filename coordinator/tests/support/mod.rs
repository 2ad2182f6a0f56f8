//! Runs real `shard-node` and `coordinator` processes on 127.0.0.1 ports chosen at run time (each binds
//! port 0 and writes `rpc.addr`), always killed on drop.

#![allow(dead_code)]

pub mod fake_shard;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use shardex_client::{CoordinatorClient, ShardClient};
use shardex_core::{
    genesis::{Authorities, Genesis},
    ChainId, Keypair, ShardId,
};

/// Directory of the workspace binaries. `coordinator` is this package's own; `shard-node` and `shardex`
/// are built beside it with the same profile by a nested `cargo build` (a no-op when they are fresh, and
/// it keeps a `cargo test -p shardex-coordinator` from running stale binaries of the other packages).
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_bins).clone()
}

fn build_bins() -> PathBuf {
    let coordinator = PathBuf::from(env!("CARGO_BIN_EXE_coordinator"));
    let dir = coordinator.parent().expect("bin dir").to_path_buf();
    {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "shardex-shard-node", "-p", "shardex-client", "--bins"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build");
        assert!(status.success(), "building shard-node and shardex failed");
    }
    dir
}

/// Keys of one test shard.
pub struct ShardKeys {
    pub node: Keypair,
    pub deposit: Keypair,
}

impl ShardKeys {
    pub fn new(seed: u8) -> Self {
        Self { node: Keypair::from_seed([seed; 32]), deposit: Keypair::from_seed([seed.wrapping_add(1); 32]) }
    }

    pub fn genesis(&self, chain: u64, shard: u32) -> Genesis {
        let oracle = Keypair::from_seed([0xf0; 32]).account();
        let authorities = Authorities { deposit: self.deposit.account(), oracle, admin: oracle };
        let mut g = Genesis::example(authorities, self.node.account());
        (g.chain_id, g.shard_id) = (ChainId(chain), ShardId(shard));
        g
    }
}

fn wait_addr(child: &mut Child, addr_file: &Path, what: &str, log: &dyn Fn() -> String) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(addr_file) {
            return format!("http://{}", addr.trim());
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}; log:\n{}", log());
        }
        assert!(Instant::now() < deadline, "{what} did not report its address; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One `shard-node` process with its own directory.
pub struct ShardProcess {
    pub dir: PathBuf,
    child: Option<Child>,
    pub endpoint: String,
}

impl ShardProcess {
    pub fn start(bins: &Path, dir: &Path, genesis: &Genesis, key: &Keypair) -> Self {
        std::fs::create_dir_all(dir).expect("create node dir");
        std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).expect("write genesis");
        std::fs::write(dir.join("node.key"), key.secret_hex()).expect("write key");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let mut child = Command::new(bins.join("shard-node"))
            .arg("--node.data-dir")
            .arg(dir.join("data"))
            .arg("--node.genesis")
            .arg(dir.join("genesis.toml"))
            .arg("--node.key-file")
            .arg(dir.join("node.key"))
            .args(["--rpc.addr", "127.0.0.1:0", "--block.interval-ms", "20", "--log.filter", "warn"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn shard-node");
        let d = dir.to_path_buf();
        let endpoint = wait_addr(&mut child, &dir.join("data").join("rpc.addr"), "shard-node", &|| {
            std::fs::read_to_string(d.join("node.log")).unwrap_or_default()
        });
        Self { dir: dir.to_path_buf(), child: Some(child), endpoint }
    }

    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.toml")
    }

    pub async fn client(&self) -> ShardClient {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ShardClient::connect(&self.endpoint).await {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot connect to {}: {e}", self.endpoint),
            }
        }
    }
}

impl Drop for ShardProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One `coordinator` process.
pub struct CoordinatorProcess {
    pub dir: PathBuf,
    bins: PathBuf,
    shards: Vec<(String, PathBuf)>,
    extra: Vec<String>,
    child: Option<Child>,
    pub endpoint: String,
    pub key: Keypair,
}

impl CoordinatorProcess {
    /// Starts a coordinator following `shards` (endpoint, genesis file).
    pub fn start(bins: &Path, dir: &Path, key: Keypair, shards: &[(String, PathBuf)], extra: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("create coordinator dir");
        std::fs::write(dir.join("coordinator.key"), key.secret_hex()).expect("write key");
        let mut c = Self {
            dir: dir.to_path_buf(),
            bins: bins.to_path_buf(),
            shards: shards.to_vec(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            endpoint: String::new(),
            key,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let addr_file = self.dir.join("data").join("rpc.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("coordinator.log")).expect("log");
        let mut cmd = Command::new(self.bins.join("coordinator"));
        cmd.arg("--node.data-dir")
            .arg(self.dir.join("data"))
            .arg("--node.key-file")
            .arg(self.dir.join("coordinator.key"))
            .args(["--rpc.addr", "127.0.0.1:0", "--epoch.interval-ms", "100", "--follow.max-backoff-ms", "500"])
            .args(["--log.filter", "info"]);
        for (endpoint, genesis) in &self.shards {
            cmd.arg("--shard").arg(format!("{endpoint}={}", genesis.display()));
        }
        let mut child = cmd.args(&self.extra).stdout(Stdio::null()).stderr(log).spawn().expect("spawn coordinator");
        let d = self.dir.clone();
        self.endpoint = wait_addr(&mut child, &addr_file, "coordinator", &|| {
            std::fs::read_to_string(d.join("coordinator.log")).unwrap_or_default()
        });
        self.child = Some(child);
    }

    pub async fn client(&self) -> CoordinatorClient {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match CoordinatorClient::connect(&self.endpoint).await {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot connect to {}: {e}; log:\n{}", self.endpoint, self.log()),
            }
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL coordinator");
            child.wait().expect("reap coordinator");
        }
    }

    /// Starts again on the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running coordinator");
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("coordinator.log")).unwrap_or_default()
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` every 20 ms until it returns Some, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
