//! The node at run time: the shard behind a mutex, the block producer task, and the broadcast of
//! committed blocks that streams follow.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{broadcast, Notify};
use tracing::{error, info};

use crate::{
    sequencer::Consensus,
    shard::{Committed, Shard, ShardError},
};

/// Committed blocks kept for slow stream subscribers before they must re-read from storage.
pub const COMMIT_CHANNEL_CAPACITY: usize = 1024;

/// Shared handle to a running shard.
pub struct NodeHandle {
    shard: Mutex<Shard>,
    commits: broadcast::Sender<Committed>,
    wake: Notify,
}

impl NodeHandle {
    /// Wraps an opened shard.
    pub fn new(shard: Shard) -> Arc<Self> {
        let (commits, _) = broadcast::channel(COMMIT_CHANNEL_CAPACITY);
        Arc::new(Self { shard: Mutex::new(shard), commits, wake: Notify::new() })
    }

    /// Locks the shard. A poisoned lock means a panic mid-update: state in memory cannot be trusted, and
    /// the caller gets the guard anyway only to report; the producer stops the node on any error.
    pub fn shard(&self) -> MutexGuard<'_, Shard> {
        self.shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes to committed blocks.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.commits.subscribe()
    }

    /// Asks the producer to build a block now (the mempool holds a full block).
    pub fn wake_producer(&self) {
        self.wake.notify_one();
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Produces a block every `interval` (or sooner when woken) until a fatal error. Returns that error:
/// the node must stop rather than continue on state it could not write.
pub async fn run_producer(node: Arc<NodeHandle>, mut consensus: Box<dyn Consensus>, interval: Duration) -> ShardError {
    info!(target: "shard::block", interval_ms = interval.as_millis() as u64, "block producer started");
    // A fixed cadence: the time spent producing a block counts toward the next interval, and a late tick is
    // skipped rather than bunched.
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = node.wake.notified() => {}
        }
        // Production blocks (hashing, fsync): it runs on a blocking thread, not on the runtime's workers.
        let round_node = Arc::clone(&node);
        let round = tokio::task::spawn_blocking(move || {
            let result = produce_locked_briefly(&round_node, consensus.as_mut());
            (consensus, result)
        })
        .await;
        let (returned, result) = match round {
            Ok(round) => round,
            Err(join) => {
                error!(target: "shard::block", error = %join, "block production panicked; stopping");
                return ShardError::Inconsistent(format!("block production panicked: {join}"));
            }
        };
        consensus = returned;
        match result {
            Ok(Some(committed)) => {
                // No subscribers is fine.
                let _ = node.commits.send(committed);
            }
            Ok(None) => {}
            Err(e) => {
                error!(target: "shard::block", error = %e, "block production failed; stopping");
                return e;
            }
        }
    }
}

/// One round of seal → stage → decide → apply on the running node. The shard lock is held to seal and to
/// apply, not while the state root is staged or consensus decides, so admission into later blocks goes on.
/// Only this task commits blocks, so the head cannot move between seal and apply.
fn produce_locked_briefly(node: &NodeHandle, consensus: &mut dyn Consensus) -> Result<Option<Committed>, ShardError> {
    let Some(sealed) = node.shard().seal()? else { return Ok(None) };
    let proposal = sealed.stage()?;
    let signatures = consensus.decide(&proposal).map_err(|e| ShardError::Inconsistent(e.to_string()))?;
    node.shard().apply(proposal, signatures).map(Some)
}

/// One round of propose → decide → apply.
pub fn produce_one(shard: &mut Shard, consensus: &mut dyn Consensus) -> Result<Option<Committed>, ShardError> {
    let Some(proposal) = shard.propose()? else { return Ok(None) };
    let signatures = consensus.decide(&proposal).map_err(|e| ShardError::Inconsistent(e.to_string()))?;
    shard.apply(proposal, signatures).map(Some)
}
