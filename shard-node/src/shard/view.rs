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

    /// The lowest height above genesis whose block this node holds (1 for an archive that began at genesis;
    /// its snapshot's height, or where pruning left it).
    pub fn oldest_block(&self) -> Result<u64, ShardError> {
        Ok(self.chain.oldest_block()?)
    }

    /// Why a block at `height` is not served: above the head, below the snapshot this store began from, or
    /// pruned.
    pub fn missing_block(&self, height: u64) -> String {
        let pruned = self.chain.pruned_below().ok().flatten();
        match (self.snapshot_base, pruned) {
            (_, Some(oldest)) if height > 0 && height < oldest => format!(
                "no block at height {height}: this node prunes its blocks and holds them from height {oldest} on; \
                 ask an archive node"
            ),
            (Some(base), _) if height < base => format!(
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

/// How long a snapshot being served is kept from pruning after its manifest or its last chunk was asked
/// for: a syncing node that pauses longer than this may find its height pruned and must start over.
pub const SNAPSHOT_PIN_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

impl HeadView {
    /// Up to `max` trie nodes of this head's state, in path order after `after` (a snapshot chunk; see
    /// [`StateEngine::snapshot_nodes`]).
    pub fn snapshot_chunk(
        &self,
        after: Option<&alloy_trie::Nibbles>,
        max: usize,
    ) -> Result<Vec<crate::state::SnapshotNode>, ShardError> {
        self.snapshot_chunk_at(self.head.height, after, max)
    }

    /// Up to `max` trie nodes of the state at `height` (the head or a retained height), in path order after
    /// `after`. Keeps `height` from pruning for [`SNAPSHOT_PIN_LEASE`] more; an error when the height is not
    /// retained, or when as many other heights are being served as allowed
    /// ([`crate::state::MAX_PINNED_VERSIONS`]: the serving node then answers busy).
    pub fn snapshot_chunk_at(
        &self,
        height: u64,
        after: Option<&alloy_trie::Nibbles>,
        max: usize,
    ) -> Result<Vec<crate::state::SnapshotNode>, ShardError> {
        self.pin_snapshot(height)?;
        Ok(self.engine.snapshot_nodes(height, after, max)?)
    }

    /// Pins `height` for a snapshot being served; an error names why it cannot be.
    fn pin_snapshot(&self, height: u64) -> Result<(), ShardError> {
        match self.engine.pin(height, SNAPSHOT_PIN_LEASE)? {
            true => Ok(()),
            false => match self.engine.root(height) {
                // Stored, so the cap was hit.
                Ok(_) => Err(ShardError::Inconsistent(format!(
                    "busy: {} other snapshot heights are being served; retry later",
                    crate::state::MAX_PINNED_VERSIONS
                ))),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// The snapshot this node offers: its head height and certified head block. Keeps that height from
    /// pruning for [`SNAPSHOT_PIN_LEASE`], renewed by every chunk asked of it.
    pub fn snapshot_manifest(&self) -> Result<(u64, shardex_core::pb::Block), ShardError> {
        let height = self.head.height;
        if height == 0 {
            return Err(ShardError::Inconsistent(
                "this node is at genesis: start from the genesis file, there is no snapshot to take".into(),
            ));
        }
        self.pin_snapshot(height)?;
        let block = self.chain.block(height)?.ok_or_else(|| {
            ShardError::Inconsistent(format!("the head block {height} is missing from the block log"))
        })?;
        Ok((height, block))
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
