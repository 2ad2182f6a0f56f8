//! Binding and serving: the Shard service with message-size limits, reflection and health.

use std::{net::SocketAddr, sync::Arc};

use shardex_proto::{shard::v1::shard_service_server::ShardServiceServer, FILE_DESCRIPTOR_SET};
use tokio::net::TcpListener;
use tokio_stream::{wrappers::TcpListenerStream, StreamExt};
use tracing::info;

use super::service::ShardRpc;
use crate::runtime::NodeHandle;

/// Limits of the RPC surface; every one explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    /// Largest gRPC message decoded or encoded, bytes.
    pub max_message_bytes: usize,
    /// Largest `SubmitBatch`, txs.
    pub max_batch_txs: usize,
    /// Most txs accepted on one `SubmitStream`.
    pub max_stream_txs: usize,
    /// Concurrent stream subscribers (headers + events).
    pub max_subscribers: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self { max_message_bytes: 4 << 20, max_batch_txs: 1024, max_stream_txs: 100_000, max_subscribers: 256 }
    }
}

/// Serves the node on `listener` until `shutdown` resolves.
pub async fn serve(
    node: Arc<NodeHandle>,
    limits: RpcLimits,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let shard = ShardServiceServer::new(ShardRpc::new(node, limits))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ShardServiceServer<ShardRpc>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1();
    info!(target: "shard::rpc", ?addr, "gRPC serving (shardex.shard.v1.ShardService, health, reflection)");
    let mut builder = tonic::transport::Server::builder();
    let router = builder.add_service(shard).add_service(health_service);
    let router = match reflection {
        Ok(r) => router.add_service(r),
        Err(e) => {
            tracing::warn!(target: "shard::rpc", error = %e, "reflection disabled: descriptor set did not load");
            router
        }
    };
    // tonic's `tcp_nodelay` does not reach connections from a caller-provided listener: set it here, or
    // every small response waits out Nagle's algorithm against the client's delayed ACK (~40 ms).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(target: "shard::rpc", error = %e, "could not set TCP_NODELAY");
            }
        }
        conn
    });
    router.serve_with_incoming_shutdown(incoming, shutdown).await
}
