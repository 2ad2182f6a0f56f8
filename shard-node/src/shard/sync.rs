//! Starting a shard from a state snapshot at height H instead of replaying from genesis.
//!
//! The only things trusted are the genesis file and a block at H whose header is certified by a quorum of
//! the genesis validators: its body must match the header's roots, and the snapshot must rebuild the
//! header's state root node by node ([`SnapshotImport`]). Chunks come from [`SnapshotSource`]s, which take
//! turns; a source whose chunk fails (a transport error, a node that does not verify, an early end) is
//! dropped, and the next one is asked for the same range. The store is marked as syncing before the first
//! chunk is written, so an interrupted sync is refused at the next open instead of being mistaken for a
//! fresh store ([`discard_interrupted`] empties it to start over); the head at H, the genesis hash and the
//! completed mark are written in one batch with the version's root record, then flushed. Afterwards
//! [`Shard::open`](super::Shard::open) resumes from H like any restart, and blocks above H follow by value
//! sync. Blocks below H are not held.

use alloy_trie::Nibbles;
use prost::Message;
use shardex_core::{
    block::verify_finalized,
    genesis::Genesis,
    hash::ordered_root,
    pb,
    tx::{verify_all, TxDomain, VerifiedTx},
};

use super::{
    open::{genesis_block, genesis_root},
    ShardConfig, ShardError,
};
use crate::{
    chain::ChainStore,
    state::{SnapshotImport, SnapshotNode, StateEngine, MAX_SNAPSHOT_CHUNK_NODES},
};

/// Where snapshot chunks come from (a peer).
pub trait SnapshotSource {
    /// A name for progress and errors.
    fn name(&self) -> String;
    /// Up to `max` nodes of the snapshot's version, in path order, after `after` (None: from the root).
    /// An empty answer means the trie has been sent whole.
    fn chunk(&mut self, after: Option<&Nibbles>, max: usize) -> Result<Vec<SnapshotNode>, String>;
    /// A hint that the next call will likely be `chunk(Some(after), max)`: a networked source may start
    /// fetching it now. The default does nothing.
    fn prefetch(&mut self, _after: &Nibbles, _max: usize) {}
}

/// What a snapshot sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Height of the head written.
    pub height: u64,
    /// Trie nodes and state values imported.
    pub nodes: u64,
    /// State values imported.
    pub leaves: u64,
    /// Chunks applied.
    pub chunks: u64,
    /// Chunks refused or failed, with the source and why.
    pub refused: Vec<(String, String)>,
}

/// What a data directory holds, as far as starting from a snapshot is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// Nothing: a snapshot sync may start here.
    Empty,
    /// A snapshot sync at this height began and never finished; the store holds a partial state only.
    Interrupted(u64),
    /// A head: the node resumes from it.
    Holds,
}

/// What `db` holds (see [`StoreState`]).
pub fn store_state(db: &sled::Db) -> Result<StoreState, ShardError> {
    let tree = db.open_tree("shard")?;
    let chain = ChainStore::new(tree.clone());
    if let Some((height, false)) = chain.snapshot_base()? {
        return Ok(StoreState::Interrupted(height));
    }
    let engine = StateEngine::open(tree, 1)?;
    Ok(match chain.head()?.is_some() || engine.latest_version()?.is_some() {
        true => StoreState::Holds,
        false => StoreState::Empty,
    })
}

/// Empties a store that an interrupted snapshot sync left behind (it holds nothing but part of a
/// snapshot), so that the sync can start over. Refuses any other store.
pub fn discard_interrupted(db: &sled::Db) -> Result<u64, ShardError> {
    let StoreState::Interrupted(height) = store_state(db)? else {
        return Err(ShardError::Inconsistent("only a store left by an interrupted snapshot sync is discarded".into()));
    };
    db.open_tree("shard")?.clear()?;
    db.open_tree("consensus")?.clear()?;
    db.flush()?;
    Ok(height)
}

