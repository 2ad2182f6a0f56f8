//! Block production behind the consensus seam, in phases so that the shard lock is held only to seal and to
//! finish: `seal` takes the oldest open block (its txs already executed at admission, in this block's
//! context); `Sealed::stage` computes its state root; consensus decides it (signatures);
//! `Proposal::write` puts block, state, indexes and pruning in one atomic sled batch and flushes it; only
//! then does `Shard::finish` move the head, so nothing reports the block before it is durable.
//!
//! Staging and writing run without the shard lock: they read committed state only, and the sealed block's
//! writes stay in the pending overlay until `finish`, so admission into later blocks reads the same values
//! before and after the batch lands. Queries that read committed state take the node's commit gate (see
//! `runtime`), which `write` + `finish` hold exclusively, so they never see the new state under the old head.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Instant,
};

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{
    block::{encode_header, Certificate},
    hash::ordered_root,
    pb,
    tx::{TxDomain, VerifiedTx},
    AccountId,
};
use tracing::debug;

use super::{CachedHead, Shard, ShardError};
use crate::{
    chain::{ChainStore, Head},
    mempool::{Mempool, OpenBlock},
    state::StateEngine,
};
use shardex_vm::{begin_block, BlockCtx, Changes, TxScope};

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
    parent: Head,
    store: CommitStore,
    origin: Origin,
}

/// Where a proposal comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Sealed from this node's mempool: committing it retires the front sealed block.
    Sealed,
    /// Rebuilt from another validator's block: committing it re-admits whatever this node had pending.
    Rebuilt,
}

/// The storage handles a block is written with, cloned from the shard at seal time.
#[derive(Clone)]
pub(super) struct CommitStore {
    db: sled::Db,
    tree: sled::Tree,
    engine: StateEngine,
    chain: ChainStore,
    /// Blocks kept (0: all).
    keep_blocks: u64,
    timings: Arc<BlockTimings>,
}

/// Blocks staged and written by this node since it started, and the time that took: shared by every
/// [`CommitStore`] of a shard, counted without its lock.
#[derive(Debug, Default)]
pub(super) struct BlockTimings {
    staged: AtomicU64,
    stage_micros: AtomicU64,
    written: AtomicU64,
    write_micros: AtomicU64,
}

impl BlockTimings {
    fn count(count: &AtomicU64, micros: &AtomicU64, since: Instant) {
        count.fetch_add(1, Ordering::Relaxed);
        let elapsed = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        micros.fetch_add(elapsed, Ordering::Relaxed);
    }

    pub(super) fn work(&self) -> BlockWork {
        BlockWork {
            staged: self.staged.load(Ordering::Relaxed),
            stage_micros: self.stage_micros.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            write_micros: self.write_micros.load(Ordering::Relaxed),
        }
    }
}

/// Block work of a node since it started (see [`Shard::block_work`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockWork {
    /// State roots staged: this node's proposals and the blocks it re-executed.
    pub staged: u64,
    /// Time staging took, in total, µs (state root and header).
    pub stage_micros: u64,
    /// Blocks written and flushed.
    pub written: u64,
    /// Time writing took, in total, µs (the block's batch applied, pruning staged, flushed).
    pub write_micros: u64,
}

/// A block written and flushed, waiting for [`Shard::finish`] to move the head.
pub struct Written {
    committed: Committed,
    head: Head,
    parent: Head,
    tx_hashes: Vec<B256>,
    /// The block's state writes, for the head cache.
    writes: Arc<Changes>,
    origin: Origin,
}

impl Proposal {
    /// The block's height and time.
    pub fn ctx(&self) -> BlockCtx {
        self.block.ctx
    }

    /// Whether this node sealed it or rebuilt another validator's block.
    pub fn origin(&self) -> Origin {
        self.origin
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
    pub(super) block: OpenBlock,
    pub(super) parent: Head,
    pub(super) store: CommitStore,
    pub(super) domain: TxDomain,
    pub(super) proposer: AccountId,
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
        // How long the block was open, taking admitted txs: from its timestamp (fixed when it opened) to now.
        crate::metrics::block_built(crate::runtime::now_ms().saturating_sub(timestamp_ms));
        Ok(Some(self.sealed(block)))
    }

