//! Errors of the shard: a `Reject` is the tx's fault and changes nothing; a `ShardError` is the node's.

use shardex_core::{tx::TxError, Reason};

use shardex_vm::ExecError;

/// A tx or request refused with a machine-readable reason; state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Reject {
    /// Machine-readable reason.
    pub reason: Reason,
    /// Human-readable detail.
    pub message: String,
}

impl Reject {
    /// A rejection with `reason` and `message`.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

impl From<TxError> for Reject {
    fn from(e: TxError) -> Self {
        Self::new(e.reason(), e.to_string())
    }
}

impl From<&ExecError> for Reject {
    fn from(e: &ExecError) -> Self {
        Self::new(e.reason(), e.to_string())
    }
}

/// A failure of the node itself (storage, corruption, configuration). Storage write failures are fatal.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The state engine failed.
    #[error("state engine: {0}")]
    State(#[from] crate::state::StateError),
    /// The block log failed.
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// sled failed outside both.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// Execution hit corrupt state or a read failure.
    #[error("execution: {0}")]
    Exec(ExecError),
    /// Stored data and configuration disagree.
    #[error("{0}")]
    Inconsistent(String),
}
