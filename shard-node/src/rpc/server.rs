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
    /// Under a validator set, health reports `NOT_SERVING` while the head block is older than this by the
    /// node's clock (catching up, or the set is not deciding blocks); zero: always `SERVING`.
    pub health_max_head_age: Duration,
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
            health_max_head_age: Duration::from_secs(5),
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
    // A solo node decides alone: once serving, it is as current as its shard. A member of a set is
    // current once its head is recent.
    let (ready, readiness) = tokio::sync::watch::channel(routing.is_none());
    let _readiness = (routing.is_some() && !limits.health_max_head_age.is_zero())
        .then(|| TaskGuard::spawn(track_readiness(Arc::clone(&node), limits.health_max_head_age, ready)));
    let rpc = ShardRpc::new(node, limits, routing);
    let _samplers = metrics_db.map(|db| {
        let streams = shardex_service::metrics::sample_streams_and_store("shardex", rpc.subscribers.clone(), db);
        (TaskGuard::spawn(metrics::sample_every_second(rpc.status_sampler())), TaskGuard::spawn(streams))
    });
    let shard = ShardServiceServer::new(rpc)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    let name = <ShardServiceServer<ShardRpc> as tonic::server::NamedService>::NAME;
    shardex_service::grpc::serve(Routes::new(shard), name, server, listener, Some(readiness), shutdown).await
}

/// How often a set member's readiness is re-checked.
const READINESS_EVERY: Duration = Duration::from_millis(250);

/// Keeps `ready` true while the head block is at most `max_age` old by this node's clock, and logs each
/// change: a node starting or restarting behind its set reports `NOT_SERVING` until it has caught up.
async fn track_readiness(node: Arc<NodeHandle>, max_age: Duration, ready: tokio::sync::watch::Sender<bool>) {
    let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(READINESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (height, block_ms) = {
            let shard = node.shard_at_head();
            (shard.head().height, shard.head().timestamp_ms)
        };
        let age_ms = crate::runtime::now_ms().saturating_sub(block_ms);
        let current = age_ms <= max_age_ms;
        if ready.send_if_modified(|r| std::mem::replace(r, current) != current) {
            if current {
                tracing::info!(target: "shard::rpc", height, age_ms, "caught up: health reports SERVING");
            } else {
                tracing::warn!(
                    target: "shard::rpc",
                    height,
                    age_ms,
                    max_age_ms,
                    "head block too old (catching up, or the set decides no blocks): health reports NOT_SERVING"
                );
            }
        }
    }
}