/// A block at H checked to be certified by the genesis validators, with its body matching its header.
#[derive(Debug, Clone)]
pub struct CertifiedSnapshotBlock {
    block: pb::Block,
    height: u64,
    state_root: alloy_primitives::B256,
    tx_hashes: Vec<alloy_primitives::B256>,
}

impl CertifiedSnapshotBlock {
    /// Checks `block` against `genesis`: its header's certificate, and its txs, receipts and events against
    /// the header's roots. Nothing else about a snapshot is trusted.
    pub fn verify(genesis: &Genesis, config: &ShardConfig, block: pb::Block) -> Result<Self, ShardError> {
        let domain = TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
        let fh = block.header.clone().ok_or_else(|| invalid("the block has no header"))?;
        let decoded = verify_finalized(&fh, domain.chain, domain.shard, &genesis.validators)
            .map_err(|e| invalid(&format!("the block's header is not certified by the genesis validators: {e}")))?;
        let height = decoded.header.height;
        if height == 0 {
            return Err(invalid("a snapshot at height 0 is the genesis: start without one"));
        }
        let tx_hashes: Vec<_> = verify_all(block.txs.clone(), domain, config.max_tx_bytes)
            .map_err(|(i, e)| invalid(&format!("tx {i} of the block: {e}")))?
            .iter()
            .map(VerifiedTx::hash)
            .collect();
        let roots = [
            ("tx_root", &decoded.header.tx_root, ordered_root(&encode_all(&block.txs))),
            ("receipts_root", &decoded.header.receipts_root, ordered_root(&encode_all(&block.receipts))),
            ("events_root", &decoded.header.events_root, ordered_root(&encode_all(&block.block_events))),
        ];
        if let Some((name, _, _)) =
            roots.iter().find(|(_, claimed, computed)| claimed.as_slice() != computed.as_slice())
        {
            return Err(invalid(&format!("the block's body does not match its header's {name}")));
        }
        Ok(Self { state_root: decoded.state_root(), block, height, tx_hashes })
    }

    /// Its height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state root its header certifies.
    pub fn state_root(&self) -> alloy_primitives::B256 {
        self.state_root
    }
}

/// Progress of a running sync, as reported after each applied chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// The snapshot's height.
    pub height: u64,
    /// Chunks applied so far.
    pub chunks: u64,
    /// Trie nodes imported so far.
    pub nodes: u64,
    /// State values imported so far.
    pub leaves: u64,
}

/// Syncs the empty store `db` to the certified block `block` from `sources` (see the module docs).
/// `chunk_nodes` bounds each request (at most [`MAX_SNAPSHOT_CHUNK_NODES`]).
pub fn sync_from_snapshot(
    db: &sled::Db,
    genesis: &Genesis,
    config: &ShardConfig,
    block: pb::Block,
    sources: &mut [&mut dyn SnapshotSource],
    chunk_nodes: usize,
) -> Result<SyncReport, ShardError> {
    let block = CertifiedSnapshotBlock::verify(genesis, config, block)?;
    sync_certified(db, genesis, block, sources, chunk_nodes, &mut |_| {})
}

