//! A harness that runs real `shard-node` processes on 127.0.0.1 ports chosen at run time and always
//! kills them on drop.

#![allow(dead_code)]

pub mod bridge;
pub mod inproc;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use shardex_client::ShardClient;
use shardex_core::{
    genesis::{Authorities, Genesis},
    AccountId, ChainId, Keypair, ShardId,
};

/// Keys of a test network.
pub struct TestKeys {
    pub node: Keypair,
    pub deposit: Keypair,
    pub oracle: Keypair,
    pub admin: Keypair,
}

impl TestKeys {
    pub fn new(seed: u8) -> Self {
        Self {
            node: Keypair::from_seed([seed; 32]),
            deposit: Keypair::from_seed([seed.wrapping_add(1); 32]),
            oracle: Keypair::from_seed([seed.wrapping_add(2); 32]),
            admin: Keypair::from_seed([seed.wrapping_add(3); 32]),
        }
    }

    pub fn genesis(&self, chain: u64, shard: u32) -> Genesis {
        let authorities =
            Authorities { deposit: self.deposit.account(), oracle: self.oracle.account(), admin: self.admin.account() };
        let mut g = Genesis::example(authorities, self.node.account());
        (g.chain_id, g.shard_id, g.market.nonce_window) = (ChainId(chain), ShardId(shard), 8);
        g
    }
}

/// One `shard-node` process with its own directory.
pub struct NodeProcess {
    dir: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    pub endpoint: String,
}

impl NodeProcess {
    /// Writes genesis and key into `dir` and starts the node.
    pub fn start(dir: &Path, genesis: &Genesis, key: &Keypair, extra_args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("create node dir");
        std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).expect("write genesis");
        std::fs::write(dir.join("node.key"), key.secret_hex()).expect("write key");
        let mut node = Self {
            dir: dir.to_path_buf(),
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            endpoint: String::new(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let addr_file = self.dir.join("data").join("rpc.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("node.log")).expect("open log");
        let child = Command::new(env!("CARGO_BIN_EXE_shard-node"))
            .arg("--node.data-dir")
            .arg(self.dir.join("data"))
            .arg("--node.genesis")
            .arg(self.dir.join("genesis.toml"))
            .arg("--node.key-file")
            .arg(self.dir.join("node.key"))
            .args(["--rpc.addr", "127.0.0.1:0", "--block.interval-ms", "20", "--log.filter", "info"])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn shard-node");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                self.endpoint = format!("http://{}", addr.trim());
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("shard-node exited early with {status}; log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "shard-node did not report its address; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects a client, retrying while the server comes up.
    pub async fn client(&self) -> ShardClient {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match ShardClient::connect(&self.endpoint).await {
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
            child.kill().expect("SIGKILL shard-node");
            child.wait().expect("reap shard-node");
        }
    }

    /// Starts the node again on the same directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running node");
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A trader key; never equal to a `TestKeys` key (their seeds are uniform bytes, these are not).
pub fn account(seed: u8) -> (Keypair, AccountId) {
    let mut bytes = [seed; 32];
    bytes[0] = 0xac;
    bytes[31] = 0xac ^ seed;
    let k = Keypair::from_seed(bytes);
    let a = k.account();
    (k, a)
}
