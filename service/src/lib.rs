//! Plumbing every shardex server shares (the shard node, the coordinator, the bridge relayer): TOML config
//! files with flag overrides and explicit checks, gRPC serving with health, reflection and `TCP_NODELAY`,
//! refusals as statuses with a machine-readable reason, the address file and signals of a process, and
//! opening sled. No protocol logic lives here.

pub mod config;
pub mod grpc;
pub mod metrics;
pub mod process;
pub mod status;
pub mod storage;
pub mod stream;
