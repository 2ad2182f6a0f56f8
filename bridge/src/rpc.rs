//! The Bridge service (`shardex.bridge.v1.BridgeService`): one message's lifecycle with the shards' proofs
//! behind it, a stream of lifecycle changes, and the relayer's status. Served with health and reflection
//! by `shardex_service::grpc`.

use std::sync::Arc;

use shardex_core::{pb, Reason, ShardId};
use shardex_proto::bridge::v1::{
    self as bpb,
    bridge_service_server::{BridgeService, BridgeServiceServer},
};
use shardex_service::{
    status::refuse,
    stream::{ItemStream, Subscribers},
};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tonic::{service::Routes, Request, Response, Status};

use crate::{
    driver::Shared,
    lifecycle::{Message, MessageId, Stage},
};

/// The wire form of a lifecycle.
pub fn lifecycle_pb(m: &Message, attempts: u32, last_error: &str) -> bpb::MessageLifecycle {
    let (stage, delivered_height, closed_height) = match m.stage {
        Stage::Locked => (bpb::Stage::Locked, 0, 0),
        Stage::Committed { .. } => (bpb::Stage::Committed, 0, 0),
        Stage::Delivered { height } => (bpb::Stage::Delivered, height, 0),
        Stage::Acked { height } => (bpb::Stage::Acked, 0, height),
        Stage::Refunded { height } => (bpb::Stage::Refunded, 0, height),
    };
    bpb::MessageLifecycle {
        src_shard: m.id.src.0,
        dst_shard: m.id.dst.0,
        seq: m.id.seq,
        recipient: m.recipient.clone(),
        amount_micros: m.amount_micros,
        expiry_epoch: m.expiry_epoch.unwrap_or(0),
        stage: stage as i32,
        locked_height: m.locked_height,
        committed_epoch: m.committed_epoch,
        delivered_height,
        closed_height,
        locked_time_ms: m.locked_time_ms,
        delivered_time_ms: m.delivered_time_ms,
        attempts,
        last_error: last_error.to_owned(),
    }
}

/// The lifecycle the two shards' answers show (for messages the relayer does not track).
pub fn lifecycle_from_chain(
    id: MessageId,
    source: &pb::GetMessageResponse,
    dest: &pb::GetMessageResponse,
) -> bpb::MessageLifecycle {
    let msg = source.message.clone().unwrap_or_default();
    let escrow = source.escrow.clone().unwrap_or_default();
    let delivered = dest.receipt.as_ref().map_or(0, |r| r.delivered_height);
    let stage = match pb::MessageState::try_from(escrow.state) {
        Ok(pb::MessageState::Acked) => bpb::Stage::Acked,
        Ok(pb::MessageState::Refunded) => bpb::Stage::Refunded,
        _ if delivered > 0 => bpb::Stage::Delivered,
        Ok(pb::MessageState::Locked) => bpb::Stage::Locked,
        _ => bpb::Stage::Unspecified,
    };
    bpb::MessageLifecycle {
        src_shard: id.src.0,
        dst_shard: id.dst.0,
        seq: id.seq,
        recipient: msg.account,
        amount_micros: msg.amount_micros,
        expiry_epoch: msg.expiry_epoch,
        stage: stage as i32,
        locked_height: escrow.locked_height,
        delivered_height: delivered,
        closed_height: escrow.closed_height,
        ..Default::default()
    }
}

/// The service.
#[derive(Debug, Clone)]
pub struct BridgeRpc {
    shared: Arc<Shared>,
    subscribers: Subscribers,
}

impl BridgeRpc {
    /// A service over the relayer's shared state; lifecycle streams take slots of `subscribers`.
    pub fn new(shared: Arc<Shared>, subscribers: Subscribers) -> Self {
        Self { shared, subscribers }
    }

    async fn read(
        &self,
        shard: ShardId,
        peer: ShardId,
        seq: u64,
        incoming: bool,
    ) -> Result<pb::GetMessageResponse, Status> {
        let link = self
            .shared
            .links
            .get(&shard)
            .ok_or_else(|| refuse(Reason::NotFound, format!("shard {shard} is not relayed")))?;
        let client = link.client().await.map_err(|e| refuse(Reason::Unavailable, e))?;
        client
            .message(peer, seq, incoming, true, Some(&link.validators))
            .await
            .map_err(|e| refuse(Reason::Unavailable, format!("shard {shard}: {e}")))
    }
}

type EventStream = ItemStream<bpb::LifecycleEvent>;

/// Lifecycle events buffered per subscriber before the relayer waits for it (and, after
/// `rpc.stream_stall_ms`, drops it).
const LIFECYCLE_STREAM_BUFFER: usize = 64;

