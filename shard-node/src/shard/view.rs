//! Committed state at one head, readable without the shard lock. The state engine and the block log are
//! shared handles on the store and a head is a copy, so a view is cheap to take and to keep. Proofs and
//! reads at a retained height walk versioned trie nodes, which a later block never changes (until they leave
//! the retention window: then the read is `NOT_FOUND`, pruned). Reads at the view's own head go through the
//! flat table of head values, which the next block's write replaces: [`HeadView::is_current`] tells a reader
//! afterwards whether that happened meanwhile (the node then reads again at the new head).

use super::{Shard, ShardError};
use crate::{
    chain::{ChainStore, Head},
    state::StateEngine,
};

/// Committed state as of one head (see the module docs).
#[derive(Clone)]
pub struct HeadView {
    pub(super) engine: StateEngine,
    pub(super) chain: ChainStore,
    pub(super) head: Head,
    pub(super) retention_blocks: u64,
    pub(super) snapshot_base: Option<u64>,
}

impl HeadView {
    /// The head this view reads at.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The height this store began at, when it was synced from a snapshot: no block below it is held.
    pub fn snapshot_base(&self) -> Option<u64> {
        self.snapshot_base
    }

    /// Why a block at `height` is not served: above the head, or below the snapshot this store began from.
    pub fn missing_block(&self, height: u64) -> String {
        match self.snapshot_base {
            Some(base) if height < base => format!(
                "no block at height {height}: this node began from a snapshot at height {base} and holds no \
                 older blocks; ask an archive node"
            ),
            _ => format!("no block at height {height}"),
        }
    }

    /// True while no block after this view's head has been written. Every block is one atomic sled batch
    /// that also moves the state engine's latest version, so reads made through this view before a `true`
    /// answer all saw this head's state.
    pub fn is_current(&self) -> Result<bool, ShardError> {
        Ok(self.engine.latest_version()? == Some(self.head.height))
    }
}

impl HeadView {
    /// Up to `max` trie nodes of this head's state, in path order after `after` (a snapshot chunk; see
    /// [`StateEngine::snapshot_nodes`]).
    pub fn snapshot_chunk(
        &self,
        after: Option<&alloy_trie::Nibbles>,
        max: usize,
    ) -> Result<Vec<crate::state::SnapshotNode>, ShardError> {
        Ok(self.engine.snapshot_nodes(self.head.height, after, max)?)
    }
}

impl Shard {
    /// A view of committed state at the current head.
    pub fn view(&self) -> HeadView {
        HeadView {
            engine: self.engine.clone(),
            chain: self.chain.clone(),
            head: self.head.clone(),
            retention_blocks: self.config.retention_blocks,
            snapshot_base: self.snapshot_base,
        }
    }
}
