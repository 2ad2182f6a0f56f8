//! A connection to one shard node.

use std::time::Duration;

use shardex_core::{
    hash::b256_from_slice,
    history::{verify_history_page, HistoryItem},
    ledger::{verify_ledger_response, VerifiedLedger},
    pb,
    proof::{verify_account_response, verify_returned_record, VerifiedAccount},
    tx::TxDomain,
    validators::ValidatorSet,
    AccountId, ChainId, ShardId, B256,
};
use shardex_proto::shard::v1::shard_service_client::ShardServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{ClientError, Result};

/// Checks the position and account proofs of a `GetPositionResponse` against its state root and that the
/// records returned are the proven ones.
fn verify_position_response(resp: &pb::GetPositionResponse, account: &AccountId) -> Result<()> {
    use shardex_core::state_key;
    let (root, height) = (resp.state_root.as_slice(), resp.height);
    let key = state_key::position_key(account);
    verify_returned_record(resp.position_proof.as_ref(), key, resp.position.as_ref(), root, height)?;
    let key = state_key::account_key(account);
    verify_returned_record(resp.account_proof.as_ref(), key, resp.account.as_ref(), root, height)?;
    Ok(())
}

/// Default deadline of one unary call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often `wait_final` polls tx status.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Largest response decoded, bytes (history pages and blocks are the big ones).
pub(crate) const MAX_RESPONSE_BYTES: usize = shardex_core::block::MAX_CLIENT_RESPONSE_BYTES;

/// A channel to `endpoint` with the SDK's connect and call timeouts.
pub(crate) async fn connect_channel(endpoint: &str) -> Result<Channel> {
    let err =
        |e: &dyn std::fmt::Display| ClientError::Connect { endpoint: endpoint.to_owned(), message: e.to_string() };
    Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| err(&e))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(DEFAULT_CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| err(&e))
}

/// A client of one shard node; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShardClient {
    rpc: ShardServiceClient<Channel>,
    domain: TxDomain,
    endpoint: String,
}

/// How long a submission is retried while the shard's validators have no reachable proposer (a leader
/// failed and the next round has not started; with the default timeouts this lasts about a second).
pub const NO_LEADER_RETRY: Duration = Duration::from_secs(3);

