//! The relayer's reads and txs over gRPC: coordinator inclusions (verified), imports, and the deliver, ack
//! and refund ops with the proofs and the certified header they carry — the same ops the in-process bridge
//! tests build, read from real nodes. Every proof is read at the height the epoch's entry commits (inside
//! the shard's retention window; an older one fails and the next pass uses a newer epoch), and the header
//! is that height's, checked against the shard's genesis validator set as the VM will check it.

use std::collections::HashMap;

use prost::Message;
use shardex_client::{CoordinatorClient, ShardClient, Wallet};
use shardex_core::{
    bridge::{ack_id, message_id, verify_certified_entry},
    coordpb,
    global::{verify_epoch, verify_shard_inclusion},
    pb::{self, tx_body::Op},
    state_key::Namespace,
    validators::ValidatorSet,
    AccountId, Bytes, ChainId, Keypair, ShardId, B256,
};

use crate::{
    error::{remote, RelayerError, Result},
    lifecycle::MessageId,
};

/// Most coordinator inclusions cached (by epoch and shard).
pub const MAX_CACHED_INCLUSIONS: usize = 512;

/// A verified inclusion: the signed epoch, the shard's entry and its proof.
#[derive(Debug, Clone)]
pub struct Inclusion {
    /// The signed epoch (what an import carries).
    pub epoch: coordpb::SignedEpoch,
    /// The shard's entry.
    pub entry: coordpb::ShardEntry,
    /// Its proof under the global root.
    pub proof: Vec<Vec<u8>>,
    /// The shard's `last_imported_epoch` in the committed header.
    pub header_imported: u64,
    /// The finalized header the coordinator served with the entry (its certificate not yet checked:
    /// [`certified_header`] does, against the shard's genesis validator set).
    pub header: Option<pb::FinalizedHeader>,
}

/// The coordinator side: verified inclusions, cached.
#[derive(Debug)]
pub struct Coordinator {
    endpoint: String,
    key: AccountId,
    chain: ChainId,
    client: Option<CoordinatorClient>,
    cache: HashMap<(u64, ShardId), Option<Inclusion>>,
}

impl Coordinator {
    /// A coordinator at `endpoint` trusted under `key`.
    pub fn new(endpoint: String, key: AccountId, chain: ChainId) -> Self {
        Self { endpoint, key, chain, client: None, cache: HashMap::new() }
    }

    async fn client(&mut self) -> Result<CoordinatorClient> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c =
            CoordinatorClient::connect(&self.endpoint).await.map_err(remote(format!("connect {}", self.endpoint)))?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// `shard`'s entry in `epoch`, verified; None when the epoch does not hold the shard.
    pub async fn inclusion(&mut self, epoch: u64, shard: ShardId) -> Result<Option<Inclusion>> {
        if let Some(hit) = self.cache.get(&(epoch, shard)) {
            return Ok(hit.clone());
        }
        let client = self.client().await?;
        let found = match client.inclusion(epoch, shard.0).await {
            Ok(inc) => Some(self.verify(inc, epoch, shard)?),
            Err(e) if e.code() == Some(tonic::Code::NotFound) => None,
            Err(e) => return Err(remote(format!("GetShardInclusion({epoch}, {shard})"))(e)),
        };
        if self.cache.len() >= MAX_CACHED_INCLUSIONS {
            self.cache.clear();
        }
        self.cache.insert((epoch, shard), found.clone());
        Ok(found)
    }

    fn verify(&self, inc: coordpb::ShardInclusion, epoch: u64, shard: ShardId) -> Result<Inclusion> {
        let bad = |m: String| RelayerError::Protocol(format!("inclusion of shard {shard} in epoch {epoch}: {m}"));
        let signed = inc.epoch.ok_or_else(|| bad("no epoch".into()))?;
        let entry = inc.entry.ok_or_else(|| bad("no entry".into()))?;
        let verified = verify_epoch(&signed, &self.key, self.chain).map_err(|e| bad(e.to_string()))?;
        if verified.record.number != epoch || entry.shard_id != shard.0 {
            return Err(bad("answer is for another epoch or shard".into()));
        }
        let nodes: Vec<Bytes> = inc.proof.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        verify_shard_inclusion(&verified, &entry, &nodes).map_err(|e| bad(e.to_string()))?;
        let header_imported = inc
            .header
            .as_ref()
            .and_then(|fh| shardex_core::block::decode_header(fh).ok())
            .filter(|h| h.hash.as_slice() == entry.block_hash.as_slice())
            .map_or(0, |h| h.header.last_imported_epoch);
        Ok(Inclusion { epoch: signed, entry, proof: inc.proof, header_imported, header: inc.header })
    }
}

