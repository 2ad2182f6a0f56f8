//! Reads and staged writes of the block log. Writes go into the caller's batch so that a block, its
//! state and the head pointer land in one atomic sled batch.

use alloy_primitives::B256;
use prost::Message;
use shardex_core::{block::decode_header, pb};

/// Block by height: `0x10 ‖ height`.
const BLOCK_PREFIX: u8 = 0x10;
/// Tx location by hash: `0x11 ‖ tx_hash` → `height ‖ index`.
const TX_PREFIX: u8 = 0x11;
/// Head pointer: `0x12` → `height`.
const HEAD_KEY: [u8; 1] = [0x12];
/// Genesis hash, to refuse opening a data dir with another genesis: `0x13`.
const GENESIS_KEY: [u8; 1] = [0x13];
/// Finalized header by height, beside its block so header reads decode no txs or receipts: `0x16 ‖ height`.
/// (`0x14`, `0x15`: history indexes.)
const HEADER_PREFIX: u8 = 0x16;
/// Snapshot base of a store that began from a state snapshot instead of genesis: `0x17` → `height ‖ done`
/// (`done` 0 while the sync runs, 1 once its head is written). Blocks below the base are not held.
const SNAPSHOT_BASE_KEY: [u8; 1] = [0x17];
/// Lowest height whose block a pruned store still holds (above genesis, which is always kept): `0x18` →
/// `height`. Absent while nothing was pruned.
const PRUNED_BELOW_KEY: [u8; 1] = [0x18];
/// The layout this store is written in: `0x19` → [`STORE_FORMAT`] (u32), written with every head pointer.
const FORMAT_KEY: [u8; 1] = [0x19];

/// The store layout this node reads and writes. A store without the key is format 1 (account history one entry
/// per receipt); format 2 packs it per account and block.
pub const STORE_FORMAT: u32 = 2;

/// Most blocks one [`ChainStore::stage_prune_blocks`] call deletes, so a block's batch stays bounded when a
/// node first turns pruning on over a long log; the rest go with the next blocks.
pub const PRUNE_MAX_BLOCKS_PER_CALL: u64 = 64;

/// A block-log failure; storage errors are fatal to the node.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// sled failed.
    #[error("block store: {0}")]
    Storage(#[from] sled::Error),
    /// Stored bytes do not decode.
    #[error("block store corrupt at {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        detail: String,
    },
}

pub(super) type Result<T> = std::result::Result<T, ChainError>;

/// The last committed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: B256,
    /// State root after the block.
    pub state_root: B256,
    /// Block time, ms.
    pub timestamp_ms: u64,
    /// The validator that proposed it (None for genesis): the sticky leader of the next height.
    pub proposer: Option<shardex_core::AccountId>,
}

/// Where a tx was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// The block log over the node's sled tree.
#[derive(Clone)]
pub struct ChainStore {
    pub(super) tree: sled::Tree,
}

fn block_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = BLOCK_PREFIX;
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

fn header_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = HEADER_PREFIX;
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

fn tx_key(hash: &B256) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = TX_PREFIX;
    k[1..].copy_from_slice(hash.as_slice());
    k
}

pub(super) fn corrupt(what: impl Into<String>, detail: impl ToString) -> ChainError {
    ChainError::Corrupt { what: what.into(), detail: detail.to_string() }
}

impl ChainStore {
    /// Opens the log over `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree }
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<pb::Block>> {
        self.tree
            .get(block_key(height))?
            .map(|raw| pb::Block::decode(raw.as_ref()).map_err(|e| corrupt(format!("block {height}"), e)))
            .transpose()
    }

    /// The finalized header at `height`, read without its block (a store written before headers were kept
    /// apart falls back to the block).
    pub fn header(&self, height: u64) -> Result<Option<pb::FinalizedHeader>> {
        match self.tree.get(header_key(height))? {
            Some(raw) => {
                pb::FinalizedHeader::decode(raw.as_ref()).map(Some).map_err(|e| corrupt(format!("header {height}"), e))
            }
            None => Ok(self.block(height)?.and_then(|b| b.header)),
        }
    }

    /// The head, or None for an empty store.
    pub fn head(&self) -> Result<Option<Head>> {
        let Some(raw) = self.tree.get(HEAD_KEY)? else { return Ok(None) };
        let height = u64::from_be_bytes(raw.as_ref().try_into().map_err(|_| corrupt("head pointer", "not 8 bytes"))?);
        let header = self.header(height)?.ok_or_else(|| corrupt("head", format!("head {height} has no block")))?;
        Self::head_of_header(&header).map(Some)
    }

    /// The head described by `block`.
    pub fn head_of(block: &pb::Block) -> Result<Head> {
        let fh = block.header.as_ref().ok_or_else(|| corrupt("block", "no header"))?;
        Self::head_of_header(fh)
    }

