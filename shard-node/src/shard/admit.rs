//! Admission: a verified tx executes, once, in the open block it will be committed in (on top of the head
//! and every block pending before it). Only if it succeeds does it enter that block; a refused tx changes
//! nothing.

use alloy_primitives::B256;
use shardex_core::{tx::VerifiedTx, Reason};

use super::{CachedHead, Reject, Shard, ShardError};
use crate::mempool::{block_events_bytes, entry_bytes, Slot};
use shardex_vm::{begin_block, execute, ExecError, Outcome, TxScope};

impl Shard {
    /// Admits `tx` to the mempool, or says why not. `Err(ShardError)` means the node itself failed.
    /// `now_ms` is the time a block opened for this tx gets (no earlier than any pending block's).
    /// A signer whose txs were refused `max_refusals_per_signer` times since the last block is refused
    /// without execution until the next one: a refused tx changes nothing, so without a budget one key could
    /// make the node execute expensive failures (an order sweeping makers, then refused for margin) forever.
    pub fn admit(&mut self, tx: VerifiedTx, now_ms: u64) -> Result<Result<(), Reject>, ShardError> {
        let (hash, signer, height) = (tx.hash(), tx.signer(), self.head.height);
        let verdict = match self.refusals.exhausted(height, &signer) {
            true => Err(Reject::new(
                Reason::RateLimited,
                format!(
                    "{} txs of {signer} were refused since block {height}; retry after the next block",
                    self.refusals.per_signer()
                ),
            )),
            false => self.try_admit(tx, now_ms)?,
        };
        if let Err(reject) = &verdict {
            self.rejected.record(hash, reject.reason.as_str(), &reject.message);
            // Refusals that cost an execution count; those decided before it (or, for an included duplicate, at
            // its first step, the nonce) do not.
            if !matches!(reject.reason, Reason::DuplicateTx | Reason::MempoolFull | Reason::RateLimited) {
                self.refusals.charge(height, &signer);
            }
        }
        Ok(verdict)
    }

    fn try_admit(&mut self, tx: VerifiedTx, now_ms: u64) -> Result<Result<(), Reject>, ShardError> {
        let hash = tx.hash();
        // An included tx is found by its nonce, which it used (see `refused`): the block index is read only then,
        // since storage reads wait while a block is written.
        if self.mempool.contains(&hash) {
            return Ok(Err(Reject::new(Reason::DuplicateTx, format!("tx {hash} is already pending"))));
        }
        if self.mempool.is_full() {
            return Ok(Err(Reject::new(
                Reason::MempoolFull,
                format!("mempool holds its limit of {} txs; retry after the next block", self.config.mempool_max_txs),
            )));
        }
        let base = CachedHead::new(&self.engine, &self.cache, self.head.height);
        if let Slot::Tail(ctx) = self.mempool.slot(now_ms) {
            let mut scope = TxScope::over(&base, self.mempool.layers());
            match execute(&mut scope, &self.params, &tx, &ctx) {
                Ok(outcome) if self.mempool.tail_fits(&tx, &outcome) => {
                    let writes = scope.into_writes();
                    self.mempool.push_tail(tx, outcome, writes);
                    return Ok(Ok(()));
                }
                // Out of gas or byte room in the tail: the tx opens the next block instead.
                Ok(_) => {}
                Err(e) => return self.refused(&hash, e),
            }
        }

        // A new block: its begin-block work runs first, at its own time, and the tx on top of it. Nothing is
        // kept unless the tx succeeds, so a block never opens without a tx.
        let ctx = self.mempool.next_ctx(now_ms);
        let mut begin = TxScope::over(&base, self.mempool.layers());
        let block_events = begin_block(&mut begin, &ctx).map_err(ShardError::Exec)?;
        let begin_writes = begin.into_writes();
        let mut layers = self.mempool.layers();
        layers.push(&begin_writes);
        let mut scope = TxScope::over(&base, layers);
        let outcome = match execute(&mut scope, &self.params, &tx, &ctx) {
            Ok(outcome) => outcome,
            Err(e) => return self.refused(&hash, e),
        };
        if outcome.gas_used > self.config.block_gas_limit {
            return Ok(Err(too_big(&outcome, self.config.block_gas_limit)));
        }
        let bytes = block_events_bytes(&block_events).saturating_add(entry_bytes(&tx, 0, &outcome));
        if bytes > self.config.max_block_bytes {
            return Ok(Err(Reject::new(
                Reason::TxTooLarge,
                format!(
                    "tx and its receipt take {bytes} bytes, more than a whole block ({})",
                    self.config.max_block_bytes
                ),
            )));
        }
        let writes = scope.into_writes();
        self.mempool.open(ctx, block_events, begin_writes, tx, outcome, writes);
        Ok(Ok(()))
    }

    /// The refusal of a tx whose execution failed with `e`. Every tx uses its signer's nonce first, so a tx
    /// already included fails there; it is answered as the duplicate it is.
    fn refused(&self, hash: &B256, e: ExecError) -> Result<Result<(), Reject>, ShardError> {
        if e.is_fatal() {
            return Err(ShardError::Exec(e));
        }
        if matches!(e, ExecError::Nonce(_)) {
            if let Some(at) = self.chain.tx_location(hash)? {
                return Ok(Err(Reject::new(
                    Reason::DuplicateTx,
                    format!("tx {hash} is already included, in block {}", at.height),
                )));
            }
        }
        Ok(Err(Reject::from(&e)))
    }
}

fn too_big(outcome: &Outcome, limit: u64) -> Reject {
    Reject::new(Reason::GasLimit, format!("tx needs {} gas, more than a whole block ({limit})", outcome.gas_used))
}
