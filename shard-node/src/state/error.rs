//! Errors of the state engine.

use alloy_primitives::{Bytes, B256};

/// Result type of the state engine.
pub type Result<T> = std::result::Result<T, StateError>;

/// Everything that can go wrong in the state engine.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The underlying sled store failed.
    #[error("state storage error: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes do not decode or contradict each other.
    #[error("corrupt state storage: {what} (key {key})")]
    Corrupt {
        /// What was wrong.
        what: &'static str,
        /// The sled key (or state key) involved.
        key: Bytes,
    },
    /// The version is older than the retention window and its trie nodes are gone.
    #[error("state version {version} is pruned (oldest retained version is {oldest})")]
    VersionPruned {
        /// Requested version.
        version: u64,
        /// Oldest version still provable.
        oldest: u64,
    },
    /// The version was never committed.
    #[error("state version {version} not found (latest is {latest:?})")]
    VersionNotFound {
        /// Requested version.
        version: u64,
        /// Latest committed version, if any.
        latest: Option<u64>,
    },
    /// `stage` was called with a version that does not follow the latest one.
    #[error("non-sequential state version: expected {expected}, got {got}")]
    NonSequentialVersion {
        /// The only version that may be staged next.
        expected: u64,
        /// The version that was passed.
        got: u64,
    },
    /// Values must be non-empty: an empty value is indistinguishable from a deletion in the MPT.
    #[error("empty value for state key {key}")]
    EmptyValue {
        /// The key whose value was empty.
        key: B256,
    },
}

impl StateError {
    /// Builds a [`StateError::Corrupt`] for the given sled key.
    pub(crate) fn corrupt(what: &'static str, key: impl AsRef<[u8]>) -> Self {
        Self::Corrupt { what, key: Bytes::copy_from_slice(key.as_ref()) }
    }
}
