//! History pages: an account's receipts or the market's begin-block events, read from the block log through
//! the history indexes, each item with its proof against a finalized header's receipts or events root.
//! Reads committed blocks only, so a page is built without the shard lock.

use prost::Message;
use shardex_core::{hash::ordered_proofs, pb, AccountId};

use super::{HeadView, Reject, ShardError};
use crate::chain::{ChainError, ChainStore, HistoryPos};

/// Most entries in one page.
pub const MAX_HISTORY_ENTRIES: usize = 256;
/// Most blocks one page reads: bounds the work of a page whatever the account's activity.
pub const MAX_HISTORY_BLOCKS: usize = 64;

/// What a page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// An account's receipts, or (None) the market's begin-block events.
    pub account: Option<AccountId>,
    /// First position (inclusive).
    pub from: HistoryPos,
    /// Most entries (capped at [`MAX_HISTORY_ENTRIES`]; 0 = the cap).
    pub limit: usize,
    /// Attach proofs and headers.
    pub prove: bool,
}

/// The committed block log as of one head, for history pages.
pub struct HistoryReader {
    chain: ChainStore,
    head_height: u64,
}

impl HeadView {
    /// A reader of history up to this view's head.
    pub fn history_reader(&self) -> HistoryReader {
        HistoryReader { chain: self.chain.clone(), head_height: self.head.height }
    }
}

impl HistoryReader {
    /// One page of history; refused (`NOT_FOUND`) when it starts below the oldest block this node holds
    /// (pruned, or before its snapshot), rather than silently starting later.
    pub fn page(&self, query: &HistoryQuery) -> Result<Result<pb::GetHistoryResponse, Reject>, ShardError> {
        let oldest = self.chain.oldest_block()?;
        if query.from.height > 0 && query.from.height < oldest {
            return Ok(Err(not_held(query.from.height, oldest)));
        }
        let limit = if query.limit == 0 { MAX_HISTORY_ENTRIES } else { query.limit.min(MAX_HISTORY_ENTRIES) };
        // One more than the page, to know whether there is more.
        let mut positions = match &query.account {
            Some(account) => self.chain.account_history(&account.0, query.from, limit + 1)?,
            None => self.chain.market_history(query.from, limit + 1)?,
        };
        positions.retain(|p| p.height <= self.head_height);
        let mut next = None;
        if positions.len() > limit {
            next = positions.get(limit).copied();
            positions.truncate(limit);
        }
        // Cut at the block cap too, at a height boundary.
        let mut heights = positions.iter().map(|p| p.height).collect::<Vec<_>>();
        heights.dedup();
        if let Some(&cut) = heights.get(MAX_HISTORY_BLOCKS) {
            let keep = positions.iter().take_while(|p| p.height < cut).count();
            next = positions.get(keep).copied();
            positions.truncate(keep);
        }

        let mut response = pb::GetHistoryResponse { head_height: self.head_height, ..Default::default() };
        for group in positions.chunk_by(|a, b| a.height == b.height) {
            let height = group[0].height;
            let Some(block) = self.chain.block(height)? else {
                // Pruned while this page was read.
                let oldest = self.chain.oldest_block()?;
                if height < oldest {
                    return Ok(Err(not_held(height, oldest)));
                }
                return Err(ChainError::Corrupt {
                    what: format!("block {height}"),
                    detail: "indexed but absent".into(),
                }
                .into());
            };
            let items: Vec<Vec<u8>> = match query.account {
                Some(_) => block.receipts.iter().map(Message::encode_to_vec).collect(),
                None => block.block_events.iter().map(Message::encode_to_vec).collect(),
            };
            let indices: Vec<usize> = group.iter().map(|p| p.index as usize).collect();
            let mut proofs =
                if query.prove { ordered_proofs(&items, &indices) } else { vec![Vec::new(); indices.len()] };
            for (pos, proof) in group.iter().zip(proofs.iter_mut()) {
                let item = items.get(pos.index as usize).ok_or_else(|| ChainError::Corrupt {
                    what: format!("history index at height {height}"),
                    detail: format!("item {} of {}", pos.index, items.len()),
                })?;
                response.entries.push(pb::HistoryEntry {
                    height,
                    index: pos.index,
                    item: item.clone(),
                    proof: std::mem::take(proof).into_iter().map(|n| n.to_vec()).collect(),
                });
            }
            if query.prove {
                response.headers.extend(block.header);
            }
        }
        let next = next.unwrap_or(HistoryPos { height: self.head_height + 1, index: 0 });
        response.more = next.height <= self.head_height;
        response.next_height = next.height;
        response.next_index = next.index;
        Ok(Ok(response))
    }
}

fn not_held(height: u64, oldest: u64) -> Reject {
    Reject::new(
        shardex_core::Reason::NotFound,
        format!(
            "history at height {height} is not held: this node holds blocks from height {oldest} on (pruned, or \
             begun from a snapshot); ask an archive node"
        ),
    )
}
