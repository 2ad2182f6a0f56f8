//! Errors as gRPC statuses: a code per DESIGN.md §8 and the machine-readable reason in metadata.

use shardex_core::Reason;
use tonic::{metadata::MetadataMap, Code, Status};

use crate::error::CoordinatorError;

/// Metadata key carrying the reason (e.g. `NOT_FOUND`).
pub const REASON_METADATA_KEY: &str = "shardex-reason";

/// A status with `reason` in metadata and in the message prefix.
pub fn reject(reason: Reason, message: impl std::fmt::Display) -> Status {
    let code = match reason {
        Reason::NotFound => Code::NotFound,
        Reason::Unavailable => Code::Unavailable,
        Reason::BatchTooLarge | Reason::Malformed => Code::InvalidArgument,
        _ => Code::FailedPrecondition,
    };
    let mut md = MetadataMap::new();
    if let Ok(v) = reason.as_str().parse() {
        md.insert(REASON_METADATA_KEY, v);
    }
    Status::with_metadata(code, format!("{reason}: {message}"), md)
}

/// A storage failure: logged, reported as unavailable without internals.
pub fn internal(e: &CoordinatorError) -> Status {
    tracing::error!(target: "coordinator::rpc", error = %e, "request failed on a storage error");
    reject(Reason::Unavailable, "the coordinator hit a storage error; see its log")
}
