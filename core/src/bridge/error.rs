//! Why a bridge op was refused.

use crate::{block::HeaderError, global::GlobalError, ids::ShardId, reason::Reason};

/// A refused bridge op; each maps to a stable [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// The genesis names no coordinator key.
    #[error("the bridge is disabled: the shard's genesis names no coordinator key")]
    NotEnabled,
    /// The op names a shard this shard's genesis lists no validator set for (`[[peers]]`).
    #[error("shard {peer} is not a bridge peer of shard {shard}: its genesis lists no validator set for shard {peer}")]
    NotPeer {
        /// This shard.
        shard: ShardId,
        /// The shard named.
        peer: ShardId,
    },
    /// The other shard's header is not certified by a quorum of its genesis validator set.
    #[error("the header of shard {peer} is not certified by its genesis validator set ({}): {error}", error.kind())]
    Uncertified {
        /// The other shard.
        peer: ShardId,
        /// Why the certificate was refused.
        error: HeaderError,
    },
    /// A field is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The coordinator signature over the epoch does not verify.
    #[error("epoch: {0}")]
    BadEpoch(GlobalError),
    /// A proof or proven value beyond the protocol limits.
    #[error("{0}")]
    ProofTooLarge(String),
    /// A proof does not verify.
    #[error("{0}")]
    InvalidProof(String),
    /// The epoch is not imported or has left the window.
    #[error("epoch {0} is not an imported epoch inside this shard's window")]
    UnknownEpoch(u64),
    /// Already done.
    #[error("{0}")]
    Duplicate(String),
    /// The message is unknown or closed the other way.
    #[error("{0}")]
    MessageState(String),
    /// The message is for another shard, or from this one.
    #[error("{0}")]
    WrongShard(String),
    /// Expiry passed.
    #[error("{0}")]
    Expired(String),
    /// Expiry not yet passed on the destination.
    #[error("{0}")]
    NotExpired(String),
}

impl BridgeError {
    /// The machine-readable reason.
    pub fn reason(&self) -> Reason {
        match self {
            Self::NotEnabled | Self::NotPeer { .. } => Reason::OpNotEnabled,
            Self::Uncertified { .. } => Reason::InvalidProof,
            Self::Invalid(_) => Reason::InvalidOp,
            Self::BadEpoch(GlobalError::Signature(_) | GlobalError::UntrustedCoordinator(_)) => Reason::BadSignature,
            Self::BadEpoch(GlobalError::WrongChain { .. }) => Reason::WrongChain,
            Self::BadEpoch(_) => Reason::Malformed,
            Self::ProofTooLarge(_) => Reason::ProofTooLarge,
            Self::InvalidProof(_) => Reason::InvalidProof,
            Self::UnknownEpoch(_) => Reason::UnknownEpoch,
            Self::Duplicate(_) => Reason::Duplicate,
            Self::MessageState(_) => Reason::MessageState,
            Self::WrongShard(_) => Reason::WrongShard,
            Self::Expired(_) => Reason::Expired,
            Self::NotExpired(_) => Reason::NotExpired,
        }
    }
}
