//! Rejections as gRPC statuses: a code per DESIGN.md §8 and the machine-readable reason in metadata.

use shardex_core::Reason;
use tonic::{metadata::MetadataMap, Code, Status};

use crate::shard::{Reject, ShardError};

/// Metadata key carrying the reason (e.g. `NONCE_USED`).
pub const REASON_METADATA_KEY: &str = "shardex-reason";

/// The gRPC code for a reason.
pub fn code_of(reason: Reason) -> Code {
    match reason {
        Reason::Malformed
        | Reason::TxTooLarge
        | Reason::WrongChain
        | Reason::WrongShard
        | Reason::BadSignature
        | Reason::InvalidOp
        | Reason::BatchTooLarge
        | Reason::InvalidProof
        | Reason::ProofTooLarge => Code::InvalidArgument,
        Reason::Unauthorized => Code::PermissionDenied,
        Reason::NonceUsed | Reason::DuplicateTx | Reason::Duplicate => Code::AlreadyExists,
        Reason::InsufficientCollateral
        | Reason::GasLimit
        | Reason::OpNotEnabled
        | Reason::InsufficientMargin
        | Reason::StalePrice
        | Reason::MarketMode
        | Reason::WouldCross
        | Reason::NotLiquidatable
        | Reason::UnknownEpoch
        | Reason::MessageState
        | Reason::Expired
        | Reason::NotExpired => Code::FailedPrecondition,
        Reason::Overflow => Code::OutOfRange,
        Reason::MempoolFull => Code::ResourceExhausted,
        Reason::NotFound => Code::NotFound,
        Reason::Unavailable | Reason::NoLeader => Code::Unavailable,
    }
}

/// A status for a rejection, with the reason in metadata and in the message prefix.
pub fn reject_status(reject: &Reject) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = reject.reason.as_str().parse() {
        md.insert(REASON_METADATA_KEY, v);
    }
    Status::with_metadata(code_of(reject.reason), format!("{}: {}", reject.reason, reject.message), md)
}

/// A node failure: logged by the caller, reported as unavailable without internals.
pub fn internal_status(e: &ShardError) -> Status {
    tracing::error!(target: "shard::rpc", error = %e, "request failed on a node error");
    reject_status(&Reject::new(Reason::Unavailable, "the node hit a storage error; see its log"))
}
