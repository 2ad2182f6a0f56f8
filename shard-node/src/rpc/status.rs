//! Rejections as gRPC statuses: a code per DESIGN.md §8 and the machine-readable reason in metadata.

use shardex_core::Reason;
use tonic::Status;

use crate::shard::{Reject, ShardError};

pub use shardex_proto::REASON_METADATA_KEY;

/// A status for a rejection, with the reason in metadata and in the message prefix.
pub fn reject_status(reject: &Reject) -> Status {
    shardex_service::status::refuse(reject.reason, &reject.message)
}

/// A node failure: logged by the caller, reported as unavailable without internals.
pub fn internal_status(e: &ShardError) -> Status {
    tracing::error!(target: "shard::rpc", error = %e, "request failed on a node error");
    reject_status(&Reject::new(Reason::Unavailable, "the node hit a storage error; see its log"))
}
