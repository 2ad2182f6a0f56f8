//! The Shard service: every handler validates its input, does the work under the shard lock, and maps
//! rejections to statuses with reasons. Signature checks run before the lock is taken, on blocking and rayon
//! threads: a batch's signatures are checked as batches.

use std::sync::Arc;

use shardex_core::{
    hash::b256_from_slice,
    pb,
    tx::{verify_envelope, verify_envelopes, VerifiedTx},
    AccountId, Reason,
};
use shardex_proto::shard::v1::shard_service_server::ShardService;
use shardex_service::stream::Subscribers;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{
    server::RpcLimits,
    status::{internal_status, reject_status},
    streams::{self, EventStream, HeaderStream},
};
use crate::{
    chain::HistoryPos,
    consensus::{
        forward::{no_leader, FORWARDED_METADATA_KEY},
        Route, Routing,
    },
    runtime::{now_ms, NodeHandle},
    shard::{HistoryQuery, Reject, TxState, MAX_HISTORY_ENTRIES},
};

/// The Shard gRPC service over a running node.
pub struct ShardRpc {
    pub(super) node: Arc<NodeHandle>,
    pub(super) limits: RpcLimits,
    pub(super) subscribers: Subscribers,
    domain: shardex_core::tx::TxDomain,
    max_tx_bytes: usize,
    /// Under a validator set: where submissions go. None for a solo sequencer (always here).
    routing: Option<Arc<Routing>>,
    /// Queries running on blocking threads at once; more wait their turn (asynchronously).
    queries: Arc<tokio::sync::Semaphore>,
}

/// Queries of committed state that run at once, each on a blocking thread.
pub const MAX_CONCURRENT_QUERIES: usize = 64;

