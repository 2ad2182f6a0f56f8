//! The Shard gRPC server: submission, queries with proofs, header and event streams, plus reflection
//! and the standard health service.

mod server;
mod service;
mod status;
mod streams;

pub use server::{serve, RpcLimits};
pub use status::{reject_status, REASON_METADATA_KEY};
