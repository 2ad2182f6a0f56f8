//! The transport of shardex state sync: a libp2p request-response protocol (`/shardex/snapshot/1`) over
//! TCP with noise and yamux, by which a new node asks peers for a snapshot's manifest (the height and its
//! certified block) and then for the state at that height, trie node by trie node in bounded chunks.
//!
//! This crate moves bytes and bounds them; it trusts nothing it receives. The shard node verifies the
//! manifest's certificate against its genesis validators and every chunk against the certified state root
//! before writing anything, and drops a peer whose chunk fails for the next one.

pub mod client;
pub mod server;
pub mod wire;

pub use client::{Client, Peer};
pub use server::{serve, Provider, Server};
pub use wire::{Request, Response, WireNode, WirePath, MAX_CHUNK_NODES};

/// A failure of the transport itself.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The swarm could not be built or could not listen.
    #[error("state sync transport: {0}")]
    Transport(String),
    /// None of the configured peers could be reached.
    #[error("no snapshot peer could be reached (tried {0})")]
    NoPeers(String),
}
