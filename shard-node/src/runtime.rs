//! The node at run time: the shard behind a mutex, the block producer task, and the broadcast of
//! committed blocks that streams follow.

use std::{
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{broadcast, Notify};
use tracing::{debug, error, info};

use shardex_core::{block::Certificate, tx::VerifiedTx};

use crate::{
    sequencer::Consensus,
    shard::{Committed, HeadView, Proposal, Shard, ShardError},
};

/// Committed blocks the broadcast keeps for stream tasks that are behind; a task further behind re-reads from
/// storage. It bounds the memory of the broadcast as a whole (each block is shared, not copied per subscriber).
pub const COMMIT_CHANNEL_CAPACITY: usize = 64;

/// Shared handle to a running shard.
///
/// Two locks: the shard mutex (admission, sealing, finishing a block, mempool queries) and the commit gate.
/// The producer writes a block's batch to storage holding the gate exclusively but not the mutex, moves the
/// head (under the mutex) and publishes the new [`HeadView`] before releasing the gate. Queries of committed
/// state take neither lock ([`NodeHandle::read_head`]): they read through the published view and check
/// afterwards that no block was written meanwhile; only a query that raced a block's write waits for the
/// gate and reads again. Admission takes only the mutex (it reads the sealed block's writes from the pending
/// overlay either way). [`NodeHandle::shard_at_head`] (gate, then mutex) remains for reads that also need the
/// mempool.
pub struct NodeHandle {
    shard: Mutex<Shard>,
    commit_gate: RwLock<()>,
    /// The view of the committed head; replaced (never mutated) when the head moves.
    view: RwLock<Arc<HeadView>>,
    commits: broadcast::Sender<Committed>,
    wake: Notify,
}

/// The shard, locked for reading committed state consistently with its head.
pub struct HeadGuard<'a> {
    shard: MutexGuard<'a, Shard>,
    _gate: RwLockReadGuard<'a, ()>,
}

impl Deref for HeadGuard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.shard
    }
}

impl DerefMut for HeadGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }
}

impl NodeHandle {
    /// Wraps an opened shard.
    pub fn new(shard: Shard) -> Arc<Self> {
        let (commits, _) = broadcast::channel(COMMIT_CHANNEL_CAPACITY);
        let view = RwLock::new(Arc::new(shard.view()));
        Arc::new(Self { shard: Mutex::new(shard), commit_gate: RwLock::new(()), view, commits, wake: Notify::new() })
    }

    /// The view of the committed head (no shard lock; the view's lock is held only to clone an `Arc`).
    pub fn head_view(&self) -> Arc<HeadView> {
        Arc::clone(&self.view.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Runs `read` on committed state at the head without the shard lock or the commit gate, so a query
    /// never waits behind admission or a block's fsync. `read` may run twice: when a block was written while
    /// it ran (its head-state reads may then mix two heads), it runs again on the new head, after waiting for
    /// that block to be published.
    pub fn read_head<T>(&self, read: impl Fn(&HeadView) -> Result<T, ShardError>) -> Result<T, ShardError> {
        let view = self.head_view();
        let out = read(&view)?;
        if view.is_current()? {
            return Ok(out);
        }
        let _gate = self.commit_gate.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&self.head_view())
    }

    /// Locks the shard for a query of committed state: no block is being written meanwhile (see the type
    /// docs). Gate first, then mutex, in the producer's order.
    pub fn shard_at_head(&self) -> HeadGuard<'_> {
        let gate = self.commit_gate.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        HeadGuard { shard: self.shard(), _gate: gate }
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

    /// Commits a decided proposal: writes and flushes its batch holding the commit gate (not the shard lock),
    /// moves the head under the lock, then tells stream subscribers. Returns the txs that were pending here
    /// and were left out (another validator's block: see [`Shard::finish`]). A storage error is fatal.
    pub fn commit(
        &self,
        proposal: Proposal,
        certificate: Certificate,
    ) -> Result<(Committed, Vec<VerifiedTx>), ShardError> {
        let gate = self.commit_gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let written = proposal.write(certificate)?;
        let (committed, orphans, view) = {
            let mut shard = self.shard();
            let (committed, orphans) = shard.finish(written)?;
            (committed, orphans, shard.view())
        };
        *self.view.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(view);
        drop(gate);
        // No subscribers is fine.
        let _ = self.commits.send(committed.clone());
        Ok((committed, orphans))
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
        // A tick seals the oldest pending block whatever its size; a wake only a block that is full or overdue
        // (a wake can be stale: its block may have been sealed by a tick meanwhile).
        let tick = tokio::select! {
            _ = ticks.tick() => true,
            _ = node.wake.notified() => false,
        };
        // Production blocks (hashing, fsync): it runs on a blocking thread, not on the runtime's workers.
        let round_node = Arc::clone(&node);
        let round = tokio::task::spawn_blocking(move || {
            let result = produce_due_blocks(&round_node, consensus.as_mut(), tick);
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
        if let Err(e) = result {
            error!(target: "shard::block", error = %e, "block production failed; stopping");
            return e;
        }
    }
}

/// Most blocks one producer round commits before it yields back to the timer.
pub const MAX_BLOCKS_PER_ROUND: usize = 64;

/// Commits the oldest pending block (on a tick; on a wake only if it is full or overdue), then keeps going
/// while the next one is already full or overdue (a backlog drains at once, not one block per tick),
/// broadcasting each commit.
fn produce_due_blocks(node: &NodeHandle, consensus: &mut dyn Consensus, tick: bool) -> Result<(), ShardError> {
    if !tick && !node.shard().block_is_full() {
        return Ok(());
    }
    for _ in 0..MAX_BLOCKS_PER_ROUND {
        if produce_locked_briefly(node, consensus)?.is_none() {
            return Ok(());
        }
        if !node.shard().block_is_full() {
            return Ok(());
        }
    }
    Ok(())
}

/// One round of seal → stage → decide → write → finish on the running node. The shard lock is held only to
/// seal and to finish; staging, consensus and the storage write run beside admission into later blocks.
/// Only this task commits blocks, so the head cannot move between seal and finish.
fn produce_locked_briefly(node: &NodeHandle, consensus: &mut dyn Consensus) -> Result<Option<Committed>, ShardError> {
    let span = tracing::info_span!(target: "shard::block", "block", height = tracing::field::Empty).entered();
    let start = Instant::now();
    let Some(sealed) = node.shard().seal()? else { return Ok(None) };
    let sealed_at = Instant::now();
    span.record("height", sealed.height());
    let proposal = sealed.stage()?;
    let staged_at = Instant::now();
    let certificate = consensus.decide(&proposal).map_err(|e| ShardError::Inconsistent(e.to_string()))?;
    let decided_at = Instant::now();
    let (committed, _) = node.commit(proposal, certificate)?;
    let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1e3;
    let done = Instant::now();
    debug!(
        target: "shard::block",
        height = committed.height,
        txs = committed.block.txs.len(),
        seal_ms = ms(start, sealed_at),
        stage_ms = ms(sealed_at, staged_at),
        decide_ms = ms(staged_at, decided_at),
        commit_ms = ms(decided_at, done),
        "block produced"
    );
    Ok(Some(committed))
}

/// One round of propose → decide → apply.
pub fn produce_one(shard: &mut Shard, consensus: &mut dyn Consensus) -> Result<Option<Committed>, ShardError> {
    let Some(proposal) = shard.propose()? else { return Ok(None) };
    let certificate = consensus.decide(&proposal).map_err(|e| ShardError::Inconsistent(e.to_string()))?;
    shard.apply(proposal, certificate).map(Some)
}
