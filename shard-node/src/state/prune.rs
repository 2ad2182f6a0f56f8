//! Pruning of trie nodes and root records that fell out of the retention window.

use super::{
    engine::StateEngine,
    error::{Result, StateError},
    keys,
};

/// Stale nodes after which one [`StateEngine::stage_prune`] call stops (it may overshoot by one
/// stale-index record), so a prune never turns the block's batch into an unbounded one; the
/// rest is deleted by the next calls.
pub const PRUNE_MAX_NODES_PER_CALL: usize = 100_000;

/// What one [`StateEngine::stage_prune`] call staged for deletion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Stale trie nodes deleted (each with its stale-index entry).
    pub nodes_pruned: u64,
    /// Root records deleted.
    pub roots_pruned: u64,
    /// Oldest version still provable once the batch is applied (`None`: nothing is pruned yet).
    pub oldest_retained: Option<u64>,
    /// `false` if [`PRUNE_MAX_NODES_PER_CALL`] was hit and more stale nodes remain.
    pub complete: bool,
}

impl StateEngine {
    /// Stages, into `batch`, the deletion of everything only versions older than
    /// `head_version - retention_versions` need: nodes that became stale at or before that
    /// version, their stale-index entries, and the root records of older versions.
    ///
    /// `head_version` may be the version staged in the same batch (latest + 1). A pinned version
    /// ([`StateEngine::pin`]) and the ones after it are kept whole while the pin lasts.
    pub fn stage_prune(&self, head_version: u64, batch: &mut sled::Batch) -> Result<PruneStats> {
        let latest = self.latest_version()?;
        let newest_allowed = latest.map_or(Some(0), |l| l.checked_add(1));
        if newest_allowed.is_none_or(|newest| head_version > newest) {
            return Err(StateError::VersionNotFound { version: head_version, latest });
        }
        let Some(cutoff) = head_version.checked_sub(self.retention_versions) else {
            return Ok(PruneStats { complete: true, ..PruneStats::default() });
        };
        let cutoff = self.oldest_pinned().map_or(cutoff, |pinned| cutoff.min(pinned));
        let mut stats = PruneStats { oldest_retained: Some(cutoff), complete: true, ..PruneStats::default() };

        // A node stale since `s` belongs only to versions below `s`, all older than `cutoff`.
        let start = keys::stale_since_prefix(0).to_vec();
        let end = match cutoff.checked_add(1) {
            Some(next) => keys::stale_since_prefix(next).to_vec(),
            None => vec![keys::STALE_PREFIX + 1],
        };
        for entry in self.tree.range(start..end) {
            if stats.nodes_pruned >= PRUNE_MAX_NODES_PER_CALL as u64 {
                stats.complete = false;
                break;
            }
            let (stale, record) = entry?;
            let nodes =
                keys::stale_node_keys(&record).ok_or_else(|| StateError::corrupt("bad stale-index record", &stale))?;
            stats.nodes_pruned += nodes.len() as u64;
            for node in nodes {
                batch.remove(node);
            }
            batch.remove(stale);
        }

        for entry in self.tree.range(keys::root_key(0)..keys::root_key(cutoff)) {
            let (root, _) = entry?;
            batch.remove(root);
            stats.roots_pruned += 1;
        }
        self.count_writes(usize::try_from(stats.nodes_pruned).unwrap_or(usize::MAX));
        tracing::debug!(target: "shard::state", head_version, cutoff, ?stats, "state prune staged");
        Ok(stats)
    }
}