impl ShardRpc {
    /// The service for `node` with `limits`; `routing` under a validator set.
    pub fn new(node: Arc<NodeHandle>, limits: RpcLimits, routing: Option<Arc<Routing>>) -> Self {
        let (domain, max_tx_bytes) = {
            let shard = node.shard();
            (shard.domain(), shard.config().max_tx_bytes)
        };
        Self {
            node,
            limits,
            subscribers: Subscribers::new(limits.max_subscribers, limits.stream_idle, limits.stream_stall),
            domain,
            max_tx_bytes,
            routing,
            queries: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_QUERIES)),
        }
    }

    /// Runs a query on a blocking thread: it takes the shard lock (and waits for the commit gate while a
    /// block is being written and flushed), which must never stall the runtime's worker threads. At most
    /// [`MAX_CONCURRENT_QUERIES`] run at once, so a flood of queries cannot spawn threads without bound.
    async fn query<T: Send + 'static>(
        &self,
        read: impl FnOnce(&NodeHandle) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let permit = Arc::clone(&self.queries)
            .acquire_owned()
            .await
            .map_err(|_| reject_status(&Reject::new(Reason::Unavailable, "the node is shutting down")))?;
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            read(&node)
        })
        .await
        .map_err(|e| {
            tracing::error!(target: "shard::rpc", error = %e, "query task failed");
            reject_status(&Reject::new(Reason::Unavailable, "the query failed on the node; see its log"))
        })?
    }

    /// The validator a submission must go to, when it is not this node. A submission another validator
    /// forwarded is admitted only by the proposer: anywhere else it is refused with `NO_LEADER`.
    fn proposer_elsewhere(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Option<(AccountId, &Routing)>, Status> {
        let Some(routing) = self.routing.as_deref() else { return Ok(None) };
        let forwarded = metadata.contains_key(FORWARDED_METADATA_KEY);
        match routing.leader.route() {
            Route::Here => Ok(None),
            Route::To(p) if !forwarded => Ok(Some((p, routing))),
            Route::To(p) => Err(no_leader(format!("validator {p} proposes this round, not this node; retry"))),
            Route::Unknown => Err(no_leader("consensus has not started a round yet; retry shortly")),
        }
    }

    /// What the metrics sampler reads: the node's status and the streams open now. Blocking (it takes the shard
    /// lock); the sampler runs it on a blocking thread.
    pub(super) fn status_sampler(&self) -> impl Fn() -> pb::NodeStatus + Clone + Send + 'static {
        let (node, routing) = (Arc::clone(&self.node), self.routing.clone());
        move || {
            let round = routing.as_ref().map(|r| r.leader.view());
            let engine = if routing.is_some() { "malachite" } else { "solo" };
            node_status(&node.shard_at_head(), engine, round)
        }
    }

    /// Runs signature checks on a blocking thread (which hands a batch's parts to rayon's threads), so the
    /// runtime's workers keep serving while they run.
    async fn off_runtime<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
        tokio::task::spawn_blocking(check).await.map_err(|e| {
            tracing::error!(target: "shard::rpc", error = %e, "signature check task failed");
            reject_status(&Reject::new(Reason::Unavailable, "checking signatures failed on the node; see its log"))
        })
    }

    /// Verifies one submission off the runtime.
    async fn verify(&self, tx: pb::SignedTx) -> Result<Result<VerifiedTx, Reject>, Status> {
        let (domain, max_tx_bytes) = (self.domain, self.max_tx_bytes);
        self.off_runtime(move || verify_envelope(tx, domain, max_tx_bytes).map_err(Reject::from)).await
    }

    /// Verifies a slice off the runtime, its signatures as batches (each tx gets the verdict it would get
    /// alone), then admits it under one lock acquisition.
    async fn submit_many(&self, txs: Vec<pb::SignedTx>) -> Result<Vec<pb::SubmitResult>, Status> {
        let (domain, max_tx_bytes) = (self.domain, self.max_tx_bytes);
        let (hashes, verified) = self
            .off_runtime(move || {
                // Refused txs are answered by hash too, and their bodies are gone after the check.
                let hashes: Vec<Vec<u8>> =
                    txs.iter().map(|tx| shardex_core::hash::tx_hash(&tx.body).to_vec()).collect();
                (hashes, verify_envelopes(txs, domain, max_tx_bytes))
            })
            .await?;
        let verified = hashes.into_iter().zip(verified.into_iter().map(|v| v.map_err(Reject::from)));
        let mut shard = self.node.shard();
        let mut results = Vec::with_capacity(verified.len());
        let mut refused = Vec::new();
        for (hash, v) in verified {
            let verdict = match v {
                Ok(tx) => shard.admit(tx, now_ms()).map_err(|e| internal_status(&e))?,
                Err(reject) => Err(reject),
            };
            results.push(match verdict {
                Ok(()) => pb::SubmitResult { tx_hash: hash, accepted: true, ..Default::default() },
                Err(r) => {
                    refused.push(r.reason);
                    pb::SubmitResult {
                        tx_hash: hash,
                        accepted: false,
                        reason: r.reason.to_string(),
                        message: r.message,
                    }
                }
            });
        }
        let full = shard.block_is_full();
        drop(shard);
        if full {
            self.node.wake_producer();
        }
        crate::metrics::submissions((results.len() - refused.len()) as u64, refused);
        Ok(results)
    }
}

pub(super) fn parse_account(bytes: &[u8]) -> Result<AccountId, Status> {
    AccountId::from_slice(bytes).map_err(|e| reject_status(&Reject::new(Reason::Malformed, e.to_string())))
}

#[tonic::async_trait]
impl ShardService for ShardRpc {
    async fn submit_tx(&self, request: Request<pb::SignedTx>) -> Result<Response<pb::SubmitResult>, Status> {
        if let Some((proposer, routing)) = self.proposer_elsewhere(request.metadata())? {
            return routing.forwarder.submit(&proposer, request.into_inner()).await;
        }
        let tx = request.into_inner();
        let hash = shardex_core::hash::tx_hash(&tx.body).to_vec();
        let verdict = match self.verify(tx).await? {
            Ok(verified) => {
                let mut shard = self.node.shard();
                let verdict = shard.admit(verified, now_ms()).map_err(|e| internal_status(&e))?;
                if shard.block_is_full() {
                    drop(shard);
                    self.node.wake_producer();
                }
                verdict
            }
            Err(reject) => Err(reject),
        };
        match &verdict {
            Ok(()) => crate::metrics::submissions(1, []),
            Err(r) => crate::metrics::submissions(0, [r.reason]),
        }
        verdict.map_err(|r| reject_status(&r))?;
        Ok(Response::new(pb::SubmitResult { tx_hash: hash, accepted: true, ..Default::default() }))
    }

