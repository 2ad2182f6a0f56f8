//! A connection to a relayer's Bridge service: message lifecycles (with the shards' proven answers),
//! the lifecycle stream and the relayer's status.

use futures::Stream;
use shardex_proto::bridge::v1::{self as bpb, bridge_service_client::BridgeServiceClient};
use tonic::transport::Channel;

use crate::{
    client::{connect_channel, MAX_RESPONSE_BYTES},
    error::Result,
};

/// A client of one relayer; cheap to clone.
#[derive(Debug, Clone)]
pub struct BridgeClient {
    rpc: BridgeServiceClient<Channel>,
    endpoint: String,
}

impl BridgeClient {
    /// Connects to a relayer at `endpoint`.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let channel = connect_channel(endpoint).await?;
        let rpc = BridgeServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Self { rpc, endpoint: endpoint.to_owned() })
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Message `seq` from shard `src` to shard `dst`: the relayer's lifecycle and both shards' answers with
    /// proofs (check them with `shardex_core::bridge::verify_message_response`).
    pub async fn message(&self, src: u32, dst: u32, seq: u64) -> Result<bpb::GetMessageResponse> {
        let req = bpb::GetMessageRequest { src_shard: src, dst_shard: dst, seq };
        Ok(self.rpc.clone().get_message(req).await?.into_inner())
    }

    /// The relayer's status.
    pub async fn status(&self) -> Result<bpb::RelayerStatus> {
        Ok(self.rpc.clone().get_status(bpb::GetStatusRequest {}).await?.into_inner())
    }

    /// Every lifecycle change from now on.
    pub async fn stream_lifecycle(
        &self,
    ) -> Result<impl Stream<Item = std::result::Result<bpb::LifecycleEvent, tonic::Status>>> {
        Ok(self.rpc.clone().stream_lifecycle(bpb::StreamLifecycleRequest {}).await?.into_inner())
    }
}
