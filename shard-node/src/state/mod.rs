//! State engine: a versioned Ethereum Merkle-Patricia trie stored in sled (DESIGN.md §4).
//!
//! Nodes are stored by position and version (Jellyfish-style) with standard MPT encoding, so a
//! version's root costs in proportion to the keys it touches, proofs are plain Ethereum proofs,
//! and versions older than the retention window are pruned through a stale-node index.

mod cache;
mod commit;
mod engine;
mod error;
pub mod keys;
mod node;
mod proof;
mod prune;
mod record;
mod resident;
mod snapshot;
mod store;
mod update;
mod wide;

pub use engine::{StateEngine, DEFAULT_RETENTION_VERSIONS, MAX_PINNED_VERSIONS};
pub use error::{Result, StateError};
pub use proof::StateProof;
pub use prune::{PruneStats, PRUNE_MAX_NODES_PER_CALL};
pub use snapshot::{SnapshotError, SnapshotImport, SnapshotNode, MAX_SNAPSHOT_CHUNK_NODES};
