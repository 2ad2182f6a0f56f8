//! The Coordinator gRPC server: `shardex.coordinator.v1.CoordinatorService`, reflection and health.

mod server;
mod service;
mod status;
mod streams;

pub use server::{serve, RpcLimits};
pub use service::CoordinatorRpc;
pub use status::REASON_METADATA_KEY;