impl ShardClient {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:7100`) and learns its chain and shard.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let channel = connect_channel(endpoint).await?;
        let mut rpc = ShardServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        let status = rpc.get_status(pb::GetStatusRequest {}).await?.into_inner();
        let domain = TxDomain { chain: ChainId(status.chain_id), shard: ShardId(status.shard_id) };
        Ok(Self { rpc, domain, endpoint: endpoint.to_owned() })
    }

    /// The chain and shard of the node.
    pub fn domain(&self) -> TxDomain {
        self.domain
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The raw generated gRPC client, for calls the SDK does not wrap.
    pub fn raw(&self) -> ShardServiceClient<Channel> {
        self.rpc.clone()
    }

    /// Node status: head, mempool, keys.
    pub async fn status(&self) -> Result<pb::NodeStatus> {
        Ok(self.rpc.clone().get_status(pb::GetStatusRequest {}).await?.into_inner())
    }

    /// Submits one signed tx; returns its hash once admitted to the mempool. While the shard's validators
    /// have no reachable proposer (`NO_LEADER`: a round is changing), retries for up to [`NO_LEADER_RETRY`].
    pub async fn submit(&self, tx: pb::SignedTx) -> Result<B256> {
        let res =
            self.while_no_leader(|| async { Ok(self.rpc.clone().submit_tx(tx.clone()).await?.into_inner()) }).await?;
        b256_from_slice(&res.tx_hash).ok_or_else(|| ClientError::Protocol("tx hash is not 32 bytes".into()))
    }

    /// Submits a batch; one result per tx. Retries on `NO_LEADER` like [`Self::submit`].
    pub async fn submit_batch(&self, txs: Vec<pb::SignedTx>) -> Result<Vec<pb::SubmitResult>> {
        self.while_no_leader(|| async {
            let req = pb::SubmitBatchRequest { txs: txs.clone() };
            Ok(self.rpc.clone().submit_batch(req).await?.into_inner().results)
        })
        .await
    }

    /// Runs `call` again every 50 ms while it is refused with `NO_LEADER`, for up to [`NO_LEADER_RETRY`].
    /// Resubmitting is safe: a tx the shard already took is refused as a duplicate, never taken twice.
    async fn while_no_leader<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = tokio::time::Instant::now() + NO_LEADER_RETRY;
        loop {
            match call().await {
                Err(e)
                    if e.reason() == Some(shardex_core::Reason::NoLeader) && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// The status of a tx.
    pub async fn tx_status(&self, hash: B256) -> Result<pb::TxStatus> {
        Ok(self.rpc.clone().get_tx_status(pb::GetTxStatusRequest { tx_hash: hash.to_vec() }).await?.into_inner())
    }

    /// Waits until `hash` is in a flushed block (or rejected, or `timeout` passes).
    pub async fn wait_final(&self, hash: B256, timeout: Duration) -> Result<pb::tx_status::Included> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.tx_status(hash).await?.status {
                Some(pb::tx_status::Status::Included(inc)) => return Ok(inc),
                Some(pb::tx_status::Status::Rejected(r)) => {
                    return Err(ClientError::Rejected {
                        code: tonic::Code::FailedPrecondition,
                        reason: r.reason.parse().ok(),
                        message: r.message,
                    })
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(timeout, format!("tx {hash} to be final")));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The account record at the head (None when it has none), without proof.
    pub async fn account(&self, account: &AccountId) -> Result<Option<pb::AccountRecord>> {
        let req = pb::GetAccountRequest { account: account.0.to_vec(), prove: false, height: 0 };
        Ok(self.rpc.clone().get_account(req).await?.into_inner().account)
    }

    /// The account record at `height` (0 = head) with its MPT proof verified locally; with `validators`,
    /// the header carrying the state root is checked to be signed by a quorum of them.
    pub async fn account_proven(
        &self,
        account: &AccountId,
        height: u64,
        validators: Option<&ValidatorSet>,
    ) -> Result<VerifiedAccount> {
        let req = pb::GetAccountRequest { account: account.0.to_vec(), prove: true, height };
        let resp = self.rpc.clone().get_account(req).await?.into_inner();
        Ok(verify_account_response(&resp, account, self.domain.chain, self.domain.shard, validators)?)
    }

    /// Market record, ledger totals and pools at the head, as the node returns them (unverified: use
    /// [`ShardClient::ledger`] for the proven records).
    pub async fn market(&self, prove: bool) -> Result<pb::GetMarketResponse> {
        Ok(self.rpc.clone().get_market(pb::GetMarketRequest { prove, height: 0 }).await?.into_inner())
    }

    /// The ledger totals and the pools at `height` (0 = head), with the market record, each checked here
    /// against its MPT proof under one state root; with `validators` (the genesis set), that root is checked
    /// to be carried by a header they finalized. `VerifiedLedger::check_conservation` then checks the shard's
    /// conservation identity on them.
    pub async fn ledger(&self, height: u64, validators: Option<&ValidatorSet>) -> Result<VerifiedLedger> {
        let resp = self.rpc.clone().get_market(pb::GetMarketRequest { prove: true, height }).await?.into_inner();
        if height != 0 && resp.height != height {
            return Err(ClientError::Protocol(format!("asked for height {height}, the node answered {}", resp.height)));
        }
        Ok(verify_ledger_response(&resp, self.domain.chain, self.domain.shard, validators)?)
    }

    /// Position, collateral, open-order totals and margin health; with `prove`, proofs of the position and
    /// account records are checked against the returned state root here.
    pub async fn position(&self, account: &AccountId, prove: bool) -> Result<pb::GetPositionResponse> {
        let req = pb::GetPositionRequest { account: account.0.to_vec(), prove };
        let resp = self.rpc.clone().get_position(req).await?.into_inner();
        if prove {
            verify_position_response(&resp, account)?;
        }
        Ok(resp)
    }

    /// On an options market: the Greeks of `account`'s option positions and their sums at the head.
    pub async fn greeks(&self, account: &AccountId) -> Result<pb::GetGreeksResponse> {
        let req = pb::GetGreeksRequest { account: account.0.to_vec() };
        Ok(self.rpc.clone().get_greeks(req).await?.into_inner())
    }

    /// Any state record by namespace and id at `height` (0 = head), its MPT proof verified here against the
    /// state root the node names. Returns the proof (with that root and height) and the proven value.
    pub async fn prove(
        &self,
        namespace: shardex_core::state_key::Namespace,
        id: &[u8],
        height: u64,
    ) -> Result<(pb::StateProof, Option<Vec<u8>>)> {
        let req = pb::GetProofRequest { namespace: namespace as u32, id: id.to_vec(), height };
        let proof = self.rpc.clone().get_proof(req).await?.into_inner();
        let value = shardex_core::proof::verify_pb_proof(&proof, shardex_core::state_key::leaf_key(namespace, id))?;
        Ok((proof, value))
    }

    /// The account's resting orders.
    pub async fn open_orders(&self, account: &AccountId) -> Result<Vec<pb::OrderRecord>> {
        let req = pb::GetOpenOrdersRequest { account: account.0.to_vec() };
        Ok(self.rpc.clone().get_open_orders(req).await?.into_inner().orders)
    }

    /// The best `levels` price levels per side.
    pub async fn book(&self, levels: u32) -> Result<pb::GetBookResponse> {
        Ok(self.rpc.clone().get_book(pb::GetBookRequest { levels }).await?.into_inner())
    }

    /// One page of history from `from` (height, index within it): the receipts with events of `account`, or
    /// (None) the market's begin-block events (funding, rule-driven mode changes). Every entry is proven here
    /// against a header signed by a quorum of `validators`.
    pub async fn history(
        &self,
        account: Option<&AccountId>,
        from: HistoryPos,
        limit: u32,
        validators: &ValidatorSet,
    ) -> Result<HistoryPage> {
        let req = pb::GetHistoryRequest {
            account: account.map(|a| a.0.to_vec()).unwrap_or_default(),
            from_height: from.height,
            from_index: from.index,
            limit,
            prove: true,
        };
        let page = self.rpc.clone().get_history(req).await?.into_inner();
        let items = verify_history_page(&page, account, self.domain.chain, self.domain.shard, validators)?;
        let next = page.more.then_some(HistoryPos { height: page.next_height, index: page.next_index });
        Ok(HistoryPage { items, next, head_height: page.head_height })
    }

    /// Message `seq` exchanged with `peer`, as this shard sees it: as its source (`incoming` false: escrow
    /// state and outbox message) or its destination (true: inbox receipt and ack). With `prove`, the records
    /// are checked here against the proofs and, given `validators`, the state root against a finalized header.
    pub async fn message(
        &self,
        peer: ShardId,
        seq: u64,
        incoming: bool,
        prove: bool,
        validators: Option<&ValidatorSet>,
    ) -> Result<pb::GetMessageResponse> {
        let req = pb::GetMessageRequest { peer_shard: peer.0, seq, incoming, prove };
        let resp = self.rpc.clone().get_message(req).await?.into_inner();
        if prove {
            shardex_core::bridge::verify_message_response(
                &resp,
                self.domain.chain,
                self.domain.shard,
                peer,
                seq,
                incoming,
                validators,
            )?;
        }
        Ok(resp)
    }

    /// The block at `height`.
    pub async fn block(&self, height: u64) -> Result<pb::Block> {
        Ok(self.rpc.clone().get_block(pb::GetBlockRequest { height }).await?.into_inner())
    }

    /// The finalized header at `height`, as served (check it with `core::block::verify_finalized`).
    pub async fn header(&self, height: u64) -> Result<pb::FinalizedHeader> {
        Ok(self.rpc.clone().get_header(pb::GetBlockRequest { height }).await?.into_inner())
    }
}

/// A position in the history: a block height and an index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryPos {
    /// Block height.
    pub height: u64,
    /// Receipt (account history) or begin-block event (market history) index.
    pub index: u32,
}

/// A proven page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The entries, oldest first.
    pub items: Vec<HistoryItem>,
    /// Where the next page starts; None when the history up to `head_height` is exhausted.
    pub next: Option<HistoryPos>,
    /// The head the page was read at.
    pub head_height: u64,
}
