//! The shardex Rust SDK: connect to a shard node, sign and submit txs with automatic nonces, follow
//! their status, and query records with proofs verified locally — up to a coordinator-signed epoch
//! with [`CoordinatorClient`] and `ShardClient::account_global`.

mod bridge;
mod client;
mod coordinator;
mod error;
mod wallet;

pub use bridge::BridgeClient;
pub use client::{HistoryPage, HistoryPos, ShardClient, DEFAULT_CALL_TIMEOUT};
pub use coordinator::CoordinatorClient;
pub use error::{ClientError, Result};
pub use shardex_core as core;
pub use wallet::Wallet;
