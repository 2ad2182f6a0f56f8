//! An in-process shard gRPC server that serves a scripted header sequence (genuine and forged) to a
//! coordinator. Methods a coordinator does not call answer `Unimplemented`.

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use shardex_core::{block::encode_header, pb, vote::sign_precommit, ChainId, Keypair, ShardId, B256};
use shardex_proto::shard::v1::shard_service_server::{ShardService, ShardServiceServer};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status, Streaming};

/// What the fake serves.
pub struct Script {
    pub chain: ChainId,
    pub shard: ShardId,
    /// Headers by height for `GetHeader` (the genuine chain, genesis first).
    pub chain_headers: Vec<pb::FinalizedHeader>,
    /// What the first `StreamHeaders` call sends, in order; later calls send the genuine chain from the
    /// height asked for, then stay open.
    pub stream: Vec<pb::FinalizedHeader>,
}

/// Builds a header of the fake shard.
pub fn header(chain: ChainId, shard: ShardId, height: u64, parent: B256, time_ms: u64) -> pb::BlockHeader {
    pb::BlockHeader {
        chain_id: chain.0,
        shard_id: shard.0,
        height,
        parent_hash: parent.to_vec(),
        timestamp_ms: time_ms,
        tx_root: vec![1; 32],
        receipts_root: vec![2; 32],
        state_root: vec![height as u8 + 0x30; 32],
        events_root: vec![3; 32],
        ..Default::default()
    }
}

/// Encodes `h` and certifies it with round-0 precommits of `keys` (none: unsigned, as a genesis block).
pub fn finalize(h: &pb::BlockHeader, keys: &[&Keypair]) -> (pb::FinalizedHeader, B256) {
    finalize_at(h, keys, 0)
}

/// Encodes `h` and certifies it with precommits of `keys` at `round`.
pub fn finalize_at(h: &pb::BlockHeader, keys: &[&Keypair], round: u32) -> (pb::FinalizedHeader, B256) {
    let (bytes, hash) = encode_header(h);
    let domain = (ChainId(h.chain_id), ShardId(h.shard_id));
    let signatures = keys.iter().map(|k| sign_precommit(k, domain, h.height, round, &hash)).collect();
    (pb::FinalizedHeader { header: bytes, signatures, round }, hash)
}

struct Fake {
    script: Arc<Script>,
    streamed: Arc<Mutex<bool>>,
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn no<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("fake shard"))
}

#[tonic::async_trait]
impl ShardService for Fake {
    async fn submit_tx(&self, _: Request<pb::SignedTx>) -> Result<Response<pb::SubmitResult>, Status> {
        no()
    }
    async fn submit_batch(
        &self,
        _: Request<pb::SubmitBatchRequest>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        no()
    }
    async fn submit_stream(
        &self,
        _: Request<Streaming<pb::SignedTx>>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        no()
    }
    async fn get_tx_status(&self, _: Request<pb::GetTxStatusRequest>) -> Result<Response<pb::TxStatus>, Status> {
        no()
    }
    async fn get_account(&self, _: Request<pb::GetAccountRequest>) -> Result<Response<pb::GetAccountResponse>, Status> {
        no()
    }
    async fn get_market(&self, _: Request<pb::GetMarketRequest>) -> Result<Response<pb::GetMarketResponse>, Status> {
        no()
    }
    async fn get_position(
        &self,
        _: Request<pb::GetPositionRequest>,
    ) -> Result<Response<pb::GetPositionResponse>, Status> {
        no()
    }
    async fn get_greeks(&self, _: Request<pb::GetGreeksRequest>) -> Result<Response<pb::GetGreeksResponse>, Status> {
        no()
    }
    async fn get_open_orders(
        &self,
        _: Request<pb::GetOpenOrdersRequest>,
    ) -> Result<Response<pb::GetOpenOrdersResponse>, Status> {
        no()
    }
    async fn get_book(&self, _: Request<pb::GetBookRequest>) -> Result<Response<pb::GetBookResponse>, Status> {
        no()
    }
    async fn get_proof(&self, _: Request<pb::GetProofRequest>) -> Result<Response<pb::StateProof>, Status> {
        no()
    }
    async fn get_message(&self, _: Request<pb::GetMessageRequest>) -> Result<Response<pb::GetMessageResponse>, Status> {
        no()
    }
    async fn get_history(&self, _: Request<pb::GetHistoryRequest>) -> Result<Response<pb::GetHistoryResponse>, Status> {
        no()
    }
    async fn get_block(&self, _: Request<pb::GetBlockRequest>) -> Result<Response<pb::Block>, Status> {
        no()
    }

    async fn get_header(&self, r: Request<pb::GetBlockRequest>) -> Result<Response<pb::FinalizedHeader>, Status> {
        let h = r.into_inner().height;
        usize::try_from(h)
            .ok()
            .and_then(|i| self.script.chain_headers.get(i).cloned())
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no header {h}")))
    }

    async fn get_status(&self, _: Request<pb::GetStatusRequest>) -> Result<Response<pb::NodeStatus>, Status> {
        Ok(Response::new(pb::NodeStatus {
            chain_id: self.script.chain.0,
            shard_id: self.script.shard.0,
            height: self.script.chain_headers.len() as u64 - 1,
            ..Default::default()
        }))
    }

    type StreamHeadersStream = Boxed<pb::FinalizedHeader>;

    async fn stream_headers(
        &self,
        r: Request<pb::StreamHeadersRequest>,
    ) -> Result<Response<Self::StreamHeadersStream>, Status> {
        let from = usize::try_from(r.into_inner().from_height).unwrap_or(usize::MAX);
        let mut streamed = self.streamed.lock().await;
        let items: Vec<Result<pb::FinalizedHeader, Status>> = if *streamed {
            self.script.chain_headers.iter().skip(from).cloned().map(Ok).collect()
        } else {
            self.script.stream.iter().cloned().map(Ok).collect()
        };
        *streamed = true;
        // Send the script, then stay open without further items.
        let s = futures::stream::iter(items).chain(futures::stream::pending());
        Ok(Response::new(Box::pin(s)))
    }

    type StreamAccountEventsStream = Boxed<pb::AccountEvent>;

    async fn stream_account_events(
        &self,
        _: Request<pb::StreamAccountEventsRequest>,
    ) -> Result<Response<Self::StreamAccountEventsStream>, Status> {
        no()
    }
}

use futures::StreamExt;

/// Serves `script` on 127.0.0.1 (a free port); returns the endpoint. The server lives until the runtime ends.
pub async fn serve(script: Script) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake shard");
    let addr = listener.local_addr().expect("addr");
    let fake = Fake { script: Arc::new(script), streamed: Arc::new(Mutex::new(false)) };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ShardServiceServer::new(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}
