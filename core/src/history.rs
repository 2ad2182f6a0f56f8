//! Verification of history pages (`GetHistory`): every entry is proven against the receipts root (account
//! history) or events root (market history) of a header certified by the shard's validator set.
//!
//! A page proves that each entry it returns was committed; it cannot prove that none was left out. The
//! node's index is the source of completeness; a client that needs it can scan blocks (`GetBlock`).

use std::collections::BTreeMap;

use alloy_primitives::Bytes;
use prost::Message;

use crate::{
    block::{verify_finalized, DecodedHeader},
    hash::b256_from_slice,
    ids::{AccountId, ChainId, ShardId},
    pb,
    proof::{verify_ordered_item, ProofError},
    validators::ValidatorSet,
};

/// One proven history entry.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryItem {
    /// A receipt holding events of the account asked about.
    Receipt {
        /// Block height.
        height: u64,
        /// Block time, ms.
        timestamp_ms: u64,
        /// The receipt (its tx hash, gas and every event).
        receipt: pb::Receipt,
    },
    /// A begin-block event of the market (funding, a rule-driven mode change).
    Market {
        /// Block height.
        height: u64,
        /// Block time, ms.
        timestamp_ms: u64,
        /// Index among the block's begin-block events.
        index: u32,
        /// The event.
        event: pb::Event,
    },
}

/// Verifies a `GetHistory` page asked with `prove` for `account` (None = market history): each entry's
/// header is signed by a quorum of `validators` for (`chain`, `shard`), and the entry is proven under its
/// receipts or events root. Account entries must hold an event of the account. Returns them in page order.
pub fn verify_history_page(
    page: &pb::GetHistoryResponse,
    account: Option<&AccountId>,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
) -> Result<Vec<HistoryItem>, ProofError> {
    let mut headers: BTreeMap<u64, DecodedHeader> = BTreeMap::new();
    for fh in &page.headers {
        let decoded = verify_finalized(fh, chain, shard, validators)?;
        headers.insert(decoded.header.height, decoded);
    }
    let mut items = Vec::with_capacity(page.entries.len());
    for entry in &page.entries {
        let header = headers.get(&entry.height).ok_or(ProofError::Missing)?;
        let root_bytes = match account {
            Some(_) => &header.header.receipts_root,
            None => &header.header.events_root,
        };
        let root = b256_from_slice(root_bytes)
            .ok_or_else(|| ProofError::RootMismatch(format!("header {} root is not 32 bytes", entry.height)))?;
        let nodes: Vec<Bytes> = entry.proof.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        verify_ordered_item(root, entry.index as usize, &entry.item, &nodes)?;
        items.push(decode_entry(entry, header.header.timestamp_ms, account)?);
    }
    Ok(items)
}

fn decode_entry(
    entry: &pb::HistoryEntry,
    timestamp_ms: u64,
    account: Option<&AccountId>,
) -> Result<HistoryItem, ProofError> {
    let height = entry.height;
    match account {
        Some(account) => {
            let receipt =
                pb::Receipt::decode(entry.item.as_slice()).map_err(|e| ProofError::RecordMismatch(e.to_string()))?;
            if !receipt.events.iter().any(|e| e.account == account.0) {
                return Err(ProofError::RecordMismatch(format!(
                    "receipt {} at height {height} has no event of account {account}",
                    entry.index
                )));
            }
            Ok(HistoryItem::Receipt { height, timestamp_ms, receipt })
        }
        None => {
            let event =
                pb::Event::decode(entry.item.as_slice()).map_err(|e| ProofError::RecordMismatch(e.to_string()))?;
            Ok(HistoryItem::Market { height, timestamp_ms, index: entry.index, event })
        }
    }
}
