//! SDK errors: node rejections keep their machine-readable reason.

use shardex_core::{global::GlobalError, proof::ProofError, Reason};

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint could not be reached.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Transport message.
        message: String,
    },
    /// The node answered with an error status.
    #[error("node refused ({code:?}{}): {message}", reason.map(|r| format!(", {r}")).unwrap_or_default())]
    Rejected {
        /// gRPC code.
        code: tonic::Code,
        /// Machine-readable reason, when the node gave one.
        reason: Option<Reason>,
        /// The node's message.
        message: String,
    },
    /// A proof the node returned did not verify.
    #[error("proof rejected: {0}")]
    Proof(#[from] ProofError),
    /// A global commitment or a proof against it did not verify.
    #[error("global proof rejected: {0}")]
    Global(#[from] GlobalError),
    /// The node's answer was not what the protocol promises.
    #[error("unexpected answer from node: {0}")]
    Protocol(String),
    /// Waited too long.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, String),
}

impl ClientError {
    /// The rejection reason, if the node gave one.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Self::Rejected { reason, .. } => *reason,
            _ => None,
        }
    }

    /// The gRPC code, for rejections.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        let reason = s
            .metadata()
            .get(shardex_proto::REASON_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Self::Rejected { code: s.code(), reason, message: s.message().to_owned() }
    }
}

/// SDK result.
pub type Result<T> = std::result::Result<T, ClientError>;
