//! Block production behind the consensus seam: `propose` seals the oldest open block (its txs already
//! executed at admission, in this block's context) and stages its state root; consensus decides it
//! (signatures); `apply` writes block, state and head in one atomic sled batch and flushes before anything
//! reports it final.

use std::sync::Arc;

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{
    block::encode_header,
    hash::ordered_root,
    pb,
    tx::{TxDomain, VerifiedTx},
    AccountId,
};
use tracing::debug;

use super::{Shard, ShardError};
use crate::{
    chain::{ChainStore, Head},
    mempool::OpenBlock,
    state::StateEngine,
    vm::{BlockCtx, Changes},
};

/// A candidate block with its staged writes, waiting for consensus.
pub struct Proposal {
    /// The header (post-state root included).
    pub header: pb::BlockHeader,
    /// Exact encoded header bytes; the block hash is their keccak256.
    pub header_bytes: Vec<u8>,
    /// Block hash.
    pub hash: B256,
    block: OpenBlock,
    batch: sled::Batch,
}

impl Proposal {
    /// The block's height and time.
    pub fn ctx(&self) -> BlockCtx {
        self.block.ctx
    }

    /// The block's txs, in execution order.
    pub fn txs(&self) -> &[VerifiedTx] {
        &self.block.txs
    }

    /// One receipt per tx.
    pub fn receipts(&self) -> &[pb::Receipt] {
        &self.block.receipts
    }

    /// The begin-block events.
    pub fn block_events(&self) -> &[pb::Event] {
        &self.block.block_events
    }

    /// Every state write of the block (`None` deletes).
    pub fn writes(&self) -> &Changes {
        &self.block.writes
    }
}

/// A block that is flushed and final.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block with its finality signatures and receipts.
    pub block: Arc<pb::Block>,
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: B256,
}

/// A sealed block: its txs, writes and receipts are final; what remains is staging its state root, which reads
/// only committed state and so runs without the shard lock while admission goes on into later blocks.
pub struct Sealed {
    block: OpenBlock,
    parent: Head,
    engine: StateEngine,
    domain: TxDomain,
    proposer: AccountId,
}

impl Shard {
    /// Seals the oldest open block, or None when nothing is pending. Its txs are not executed again:
    /// admission ran them in this block's context, in this order.
    pub fn seal(&mut self) -> Result<Option<Sealed>, ShardError> {
        let Some(block) = self.mempool.seal_front() else { return Ok(None) };
        let BlockCtx { height, timestamp_ms } = block.ctx;
        if height != self.head.height + 1 || timestamp_ms < self.head.timestamp_ms {
            return Err(ShardError::Inconsistent(format!(
                "open block at height {height}, time {timestamp_ms} does not follow head {} at {}",
                self.head.height, self.head.timestamp_ms
            )));
        }
        Ok(Some(Sealed {
            block,
            parent: self.head.clone(),
            engine: self.engine.clone(),
            domain: self.domain,
            proposer: self.key.account(),
        }))
    }

    /// [`Self::seal`] then [`Sealed::stage`], for callers that hold the shard alone.
    pub fn propose(&mut self) -> Result<Option<Proposal>, ShardError> {
        self.seal()?.map(Sealed::stage).transpose()
    }

    /// Commits a decided proposal: one atomic batch (state, block, receipts, tx index, head, pruning),
    /// flushed before returning. A storage error here is fatal for the node.
    pub fn apply(&mut self, proposal: Proposal, signatures: Vec<pb::HeaderSignature>) -> Result<Committed, ShardError> {
        let Proposal { header, header_bytes, hash, block: sealed, mut batch } = proposal;
        let height = header.height;
        if height != self.head.height + 1 || header.parent_hash != self.head.hash.as_slice() {
            return Err(ShardError::Inconsistent(format!(
                "proposal at height {height} does not extend head {} ({})",
                self.head.height, self.head.hash
            )));
        }
        let tx_hashes: Vec<B256> = sealed.txs.iter().map(VerifiedTx::hash).collect();
        let block = pb::Block {
            header: Some(pb::FinalizedHeader { header: header_bytes, signatures }),
            txs: sealed.txs.iter().map(|t| t.envelope().clone()).collect(),
            receipts: sealed.receipts,
            block_events: sealed.block_events,
        };
        self.chain.stage_block(&block, height, &tx_hashes, &mut batch);
        let pruned = self.engine.stage_prune(height, &mut batch)?;
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.head = ChainStore::head_of(&block)?;
        debug!(target: "shard::block", height, txs = tx_hashes.len(), hash = %hash, ?pruned, "committed");
        self.mempool.retire(&tx_hashes, self.config.mempool_max_txs.saturating_mul(4));
        Ok(Committed { block: Arc::new(block), height, hash })
    }
}

impl Sealed {
    /// Stages the block's state root and builds its header. Reads committed state only: the shard must not
    /// commit another block meanwhile (block production is sequential).
    pub fn stage(self) -> Result<Proposal, ShardError> {
        let Sealed { block, parent, engine, domain, proposer } = self;
        let BlockCtx { height, timestamp_ms } = block.ctx;
        let mut batch = sled::Batch::default();
        let state_root = engine.stage(height, &block.writes, &mut batch)?;
        let encoded_txs: Vec<Vec<u8>> = block.txs.iter().map(|t| t.envelope().encode_to_vec()).collect();
        let encoded_receipts: Vec<Vec<u8>> = block.receipts.iter().map(Message::encode_to_vec).collect();
        let encoded_events: Vec<Vec<u8>> = block.block_events.iter().map(Message::encode_to_vec).collect();
        let header = pb::BlockHeader {
            chain_id: domain.chain.0,
            shard_id: domain.shard.0,
            height,
            parent_hash: parent.hash.to_vec(),
            timestamp_ms,
            tx_root: ordered_root(&encoded_txs).to_vec(),
            receipts_root: ordered_root(&encoded_receipts).to_vec(),
            state_root: state_root.to_vec(),
            last_imported_epoch: 0,
            proposer: proposer.0.to_vec(),
            gas_used: block.gas,
            tx_count: block.txs.len() as u32,
            events_root: ordered_root(&encoded_events).to_vec(),
        };
        let (header_bytes, hash) = encode_header(&header);
        Ok(Proposal { header, header_bytes, hash, block, batch })
    }
}
