//! `CoordinatorService` handlers: epochs, inclusion proofs, the epoch stream and status.

use std::sync::Arc;

use shardex_core::{coordpb, global::build_global_trie, Reason, ShardId};
use shardex_proto::coordinator::v1::coordinator_service_server::CoordinatorService;
use shardex_service::stream::Subscribers;
use tonic::{Request, Response, Status};

use super::{
    server::RpcLimits,
    status::{internal, reject},
    streams::{self, EpochStream},
};
use crate::{registry::now_ms, runtime::Coordinator};

/// The service implementation.
#[derive(Debug, Clone)]
pub struct CoordinatorRpc {
    coord: Arc<Coordinator>,
    subscribers: Subscribers,
}

impl CoordinatorRpc {
    /// Serves `coord` within `limits`.
    pub fn new(coord: Arc<Coordinator>, limits: RpcLimits) -> Self {
        Self { coord, subscribers: Subscribers::new(limits.max_subscribers, limits.stream_idle, limits.stream_stall) }
    }

    /// The epoch-stream subscriber slots.
    pub fn subscribers(&self) -> Subscribers {
        self.subscribers.clone()
    }

    fn epoch_or_not_found(&self, number: u64) -> Result<coordpb::SignedEpoch, Status> {
        if number == 0 || number > self.coord.latest_number() {
            return Err(reject(Reason::NotFound, format!("no epoch {number} yet")));
        }
        self.coord
            .store
            .epoch(number)
            .map_err(|e| internal(&e))?
            .ok_or_else(|| reject(Reason::NotFound, format!("epoch {number} is outside the retention window")))
    }
}

#[tonic::async_trait]
impl CoordinatorService for CoordinatorRpc {
    async fn get_latest_epoch(
        &self,
        _request: Request<coordpb::GetLatestEpochRequest>,
    ) -> Result<Response<coordpb::SignedEpoch>, Status> {
        self.coord.latest().map(Response::new).ok_or_else(|| reject(Reason::Unavailable, "no epoch produced yet"))
    }

    async fn get_epoch(
        &self,
        request: Request<coordpb::GetEpochRequest>,
    ) -> Result<Response<coordpb::SignedEpoch>, Status> {
        self.epoch_or_not_found(request.into_inner().number).map(Response::new)
    }

    async fn get_shard_inclusion(
        &self,
        request: Request<coordpb::GetShardInclusionRequest>,
    ) -> Result<Response<coordpb::ShardInclusion>, Status> {
        let req = request.into_inner();
        let number = if req.epoch == 0 { self.coord.latest_number() } else { req.epoch };
        let epoch = self.epoch_or_not_found(number)?;
        let entries = self.coord.store.entries(number).map_err(|e| internal(&e))?.unwrap_or_default();
        let shard = ShardId(req.shard_id);
        let entry = entries.iter().find(|e| e.shard_id == shard.0).cloned().ok_or_else(|| {
            reject(Reason::NotFound, format!("shard {shard} has no accepted signed header in epoch {number}"))
        })?;
        let header =
            self.coord.store.header(shard, entry.height).map_err(|e| internal(&e))?.ok_or_else(|| {
                reject(Reason::NotFound, format!("header {} of shard {shard} was pruned", entry.height))
            })?;
        let trie = build_global_trie(&entries, Some(shard));
        Ok(Response::new(coordpb::ShardInclusion {
            epoch: Some(epoch),
            entry: Some(entry),
            proof: trie.proof.iter().map(|n| n.to_vec()).collect(),
            header: Some(header),
        }))
    }

    type StreamEpochsStream = EpochStream;

    async fn stream_epochs(
        &self,
        request: Request<coordpb::StreamEpochsRequest>,
    ) -> Result<Response<EpochStream>, Status> {
        let from = match request.into_inner().from_number {
            0 => self.coord.latest_number().max(1),
            n => n,
        };
        let oldest = self.coord.store.oldest_number().map_err(|e| internal(&e))?;
        if from < oldest {
            return Err(reject(Reason::NotFound, format!("epoch {from} is below the oldest retained ({oldest})")));
        }
        let latest = self.coord.latest_number();
        if from > latest.saturating_add(streams::MAX_STREAM_LEAD) {
            return Err(reject(
                Reason::NotFound,
                format!(
                    "epoch {from} is more than {} epochs past the latest ({latest}); subscribe from a number at \
                     most that far ahead",
                    streams::MAX_STREAM_LEAD
                ),
            ));
        }
        let (sink, stream) = self.subscribers.open(streams::STREAM_BUFFER)?;
        streams::epochs(self.coord.clone(), from, sink);
        Ok(Response::new(stream))
    }

    async fn get_status(
        &self,
        _request: Request<coordpb::GetStatusRequest>,
    ) -> Result<Response<coordpb::CoordinatorStatus>, Status> {
        let now = now_ms();
        let shards = self
            .coord
            .registry
            .views()
            .into_iter()
            .map(|v| {
                let (height, hash, time) =
                    v.head.as_ref().map_or((0, Vec::new(), 0), |h| (h.height, h.hash.to_vec(), h.timestamp_ms));
                let lag_blocks = v.reported_height.saturating_sub(height);
                coordpb::ShardStatus {
                    shard_id: v.spec.shard.0,
                    endpoint: v.endpoints.get(v.current).cloned().unwrap_or_default(),
                    connected: v.connected,
                    accepted_height: height,
                    accepted_hash: hash,
                    last_header_time_ms: time,
                    reported_height: v.reported_height,
                    lag_blocks,
                    lag_ms: if lag_blocks == 0 { 0 } else { now.saturating_sub(time) },
                    rejected_headers: v.rejected,
                    last_rejection: v.recent.back().map(|r| r.message.clone()).unwrap_or_default(),
                    recent_rejections: v.recent.iter().cloned().collect(),
                    endpoints: v.endpoints.clone(),
                    held_at_height: v.held.unwrap_or(0),
                    equivocations: u32::try_from(v.equivocations).unwrap_or(u32::MAX),
                }
            })
            .collect();
        Ok(Response::new(coordpb::CoordinatorStatus {
            chain_id: self.coord.chain.0,
            coordinator_key: self.coord.public_key().0.to_vec(),
            latest: self.coord.latest(),
            shards,
            epoch_interval_ms: u64::try_from(self.coord.settings.interval.as_millis()).unwrap_or(u64::MAX),
            oldest_epoch: self.coord.store.oldest_number().map_err(|e| internal(&e))?,
        }))
    }

    async fn get_evidence(
        &self,
        request: Request<coordpb::GetEvidenceRequest>,
    ) -> Result<Response<coordpb::Evidence>, Status> {
        let shard = match request.into_inner().shard_id {
            0 => None,
            s => Some(shardex_core::ShardId(s)),
        };
        let equivocations = self.coord.store.evidence(shard).map_err(|e| internal(&e))?;
        Ok(Response::new(coordpb::Evidence { equivocations }))
    }
}
