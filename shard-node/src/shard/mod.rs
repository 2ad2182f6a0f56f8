//! The shard: state engine + block log + mempool + VM, behind one owner. It admits txs, proposes blocks,
//! applies decided blocks and answers queries. IO here is sled only; time and networking come from outside.

mod admit;
pub mod audit;
mod bridge_query;
mod error;
pub mod faults;
mod head_cache;
mod history;
mod open;
mod produce;
mod query;
mod replay;
pub mod sync;
mod trading_query;
mod view;

pub use bridge_query::MessageView;
pub use error::{Reject, ShardError};
pub use head_cache::{CacheStats, DEFAULT_HEAD_CACHE_ENTRIES};
pub use history::{HistoryQuery, HistoryReader, MAX_HISTORY_BLOCKS, MAX_HISTORY_ENTRIES};
pub use open::{Role, ShardConfig, BLOCK_ENVELOPE_BYTES, DEFAULT_MAX_BLOCK_BYTES};
pub use produce::{BlockWork, Committed, Origin, Proposal, Sealed, Written};
pub use query::{AccountView, MarketProofs, MarketView, TxState};
pub use replay::{Rebuilder, ReplayError, Replayed};
pub use trading_query::PositionView;
pub use view::HeadView;

use std::sync::{Arc, Mutex, MutexGuard};

use shardex_core::{genesis::Genesis, tx::TxDomain, Keypair};

use head_cache::HeadCache;
use query::KeyRead;

use crate::{
    chain::{ChainStore, Head},
    mempool::{Mempool, RefusalBudget, RejectLog},
    state::StateEngine,
};
use shardex_vm::{StateReader, StorageError, VmParams};

/// One shard's sequencer state. Not thread-safe by itself: the node wraps it in a mutex.
pub struct Shard {
    db: sled::Db,
    tree: sled::Tree,
    engine: StateEngine,
    chain: ChainStore,
    mempool: Mempool,
    rejected: RejectLog,
    refusals: RefusalBudget,
    genesis: Genesis,
    domain: TxDomain,
    key: Keypair,
    params: VmParams,
    config: ShardConfig,
    head: Head,
    /// Head values admission and re-execution read before storage; moves with `head` (see `head_cache`).
    cache: Arc<Mutex<HeadCache>>,
    /// Blocks staged and written, and the time they took.
    timings: Arc<produce::BlockTimings>,
    /// The height this store began at when it was synced from a snapshot (no blocks below it are held).
    snapshot_base: Option<u64>,
}

impl Shard {
    /// The last committed block.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The chain and shard this node serves.
    pub fn domain(&self) -> TxDomain {
        self.domain
    }

    /// The genesis this node started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// This node's public key.
    pub fn node_key(&self) -> shardex_core::AccountId {
        self.key.account()
    }

    /// Pending txs.
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// True when a pending block is full: the producer should not wait for the interval.
    pub fn block_is_full(&self) -> bool {
        self.mempool.has_full_block()
    }

    /// The limits this shard runs with.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// Head-state reads answered from memory and from storage since the node started.
    pub fn cache_stats(&self) -> CacheStats {
        lock_cache(&self.cache).stats()
    }
}

/// Committed head state, read through the state engine's flat table: for views, which read off the shard lock
/// at a head of their own.
struct HeadState<'a>(&'a StateEngine);

impl StateReader for HeadState<'_> {
    fn read(&self, key: &alloy_primitives::B256) -> Result<Option<Vec<u8>>, StorageError> {
        self.0.get(key).map_err(|e| StorageError(e.to_string()))
    }
}

/// Locks the head cache. A panic while it was held may have left it half updated: it is emptied, and serves
/// again from the next reads.
fn lock_cache(cache: &Mutex<HeadCache>) -> MutexGuard<'_, HeadCache> {
    match cache.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let mut guard = poisoned.into_inner();
            guard.clear();
            cache.clear_poison();
            guard
        }
    }
}

/// Committed state at head `height`: the head cache, else the flat table (filling the cache). Admission reads
/// through it under the shard lock; the re-execution of another validator's block off the lock, where a commit
/// may overtake it (the cache then neither answers it nor keeps what it read; see `head_cache`).
struct CachedHead<'a> {
    engine: &'a StateEngine,
    cache: &'a Mutex<HeadCache>,
    height: u64,
}

impl<'a> CachedHead<'a> {
    fn new(engine: &'a StateEngine, cache: &'a Mutex<HeadCache>, height: u64) -> Self {
        Self { engine, cache, height }
    }
}

impl StateReader for CachedHead<'_> {
    fn read(&self, key: &alloy_primitives::B256) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(value) = lock_cache(self.cache).get(key, self.height) {
            return Ok(value);
        }
        let value = self.engine.get(key).map_err(|e| StorageError(e.to_string()))?;
        lock_cache(self.cache).fill(*key, value.clone(), self.height);
        Ok(value)
    }
}
