//! Re-execution of a block from its parent state, as a replica that did not admit its txs does: begin-block
//! at the block's context, then every tx in order. Validators rebuild proposed blocks this way
//! ([`Rebuilder`], off the shard lock), and the in-process tests check that admission-time execution (which
//! block production relies on) is exactly what a replay computes.

use std::sync::{Arc, Mutex};

use prost::Message;
use shardex_core::{pb, tx::VerifiedTx, AccountId};

use super::{
    head_cache::HeadCache,
    produce::{CommitStore, Origin, Proposal, Sealed},
    CachedHead, Shard, ShardError,
};
use crate::{
    chain::Head,
    mempool::{block_bytes, OpenBlock},
    state::StateEngine,
};
use shardex_vm::{begin_block, execute, BlockCtx, Changes, TxScope, VmParams};

/// What replaying a block produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    /// Every state write (`None` deletes).
    pub writes: Changes,
    /// One receipt per tx.
    pub receipts: Vec<pb::Receipt>,
    /// The begin-block events.
    pub block_events: Vec<pb::Event>,
}

/// Why a replay did not produce a block.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The block is invalid: a tx fails, or the block is not the head's child.
    #[error("{0}")]
    Invalid(String),
    /// The node itself failed (storage, corrupt state).
    #[error(transparent)]
    Node(#[from] ShardError),
}

fn replay_on(
    engine: &StateEngine,
    cache: &Mutex<HeadCache>,
    params: &VmParams,
    head: &Head,
    ctx: BlockCtx,
    txs: &[VerifiedTx],
) -> Result<Replayed, ReplayError> {
    if ctx.height != head.height + 1 {
        return Err(ReplayError::Invalid(format!(
            "replay of height {} on head {}: not its parent",
            ctx.height, head.height
        )));
    }
    let base = CachedHead::new(engine, cache, head.height);
    let mut writes = Changes::new();
    let mut scope = TxScope::new(&base, &writes);
    let block_events = begin_block(&mut scope, &ctx).map_err(ShardError::Exec)?;
    let begin = scope.into_writes();
    writes.extend(begin);
    let mut receipts = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let mut scope = TxScope::new(&base, &writes);
        let outcome = match execute(&mut scope, params, tx, &ctx) {
            Ok(outcome) => outcome,
            Err(e) if e.is_fatal() => return Err(ShardError::Exec(e).into()),
            Err(e) => {
                return Err(ReplayError::Invalid(format!(
                    "tx {index} ({}) fails on replay at height {}: {e}",
                    tx.hash(),
                    ctx.height
                )))
            }
        };
        let tx_writes = scope.into_writes();
        writes.extend(tx_writes);
        receipts.push(pb::Receipt {
            tx_hash: tx.hash().to_vec(),
            index: index as u32,
            gas_used: outcome.gas_used,
            events: outcome.events,
        });
    }
    Ok(Replayed { writes, receipts, block_events })
}

impl Shard {
    /// Re-executes the block (`ctx`, `txs`) on top of the committed head, which must be its parent. A tx
    /// that fails makes the block invalid: `ShardError::Inconsistent` names it.
    pub fn replay(&self, ctx: BlockCtx, txs: &[VerifiedTx]) -> Result<Replayed, ShardError> {
        replay_on(&self.engine, &self.cache, &self.params, &self.head, ctx, txs).map_err(|e| match e {
            ReplayError::Invalid(why) => ShardError::Inconsistent(why),
            ReplayError::Node(e) => e,
        })
    }

