//! Serving the Shard service with its message-size limits (health, reflection and `TCP_NODELAY` come from
//! `shardex_service::grpc`).

use std::{sync::Arc, time::Duration};

use shardex_proto::shard::v1::shard_service_server::ShardServiceServer;
use shardex_service::{grpc::ServerLimits, metrics::TaskGuard};
use tokio::net::TcpListener;
use tonic::service::Routes;

use super::service::ShardRpc;
use crate::{consensus::Routing, metrics, runtime::NodeHandle};

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
    /// A stream with nothing to send for this long ends (the client resubscribes).
    pub stream_idle: Duration,
    /// A stream whose client reads nothing for this long with its buffer full is dropped (`SLOW_CONSUMER`).
    pub stream_stall: Duration,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_batch_txs: 1024,
            max_stream_txs: 100_000,
            max_subscribers: 256,
            stream_idle: Duration::from_secs(600),
            stream_stall: Duration::from_secs(10),
        }
    }
}

/// Serves the node on `listener` until `shutdown` resolves; `routing` sends submissions to the proposer under
/// a validator set. With `metrics_db` (the node's store), the node's status is sampled into its metrics every
/// second meanwhile.
pub async fn serve(
    node: Arc<NodeHandle>,
    limits: RpcLimits,
    server: &ServerLimits,
    routing: Option<Arc<Routing>>,
    listener: TcpListener,
    metrics_db: Option<sled::Db>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let rpc = ShardRpc::new(node, limits, routing);
    let _sampler = metrics_db.map(|db| TaskGuard::spawn(metrics::sample_every_second(db, rpc.status_sampler())));
    let shard = ShardServiceServer::new(rpc)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let name = <ShardServiceServer<ShardRpc> as tonic::server::NamedService>::NAME;
    shardex_service::grpc::serve(Routes::new(shard), name, server, listener, shutdown).await
}
