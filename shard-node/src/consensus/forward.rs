//! Submissions sent to a validator that does not propose the current round go to the one that does, over
//! its gRPC endpoint, and its answer comes back as is. A forwarded submission is never forwarded again: a
//! validator that received one but no longer proposes answers `NO_LEADER`, and the client retries.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use shardex_core::{pb, AccountId, Reason};
use shardex_proto::shard::v1::shard_service_client::ShardServiceClient;
use tonic::{transport::Channel, Code, Request, Response, Status};
use tracing::debug;

use crate::{rpc::reject_status, shard::Reject};

/// Metadata key that marks a submission forwarded by another validator.
pub const FORWARDED_METADATA_KEY: &str = "shardex-forwarded";

/// How long a forwarded submission may take before the client is told to retry.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// gRPC clients of the other validators, by key.
pub struct Forwarder {
    endpoints: HashMap<AccountId, String>,
    clients: Mutex<HashMap<AccountId, ShardServiceClient<Channel>>>,
    max_message_bytes: usize,
}

/// The refusal a client sees when no proposer can take its submission now.
pub fn no_leader(detail: impl Into<String>) -> Status {
    reject_status(&Reject::new(Reason::NoLeader, detail))
}

impl Forwarder {
    /// Forwards to the validators at `endpoints` (key → gRPC URL).
    pub fn new(endpoints: HashMap<AccountId, String>, max_message_bytes: usize) -> Self {
        Self { endpoints, clients: Mutex::new(HashMap::new()), max_message_bytes }
    }

    fn client(&self, to: &AccountId) -> Result<ShardServiceClient<Channel>, Status> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(to) {
            return Ok(c.clone());
        }
        let url = self.endpoints.get(to).ok_or_else(|| {
            no_leader(format!("the proposer {to} has no gRPC endpoint in this node's consensus.peers"))
        })?;
        let channel = Channel::from_shared(url.clone())
            .map_err(|e| no_leader(format!("proposer endpoint {url}: {e}")))?
            .connect_timeout(FORWARD_TIMEOUT)
            .timeout(FORWARD_TIMEOUT)
            .connect_lazy();
        let client = ShardServiceClient::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        clients.insert(*to, client.clone());
        Ok(client)
    }

    fn request<T>(message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert(FORWARDED_METADATA_KEY, tonic::metadata::MetadataValue::from_static("1"));
        r
    }

    /// A transport failure (the proposer is down or slow) becomes `NO_LEADER`; the proposer's own answers,
    /// refusals included, pass through.
    fn unreachable(to: &AccountId, status: Status) -> Status {
        let transport =
            matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown)
                && status.metadata().get(crate::rpc::REASON_METADATA_KEY).is_none();
        if transport {
            debug!(target: "shard::forward", proposer = %to, error = %status.message(), "proposer unreachable");
            no_leader(format!("the proposer {to} is unreachable ({}); retry shortly", status.message()))
        } else {
            status
        }
    }

    /// Submits `tx` to the proposer `to`.
    pub async fn submit(&self, to: &AccountId, tx: pb::SignedTx) -> Result<Response<pb::SubmitResult>, Status> {
        self.client(to)?.submit_tx(Self::request(tx)).await.map_err(|s| Self::unreachable(to, s))
    }

    /// Submits a batch to the proposer `to`.
    pub async fn submit_batch(
        &self,
        to: &AccountId,
        txs: Vec<pb::SignedTx>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        self.client(to)?
            .submit_batch(Self::request(pb::SubmitBatchRequest { txs }))
            .await
            .map_err(|s| Self::unreachable(to, s))
    }
}
