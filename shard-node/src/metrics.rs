//! The shard node's Prometheus metrics. Block work and admission are recorded where they happen; everything
//! `GetStatus` reports is sampled once a second ([`sample_every_second`]). `docs/operations.md` lists every
//! metric. Recording is a no-op in a process that serves no metrics (`metrics.addr` empty).

use std::{collections::BTreeMap, time::Duration};

use metrics::{counter, gauge, histogram};
use shardex_core::{pb, Reason};

/// How long a proposed block was open taking admitted txs: from its timestamp to its seal.
pub const BLOCK_BUILD_SECONDS: &str = "shardex_block_build_seconds";
/// Time to stage a block's state root and header: this node's proposals and the blocks it re-executed.
pub const BLOCK_STAGE_SECONDS: &str = "shardex_block_stage_seconds";
/// Time to write a block: its batch applied and flushed.
pub const BLOCK_WRITE_SECONDS: &str = "shardex_block_write_seconds";
/// The flush alone, within the write.
pub const BLOCK_FLUSH_SECONDS: &str = "shardex_block_flush_seconds";
/// Txs per block written.
pub const BLOCK_TXS: &str = "shardex_block_txs";
/// Txs admitted to the mempool.
pub const TXS_ADMITTED: &str = "shardex_txs_admitted_total";
/// Txs refused at submission, by `reason`.
pub const TXS_REFUSED: &str = "shardex_txs_refused_total";

/// Records a sealed block that was open `ms` milliseconds.
pub fn block_built(ms: u64) {
    histogram!(BLOCK_BUILD_SECONDS).record(ms as f64 / 1e3);
}

/// Records a staged block.
pub fn block_staged(elapsed: Duration) {
    histogram!(BLOCK_STAGE_SECONDS).record(elapsed.as_secs_f64());
}

/// Records a written block: the whole write, the flush within it, and its txs.
pub fn block_written(write: Duration, flush: Duration, txs: usize) {
    histogram!(BLOCK_WRITE_SECONDS).record(write.as_secs_f64());
    histogram!(BLOCK_FLUSH_SECONDS).record(flush.as_secs_f64());
    histogram!(BLOCK_TXS).record(txs as f64);
}

/// Counts the verdicts of one submission call: `admitted` txs, and the refused ones' reasons.
pub fn submissions(admitted: u64, refused: impl IntoIterator<Item = Reason>) {
    if admitted > 0 {
        counter!(TXS_ADMITTED).increment(admitted);
    }
    let mut by_reason: BTreeMap<&'static str, u64> = BTreeMap::new();
    for reason in refused {
        *by_reason.entry(reason.as_str()).or_default() += 1;
    }
    for (reason, n) in by_reason {
        counter!(TXS_REFUSED, "reason" => reason).increment(n);
    }
}

/// Sets the gauges and totals `GetStatus` reports. (Stream subscribers and the store's size are sampled by
/// `shardex_service::metrics::sample_streams_and_store`, as on the other servers.)
pub fn status(s: &pb::NodeStatus) {
    gauge!("shardex_head_height").set(s.height as f64);
    gauge!("shardex_consensus_height").set(s.consensus_height as f64);
    gauge!("shardex_consensus_round").set(f64::from(s.consensus_round));
    counter!("shardex_consensus_round_changes_total").absolute(s.round_changes);
    gauge!("shardex_mempool_txs").set(f64::from(s.mempool_txs));
    gauge!("shardex_oldest_provable_height").set(s.oldest_provable_height as f64);
    counter!("shardex_blocks_staged_total").absolute(s.blocks_staged);
    counter!("shardex_blocks_written_total").absolute(s.blocks_written);
    counter!("shardex_head_cache_hits_total").absolute(s.head_cache_hits);
    counter!("shardex_head_cache_misses_total").absolute(s.head_cache_misses);
}

/// Samples `status` every second until the runtime stops. `status` runs on a blocking thread (it takes the
/// shard lock); a sample whose thread failed is skipped.
pub async fn sample_every_second<F>(status: F)
where
    F: Fn() -> pb::NodeStatus + Clone + Send + 'static,
{
    loop {
        tokio::time::sleep(shardex_service::metrics::SAMPLE_EVERY).await;
        if let Ok(s) = tokio::task::spawn_blocking(status.clone()).await {
            self::status(&s);
        }
    }
}
