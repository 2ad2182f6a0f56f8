//! Relayer errors.

use shardex_core::ShardId;

/// What stops the relayer or one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// A genesis file could not be read.
    #[error(transparent)]
    Genesis(#[from] shardex_core::genesis::GenesisFileError),
    /// The shard list is inconsistent.
    #[error("shard {shard}: {message}")]
    Shards {
        /// The shard.
        shard: ShardId,
        /// Why.
        message: String,
    },
    /// The relayer's own store failed.
    #[error("relayer store: {0}")]
    Store(String),
    /// A shard or the coordinator answered with an error or not at all.
    #[error("{what}: {source}")]
    Remote {
        /// Which call.
        what: String,
        /// The client error.
        source: shardex_client::ClientError,
    },
    /// An answer did not have the shape the protocol promises.
    #[error("{0}")]
    Protocol(String),
}

impl RelayerError {
    /// A machine-readable reason for counters: the node's reason when it gave one.
    pub fn reason(&self) -> String {
        match self {
            Self::Remote { source, .. } => match (source.reason(), source.code()) {
                (Some(r), _) => r.as_str().to_owned(),
                (None, Some(code)) => format!("{code:?}").to_uppercase(),
                (None, None) => "TRANSPORT".into(),
            },
            Self::Protocol(_) => "PROTOCOL".into(),
            Self::Store(_) => "STORE".into(),
            Self::Genesis { .. } | Self::Shards { .. } => "CONFIG".into(),
        }
    }

    /// The node's reason, when it refused.
    pub fn node_reason(&self) -> Option<shardex_core::Reason> {
        match self {
            Self::Remote { source, .. } => source.reason(),
            _ => None,
        }
    }
}

/// Relayer result.
pub type Result<T> = std::result::Result<T, RelayerError>;

/// Wraps a client error with the call it came from.
pub fn remote(what: impl Into<String>) -> impl FnOnce(shardex_client::ClientError) -> RelayerError {
    let what = what.into();
    move |source| RelayerError::Remote { what, source }
}
