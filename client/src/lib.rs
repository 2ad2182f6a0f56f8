//! The shardex Rust SDK: connect to a shard node, sign and submit txs with automatic nonces, follow
//! their status, and query records with proofs verified locally.

mod client;
mod error;
mod wallet;

pub use client::{HistoryPage, HistoryPos, ShardClient, DEFAULT_CALL_TIMEOUT};
pub use error::{ClientError, Result};
pub use shardex_core as core;
pub use wallet::Wallet;
