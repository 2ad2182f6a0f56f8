//! The coordinator's Prometheus metrics (listed in `docs/operations.md`): each epoch's build-and-commit time
//! as it is produced, and every followed shard's progress sampled once a second.

use std::{sync::Arc, time::Duration};

use metrics::{counter, gauge, histogram};

use crate::runtime::Coordinator;

/// Time to build, sign, store and flush one epoch.
pub const EPOCH_SECONDS: &str = "shardex_coordinator_epoch_seconds";

/// Records a committed epoch: its number, how many shards it moved forward, and how long it took.
pub fn epoch_committed(number: u64, shards_advanced: u64, elapsed: Duration) {
    histogram!(EPOCH_SECONDS).record(elapsed.as_secs_f64());
    gauge!("shardex_coordinator_epoch").set(number as f64);
    counter!("shardex_coordinator_shard_advances_total").increment(shards_advanced);
}

/// Samples every followed shard's progress every second until the runtime stops: the height the coordinator
/// accepted, how far behind the shard's own head that is, whether a header stream is open, and refusals.
pub async fn sample_every_second(coord: Arc<Coordinator>) {
    loop {
        tokio::time::sleep(shardex_service::metrics::SAMPLE_EVERY).await;
        for v in coord.registry.views() {
            let shard = v.spec.shard.0.to_string();
            let accepted = v.head.as_ref().map_or(0, |h| h.height);
            gauge!("shardex_coordinator_shard_height", "shard" => shard.clone()).set(accepted as f64);
            let lag = v.reported_height.saturating_sub(accepted);
            gauge!("shardex_coordinator_shard_lag_blocks", "shard" => shard.clone()).set(lag as f64);
            let connected = if v.connected { 1.0 } else { 0.0 };
            gauge!("shardex_coordinator_shard_connected", "shard" => shard.clone()).set(connected);
            counter!("shardex_coordinator_rejected_headers_total", "shard" => shard).absolute(v.rejected);
        }
    }
}
