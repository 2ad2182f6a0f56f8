//! shardex core: the domain types every crate and client shares, with no IO.
//!
//! Ids and money ([`ids`], [`money`]), keys and domain-separated signatures ([`keys`], [`signing`]),
//! windowed nonces ([`nonce`]), hashing ([`hash`]), state keys ([`state_key`]), transaction decoding
//! and verification ([`tx`]), validator sets and consensus votes ([`validators`], [`vote`]), block headers
//! and commit certificates ([`block`]), genesis ([`genesis`]), MPT proof
//! verification a client can run without a node ([`proof`]), the global commitment ([`global`]), the
//! cross-shard bridge's keys and proof checks ([`bridge`]) and per-shard conservation ([`ledger`]).

pub mod block;
pub mod bridge;
pub mod genesis;
pub mod global;
pub mod hash;
pub mod history;
pub mod ids;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod nonce;
pub mod option;
pub mod order;
pub mod perp;
pub mod proof;
pub mod reason;
pub mod signing;
pub mod state_key;
pub mod tx;
pub mod validators;
pub mod vote;

pub use alloy_primitives::{Bytes, B256};
pub use ids::{AccountId, ChainId, ShardId};
pub use keys::Keypair;
pub use money::{Lots, Price, Usd};
pub use reason::Reason;
pub use shardex_proto::coordinator::v1 as coordpb;
pub use shardex_proto::shard::v1 as pb;
