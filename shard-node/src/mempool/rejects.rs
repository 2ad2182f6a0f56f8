//! Recently refused txs and why, for tx-status queries; and each signer's budget of refusals per block.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::B256;
use shardex_core::AccountId;

/// Signers whose refusals are counted at once; beyond it a new signer is not counted until the next block
/// (the map stays bounded whatever the number of keys).
const MAX_COUNTED_SIGNERS: usize = 65_536;

/// Refusals per signer since the head last moved. A refused tx cost the node its execution and changed
/// nothing; a signer past its budget is refused without execution (`RATE_LIMITED`) until the next block.
#[derive(Debug)]
pub struct RefusalBudget {
    height: u64,
    counts: HashMap<AccountId, u32>,
    per_signer: u32,
}

impl RefusalBudget {
    /// `per_signer` refusals per block.
    pub fn new(per_signer: u32) -> Self {
        Self { height: 0, counts: HashMap::new(), per_signer }
    }

    /// The budget per signer.
    pub fn per_signer(&self) -> u32 {
        self.per_signer
    }

    /// True when `who` has used its budget at head `height`.
    pub fn exhausted(&mut self, height: u64, who: &AccountId) -> bool {
        self.roll(height);
        self.counts.get(who).is_some_and(|n| *n >= self.per_signer)
    }

    /// Counts one refusal of `who` at head `height`.
    pub fn charge(&mut self, height: u64, who: &AccountId) {
        self.roll(height);
        if self.counts.len() < MAX_COUNTED_SIGNERS || self.counts.contains_key(who) {
            let n = self.counts.entry(*who).or_default();
            *n = n.saturating_add(1);
        }
    }

    fn roll(&mut self, height: u64) {
        if height != self.height {
            self.counts.clear();
            self.height = height;
        }
    }
}

/// A bounded record of recently rejected tx hashes and why, for tx-status queries.
#[derive(Debug, Default)]
pub struct RejectLog {
    order: VecDeque<B256>,
    entries: HashMap<B256, (String, String)>,
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

    #[test]
    fn a_signer_past_its_budget_waits_for_the_next_block() {
        let (alice, bob) = (AccountId([1; 32]), AccountId([2; 32]));
        let mut budget = RefusalBudget::new(3);
        for _ in 0..3 {
            assert!(!budget.exhausted(7, &alice));
            budget.charge(7, &alice);
        }
        assert!(budget.exhausted(7, &alice), "three refusals use the budget");
        assert!(!budget.exhausted(7, &bob), "per signer");
        assert!(!budget.exhausted(8, &alice), "the next block restores it");
    }
}
