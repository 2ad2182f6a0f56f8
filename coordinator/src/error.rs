//! Coordinator errors.

use shardex_core::ShardId;

/// What stops the coordinator or fails a request.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// sled failed; fatal for the ticker (nothing is reported that is not durable).
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// The database could not be opened (held by another process, unreadable).
    #[error(transparent)]
    Open(#[from] shardex_service::storage::OpenDbError),
    /// Stored bytes do not decode or contradict each other.
    #[error("storage is inconsistent: {0}")]
    Corrupt(String),
    /// The `[[shards]]` list cannot be used: a genesis file unreadable, two chains, a shard with two genesis
    /// files, an endpoint listed twice.
    #[error(transparent)]
    Config(#[from] shardex_service::config::ConfigError),
    /// The configured shards do not form one network.
    #[error("shard {shard}: {message}")]
    Shards {
        /// The shard concerned.
        shard: ShardId,
        /// What is wrong.
        message: String,
    },
}

/// Coordinator result.
pub type Result<T> = std::result::Result<T, CoordinatorError>;