    /// Re-executes a committed block of this shard (one another node stored or served) on the head, which
    /// must be its parent, requires the rebuilt header to equal its header byte for byte, and commits it with
    /// the block's own certificate: how a store is replayed and how a node follows blocks it did not vote on.
    /// The certificate is the caller's to have checked. `Inconsistent` names the height and the cause.
    pub fn apply_certified(&mut self, block: &pb::Block) -> Result<super::Committed, ShardError> {
        let fh = block.header.as_ref().ok_or_else(|| ShardError::Inconsistent("a block without header".into()))?;
        let header = pb::BlockHeader::decode(fh.header.as_slice())
            .map_err(|e| ShardError::Inconsistent(format!("a block header does not decode: {e}")))?;
        let height = header.height;
        let at = |why: String| ShardError::Inconsistent(format!("block {height}: {why}"));
        let proposer = AccountId::from_slice(&header.proposer).map_err(|e| at(format!("proposer: {e}")))?;
        let txs = shardex_core::tx::verify_all(block.txs.clone(), self.domain, self.config.max_tx_bytes)
            .map_err(|(i, e)| at(format!("tx {i}: {e}")))?;
        let ctx = BlockCtx { height, timestamp_ms: header.timestamp_ms };
        let proposal = self.rebuilder().rebuild(ctx, proposer, txs).map_err(|e| match e {
            ReplayError::Invalid(why) => at(why),
            ReplayError::Node(e) => e,
        })?;
        if proposal.header_bytes != fh.header {
            return Err(at("re-execution rebuilds another header than the block's".into()));
        }
        self.apply(proposal, shardex_core::block::Certificate::of(fh))
    }

    /// What rebuilding a proposed block on the current head needs, detached from the shard lock.
    pub fn rebuilder(&self) -> Rebuilder {
        Rebuilder {
            engine: self.engine.clone(),
            cache: Arc::clone(&self.cache),
            params: self.params,
            head: self.head.clone(),
            store: self.commit_store(),
            domain: self.domain,
            max_block_txs: self.config.max_block_txs,
            block_gas_limit: self.config.block_gas_limit,
            max_block_bytes: self.config.max_block_bytes,
        }
    }
}

/// Re-executes another validator's block on a fixed head, without the shard lock (it reads committed state
/// only, which does not move while the height is undecided).
pub struct Rebuilder {
    engine: StateEngine,
    /// The shard's head cache, read at this rebuilder's head.
    cache: Arc<Mutex<HeadCache>>,
    params: VmParams,
    head: Head,
    store: CommitStore,
    domain: shardex_core::tx::TxDomain,
    max_block_txs: usize,
    block_gas_limit: u64,
    max_block_bytes: usize,
}

impl Rebuilder {
    /// The head the block must extend.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Replays `txs` at `ctx` as proposed by `proposer` and stages the block: the proposal to commit if it is
    /// decided, whose header the caller compares with the proposed one. `Err(ReplayError::Invalid)` when a tx
    /// fails or the block breaks a limit.
    pub fn rebuild(&self, ctx: BlockCtx, proposer: AccountId, txs: Vec<VerifiedTx>) -> Result<Proposal, ReplayError> {
        if txs.len() > self.max_block_txs {
            return Err(ReplayError::Invalid(format!("{} txs, more than {} per block", txs.len(), self.max_block_txs)));
        }
        let Replayed { writes, receipts, block_events } =
            replay_on(&self.engine, &self.cache, &self.params, &self.head, ctx, &txs)?;
        let gas = receipts.iter().map(|r| r.gas_used).fold(0u64, u64::saturating_add);
        if gas > self.block_gas_limit {
            return Err(ReplayError::Invalid(format!("{gas} gas, more than {} per block", self.block_gas_limit)));
        }
        let bytes = block_bytes(&txs, &receipts, &block_events);
        if bytes > self.max_block_bytes {
            return Err(ReplayError::Invalid(format!("{bytes} bytes, more than {} per block", self.max_block_bytes)));
        }
        let block = OpenBlock { ctx, block_events, txs: Arc::new(txs), receipts, writes: Arc::new(writes), gas, bytes };
        let sealed =
            Sealed { block, parent: self.head.clone(), store: self.store.clone(), domain: self.domain, proposer };
        Ok(sealed.stage_as(Origin::Rebuilt)?)
    }
}
