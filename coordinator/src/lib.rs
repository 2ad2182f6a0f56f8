//! shardex coordinator (DESIGN.md §6): follows every shard's finalized headers, accepts only those
//! certified by the shard's genesis validator set that extend the last accepted one, and signs one global
//! commitment per epoch over every shard's latest entry; serves epochs, inclusion proofs and a stream.
//!
//! Pure cores: [`follower::accept`] (header acceptance) and [`epoch`] (build + sign). Adapters: [`store`]
//! (sled), [`follower::task`] (gRPC followers), [`runtime`] (epoch ticker), [`rpc`] (tonic server).

pub mod config;
pub mod epoch;
pub mod error;
pub mod follower;
pub mod metrics;
pub mod registry;
pub mod rpc;
pub mod runtime;
pub mod store;

pub use error::{CoordinatorError, Result};
