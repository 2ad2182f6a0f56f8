//! Admission: a verified tx executes against head + pending state; only if it succeeds does it enter
//! the mempool. A refused tx changes nothing.

use shardex_core::{tx::VerifiedTx, Reason};

use super::{HeadState, Reject, Shard, ShardError};
use crate::{
    mempool::PendingTx,
    vm::{execute, BlockCtx, TxScope},
};

impl Shard {
    /// Admits `tx` to the mempool, or says why not. `Err(ShardError)` means the node itself failed.
    /// `now_ms` stands in for the next block's time (which will be no earlier).
    pub fn admit(&mut self, tx: VerifiedTx, now_ms: u64) -> Result<Result<(), Reject>, ShardError> {
        let hash = tx.hash();
        let verdict = self.try_admit(tx, now_ms)?;
        if let Err(reject) = &verdict {
            self.rejected.record(hash, reject.reason.as_str(), &reject.message);
        }
        Ok(verdict)
    }

    fn try_admit(&mut self, tx: VerifiedTx, now_ms: u64) -> Result<Result<(), Reject>, ShardError> {
        let hash = tx.hash();
        if self.mempool.contains(&hash) || self.chain.tx_location(&hash)?.is_some() {
            return Ok(Err(Reject::new(Reason::DuplicateTx, format!("tx {hash} is already pending or included"))));
        }
        if self.mempool.is_full() {
            return Ok(Err(Reject::new(
                Reason::MempoolFull,
                format!("mempool holds its limit of {} txs; retry after the next block", self.config.mempool_max_txs),
            )));
        }
        let ctx = BlockCtx { height: self.head.height + 1, timestamp_ms: now_ms.max(self.head.timestamp_ms) };
        let base = HeadState(&self.engine);
        let mut scope = TxScope::new(&base, self.mempool.changes());
        match execute(&mut scope, &self.params, &tx, &ctx) {
            Ok(outcome) if outcome.gas_used > self.config.block_gas_limit => Ok(Err(Reject::new(
                Reason::GasLimit,
                format!("tx needs {} gas, more than a whole block ({})", outcome.gas_used, self.config.block_gas_limit),
            ))),
            Ok(outcome) => {
                let writes = scope.into_writes();
                self.mempool.push(PendingTx { tx, gas: outcome.gas_used }, writes);
                Ok(Ok(()))
            }
            Err(e) if e.is_fatal() => Err(ShardError::Exec(e)),
            Err(e) => Ok(Err(Reject::from(&e))),
        }
    }
}