/// A shard with the relayer's wallet on it.
pub struct Submitter {
    /// The shard's client.
    pub client: ShardClient,
    wallet: Option<Wallet>,
    key: Keypair,
}

impl std::fmt::Debug for Submitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitter").field("shard", &self.client.domain().shard).finish()
    }
}

impl Submitter {
    /// The relayer's `key` on `client`'s shard.
    pub fn new(client: ShardClient, key: Keypair) -> Self {
        Self { client, wallet: None, key }
    }

    /// Signs and submits `op`; a nonce refusal drops the wallet so the next tx resyncs from the chain.
    pub async fn submit(&mut self, what: &str, op: Op) -> Result<B256> {
        if self.wallet.is_none() {
            let w = Wallet::new(self.key.clone(), &self.client).await.map_err(remote("GetAccount (nonce)"))?;
            self.wallet = Some(w);
        }
        let Some(wallet) = self.wallet.as_mut() else { return Err(RelayerError::Protocol("no wallet".into())) };
        let res = wallet.submit(&self.client, op).await;
        if let Err(e) = &res {
            if e.reason().is_some_and(|r| r.as_str().starts_with("NONCE")) {
                self.wallet = None;
            }
        }
        res.map_err(remote(format!("{what} on shard {}", self.client.domain().shard)))
    }
}

/// The import op of a signed epoch.
pub fn import_op(signed: &coordpb::SignedEpoch) -> Op {
    Op::ImportGlobalCommitment(pb::ImportGlobalCommitment {
        epoch_record: signed.record.clone(),
        signature: signed.signature.clone(),
    })
}

/// The proven value of record (`ns`, `id`) on `client` at `height`, with its proof nodes.
async fn proven(
    client: &ShardClient,
    ns: Namespace,
    id: &[u8],
    height: u64,
) -> Result<(Vec<Vec<u8>>, Option<Vec<u8>>)> {
    let (proof, value) = client
        .prove(ns, id, height)
        .await
        .map_err(remote(format!("GetProof({ns:?}) at height {height} on shard {}", client.domain().shard)))?;
    if proof.height != height {
        return Err(RelayerError::Protocol(format!("proof at height {} instead of {height}", proof.height)));
    }
    Ok((proof.nodes, value.filter(|v| !v.is_empty())))
}

/// The latest epoch imported on `client`'s shard (0: none), read at its head.
pub async fn imported_at_head(client: &ShardClient) -> Result<u64> {
    let (_, value) = proven(client, Namespace::ImportedCommitment, &[], 0).await?;
    decode_imported(value.as_deref())
}

fn decode_imported(value: Option<&[u8]>) -> Result<u64> {
    value.map_or(Ok(0), |v| {
        pb::ImportedCommitmentRecord::decode(v)
            .map(|r| r.epoch)
            .map_err(|e| RelayerError::Protocol(format!("imported commitment record: {e}")))
    })
}

/// The finalized header of `client`'s shard at the block `inc` commits, certified by `validators` (the
/// shard's genesis set): the one the coordinator served with the inclusion when it checks out, else the
/// shard's own `GetHeader` at the entry's height. Every deliver, ack and refund carries it, and the VM checks
/// it exactly so (`core::bridge::verify_certified_entry`), so a header refused here is never submitted.
pub async fn certified_header(
    client: &ShardClient,
    validators: &ValidatorSet,
    inc: &Inclusion,
) -> Result<pb::FinalizedHeader> {
    let (chain, shard) = (client.domain().chain, client.domain().shard);
    let check = |fh: &pb::FinalizedHeader| verify_certified_entry(&inc.entry, Some(fh), chain, shard, validators);
    if let Some(fh) = inc.header.as_ref().filter(|fh| check(fh).is_ok()) {
        return Ok(fh.clone());
    }
    let height = inc.entry.height;
    let fh = client.header(height).await.map_err(remote(format!("GetHeader({height}) on shard {shard}")))?;
    check(&fh).map_err(|e| RelayerError::Protocol(format!("header {height} of shard {shard}: {e}")))?;
    Ok(fh)
}