    async fn submit_batch(
        &self,
        request: Request<pb::SubmitBatchRequest>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        let elsewhere = self.proposer_elsewhere(request.metadata())?;
        let txs = request.into_inner().txs;
        if txs.len() > self.limits.max_batch_txs {
            return Err(reject_status(&Reject::new(
                Reason::BatchTooLarge,
                format!("batch of {} txs exceeds max_batch_txs {}", txs.len(), self.limits.max_batch_txs),
            )));
        }
        if let Some((proposer, routing)) = elsewhere {
            return routing.forwarder.submit_batch(&proposer, txs).await;
        }
        Ok(Response::new(pb::SubmitBatchResponse { results: self.submit_many(txs).await? }))
    }

    async fn submit_stream(
        &self,
        request: Request<Streaming<pb::SignedTx>>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        let elsewhere = self.proposer_elsewhere(request.metadata())?;
        let mut stream = request.into_inner();
        let mut results = Vec::new();
        let mut chunk = Vec::with_capacity(self.limits.max_batch_txs);
        loop {
            let next = stream.next().await.transpose()?;
            let end = next.is_none();
            if let Some(tx) = next {
                chunk.push(tx);
                if results.len() + chunk.len() > self.limits.max_stream_txs {
                    return Err(reject_status(&Reject::new(
                        Reason::BatchTooLarge,
                        format!("stream exceeds max_stream_txs {}", self.limits.max_stream_txs),
                    )));
                }
            }
            if chunk.len() >= self.limits.max_batch_txs || (end && !chunk.is_empty()) {
                let txs = std::mem::take(&mut chunk);
                match elsewhere {
                    Some((proposer, routing)) => {
                        results.extend(routing.forwarder.submit_batch(&proposer, txs).await?.into_inner().results)
                    }
                    None => results.extend(self.submit_many(txs).await?),
                }
            }
            if end {
                return Ok(Response::new(pb::SubmitBatchResponse { results }));
            }
        }
    }

