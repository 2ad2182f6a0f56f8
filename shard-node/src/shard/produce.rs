//! Block production behind the consensus seam: `propose` executes the mempool's head into a candidate
//! block and stages its state; consensus decides it (signatures); `apply` writes block, state and head
//! in one atomic sled batch and flushes before anything reports it final.

use std::sync::Arc;

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{block::encode_header, hash::ordered_root, pb, tx::VerifiedTx};
use tracing::{debug, warn};

use super::{HeadState, Reject, Shard, ShardError};
use crate::{
    chain::ChainStore,
    mempool::PendingTx,
    vm::{begin_block, execute, BlockCtx, Changes, TxScope},
};

/// A candidate block with its staged writes, waiting for consensus.
pub struct Proposal {
    /// The header (post-state root included).
    pub header: pb::BlockHeader,
    /// Exact encoded header bytes; the block hash is their keccak256.
    pub header_bytes: Vec<u8>,
    /// Block hash.
    pub hash: B256,
    txs: Vec<VerifiedTx>,
    receipts: Vec<pb::Receipt>,
    block_events: Vec<pb::Event>,
    batch: sled::Batch,
    consumed: usize,
    dropped: Vec<(B256, Reject)>,
    begin_block_wrote: bool,
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

impl Shard {
    /// Builds the next block from the mempool's oldest txs, or None when nothing is pending.
    pub fn propose(&mut self, now_ms: u64) -> Result<Option<Proposal>, ShardError> {
        if self.mempool.is_empty() {
            return Ok(None);
        }
        let height = self.head.height + 1;
        let timestamp_ms = now_ms.max(self.head.timestamp_ms);
        let ctx = BlockCtx { height, timestamp_ms };
        let base = HeadState(&self.engine);
        let mut changes = Changes::new();
        let mut scope = TxScope::new(&base, &changes);
        let block_events = begin_block(&mut scope, &ctx).map_err(ShardError::Exec)?;
        let writes = scope.into_writes();
        let begin_block_wrote = !writes.is_empty();
        changes.extend(writes);
        let (mut txs, mut receipts, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
        let (mut gas_used, mut consumed) = (0u64, 0usize);

        for PendingTx { tx, gas } in self.mempool.iter() {
            if txs.len() >= self.config.max_block_txs || gas_used.saturating_add(*gas) > self.config.block_gas_limit {
                break;
            }
            consumed += 1;
            let mut scope = TxScope::new(&base, &changes);
            match execute(&mut scope, &self.params, tx, &ctx) {
                Ok(outcome) => {
                    let writes = scope.into_writes();
                    changes.extend(writes);
                    gas_used += outcome.gas_used;
                    receipts.push(pb::Receipt {
                        tx_hash: tx.hash().to_vec(),
                        index: txs.len() as u32,
                        gas_used: outcome.gas_used,
                        events: outcome.events,
                    });
                    txs.push(tx.clone());
                }
                Err(e) if e.is_fatal() => return Err(ShardError::Exec(e)),
                Err(e) => {
                    warn!(target: "shard::block", tx = %tx.hash(), error = %e, "admitted tx failed in block execution; dropped");
                    dropped.push((tx.hash(), Reject::from(&e)));
                }
            }
        }

        if consumed == 0 {
            // Admission refuses any tx larger than a block, so this means limits changed under us.
            warn!(target: "shard::block", pending = self.mempool.len(), "oldest pending tx does not fit an empty block");
            return Ok(None);
        }
        let mut batch = sled::Batch::default();
        let state_root = self.engine.stage(height, &changes, &mut batch)?;
        let encoded_txs: Vec<Vec<u8>> = txs.iter().map(|t| t.envelope().encode_to_vec()).collect();
        let encoded_receipts: Vec<Vec<u8>> = receipts.iter().map(Message::encode_to_vec).collect();
        let header = pb::BlockHeader {
            chain_id: self.domain.chain.0,
            shard_id: self.domain.shard.0,
            height,
            parent_hash: self.head.hash.to_vec(),
            timestamp_ms,
            tx_root: ordered_root(&encoded_txs).to_vec(),
            receipts_root: ordered_root(&encoded_receipts).to_vec(),
            state_root: state_root.to_vec(),
            last_imported_epoch: 0,
            proposer: self.key.account().0.to_vec(),
            gas_used,
            tx_count: txs.len() as u32,
            events_root: ordered_root(&block_events.iter().map(Message::encode_to_vec).collect::<Vec<_>>()).to_vec(),
        };
        let (header_bytes, hash) = encode_header(&header);
        Ok(Some(Proposal {
            header,
            header_bytes,
            hash,
            txs,
            receipts,
            block_events,
            batch,
            consumed,
            dropped,
            begin_block_wrote,
        }))
    }

    /// Commits a decided proposal: one atomic batch (state, block, receipts, tx index, head, pruning),
    /// flushed before returning. A storage error here is fatal for the node.
    pub fn apply(&mut self, proposal: Proposal, signatures: Vec<pb::HeaderSignature>) -> Result<Committed, ShardError> {
        let Proposal {
            header,
            header_bytes,
            hash,
            txs,
            receipts,
            block_events,
            mut batch,
            consumed,
            dropped,
            begin_block_wrote,
        } = proposal;
        let height = header.height;
        let tx_hashes: Vec<B256> = txs.iter().map(VerifiedTx::hash).collect();
        let block = pb::Block {
            header: Some(pb::FinalizedHeader { header: header_bytes, signatures }),
            txs: txs.iter().map(|t| t.envelope().clone()).collect(),
            receipts,
            block_events,
        };
        self.chain.stage_block(&block, height, &tx_hashes, &mut batch);
        let pruned = self.engine.stage_prune(height, &mut batch)?;
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.head = ChainStore::head_of(&block)?;
        debug!(target: "shard::block", height, txs = txs.len(), hash = %hash, ?pruned, "committed");

        self.retire(consumed, dropped, begin_block_wrote)?;
        Ok(Committed { block: Arc::new(block), height, hash })
    }

    /// Removes the consumed prefix from the mempool. When block execution matched admission (no drops),
    /// the remaining txs' speculative state is still exact; otherwise it is rebuilt by re-admission.
    fn retire(
        &mut self,
        consumed: usize,
        dropped: Vec<(B256, Reject)>,
        begin_block_wrote: bool,
    ) -> Result<(), ShardError> {
        // Begin-block writes (funding, rule-driven modes) are not in the speculative state the remaining txs
        // were admitted on, so it no longer matches the head: rebuild it then too.
        let rebuild = !dropped.is_empty()
            || begin_block_wrote
            || self.mempool.changes().len() > self.config.mempool_max_txs.saturating_mul(4);
        for (hash, reject) in &dropped {
            self.rejected.record(*hash, reject.reason.as_str(), &reject.message);
        }
        if !rebuild {
            self.mempool.pop_front(consumed);
            return Ok(());
        }
        let remaining: Vec<PendingTx> = self.mempool.drain().into_iter().skip(consumed).collect();
        let now_ms = self.head.timestamp_ms;
        for pending in remaining {
            let hash = pending.tx.hash();
            if let Err(reject) = self.admit(pending.tx, now_ms)? {
                debug!(target: "shard::mempool", tx = %hash, %reject, "dropped on re-admission");
            }
        }
        Ok(())
    }
}
