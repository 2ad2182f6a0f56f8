//! shardex explorer: a live web page of a running network, fed by its gRPC services.
//!
//! It follows every shard's nodes (status, finalized headers, blocks, books), the coordinator's epochs and the
//! relayer's message lifecycles ([`collect`]), keeps what the page shows in one [`view::Overview`], and
//! serves the page and a small JSON API ([`http`]). An account's balances are looked up on demand and
//! marked verified only when their proofs check ([`account`]).

pub mod account;
pub mod collect;
pub mod config;
pub mod http;
pub mod view;

/// Name of the file in `[node] data_dir` holding the bound HTTP address.
pub const ADDR_FILE: &str = "http.addr";
