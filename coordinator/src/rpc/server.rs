//! Serving the Coordinator service with its message-size limits (health, reflection and `TCP_NODELAY` come
//! from `shardex_service::grpc`).

use std::{sync::Arc, time::Duration};

use shardex_proto::coordinator::v1::coordinator_service_server::CoordinatorServiceServer;
use shardex_service::grpc::ServerLimits;
use tokio::net::TcpListener;
use tonic::service::Routes;

use super::service::CoordinatorRpc;
use crate::runtime::Coordinator;

/// Limits of the RPC surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimits {
    /// Largest gRPC message decoded or encoded, bytes.
    pub max_message_bytes: usize,
    /// Concurrent epoch-stream subscribers.
    pub max_subscribers: usize,
    /// An epoch stream with nothing to send for this long ends (the client resubscribes).
    pub stream_idle: Duration,
    /// A stream whose client reads nothing for this long with its buffer full is dropped (`SLOW_CONSUMER`).
    pub stream_stall: Duration,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_subscribers: 256,
            stream_idle: Duration::from_secs(600),
            stream_stall: Duration::from_secs(10),
        }
    }
}

/// Serves the coordinator on `listener` until `shutdown` resolves; with `sample_metrics`, its open epoch
/// streams and its store's size are sampled into metrics meanwhile.
pub async fn serve(
    coord: Arc<Coordinator>,
    limits: RpcLimits,
    server: &ServerLimits,
    listener: TcpListener,
    sample_metrics: bool,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let rpc = CoordinatorRpc::new(Arc::clone(&coord), limits);
    let _sampler = sample_metrics.then(|| {
        let sample = shardex_service::metrics::sample_streams_and_store;
        shardex_service::metrics::TaskGuard::spawn(sample("shardex_coordinator", rpc.subscribers(), coord.store.db()))
    });
    let service = CoordinatorServiceServer::new(rpc)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let name = <CoordinatorServiceServer<CoordinatorRpc> as tonic::server::NamedService>::NAME;
    shardex_service::grpc::serve(Routes::new(service), name, server, listener, None, shutdown).await
}
