//! Binding and serving: the Coordinator service with message-size limits, reflection and health.

use std::{net::SocketAddr, sync::Arc};

use shardex_proto::{coordinator::v1::coordinator_service_server::CoordinatorServiceServer, FILE_DESCRIPTOR_SET};
use tokio::net::TcpListener;
use tokio_stream::{wrappers::TcpListenerStream, StreamExt};
use tracing::info;

use super::service::CoordinatorRpc;
use crate::runtime::Coordinator;

/// Limits of the RPC surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    /// Largest gRPC message decoded or encoded, bytes.
    pub max_message_bytes: usize,
    /// Concurrent epoch-stream subscribers.
    pub max_subscribers: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self { max_message_bytes: 4 << 20, max_subscribers: 256 }
    }
}

/// Serves the coordinator on `listener` until `shutdown` resolves.
pub async fn serve(
    coord: Arc<Coordinator>,
    limits: RpcLimits,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let service = CoordinatorServiceServer::new(CoordinatorRpc::new(coord, limits))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CoordinatorServiceServer<CoordinatorRpc>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1();
    info!(target: "coordinator::rpc", ?addr, "gRPC serving (shardex.coordinator.v1.CoordinatorService, health, reflection)");
    let mut builder = tonic::transport::Server::builder();
    let router = builder.add_service(service).add_service(health_service);
    let router = match reflection {
        Ok(r) => router.add_service(r),
        Err(e) => {
            tracing::warn!(target: "coordinator::rpc", error = %e, "reflection disabled: descriptor set did not load");
            router
        }
    };
    // As in shard-node: tonic's `tcp_nodelay` does not reach sockets from a caller-provided listener.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(target: "coordinator::rpc", error = %e, "could not set TCP_NODELAY");
            }
        }
        conn
    });
    router.serve_with_incoming_shutdown(incoming, shutdown).await
}
