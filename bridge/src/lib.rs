//! shardex relayer (DESIGN.md §7): follows every configured shard and the coordinator, and carries each
//! cross-shard collateral message through its lifecycle — import the epoch that commits it, deliver it on
//! the destination, ack it back on the source, or refund it once its expiry passed — with proofs read from
//! the shards and the coordinator. The chain is the only truth: a restart rebuilds the open messages by
//! rescanning blocks, and several relayers may run at once (the VM refuses duplicates).
//!
//! - pure: [`lifecycle`] (stages and transitions), [`decide`] (the next step of a message), [`tracker`]
//!   (open messages, retries, counters);
//! - adapters: [`follow`] (shard blocks → events), [`epochs`] (coordinator epochs), [`actions`] (txs with
//!   proofs), [`driver`] (the loop), [`store`] (scan cursors), [`rpc`] (the Bridge service);
//! - [`config`]: TOML + `--section.key` flags.

pub mod actions;
pub mod config;
pub mod decide;
pub mod driver;
pub mod epochs;
pub mod error;
pub mod follow;
pub mod lifecycle;
pub mod metrics;
pub mod rpc;
pub mod store;
pub mod tracker;

pub use error::{RelayerError, Result};
