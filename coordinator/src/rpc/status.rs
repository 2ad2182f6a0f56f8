//! Errors as gRPC statuses: a code per DESIGN.md §8 and the machine-readable reason in metadata.

use shardex_core::Reason;
use tonic::Status;

use crate::error::CoordinatorError;

pub use shardex_proto::REASON_METADATA_KEY;

/// A status with `reason` in metadata and in the message prefix.
pub fn reject(reason: Reason, message: impl std::fmt::Display) -> Status {
    shardex_service::status::refuse(reason, message)
}

/// A storage failure: logged, reported as unavailable without internals.
pub fn internal(e: &CoordinatorError) -> Status {
    tracing::error!(target: "coordinator::rpc", error = %e, "request failed on a storage error");
    reject(Reason::Unavailable, "the coordinator hit a storage error; see its log")
}