    fn sealed(&self, block: OpenBlock) -> Sealed {
        Sealed {
            block,
            parent: self.head.clone(),
            store: self.commit_store(),
            domain: self.domain,
            proposer: self.key.account(),
        }
    }

    pub(super) fn commit_store(&self) -> CommitStore {
        CommitStore {
            db: self.db.clone(),
            tree: self.tree.clone(),
            engine: self.engine.clone(),
            chain: self.chain.clone(),
            keep_blocks: self.config.keep_blocks,
            timings: Arc::clone(&self.timings),
        }
    }

    /// Blocks this node staged and wrote since it started, and the time that took.
    pub fn block_work(&self) -> BlockWork {
        self.timings.work()
    }

    /// Seals a block without txs at `now_ms` (its begin-block work only): what a proposer with nothing
    /// admitted proposes. None while blocks are open or sealed (seal those instead).
    pub fn seal_empty(&mut self, now_ms: u64) -> Result<Option<Sealed>, ShardError> {
        if self.mempool.open_blocks() > 0 || !self.mempool.layers().is_empty() {
            return Ok(None);
        }
        let ctx = self.mempool.next_ctx(now_ms);
        let base = CachedHead::new(&self.engine, &self.cache, self.head.height);
        let mut begin = TxScope::over(&base, Vec::new());
        let block_events = begin_block(&mut begin, &ctx).map_err(ShardError::Exec)?;
        let writes = begin.into_writes();
        let block = self.mempool.seal_empty(ctx, block_events, writes);
        Ok(Some(self.sealed(block)))
    }

    /// [`Self::seal`] then [`Sealed::stage`], for callers that hold the shard alone.
    pub fn propose(&mut self) -> Result<Option<Proposal>, ShardError> {
        self.seal()?.map(Sealed::stage).transpose()
    }

    /// Commits a decided proposal: [`Proposal::write`] then [`Self::finish`], for callers that hold the shard
    /// alone. A storage error is fatal for the node.
    pub fn apply(&mut self, proposal: Proposal, certificate: Certificate) -> Result<Committed, ShardError> {
        let written = proposal.write(certificate)?;
        self.finish(written).map(|(committed, _)| committed)
    }

    /// Moves the head to a written block. Its txs leave the mempool: a block this node sealed retires the
    /// front sealed block; another validator's block makes everything pending here stale (it was executed
    /// on a head that is not the chain's), so the mempool is emptied and the txs it held that the block did
    /// not include are returned, in order, for the caller to send to the proposer or admit again.
    pub fn finish(&mut self, written: Written) -> Result<(Committed, Vec<VerifiedTx>), ShardError> {
        let Written { committed, head, parent, tx_hashes, writes, origin } = written;
        if parent != self.head {
            // Only the producer commits, so this is a bug, and the store is already ahead of memory.
            return Err(ShardError::Inconsistent(format!(
                "block {} was written on head {} but the head is now {}",
                committed.height, parent.height, self.head.height
            )));
        }
        self.head = head;
        super::lock_cache(&self.cache).apply(&writes, self.head.height);
        let orphans = match origin {
            Origin::Sealed => {
                self.mempool.retire(&tx_hashes);
                Vec::new()
            }
            Origin::Rebuilt => {
                let included: std::collections::HashSet<B256> = tx_hashes.into_iter().collect();
                let pending = self.mempool.drain();
                self.mempool = Mempool::new(self.config.pending_limits(), self.head.height, self.head.timestamp_ms);
                pending.into_iter().filter(|tx| !included.contains(&tx.hash())).collect()
            }
        };
        Ok((committed, orphans))
    }

    /// Admits `txs` again on the head, in order (after another validator's block emptied the mempool);
    /// those already included are dropped silently, those that fail now are refused (their reason is kept
    /// for status queries). Returns how many were taken.
    pub fn readmit(&mut self, txs: Vec<VerifiedTx>, now_ms: u64) -> Result<usize, ShardError> {
        let mut taken = 0;
        for tx in txs {
            if self.chain.tx_location(&tx.hash())?.is_some() {
                continue;
            }
            if self.admit(tx, now_ms)?.is_ok() {
                taken += 1;
            }
        }
        Ok(taken)
    }
}