    async fn get_tx_status(&self, request: Request<pb::GetTxStatusRequest>) -> Result<Response<pb::TxStatus>, Status> {
        let raw = request.into_inner().tx_hash;
        let hash = b256_from_slice(&raw).ok_or_else(|| {
            reject_status(&Reject::new(Reason::Malformed, format!("tx hash must be 32 bytes, got {}", raw.len())))
        })?;
        let state =
            self.query(move |node| node.shard_at_head().tx_state(&hash).map_err(|e| internal_status(&e))).await?;
        use pb::tx_status::{Included, Pending, Rejected, Status as S, Unknown};
        let status = match state {
            TxState::Unknown => S::Unknown(Unknown {}),
            TxState::Pending => S::Pending(Pending {}),
            TxState::Included { height, index, receipt } => S::Included(Included { height, index, receipt }),
            TxState::Rejected(reason, message) => S::Rejected(Rejected { reason, message }),
        };
        Ok(Response::new(pb::TxStatus { tx_hash: raw, status: Some(status) }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let req = request.into_inner();
        let account = parse_account(&req.account)?;
        let height = (req.height != 0).then_some(req.height);
        let view = self
            .query(move |node| {
                node.read_head(|view| view.account(&account, height, req.prove))
                    .map_err(|e| internal_status(&e))?
                    .map_err(|r| reject_status(&r))
            })
            .await?;
        let (proof, header) = view.proof.map_or((None, None), |(p, h)| (Some(p), Some(h)));
        Ok(Response::new(pb::GetAccountResponse {
            account: view.record,
            height: view.height,
            state_root: view.state_root.to_vec(),
            proof,
            header,
        }))
    }

    async fn get_market(
        &self,
        request: Request<pb::GetMarketRequest>,
    ) -> Result<Response<pb::GetMarketResponse>, Status> {
        let req = request.into_inner();
        let height = (req.height != 0).then_some(req.height);
        let view = self
            .query(move |node| {
                node.read_head(|view| view.market_at(height, req.prove))
                    .map_err(|e| internal_status(&e))?
                    .map_err(|r| reject_status(&r))
            })
            .await?;
        let mut resp = pb::GetMarketResponse {
            market: Some(view.market),
            height: view.height,
            state_root: view.state_root.to_vec(),
            totals: Some(view.totals),
            oracle: view.oracle,
            insurance: Some(view.insurance),
            fee_pool: Some(view.fee_pool),
            funding: Some(view.funding),
            ..Default::default()
        };
        if let Some(p) = view.proofs {
            resp.proof = Some(p.market);
            resp.totals_proof = Some(p.totals);
            resp.insurance_proof = Some(p.insurance);
            resp.fee_pool_proof = Some(p.fee_pool);
            resp.funding_proof = Some(p.funding);
            resp.header = Some(p.header);
        }
        Ok(Response::new(resp))
    }

    async fn get_greeks(
        &self,
        request: Request<pb::GetGreeksRequest>,
    ) -> Result<Response<pb::GetGreeksResponse>, Status> {
        let account = parse_account(&request.into_inner().account)?;
        let resp = self
            .query(move |node| {
                node.read_head(|view| view.greeks(&account))
                    .map_err(|e| internal_status(&e))?
                    .map_err(|r| reject_status(&r))
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_position(
        &self,
        request: Request<pb::GetPositionRequest>,
    ) -> Result<Response<pb::GetPositionResponse>, Status> {
        let req = request.into_inner();
        let account = parse_account(&req.account)?;
        let view = self
            .query(move |node| {
                node.read_head(|view| view.position(&account, req.prove)).map_err(|e| internal_status(&e))
            })
            .await?;
        let (position_proof, account_proof, header) =
            view.proofs.map_or((None, None, None), |(p, a, h)| (Some(p), Some(a), Some(h)));
        Ok(Response::new(pb::GetPositionResponse {
            position: view.position,
            account: view.account,
            open_orders: Some(view.open_orders),
            health: view.health,
            height: view.height,
            state_root: view.state_root.to_vec(),
            position_proof,
            account_proof,
            header,
        }))
    }

    async fn get_open_orders(
        &self,
        request: Request<pb::GetOpenOrdersRequest>,
    ) -> Result<Response<pb::GetOpenOrdersResponse>, Status> {
        let account = parse_account(&request.into_inner().account)?;
        let resp = self
            .query(move |node| {
                node.read_head(|view| {
                    Ok(pb::GetOpenOrdersResponse { orders: view.open_orders(&account)?, height: view.head().height })
                })
                .map_err(|e| internal_status(&e))
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_book(&self, request: Request<pb::GetBookRequest>) -> Result<Response<pb::GetBookResponse>, Status> {
        let levels = request.into_inner().levels as usize;
        let resp = self
            .query(move |node| {
                node.read_head(|view| {
                    let (bids, asks) = view.book_depth(levels)?;
                    let head = view.head();
                    Ok(pb::GetBookResponse { bids, asks, height: head.height, state_root: head.state_root.to_vec() })
                })
                .map_err(|e| internal_status(&e))
            })
            .await?;
        Ok(Response::new(resp))
    }

    async fn get_proof(&self, request: Request<pb::GetProofRequest>) -> Result<Response<pb::StateProof>, Status> {
        let req = request.into_inner();
        let namespace =
            u8::try_from(req.namespace).ok().and_then(shardex_core::state_key::Namespace::from_byte).ok_or_else(
                || reject_status(&Reject::new(Reason::Malformed, format!("unknown namespace {}", req.namespace))),
            )?;
        if req.id.len() > 64 {
            return Err(reject_status(&Reject::new(Reason::Malformed, "a record id is at most 64 bytes")));
        }
        let key = shardex_core::state_key::leaf_key(namespace, &req.id);
        let height = (req.height != 0).then_some(req.height);
        let proof = self
            .query(move |node| node.read_head(|view| view.prove_key(key, height)).map_err(|e| internal_status(&e)))
            .await?;
        proof.map(Response::new).map_err(|r| reject_status(&r))
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let req = request.into_inner();
        let account = if req.account.is_empty() { None } else { Some(parse_account(&req.account)?) };
        if req.limit as usize > MAX_HISTORY_ENTRIES {
            return Err(reject_status(&Reject::new(
                Reason::Malformed,
                format!("limit {} is above the page limit of {MAX_HISTORY_ENTRIES}", req.limit),
            )));
        }
        let query = HistoryQuery {
            account,
            from: HistoryPos { height: req.from_height, index: req.from_index },
            limit: req.limit as usize,
            prove: req.prove,
        };
        // Decoding blocks and hashing receipts is blocking work on committed blocks: off the workers and off
        // every lock.
        let page = self
            .query(move |node| node.head_view().history_reader().page(&query).map_err(|e| internal_status(&e)))
            .await?
            .map_err(|r| reject_status(&r))?;
        Ok(Response::new(page))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::GetMessageResponse>, Status> {
        let req = request.into_inner();
        if req.peer_shard == 0 || req.seq == 0 {
            return Err(reject_status(&Reject::new(Reason::Malformed, "peer_shard and seq start at 1")));
        }
        let view = self
            .query(move |node| {
                node.read_head(|view| {
                    view.message(shardex_core::ShardId(req.peer_shard), req.seq, req.incoming, req.prove)
                })
                .map_err(|e| internal_status(&e))
            })
            .await?;
        let (proofs, header) = view.proofs.map_or((Vec::new(), None), |(p, h)| (p, Some(h)));
        Ok(Response::new(pb::GetMessageResponse {
            height: view.height,
            state_root: view.state_root.to_vec(),
            escrow: view.escrow,
            message: view.message,
            receipt: view.receipt,
            ack: view.ack,
            proofs,
            header,
        }))
    }

    async fn get_block(&self, request: Request<pb::GetBlockRequest>) -> Result<Response<pb::Block>, Status> {
        let height = request.into_inner().height;
        let (block, view) = self
            .query(move |node| {
                let view = node.head_view();
                Ok((view.block(height).map_err(|e| internal_status(&e))?, view))
            })
            .await?;
        block
            .map(Response::new)
            .ok_or_else(|| reject_status(&Reject::new(Reason::NotFound, view.missing_block(height))))
    }

    async fn get_header(&self, request: Request<pb::GetBlockRequest>) -> Result<Response<pb::FinalizedHeader>, Status> {
        let height = request.into_inner().height;
        let (header, view) = self
            .query(move |node| {
                let view = node.head_view();
                Ok((view.header(height).map_err(|e| internal_status(&e))?, view))
            })
            .await?;
        header
            .map(Response::new)
            .ok_or_else(|| reject_status(&Reject::new(Reason::NotFound, view.missing_block(height))))
    }

    async fn get_status(&self, _request: Request<pb::GetStatusRequest>) -> Result<Response<pb::NodeStatus>, Status> {
        let round = self.routing.as_ref().map(|r| r.leader.view());
        let engine = if self.routing.is_some() { "malachite" } else { "solo" };
        let status = self.query(move |node| Ok(node_status(&node.shard_at_head(), engine, round))).await?;
        Ok(Response::new(status))
    }

    type StreamHeadersStream = HeaderStream;

    async fn stream_headers(
        &self,
        request: Request<pb::StreamHeadersRequest>,
    ) -> Result<Response<HeaderStream>, Status> {
        let from = request.into_inner().from_height;
        let head = self.node.shard().head().height;
        if from > head.saturating_add(streams::MAX_STREAM_LEAD) {
            return Err(reject_status(&Reject::new(
                Reason::NotFound,
                format!(
                    "height {from} is more than {} blocks past the head {head}; subscribe from a height at most \
                     that far ahead",
                    streams::MAX_STREAM_LEAD
                ),
            )));
        }
        let (sink, stream) = self.subscribers.open(streams::STREAM_BUFFER)?;
        streams::headers(self.node.clone(), from, sink);
        Ok(Response::new(stream))
    }

    type StreamAccountEventsStream = EventStream;

    async fn stream_account_events(
        &self,
        request: Request<pb::StreamAccountEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let account = parse_account(&request.into_inner().account)?;
        let (sink, stream) = self.subscribers.open(streams::STREAM_BUFFER)?;
        streams::account_events(self.node.clone(), account, sink);
        Ok(Response::new(stream))
    }
}

/// The node's status as `GetStatus` answers it.
fn node_status(
    shard: &crate::shard::Shard,
    engine: &str,
    round: Option<crate::consensus::RoundView>,
) -> pb::NodeStatus {
    let head = shard.head();
    let (work, cache) = (shard.block_work(), shard.cache_stats());
    pb::NodeStatus {
        consensus_engine: engine.into(),
        consensus_height: round.map_or(head.height + 1, |r| r.height),
        consensus_round: round.map_or(0, |r| r.round),
        proposer: round.and_then(|r| r.proposer).map_or_else(|| shard.node_key().0.to_vec(), |p| p.0.to_vec()),
        round_changes: round.map_or(0, |r| r.round_changes),
        validators: shard.genesis().validators.len() as u32,
        chain_id: shard.domain().chain.0,
        shard_id: shard.domain().shard.0,
        symbol: shard.genesis().market.symbol.clone(),
        height: head.height,
        state_root: head.state_root.to_vec(),
        block_hash: head.hash.to_vec(),
        mempool_txs: shard.mempool_len() as u32,
        node_key: shard.node_key().0.to_vec(),
        oldest_provable_height: shard.view().oldest_provable_height(),
        role: shard.config().role.as_str().into(),
        snapshot_base: shard.view().snapshot_base().unwrap_or(0),
        oldest_block_height: shard.view().oldest_block().unwrap_or(1),
        blocks_staged: work.staged,
        stage_micros: work.stage_micros,
        blocks_written: work.written,
        write_micros: work.write_micros,
        head_cache_hits: cache.hits,
        head_cache_misses: cache.misses,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use shardex_core::{
        genesis::{Authorities, Genesis},
        Keypair,
    };

    use super::*;
    use crate::shard::{Shard, ShardConfig};

    /// On a runtime with one worker thread, a query waiting for the shard lock (held here by another thread,
    /// as a block's commit holds it) must leave the worker free: a timer due meanwhile fires first.
    #[test]
    fn a_query_waiting_for_the_shard_lock_leaves_the_runtime_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = shardex_service::storage::open_db(dir.path()).expect("db");
        let key = Keypair::from_seed([9; 32]);
        let other = Keypair::from_seed([8; 32]).account();
        let genesis = Genesis::example(Authorities { deposit: other, oracle: other, admin: other }, key.account());
        let node = NodeHandle::new(Shard::open(db, genesis, key, ShardConfig::default()).expect("open"));
        let rpc = ShardRpc::new(Arc::clone(&node), RpcLimits::default(), None);

        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let holder = std::thread::spawn({
            let node = Arc::clone(&node);
            move || {
                let _shard = node.shard();
                locked_tx.send(()).expect("signal");
                std::thread::sleep(Duration::from_millis(400));
            }
        });
        locked_rx.recv().expect("the lock is held");

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (timer_done, query_done) = runtime.block_on(async {
            let timer = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Instant::now()
            });
            let status = rpc.get_status(Request::new(pb::GetStatusRequest {})).await.expect("status");
            assert_eq!(status.into_inner().height, 0);
            let query_done = Instant::now();
            (timer.await.expect("timer"), query_done)
        });
        holder.join().expect("holder");
        assert!(timer_done < query_done, "the query held the only worker thread while it waited for the lock");
    }
}
