//! Fault injection for crash and divergence testing. `testnet chaos` starts a node with `SHARDEX_CRASH_BEFORE_FLUSH=N`
//! (read by `shard-node` at start, [`ENV_CRASH_BEFORE_FLUSH`]); the node then aborts right after applying
//! the N-th block batch it writes and before flushing it: the window in which a power cut leaves that batch
//! wholly on disk or wholly lost, never half. `SHARDEX_DIVERGE_AT` fakes a non-deterministic re-execution, and
//! `SHARDEX_CORRUPT_SNAPSHOT` a peer serving bad snapshot chunks. Off unless armed; one relaxed atomic load
//! per use otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The environment variable `shard-node` arms [`crash_before_flush_of`] from.
pub const ENV_CRASH_BEFORE_FLUSH: &str = "SHARDEX_CRASH_BEFORE_FLUSH";

/// Which written block to abort before flushing (1 = the first this process writes); 0 = never.
static CRASH_AT: AtomicU64 = AtomicU64::new(0);
/// Blocks written by this process while armed.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Arms the crash: the process aborts before flushing the `n`-th block it writes (`n` ≥ 1; 0 disarms).
pub fn crash_before_flush_of(n: u64) {
    WRITTEN.store(0, Ordering::SeqCst);
    CRASH_AT.store(n, Ordering::SeqCst);
}

/// Called between a block's write and its flush.
pub(super) fn before_flush(height: u64) {
    let at = CRASH_AT.load(Ordering::Relaxed);
    if at != 0 && WRITTEN.fetch_add(1, Ordering::SeqCst) + 1 == at {
        eprintln!("{ENV_CRASH_BEFORE_FLUSH}: aborting after writing block {height}, before its flush");
        std::process::abort();
    }
}

/// The environment variable `shard-node` arms [`diverge_at`] from.
pub const ENV_DIVERGE_AT: &str = "SHARDEX_DIVERGE_AT";

/// The height whose re-execution this process pretends rebuilds another header; 0 = none.
static DIVERGE_AT: AtomicU64 = AtomicU64::new(0);

/// Arms a divergence: this node's re-execution of the block at `height` is judged to rebuild another
/// header, as a non-deterministic node's would (0 disarms). Proves that such a node stops, saying so.
pub fn diverge_at(height: u64) {
    DIVERGE_AT.store(height, Ordering::SeqCst);
}

/// Whether re-executing the block at `height` must be taken to diverge.
pub fn diverges(height: u64) -> bool {
    let at = DIVERGE_AT.load(Ordering::Relaxed);
    at != 0 && at == height
}

/// The environment variable `shard-node` arms [`corrupt_snapshots`] from (any value but `0`).
pub const ENV_CORRUPT_SNAPSHOT: &str = "SHARDEX_CORRUPT_SNAPSHOT";

static CORRUPT_SNAPSHOTS: AtomicBool = AtomicBool::new(false);

/// Arms snapshot corruption: every snapshot chunk this node serves has a byte of its first node flipped, as
/// a faulty or lying peer's would. Proves that a syncing node refuses the chunk and finishes from another.
pub fn corrupt_snapshots(on: bool) {
    CORRUPT_SNAPSHOTS.store(on, Ordering::SeqCst);
}

/// Whether served snapshot chunks must be corrupted.
pub fn corrupts_snapshots() -> bool {
    CORRUPT_SNAPSHOTS.load(Ordering::Relaxed)
}
