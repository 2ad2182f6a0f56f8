//! A harness that runs real `shard-node` processes on 127.0.0.1 ports chosen at run time and always
//! kills them on drop.

#![allow(dead_code)]

pub mod bridge;
pub mod inproc;
pub mod ledger;
pub mod set;

use std::path::Path;

use shardex_core::{
    genesis::{Authorities, Genesis},
    AccountId, ChainId, Keypair, ShardId,
};
use shardex_test_support::ShardNodeProcess;

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

/// One `shard-node` process of this package's build.
pub struct NodeProcess;

impl NodeProcess {
    /// Writes genesis and key into `dir` and starts the node.
    pub fn start(dir: &Path, genesis: &Genesis, key: &Keypair, extra_args: &[&str]) -> ShardNodeProcess {
        ShardNodeProcess::start(Path::new(env!("CARGO_BIN_EXE_shard-node")), dir, genesis, key, extra_args)
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