#[tonic::async_trait]
impl BridgeService for BridgeRpc {
    async fn get_message(
        &self,
        req: Request<bpb::GetMessageRequest>,
    ) -> Result<Response<bpb::GetMessageResponse>, Status> {
        let r = req.into_inner();
        if r.seq == 0 || r.src_shard == r.dst_shard {
            return Err(refuse(Reason::Malformed, "seq starts at 1 and source and destination differ"));
        }
        let id = MessageId { src: ShardId(r.src_shard), dst: ShardId(r.dst_shard), seq: r.seq };
        let source = self.read(id.src, id.dst, id.seq, false).await?;
        let destination = self.read(id.dst, id.src, id.seq, true).await?;
        let tracked = self.shared.tracker().get(&id);
        let lifecycle = match &tracked {
            Some((m, attempts, last)) => lifecycle_pb(m, *attempts, last),
            None => lifecycle_from_chain(id, &source, &destination),
        };
        Ok(Response::new(bpb::GetMessageResponse {
            lifecycle: Some(lifecycle),
            tracked: tracked.is_some(),
            source: Some(source),
            destination: Some(destination),
        }))
    }

    type StreamLifecycleStream = EventStream;

    async fn stream_lifecycle(
        &self,
        _req: Request<bpb::StreamLifecycleRequest>,
    ) -> Result<Response<Self::StreamLifecycleStream>, Status> {
        let mut rx = self.shared.events.subscribe();
        let (mut sink, stream) = self.subscribers.open(LIFECYCLE_STREAM_BUFFER)?;
        tokio::spawn(async move {
            loop {
                let item = match sink.wait(rx.recv()).await {
                    Err(_) | Ok(Err(RecvError::Closed)) => return,
                    Ok(Ok(event)) => Ok(event),
                    Ok(Err(RecvError::Lagged(n))) => Err(Status::data_loss(format!(
                        "this subscriber fell {n} lifecycle events behind; resubscribe and read GetMessage for the \
                         current state"
                    ))),
                };
                let last = item.is_err();
                if sink.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn get_status(&self, _req: Request<bpb::GetStatusRequest>) -> Result<Response<bpb::RelayerStatus>, Status> {
        Ok(Response::new(status(&self.shared)))
    }
}

/// The relayer's status as `GetStatus` answers it (the metrics sampler reads it too).
pub fn status(shared: &Shared) -> bpb::RelayerStatus {
    let t = shared.tracker();
    let stage = |name: &str| match name {
        "locked" => bpb::Stage::Locked,
        "committed" => bpb::Stage::Committed,
        "delivered" => bpb::Stage::Delivered,
        _ => bpb::Stage::Unspecified,
    };
    let backlog = t.backlog().into_iter().map(|(n, count)| bpb::StageCount { stage: stage(n) as i32, count }).collect();
    let (p50, samples) = t.latency_quantile_ms(0.5);
    let (p99, _) = t.latency_quantile_ms(0.99);
    let c = &t.counters;
    let errors = c.errors.iter().map(|(r, n)| bpb::ReasonCount { reason: r.clone(), count: *n }).collect();
    let cursors = shared.cursors().clone();
    let shards = shared
        .links
        .values()
        .map(|l| {
            let cur = cursors.get(&l.shard).copied().unwrap_or_default();
            bpb::ShardCursor {
                shard_id: l.shard.0,
                endpoint: l.endpoint().to_owned(),
                next_height: cur.next,
                safe_height: cur.safe,
                connected: l.connected.load(std::sync::atomic::Ordering::Relaxed),
                imported_epoch: cur.imported,
            }
        })
        .collect();
    bpb::RelayerStatus {
        relayer_account: shared.account.0.to_vec(),
        latest_epoch: shared.latest_epoch.load(std::sync::atomic::Ordering::Relaxed),
        backlog,
        delivered: c.delivered,
        acked: c.acked,
        refunded: c.refunded,
        latency_p50_ms: p50,
        latency_p99_ms: p99,
        latency_samples: u32::try_from(samples).unwrap_or(u32::MAX),
        errors,
        shards,
        submitted: c.submitted,
        duplicates: c.duplicates,
    }
}

/// Serves the Bridge service on `listener` until `shutdown` resolves.
pub async fn serve(
    shared: Arc<Shared>,
    subscribers: Subscribers,
    max_message_bytes: usize,
    limits: &shardex_service::grpc::ServerLimits,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = BridgeServiceServer::new(BridgeRpc::new(shared, subscribers))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let name = <BridgeServiceServer<BridgeRpc> as tonic::server::NamedService>::NAME;
    shardex_service::grpc::serve(Routes::new(service), name, limits, listener, None, shutdown).await
}
