//! shardex shard node: mempool, state engine, block production and the gRPC server for one market; the
//! market VM it runs is `shardex-vm`.

pub mod chain;
pub mod config;
pub mod consensus;
pub mod mempool;
pub mod metrics;
pub mod rpc;
pub mod runtime;
pub mod sequencer;
pub mod shard;
pub mod state;
pub mod statesync;
