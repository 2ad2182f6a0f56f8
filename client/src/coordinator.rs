//! A connection to the coordinator: epochs, inclusion proofs, the epoch stream and status.

use futures::Stream;
use shardex_core::{
    coordpb,
    global::{verify_account_global, verify_inclusion, GloballyVerifiedAccount, VerifiedInclusion},
    pb,
    validators::ValidatorSet,
    AccountId,
};
use shardex_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use tonic::transport::Channel;

use crate::{
    client::{connect_channel, ShardClient, MAX_RESPONSE_BYTES},
    error::{ClientError, Result},
};

/// A client of the coordinator; cheap to clone.
#[derive(Debug, Clone)]
pub struct CoordinatorClient {
    rpc: CoordinatorServiceClient<Channel>,
    endpoint: String,
}

impl CoordinatorClient {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:7200`).
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let channel = connect_channel(endpoint).await?;
        let rpc = CoordinatorServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Self { rpc, endpoint: endpoint.to_owned() })
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The raw generated gRPC client.
    pub fn raw(&self) -> CoordinatorServiceClient<Channel> {
        self.rpc.clone()
    }

    /// The latest signed epoch (not verified: see `shardex_core::global::verify_epoch`).
    pub async fn latest_epoch(&self) -> Result<coordpb::SignedEpoch> {
        Ok(self.rpc.clone().get_latest_epoch(coordpb::GetLatestEpochRequest {}).await?.into_inner())
    }

    /// Signed epoch `number`.
    pub async fn epoch(&self, number: u64) -> Result<coordpb::SignedEpoch> {
        Ok(self.rpc.clone().get_epoch(coordpb::GetEpochRequest { number }).await?.into_inner())
    }

    /// `shard`'s entry in epoch `epoch` (0 = latest) with its proof and the committed header.
    pub async fn inclusion(&self, epoch: u64, shard: u32) -> Result<coordpb::ShardInclusion> {
        let req = coordpb::GetShardInclusionRequest { epoch, shard_id: shard };
        Ok(self.rpc.clone().get_shard_inclusion(req).await?.into_inner())
    }

    /// Epochs from `from_number` (0 = the latest) on, live.
    pub async fn stream_epochs(
        &self,
        from_number: u64,
    ) -> Result<impl Stream<Item = std::result::Result<coordpb::SignedEpoch, tonic::Status>>> {
        Ok(self.rpc.clone().stream_epochs(coordpb::StreamEpochsRequest { from_number }).await?.into_inner())
    }

    /// Coordinator status: key, latest epoch, per-shard lag and rejections.
    pub async fn status(&self) -> Result<coordpb::CoordinatorStatus> {
        Ok(self.rpc.clone().get_status(coordpb::GetStatusRequest {}).await?.into_inner())
    }

    /// Equivocation evidence the coordinator kept for `shard` (0: every shard): pairs of validly certified,
    /// conflicting headers at one height.
    pub async fn evidence(&self, shard: u32) -> Result<Vec<coordpb::Equivocation>> {
        let req = coordpb::GetEvidenceRequest { shard_id: shard };
        Ok(self.rpc.clone().get_evidence(req).await?.into_inner().equivocations)
    }
}

impl ShardClient {
    /// Verifies `account`'s record up to a coordinator-signed epoch: the shard's entry in epoch `epoch`
    /// (0 = latest) is proven under the epoch signed by `coordinator_key`, the committed header is finalized
    /// by `validators`, and the record is proven under that header's state root at that height.
    pub async fn account_global(
        &self,
        coordinator: &CoordinatorClient,
        coordinator_key: &AccountId,
        epoch: u64,
        account: &AccountId,
        validators: &ValidatorSet,
    ) -> Result<GloballyVerifiedAccount> {
        let d = self.domain();
        let inclusion = coordinator.inclusion(epoch, d.shard.0).await?;
        let height = inclusion
            .entry
            .as_ref()
            .map(|e| e.height)
            .ok_or_else(|| ClientError::Protocol("inclusion carries no shard entry".into()))?;
        let req = pb::GetAccountRequest { account: account.0.to_vec(), prove: true, height };
        let resp = self.raw().get_account(req).await?.into_inner();
        Ok(verify_account_global(&inclusion, coordinator_key, d.chain, d.shard, validators, account, &resp)?)
    }

    /// Verifies that epoch `epoch` (0 = latest) of the coordinator holding `coordinator_key` commits a header
    /// of this shard finalized by `validators` (the shard's genesis set). Records read at the committed
    /// height (e.g. [`ShardClient::ledger`]) must then prove under the returned state root.
    pub async fn committed_head(
        &self,
        coordinator: &CoordinatorClient,
        coordinator_key: &AccountId,
        epoch: u64,
        validators: &ValidatorSet,
    ) -> Result<VerifiedInclusion> {
        let d = self.domain();
        let inclusion = coordinator.inclusion(epoch, d.shard.0).await?;
        Ok(verify_inclusion(&inclusion, coordinator_key, d.chain, d.shard, validators)?)
    }
}