    fn head_of_header(fh: &pb::FinalizedHeader) -> Result<Head> {
        let d = decode_header(fh).map_err(|e| corrupt("header", e))?;
        Ok(Head {
            height: d.header.height,
            hash: d.hash,
            state_root: d.state_root(),
            timestamp_ms: d.header.timestamp_ms,
            proposer: shardex_core::AccountId::from_slice(&d.header.proposer).ok(),
        })
    }

    /// Where `hash` was included, if it was.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<TxLocation>> {
        let Some(raw) = self.tree.get(tx_key(hash))? else { return Ok(None) };
        let bytes: [u8; 12] =
            raw.as_ref().try_into().map_err(|_| corrupt(format!("tx index {hash}"), "not 12 bytes"))?;
        let (h, i) = bytes.split_at(8);
        let height = u64::from_be_bytes(h.try_into().map_err(|_| corrupt("tx index", "height"))?);
        let index = u32::from_be_bytes(i.try_into().map_err(|_| corrupt("tx index", "index"))?);
        Ok(Some(TxLocation { height, index }))
    }

    /// The genesis hash recorded at first start.
    pub fn genesis_hash(&self) -> Result<Option<B256>> {
        self.tree
            .get(GENESIS_KEY)?
            .map(|raw| {
                <[u8; 32]>::try_from(raw.as_ref()).map(B256::from).map_err(|_| corrupt("genesis hash", "not 32 bytes"))
            })
            .transpose()
    }

    /// Stages a committed block, its tx index and the head pointer into `batch`.
    pub fn stage_block(&self, block: &pb::Block, height: u64, tx_hashes: &[B256], batch: &mut sled::Batch) {
        batch.insert(block_key(height).to_vec(), block.encode_to_vec());
        if let Some(header) = &block.header {
            batch.insert(header_key(height).to_vec(), header.encode_to_vec());
        }
        for (index, hash) in tx_hashes.iter().enumerate() {
            let mut loc = Vec::with_capacity(12);
            loc.extend_from_slice(&height.to_be_bytes());
            loc.extend_from_slice(&(index as u32).to_be_bytes());
            batch.insert(tx_key(hash).to_vec(), loc);
        }
        self.stage_history(block, height, batch);
        batch.insert(HEAD_KEY.to_vec(), height.to_be_bytes().to_vec());
        batch.insert(FORMAT_KEY.to_vec(), STORE_FORMAT.to_be_bytes().to_vec());
    }

    /// The layout the store was written in (1 for a store written before the layout was recorded); None for an
    /// empty store.
    pub fn store_format(&self) -> Result<Option<u32>> {
        if self.tree.get(HEAD_KEY)?.is_none() {
            return Ok(None);
        }
        match self.tree.get(FORMAT_KEY)? {
            None => Ok(Some(1)),
            Some(raw) => <[u8; 4]>::try_from(raw.as_ref())
                .map(|b| Some(u32::from_be_bytes(b)))
                .map_err(|_| corrupt("store format", "not 4 bytes")),
        }
    }

    /// The snapshot this store began from: `(height, complete)`, None for a store that began at genesis.
    pub fn snapshot_base(&self) -> Result<Option<(u64, bool)>> {
        let Some(raw) = self.tree.get(SNAPSHOT_BASE_KEY)? else { return Ok(None) };
        let bytes: [u8; 9] = raw.as_ref().try_into().map_err(|_| corrupt("snapshot base", "not 9 bytes"))?;
        let (height, done) = bytes.split_at(8);
        let height = u64::from_be_bytes(height.try_into().map_err(|_| corrupt("snapshot base", "height"))?);
        Ok(Some((height, done == [1])))
    }

    /// Stages the snapshot base record (see [`ChainStore::snapshot_base`]).
    pub fn stage_snapshot_base(&self, height: u64, complete: bool, batch: &mut sled::Batch) {
        let mut value = height.to_be_bytes().to_vec();
        value.push(u8::from(complete));
        batch.insert(SNAPSHOT_BASE_KEY.to_vec(), value);
    }

    /// The lowest height above genesis whose block this store holds after pruning (None: nothing pruned).
    pub fn pruned_below(&self) -> Result<Option<u64>> {
        let Some(raw) = self.tree.get(PRUNED_BELOW_KEY)? else { return Ok(None) };
        let bytes: [u8; 8] = raw.as_ref().try_into().map_err(|_| corrupt("pruned-below mark", "not 8 bytes"))?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    /// The lowest height above genesis whose block this store holds: where pruning or a snapshot left it
    /// (1 for an archive that began at genesis).
    pub fn oldest_block(&self) -> Result<u64> {
        let base = self.snapshot_base()?.map_or(1, |(height, _)| height);
        Ok(self.pruned_below()?.map_or(base, |p| p.max(base)).max(1))
    }

    /// Stages, into `batch` (the block at `head`'s), the deletion of the blocks that fall out of a window of
    /// the last `keep` blocks: each block, its header, its txs' index entries and its history index entries;
    /// at most [`PRUNE_MAX_BLOCKS_PER_CALL`] of them. The genesis block is always kept (it anchors followers
    /// of the chain). Returns how many blocks were staged for deletion.
    pub fn stage_prune_blocks(&self, head: u64, keep: u64, batch: &mut sled::Batch) -> Result<u64> {
        let Some(end) = head.checked_add(1).and_then(|next| next.checked_sub(keep.max(1))) else { return Ok(0) };
        let first = self.oldest_block()?;
        let end = end.min(first.saturating_add(PRUNE_MAX_BLOCKS_PER_CALL));
        if end <= first {
            return Ok(0);
        }
        for height in first..end {
            if let Some(block) = self.block(height)? {
                for tx in &block.txs {
                    // A tx hash is included once; the check only guards the index of a later inclusion.
                    let hash = shardex_core::hash::tx_hash(&tx.body);
                    if self.tx_location(&hash)?.is_some_and(|l| l.height == height) {
                        batch.remove(tx_key(&hash).to_vec());
                    }
                }
                self.stage_history_removal(&block, height, batch);
            }
            batch.remove(block_key(height).to_vec());
            batch.remove(header_key(height).to_vec());
        }
        batch.insert(PRUNED_BELOW_KEY.to_vec(), end.to_be_bytes().to_vec());
        Ok(end - first)
    }

    /// Stages the genesis hash (first start only).
    pub fn stage_genesis_hash(&self, hash: &B256, batch: &mut sled::Batch) {
        batch.insert(GENESIS_KEY.to_vec(), hash.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: u64) -> pb::Block {
        let header = pb::BlockHeader {
            height,
            chain_id: 1,
            shard_id: 1,
            parent_hash: vec![1; 32],
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: vec![4; 32],
            events_root: vec![5; 32],
            proposer: vec![6; 32],
            ..Default::default()
        };
        let fh = pb::FinalizedHeader { header: header.encode_to_vec(), signatures: Vec::new(), round: 3 };
        let tx = pb::SignedTx { body: vec![7; 300], signature: vec![8; 64] };
        pb::Block { header: Some(fh), txs: vec![tx], ..Default::default() }
    }

    #[test]
    fn block_pruning_is_bounded_per_call_and_keeps_genesis_and_the_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let store = ChainStore::new(db.open_tree("chain").expect("tree"));
        let mut batch = sled::Batch::default();
        for h in 0..=200 {
            let tx_hash = shardex_core::hash::tx_hash(&block(h).txs[0].body);
            store.stage_block(&block(h), h, &[tx_hash], &mut batch);
        }
        store.tree.apply_batch(batch).expect("apply");
        assert_eq!((store.oldest_block().expect("oldest"), store.pruned_below().expect("mark")), (1, None));

        // Turning pruning on over a long log: 64 blocks a call, oldest first, until the window is reached.
        let keep = 10;
        let mut calls = 0;
        loop {
            let mut batch = sled::Batch::default();
            let pruned = store.stage_prune_blocks(200, keep, &mut batch).expect("prune");
            store.tree.apply_batch(batch).expect("apply");
            if pruned == 0 {
                break;
            }
            assert!(pruned <= PRUNE_MAX_BLOCKS_PER_CALL);
            calls += 1;
        }
        assert_eq!(calls, 3, "190 blocks in calls of at most 64");
        assert_eq!(store.oldest_block().expect("oldest"), 191);
        assert!(store.block(0).expect("read").is_some(), "genesis is kept");
        assert!(store.block(190).expect("read").is_none() && store.header(190).expect("read").is_none());
        assert!(store.block(191).expect("read").is_some());
        let hash = |h: u64| shardex_core::hash::tx_hash(&block(h).txs[0].body);
        // All test blocks carry the same tx, indexed at the last height that wrote it: pruning the older
        // blocks leaves that entry alone.
        assert_eq!(store.tx_location(&hash(200)).expect("read").map(|l| l.height), Some(200));
    }

    #[test]
    fn headers_are_kept_beside_their_blocks_and_old_stores_fall_back_to_the_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let store = ChainStore::new(db.open_tree("chain").expect("tree"));
        let mut batch = sled::Batch::default();
        store.stage_block(&block(5), 5, &[], &mut batch);
        store.tree.apply_batch(batch).expect("apply");
        assert_eq!(store.header(5).expect("read"), block(5).header);
        assert!(store.tree.get(header_key(5)).expect("read").is_some(), "the header has its own key");
        assert_eq!(store.head().expect("head").map(|h| h.height), Some(5));

        // A block written without its header key (an older store) still answers.
        store.tree.insert(block_key(6), block(6).encode_to_vec()).expect("insert");
        assert_eq!(store.header(6).expect("read"), block(6).header);
        assert_eq!(store.header(7).expect("read"), None);
    }
}
