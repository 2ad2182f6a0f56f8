//! Re-execution of a block from its parent state, as a replica that did not admit its txs does: begin-block
//! at the block's context, then every tx in order. Used to check that admission-time execution (which block
//! production relies on) is exactly what a replay computes.

use shardex_core::{pb, tx::VerifiedTx};

use super::{HeadState, Shard, ShardError};
use crate::vm::{begin_block, execute, BlockCtx, Changes, TxScope};

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

impl Shard {
    /// Re-executes the block (`ctx`, `txs`) on top of the committed head, which must be its parent. A tx
    /// that fails makes the block invalid: `ShardError::Inconsistent` names it.
    pub fn replay(&self, ctx: BlockCtx, txs: &[VerifiedTx]) -> Result<Replayed, ShardError> {
        if ctx.height != self.head.height + 1 {
            return Err(ShardError::Inconsistent(format!(
                "replay of height {} on head {}: not its parent",
                ctx.height, self.head.height
            )));
        }
        let base = HeadState(&self.engine);
        let mut writes = Changes::new();
        let mut scope = TxScope::new(&base, &writes);
        let block_events = begin_block(&mut scope, &ctx).map_err(ShardError::Exec)?;
        let begin = scope.into_writes();
        writes.extend(begin);
        let mut receipts = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            let mut scope = TxScope::new(&base, &writes);
            let outcome = execute(&mut scope, &self.params, tx, &ctx).map_err(|e| {
                ShardError::Inconsistent(format!(
                    "tx {index} ({}) fails on replay at height {}: {e}",
                    tx.hash(),
                    ctx.height
                ))
            })?;
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
}
