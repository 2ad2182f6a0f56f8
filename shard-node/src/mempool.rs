//! The mempool: verified txs in arrival order, bounded, deduplicated by hash, with the speculative state
//! they produce on top of the head (so admission can refuse a tx that would fail in the next block).

use std::collections::{HashSet, VecDeque};

use alloy_primitives::B256;
use shardex_core::tx::VerifiedTx;

use crate::vm::Changes;

/// A tx admitted to the mempool with the gas it used when admitted.
#[derive(Debug, Clone)]
pub struct PendingTx {
    /// The tx.
    pub tx: VerifiedTx,
    /// Gas it used against the speculative state.
    pub gas: u64,
}

/// Bounded FIFO of admitted txs plus their combined speculative writes.
#[derive(Debug, Default)]
pub struct Mempool {
    queue: VecDeque<PendingTx>,
    hashes: HashSet<B256>,
    changes: Changes,
    gas: u64,
    max_txs: usize,
}

impl Mempool {
    /// An empty mempool holding at most `max_txs`.
    pub fn new(max_txs: usize) -> Self {
        Self { max_txs, ..Self::default() }
    }

    /// Number of pending txs.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// True when no more txs fit.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.max_txs
    }

    /// True when `hash` is pending.
    pub fn contains(&self, hash: &B256) -> bool {
        self.hashes.contains(hash)
    }

    /// Total gas of pending txs.
    pub fn gas(&self) -> u64 {
        self.gas
    }

    /// The speculative writes of all pending txs.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Appends an executed tx and merges its writes. The caller checked capacity and duplicates.
    pub fn push(&mut self, tx: PendingTx, writes: Changes) {
        debug_assert!(!self.is_full() && !self.contains(&tx.tx.hash()));
        self.hashes.insert(tx.tx.hash());
        self.gas = self.gas.saturating_add(tx.gas);
        self.changes.extend(writes);
        self.queue.push_back(tx);
    }

    /// Pending txs in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &PendingTx> {
        self.queue.iter()
    }

    /// Removes the `n` oldest txs after they were committed. Their writes stay in the speculative
    /// state, where they now equal committed values; it is cleared once the mempool is empty.
    pub fn pop_front(&mut self, n: usize) {
        for pending in self.queue.drain(..n.min(self.queue.len())) {
            self.hashes.remove(&pending.tx.hash());
            self.gas = self.gas.saturating_sub(pending.gas);
        }
        if self.queue.is_empty() {
            self.changes.clear();
        }
    }

    /// Removes every tx and the speculative state, returning the txs in order (to re-admit after a block).
    pub fn drain(&mut self) -> Vec<PendingTx> {
        self.hashes.clear();
        self.changes.clear();
        self.gas = 0;
        self.queue.drain(..).collect()
    }
}

/// A bounded record of recently rejected tx hashes and why, for tx-status queries.
#[derive(Debug, Default)]
pub struct RejectLog {
    order: VecDeque<B256>,
    entries: std::collections::HashMap<B256, (String, String)>,
    capacity: usize,
}

impl RejectLog {
    /// Keeps the last `capacity` rejections.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, ..Self::default() }
    }

    /// Records a rejection, evicting the oldest beyond capacity.
    pub fn record(&mut self, hash: B256, reason: &str, message: &str) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(hash, (reason.to_owned(), message.to_owned())).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }

    /// The reason and message of a rejected tx.
    pub fn get(&self, hash: &B256) -> Option<&(String, String)> {
        self.entries.get(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_log_is_bounded() {
        let mut log = RejectLog::new(2);
        for i in 0u8..5 {
            log.record(B256::from([i; 32]), "R", "m");
        }
        assert!(log.get(&B256::from([2; 32])).is_none());
        assert!(log.get(&B256::from([4; 32])).is_some());
        assert_eq!(log.order.len(), 2);
    }
}