impl Proposal {
    /// Writes the decided block: one atomic batch (state, block, receipts, tx index, history indexes, head
    /// pointer, pruning), flushed before returning. Needs no shard lock (see the module docs).
    pub fn write(self, certificate: Certificate) -> Result<Written, ShardError> {
        let started = Instant::now();
        let Proposal { header, header_bytes, hash, block: sealed, mut batch, parent, store, origin } = self;
        let height = header.height;
        if height != parent.height + 1 || header.parent_hash != parent.hash.as_slice() {
            return Err(ShardError::Inconsistent(format!(
                "proposal at height {height} does not extend head {} ({})",
                parent.height, parent.hash
            )));
        }
        let tx_hashes: Vec<B256> = sealed.txs.iter().map(VerifiedTx::hash).collect();
        let block = pb::Block {
            header: Some(certificate.finalize(header_bytes)),
            txs: sealed.txs.iter().map(|t| t.envelope().clone()).collect(),
            receipts: sealed.receipts,
            block_events: sealed.block_events,
        };
        store.chain.stage_block(&block, height, &tx_hashes, &mut batch);
        let pruned = store.engine.stage_prune(height, &mut batch)?;
        let blocks_pruned = match store.keep_blocks {
            0 => 0,
            keep => store.chain.stage_prune_blocks(height, keep, &mut batch)?,
        };
        store.tree.apply_batch(batch)?;
        super::faults::before_flush(height);
        let flushing = Instant::now();
        store.db.flush()?;
        let flush = flushing.elapsed();
        let head = ChainStore::head_of(&block)?;
        debug!(target: "shard::block", height, txs = tx_hashes.len(), hash = %hash, ?pruned, blocks_pruned, "written");
        BlockTimings::count(&store.timings.written, &store.timings.write_micros, started);
        crate::metrics::block_written(started.elapsed(), flush, tx_hashes.len());
        let committed = Committed { block: Arc::new(block), height, hash };
        Ok(Written { committed, head, parent, tx_hashes, writes: sealed.writes, origin })
    }
}

/// The latest global epoch imported as of a block's post-state: from the block's own writes, else from
/// committed state.
fn last_imported_epoch(writes: &Changes, engine: &StateEngine) -> Result<u64, ShardError> {
    let key = shardex_core::bridge::imported_latest_key();
    let value = match writes.get(&key) {
        Some(v) => v.clone(),
        None => engine.get(&key)?,
    };
    let record = value
        .map(|v| pb::ImportedCommitmentRecord::decode(v.as_slice()))
        .transpose()
        .map_err(|e| ShardError::Inconsistent(format!("stored imported commitment does not decode: {e}")))?;
    Ok(record.map_or(0, |r| r.epoch))
}

impl Sealed {
    /// The height of the sealed block.
    pub fn height(&self) -> u64 {
        self.block.ctx.height
    }

    /// Stages the block's state root and builds its header. Reads committed state only: the shard must not
    /// commit another block meanwhile (block production is sequential).
    pub fn stage(self) -> Result<Proposal, ShardError> {
        self.stage_as(Origin::Sealed)
    }

    pub(super) fn stage_as(self, origin: Origin) -> Result<Proposal, ShardError> {
        let started = Instant::now();
        let Sealed { block, parent, store, domain, proposer } = self;
        let BlockCtx { height, timestamp_ms } = block.ctx;
        let mut batch = sled::Batch::default();
        let state_root = store.engine.stage(height, &block.writes, &mut batch)?;
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
            last_imported_epoch: last_imported_epoch(&block.writes, &store.engine)?,
            proposer: proposer.0.to_vec(),
            gas_used: block.gas,
            tx_count: block.txs.len() as u32,
            events_root: ordered_root(&encoded_events).to_vec(),
        };
        let (header_bytes, hash) = encode_header(&header);
        BlockTimings::count(&store.timings.staged, &store.timings.stage_micros, started);
        crate::metrics::block_staged(started.elapsed());
        Ok(Proposal { header, header_bytes, hash, block, batch, parent, store, origin })
    }
}
