//! One shard run by a validator set under Malachite, with followers beside it, as real `shard-node`
//! processes on loopback ports chosen at run time.

use shardex_core::Keypair;
use shardex_test_support::free_port;

/// The ports of a set's nodes: node `i` serves gRPC on `rpc[i]` and consensus on `p2p[i]`.
pub struct SetPorts {
    pub rpc: Vec<u16>,
    pub p2p: Vec<u16>,
}

impl SetPorts {
    /// Free ports for `nodes` nodes.
    pub fn free(nodes: usize) -> Self {
        Self { rpc: (0..nodes).map(|_| free_port()).collect(), p2p: (0..nodes).map(|_| free_port()).collect() }
    }

    /// Node `i`'s gRPC endpoint.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.rpc[i])
    }

    /// Node `j` as a consensus peer, `KEY@MULTIADDR@URL`.
    fn peer(&self, keys: &[Keypair], j: usize) -> String {
        format!("{}@/ip4/127.0.0.1/tcp/{}@http://127.0.0.1:{}", keys[j].account(), self.p2p[j], self.rpc[j])
    }

    /// The flags of node `i` (keys in node order): a validator when `i < validators`, else a follower; every
    /// node dials the validators; 50 ms blocks; the engine's own logs at warn.
    pub fn node_args(&self, keys: &[Keypair], validators: usize, i: usize) -> Vec<String> {
        let role = if i < validators { "validator" } else { "follower" };
        let mut args: Vec<String> = [
            "--rpc.addr",
            &format!("127.0.0.1:{}", self.rpc[i]),
            "--block.interval-ms",
            "50",
            "--consensus.engine",
            "malachite",
            "--consensus.role",
            role,
            "--consensus.listen",
            &format!("/ip4/127.0.0.1/tcp/{}", self.p2p[i]),
            "--log.filter",
            "info,arc_malachitebft=warn,libp2p=warn",
        ]
        .map(String::from)
        .to_vec();
        for j in (0..validators).filter(|j| *j != i) {
            args.extend(["--consensus.peer".to_owned(), self.peer(keys, j)]);
        }
        args
    }
}