/// The deliver op of `id`, proven under `inc` (the source's entry) and carrying `header` (the source's
/// certified header of that block, [`certified_header`]); None when the source state at that height holds
/// no such message.
pub async fn deliver_op(
    src: &ShardClient,
    id: MessageId,
    epoch: u64,
    inc: &Inclusion,
    header: pb::FinalizedHeader,
) -> Result<Option<Op>> {
    let (nodes, value) = proven(src, Namespace::Outbox, &message_id(id.dst, id.seq), inc.entry.height).await?;
    let Some(value) = value else { return Ok(None) };
    let message = pb::OutboxMessage::decode(value.as_slice())
        .map_err(|e| RelayerError::Protocol(format!("outbox record of {id}: {e}")))?;
    Ok(Some(Op::DeliverMessage(pb::DeliverMessage {
        message: Some(message),
        src_entry: inc.entry.encode_to_vec(),
        message_proof: nodes,
        header_proof: inc.proof.clone(),
        epoch,
        src_header: Some(header),
    })))
}

/// The ack op of `id`, proven under `inc` (the destination's entry) and carrying `header` (the
/// destination's certified header of that block); None when the ack is not there yet.
pub async fn ack_op(
    dst: &ShardClient,
    id: MessageId,
    epoch: u64,
    inc: &Inclusion,
    header: pb::FinalizedHeader,
) -> Result<Option<Op>> {
    let (nodes, value) = proven(dst, Namespace::Outbox, &ack_id(id.src, id.seq), inc.entry.height).await?;
    let Some(value) = value else { return Ok(None) };
    let ack =
        pb::OutboxMessage::decode(value.as_slice()).map_err(|e| RelayerError::Protocol(format!("ack of {id}: {e}")))?;
    Ok(Some(Op::AckMessage(pb::AckMessage {
        ack: Some(ack),
        dst_entry: inc.entry.encode_to_vec(),
        ack_proof: nodes,
        header_proof: inc.proof.clone(),
        epoch,
        dst_header: Some(header),
    })))
}

/// What the destination state under an epoch says about a refund.
#[derive(Debug)]
pub enum RefundProof {
    /// Provable: the op.
    Ready(Op),
    /// The receipt is there: the message was delivered.
    Delivered,
    /// The destination's import at that height is not past the expiry.
    NotExpired(u64),
}

/// The refund op of `id` (expiring at `expiry`), proven under `inc` (the destination's entry) and carrying
/// `header` (the destination's certified header of that block).
pub async fn refund_op(
    dst: &ShardClient,
    id: MessageId,
    expiry: u64,
    epoch: u64,
    inc: &Inclusion,
    header: pb::FinalizedHeader,
) -> Result<RefundProof> {
    let h = inc.entry.height;
    let (receipt_nodes, receipt) = proven(dst, Namespace::InboxReceipt, &message_id(id.src, id.seq), h).await?;
    if receipt.is_some() {
        return Ok(RefundProof::Delivered);
    }
    let (imported_nodes, imported) = proven(dst, Namespace::ImportedCommitment, &[], h).await?;
    let number = decode_imported(imported.as_deref())?;
    if number <= expiry {
        return Ok(RefundProof::NotExpired(number));
    }
    Ok(RefundProof::Ready(Op::TimeoutRefund(pb::TimeoutRefund {
        dst_shard: id.dst.0,
        seq: id.seq,
        dst_entry: inc.entry.encode_to_vec(),
        non_receipt_proof: receipt_nodes,
        header_proof: inc.proof.clone(),
        epoch,
        dst_imported: imported.unwrap_or_default(),
        imported_proof: imported_nodes,
        dst_header: Some(header),
    })))
}