/// [`sync_from_snapshot`] of a block already verified, reporting progress after every applied chunk.
pub fn sync_certified(
    db: &sled::Db,
    genesis: &Genesis,
    block: CertifiedSnapshotBlock,
    sources: &mut [&mut dyn SnapshotSource],
    chunk_nodes: usize,
    progress: &mut dyn FnMut(SyncProgress),
) -> Result<SyncReport, ShardError> {
    if store_state(db)? != StoreState::Empty {
        return Err(ShardError::Inconsistent("snapshot sync needs an empty data directory".into()));
    }
    let tree = db.open_tree("shard")?;
    let chain = ChainStore::new(tree.clone());
    if sources.is_empty() {
        return Err(ShardError::Inconsistent("snapshot sync needs at least one source".into()));
    }
    let CertifiedSnapshotBlock { block, height, state_root, tx_hashes } = block;

    let mut mark = sled::Batch::default();
    chain.stage_snapshot_base(height, false, &mut mark);
    tree.apply_batch(mark)?;

    let mut import = SnapshotImport::new(height, state_root);
    let (chunks, refused) = import_chunks(&tree, &mut import, sources, chunk_nodes, &mut |nodes, leaves, chunks| {
        progress(SyncProgress { height, chunks, nodes, leaves })
    })?;
    let (nodes, leaves) = import.progress();
    let mut batch = sled::Batch::default();
    import.finish(&mut batch).map_err(|e| invalid(&format!("the sources ended the snapshot early: {e}")))?;
    chain.stage_block(&block, height, &tx_hashes, &mut batch);
    let (_, genesis_hash) = genesis_block(genesis, genesis_root(genesis));
    chain.stage_genesis_hash(&genesis_hash, &mut batch);
    chain.stage_snapshot_base(height, true, &mut batch);
    tree.apply_batch(batch)?;
    db.flush()?;
    tracing::info!(target: "shard::sync", height, nodes, leaves, chunks, refused = refused.len(), "synced from a snapshot");
    Ok(SyncReport { height, nodes, leaves, chunks, refused })
}

/// Fills `import` from `sources`, applying each verified chunk to `tree` as it comes, and reports
/// `(nodes, leaves, chunks)` after each. Sources take turns chunk by chunk (the serving load is spread), and
/// the next source is asked to prefetch the next range as soon as a chunk arrives, before it is verified
/// (so the peers' export overlaps this node's import); a source whose chunk fails is dropped and the next
/// one is asked for the same range. Returns the chunks applied and the refusals, by source.
pub fn import_chunks(
    tree: &sled::Tree,
    import: &mut SnapshotImport,
    sources: &mut [&mut dyn SnapshotSource],
    chunk_nodes: usize,
    progress: &mut dyn FnMut(u64, u64, u64),
) -> Result<(u64, Vec<(String, String)>), ShardError> {
    let max = chunk_nodes.clamp(1, MAX_SNAPSHOT_CHUNK_NODES);
    let (mut after, mut chunks, mut refused) = (None::<Nibbles>, 0u64, Vec::new());
    let mut live: Vec<usize> = (0..sources.len()).collect();
    let mut turn = 0usize;
    loop {
        if live.is_empty() {
            return Err(ShardError::Inconsistent(format!(
                "every source failed the snapshot chunk after {after:?}: {:?}",
                refused.last()
            )));
        }
        let index = live[turn % live.len()];
        let fetched = sources[index].chunk(after.as_ref(), max);
        if let Some(last) = fetched.as_ref().ok().and_then(|chunk| chunk.last()) {
            let next = live[(turn + 1) % live.len()];
            sources[next].prefetch(&last.path, max);
        }
        let outcome = fetched.and_then(|chunk| {
            if chunk.is_empty() && !import.is_complete() {
                return Err("sent an empty chunk while nodes are still missing".to_owned());
            }
            let mut batch = sled::Batch::default();
            let last = import.apply(&chunk, &mut batch).map_err(|e| e.to_string())?;
            Ok((chunk.is_empty(), last, batch))
        });
        match outcome {
            Ok((true, _, _)) => return Ok((chunks, refused)),
            Ok((false, last, batch)) => {
                tree.apply_batch(batch)?;
                after = last;
                chunks += 1;
                turn += 1;
                let (nodes, leaves) = import.progress();
                progress(nodes, leaves, chunks);
            }
            Err(why) => {
                let name = sources[index].name();
                tracing::warn!(target: "shard::sync", source = %name, %why, "snapshot chunk refused; dropping the source and asking the next");
                refused.push((name, why));
                live.retain(|i| *i != index);
            }
        }
    }
}

fn encode_all<M: Message>(items: &[M]) -> Vec<Vec<u8>> {
    items.iter().map(Message::encode_to_vec).collect()
}

fn invalid(why: &str) -> ShardError {
    ShardError::Inconsistent(format!("snapshot sync: {why}"))
}
