//! Recently refused txs and why, for tx-status queries.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::B256;

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
}
