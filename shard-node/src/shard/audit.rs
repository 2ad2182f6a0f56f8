//! The replay audit (`shard-node --replay-check`): reopens a stopped node's store exactly as a restart does,
//! requires the stored state values to hash (from scratch) to the head's state root, then re-executes every
//! stored block from genesis into a scratch store and requires each rebuilt header to equal the stored one
//! byte for byte, so the reopened head's state is the state a replay computes.
//! After a crash this is the proof that nothing half-written survived: a torn or lost block would show as a
//! reopen error, a missing block, or a header (state, receipts or events root) that differs.

use std::{path::Path, time::Instant};

use alloy_primitives::B256;
use shardex_core::{genesis::Genesis, Keypair};

use super::{Shard, ShardConfig, ShardError};

/// What a replay audit found: the reopened head, equal to the replay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Blocks re-executed (heights 1 to `height`).
    pub blocks: u64,
    /// Height of the reopened head.
    pub height: u64,
    /// Its block hash.
    pub hash: B256,
    /// Its state root, equal to the root the replay computed.
    pub state_root: B256,
    /// Txs re-executed.
    pub txs: u64,
    /// Values in the head's state.
    pub leaves: u64,
    /// Wall time of the replay, ms.
    pub elapsed_ms: u64,
}

/// Reopens the shard in `db` and replays it from genesis in a scratch store at `scratch` (created empty,
/// removed afterwards). `progress` is called every 1,000 blocks with (replayed, head). An `Err` names the
/// first height where the store and the replay part.
pub fn replay_check(
    db: sled::Db,
    genesis: Genesis,
    key: Keypair,
    config: ShardConfig,
    scratch: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, ShardError> {
    let started = Instant::now();
    let chain = crate::chain::ChainStore::new(db.open_tree("shard")?);
    if let Some((base, _)) = chain.snapshot_base()? {
        return Err(ShardError::Inconsistent(format!(
            "this store began from a snapshot at height {base}: blocks below it are not held, so it cannot be \
             replayed from genesis"
        )));
    }
    if let Some(oldest) = chain.pruned_below()? {
        return Err(ShardError::Inconsistent(format!(
            "this store prunes its blocks and holds them from height {oldest} on, so it cannot be replayed from \
             genesis (run the check on an archive node, state.keep_blocks = 0)"
        )));
    }
    let stored = Shard::open(db, genesis.clone(), key.clone(), config.clone())?;
    let head = stored.head().clone();
    let stored = stored.view();
    let (leaves, leaves_root) = leaves_root(&stored)?;
    if leaves_root != head.state_root {
        return Err(ShardError::Inconsistent(format!(
            "the {leaves} stored state values hash to {leaves_root}, not to the head's state root {}",
            head.state_root
        )));
    }

    if scratch.exists() {
        std::fs::remove_dir_all(scratch).map_err(|e| scratch_error(scratch, e))?;
    }
    let replayed = {
        let scratch_db = sled::Config::new().path(scratch).open()?;
        let mut fresh = Shard::open(scratch_db, genesis, key, config)?;
        let mut txs_total = 0u64;
        for height in 1..=head.height {
            let block = stored.block(height)?.ok_or_else(|| {
                ShardError::Inconsistent(format!("block {height} is missing below head {}", head.height))
            })?;
            txs_total += block.txs.len() as u64;
            // Requires the rebuilt header to equal the stored one byte for byte, at the next height.
            fresh.apply_certified(&block).map_err(|e| at(height, &e.to_string()))?;
            if height % 1_000 == 0 {
                progress(height, head.height);
            }
        }
        (fresh.head().clone(), txs_total)
    };
    std::fs::remove_dir_all(scratch).map_err(|e| scratch_error(scratch, e))?;
    let ((replay_head, txs), elapsed_ms) = (replayed, started.elapsed().as_millis() as u64);
    if replay_head != head {
        return Err(ShardError::Inconsistent(format!(
            "the replay ends at height {} root {}, the store at height {} root {}",
            replay_head.height, replay_head.state_root, head.height, head.state_root
        )));
    }
    Ok(ReplayReport {
        blocks: head.height,
        height: head.height,
        hash: head.hash,
        state_root: head.state_root,
        txs,
        leaves,
        elapsed_ms,
    })
}

/// The number of values in the shard's flat state table and the trie root they hash to, computed from
/// scratch with alloy-trie's `HashBuilder` (independent of the engine's stored trie nodes).
fn leaves_root(shard: &super::HeadView) -> Result<(u64, B256), ShardError> {
    let mut hb = alloy_trie::HashBuilder::default();
    let mut count = 0u64;
    for leaf in shard.engine.iter_leaves() {
        let (key, value) = leaf?;
        hb.add_leaf(alloy_trie::Nibbles::unpack(key), &value);
        count += 1;
    }
    Ok((count, hb.root()))
}

fn at(height: u64, why: &str) -> ShardError {
    ShardError::Inconsistent(format!("replay of height {height}: {why}"))
}

fn scratch_error(path: &Path, e: std::io::Error) -> ShardError {
    ShardError::Inconsistent(format!("scratch store {}: {e}", path.display()))
}
