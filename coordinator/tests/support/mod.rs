//! Runs real `shard-node` and `coordinator` processes on 127.0.0.1 ports chosen at run time (each binds
//! port 0 and writes `rpc.addr`), always killed on drop.

#![allow(dead_code)]

pub mod fake_shard;

use std::path::{Path, PathBuf};

use shardex_client::CoordinatorClient;
use shardex_core::{
    genesis::{Authorities, Genesis},
    validators::ValidatorSet,
    ChainId, Keypair, ShardId,
};
use shardex_test_support::{start_coordinator, ServerProcess, ShardNodeProcess};

/// Directory of the workspace binaries. `coordinator` is this package's own; `shard-node` and `shardex`
/// are beside it, fresh (see `shardex_test_support::workspace_bins`).
pub fn bin_dir() -> PathBuf {
    shardex_test_support::workspace_bins(Path::new(env!("CARGO_BIN_EXE_coordinator")))
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

    /// The shard's validator set: its one node.
    pub fn validators(&self) -> ValidatorSet {
        ValidatorSet::equal(&[self.node.account()]).expect("valid key")
    }
}

/// One `shard-node` process (test settings, `warn` logs).
pub struct ShardProcess;

impl ShardProcess {
    pub fn start(bins: &Path, dir: &Path, genesis: &Genesis, key: &Keypair) -> ShardNodeProcess {
        ShardNodeProcess::start(&bins.join("shard-node"), dir, genesis, key, &["--log.filter", "warn"])
    }
}

/// One `coordinator` process.
pub struct CoordinatorProcess {
    pub dir: PathBuf,
    pub key: Keypair,
    server: ServerProcess,
}

impl CoordinatorProcess {
    /// Starts a coordinator following `shards` (endpoint, genesis file).
    pub fn start(bins: &Path, dir: &Path, key: Keypair, shards: &[(String, PathBuf)], extra: &[&str]) -> Self {
        let settings = ["--follow.max-backoff-ms", "500", "--log.filter", "info"];
        let server = start_coordinator(&bins.join("coordinator"), dir, &key, shards, &[&settings[..], extra].concat());
        Self { dir: dir.to_path_buf(), key, server }
    }

    pub async fn client(&self) -> CoordinatorClient {
        self.server.connect(|endpoint| async move { CoordinatorClient::connect(&endpoint).await }).await
    }
}

macro_rules! deref_to_server {
    ($($t:ty),*) => {$(
        impl std::ops::Deref for $t {
            type Target = ServerProcess;
            fn deref(&self) -> &ServerProcess {
                &self.server
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut ServerProcess {
                &mut self.server
            }
        }
    )*};
}
deref_to_server!(CoordinatorProcess);

#[allow(unused_imports)]
pub use shardex_test_support::wait_for;
