//! History indexes over the block log: which receipts hold events of an account, and which blocks hold
//! begin-block (market) events. Written in the block's batch, so they are exactly as durable as the block.

use std::collections::BTreeMap;

use shardex_core::pb;

use super::store::{corrupt, ChainStore, Result};

/// Receipts with events of an account in one block: `0x14 ‖ account ‖ height` → their indexes, each a `u32`
/// big-endian, ascending. One entry per account and block rather than per receipt: a market maker is named in
/// most receipts of a busy block, and each stored entry costs a tree insert when the block is written.
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

fn account_key(account: &[u8; 32], height: u64) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[0] = ACCOUNT_HISTORY_PREFIX;
    k[1..33].copy_from_slice(account);
    k[33..].copy_from_slice(&height.to_be_bytes());
    k
}

fn market_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = MARKET_HISTORY_PREFIX;
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

/// The account history entries of `block` at `height`: per account its events name, the indexes of the
/// receipts naming it, packed.
fn account_history_entries(block: &pb::Block, height: u64) -> Vec<([u8; 41], Vec<u8>)> {
    let mut receipts: BTreeMap<[u8; 32], Vec<u32>> = BTreeMap::new();
    for (index, receipt) in (0u32..).zip(&block.receipts) {
        for event in &receipt.events {
            let Ok(account) = <[u8; 32]>::try_from(event.account.as_slice()) else { continue };
            let indexes = receipts.entry(account).or_default();
            // Receipts come in order, so a receipt already listed is the last one.
            if indexes.last() != Some(&index) {
                indexes.push(index);
            }
        }
    }
    receipts
        .into_iter()
        .map(|(account, indexes)| {
            (account_key(&account, height), indexes.iter().flat_map(|i| i.to_be_bytes()).collect())
        })
        .collect()
}

/// The receipt indexes of one stored account history entry.
fn unpack_indexes<'a>(key: &[u8], value: &'a [u8]) -> Result<impl Iterator<Item = u32> + 'a> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return Err(corrupt("account history entry", hex::encode(key)));
    }
    Ok(value.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}

impl ChainStore {
    /// Stages the history index entries of `block` at `height`.
    pub(super) fn stage_history(&self, block: &pb::Block, height: u64, batch: &mut sled::Batch) {
        for (key, indexes) in account_history_entries(block, height) {
            batch.insert(key.to_vec(), indexes);
        }
        if !block.block_events.is_empty() {
            let count = u32::try_from(block.block_events.len()).unwrap_or(u32::MAX);
            batch.insert(market_key(height).to_vec(), count.to_be_bytes().to_vec());
        }
    }

    /// Stages the deletion of the history index entries [`ChainStore::stage_history`] wrote for `block`.
    pub(super) fn stage_history_removal(&self, block: &pb::Block, height: u64, batch: &mut sled::Batch) {
        for (key, _) in account_history_entries(block, height) {
            batch.remove(key.to_vec());
        }
        batch.remove(market_key(height).to_vec());
    }

    /// Up to `limit` receipt positions with events of `account`, from `from` (inclusive), in order.
    pub fn account_history(&self, account: &[u8; 32], from: HistoryPos, limit: usize) -> Result<Vec<HistoryPos>> {
        let start = account_key(account, from.height);
        let end = account_key(account, u64::MAX);
        let mut out = Vec::new();
        for entry in self.tree.range(start..=end) {
            let (key, value) = entry?;
            let height = key.get(33..41).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            let Some(height) = height else { return Err(corrupt("account history key", hex::encode(&key))) };
            for index in unpack_indexes(&key, &value)? {
                if height == from.height && index < from.index {
                    continue;
                }
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(HistoryPos { height, index });
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
                return Err(corrupt("market history entry", hex::encode(&key)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn named(accounts: &[u8]) -> pb::Receipt {
        let events = accounts.iter().map(|&a| pb::Event { account: vec![a; 32], kind: None }).collect();
        pb::Receipt { events, ..Default::default() }
    }

    fn store() -> (tempfile::TempDir, ChainStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let store = ChainStore::new(db.open_tree("chain").expect("tree"));
        (dir, store)
    }

    #[test]
    fn one_entry_per_account_and_block_pages_like_one_per_receipt() {
        let (_dir, store) = store();
        // Account 1 is named by receipts 0, 1 (twice) and 3 of block 7 and receipt 0 of block 9; account 2 once.
        let block7 =
            pb::Block { receipts: vec![named(&[1]), named(&[1, 2, 1]), named(&[]), named(&[1])], ..Default::default() };
        let block9 = pb::Block { receipts: vec![named(&[1])], ..Default::default() };
        let entries = account_history_entries(&block7, 7);
        assert_eq!(entries.len(), 2, "one entry per account");
        assert_eq!(entries[0].1, [0u32, 1, 3].iter().flat_map(|i| i.to_be_bytes()).collect::<Vec<u8>>());

        let mut batch = sled::Batch::default();
        store.stage_history(&block7, 7, &mut batch);
        store.stage_history(&block9, 9, &mut batch);
        store.tree.apply_batch(batch).expect("apply");
        let pos = |height, index| HistoryPos { height, index };
        let all = [pos(7, 0), pos(7, 1), pos(7, 3), pos(9, 0)];
        assert_eq!(store.account_history(&[1; 32], pos(0, 0), 100).expect("read"), all);
        // Pages may start and stop inside a block's entry.
        assert_eq!(store.account_history(&[1; 32], pos(7, 1), 2).expect("read"), all[1..3]);
        assert_eq!(store.account_history(&[1; 32], pos(7, 2), 100).expect("read"), all[2..]);
        assert_eq!(store.account_history(&[1; 32], pos(8, 0), 100).expect("read"), all[3..]);
        assert_eq!(store.account_history(&[2; 32], pos(0, 0), 100).expect("read"), [pos(7, 1)]);

        let mut batch = sled::Batch::default();
        store.stage_history_removal(&block7, 7, &mut batch);
        store.tree.apply_batch(batch).expect("apply");
        assert_eq!(store.account_history(&[1; 32], pos(0, 0), 100).expect("read"), all[3..]);
        assert!(store.account_history(&[2; 32], pos(0, 0), 100).expect("read").is_empty());
    }

    #[test]
    fn a_malformed_entry_is_reported_not_misread() {
        let (_dir, store) = store();
        store.tree.insert(account_key(&[1; 32], 5), vec![0, 0, 1]).expect("insert");
        let err = store.account_history(&[1; 32], HistoryPos::default(), 10).expect_err("corrupt");
        assert!(err.to_string().contains("account history entry"), "{err}");
    }
}
