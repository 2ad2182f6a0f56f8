//! History indexes over the block log: which receipts hold events of an account, and which blocks hold
//! begin-block (market) events. Written in the block's batch, so they are exactly as durable as the block.

use std::collections::BTreeSet;

use shardex_core::pb;

use super::store::{ChainStore, Result};

/// Receipts with events of an account: `0x14 ‖ account ‖ height ‖ receipt index` → empty.
const ACCOUNT_HISTORY_PREFIX: u8 = 0x14;
/// Blocks with begin-block events: `0x15 ‖ height` → event count (u32).
const MARKET_HISTORY_PREFIX: u8 = 0x15;

/// A position in a block: the receipt (account history) or begin-block event (market history) index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistoryPos {
    /// Block height.
    pub height: u64,
    /// Index within the block.
    pub index: u32,
}

fn account_key(account: &[u8; 32], pos: HistoryPos) -> [u8; 45] {
    let mut k = [0u8; 45];
    k[0] = ACCOUNT_HISTORY_PREFIX;
    k[1..33].copy_from_slice(account);
    k[33..41].copy_from_slice(&pos.height.to_be_bytes());
    k[41..].copy_from_slice(&pos.index.to_be_bytes());
    k
}

fn market_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = MARKET_HISTORY_PREFIX;
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

/// The account history keys of `block` at `height`: one per receipt and account its events name.
fn account_history_keys(block: &pb::Block, height: u64) -> Vec<[u8; 45]> {
    let mut keys = Vec::new();
    for (index, receipt) in (0u32..).zip(&block.receipts) {
        let accounts: BTreeSet<[u8; 32]> =
            receipt.events.iter().filter_map(|e| <[u8; 32]>::try_from(e.account.as_slice()).ok()).collect();
        keys.extend(accounts.iter().map(|account| account_key(account, HistoryPos { height, index })));
    }
    keys
}

impl ChainStore {
    /// Stages the history index entries of `block` at `height`.
    pub(super) fn stage_history(&self, block: &pb::Block, height: u64, batch: &mut sled::Batch) {
        for key in account_history_keys(block, height) {
            batch.insert(key.to_vec(), &[][..]);
        }
        if !block.block_events.is_empty() {
            let count = u32::try_from(block.block_events.len()).unwrap_or(u32::MAX);
            batch.insert(market_key(height).to_vec(), count.to_be_bytes().to_vec());
        }
    }

    /// Stages the deletion of the history index entries [`ChainStore::stage_history`] wrote for `block`.
    pub(super) fn stage_history_removal(&self, block: &pb::Block, height: u64, batch: &mut sled::Batch) {
        for key in account_history_keys(block, height) {
            batch.remove(key.to_vec());
        }
        batch.remove(market_key(height).to_vec());
    }

    /// Up to `limit` receipt positions with events of `account`, from `from` (inclusive), in order.
    pub fn account_history(&self, account: &[u8; 32], from: HistoryPos, limit: usize) -> Result<Vec<HistoryPos>> {
        let start = account_key(account, from);
        let end = account_key(account, HistoryPos { height: u64::MAX, index: u32::MAX });
        let mut out = Vec::new();
        for entry in self.tree.range(start..=end).take(limit) {
            let (key, _) = entry?;
            let height = key.get(33..41).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            let index = key.get(41..45).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes);
            match (height, index) {
                (Some(height), Some(index)) => out.push(HistoryPos { height, index }),
                _ => return Err(super::store::corrupt("account history key", hex::encode(&key))),
            }
        }
        Ok(out)
    }

    /// Up to `limit` begin-block event positions, from `from` (inclusive), in order.
    pub fn market_history(&self, from: HistoryPos, limit: usize) -> Result<Vec<HistoryPos>> {
        let mut out = Vec::new();
        for entry in self.tree.range(market_key(from.height)..=market_key(u64::MAX)) {
            let (key, value) = entry?;
            let height = key.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            let count = <[u8; 4]>::try_from(value.as_ref()).ok().map(u32::from_be_bytes);
            let (Some(height), Some(count)) = (height, count) else {
                return Err(super::store::corrupt("market history entry", hex::encode(&key)));
            };
            let first = if height == from.height { from.index } else { 0 };
            for index in first..count {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(HistoryPos { height, index });
            }
        }
        Ok(out)
    }
}
