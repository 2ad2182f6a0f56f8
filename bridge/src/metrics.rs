//! The relayer's Prometheus metrics (listed in `docs/operations.md`): lock-to-credit latency as each delivery
//! is seen, and what `GetStatus` reports sampled once a second.

use std::sync::Arc;

use metrics::{counter, gauge, histogram};
use shardex_proto::bridge::v1 as bpb;

use crate::{driver::Shared, lifecycle::Message};

/// Lock-to-credit time of each delivered message: block time of its delivery minus block time of its lock.
pub const LOCK_TO_CREDIT_SECONDS: &str = "shardex_relayer_lock_to_credit_seconds";

/// Records a message that moved to a new stage: a delivery's lock-to-credit time.
pub fn moved(message: &Message) {
    if let Some(ms) = message.lock_to_credit_ms() {
        histogram!(LOCK_TO_CREDIT_SECONDS).record(ms as f64 / 1_000.0);
    }
}

/// Sets the gauges and totals of `s`.
pub fn status(s: &bpb::RelayerStatus) {
    gauge!("shardex_relayer_latest_epoch").set(s.latest_epoch as f64);
    for stage in [bpb::Stage::Locked, bpb::Stage::Committed, bpb::Stage::Delivered] {
        let count = s.backlog.iter().filter(|c| c.stage == stage as i32).map(|c| c.count).sum::<u64>();
        gauge!("shardex_relayer_backlog_messages", "stage" => stage_name(stage)).set(count as f64);
    }
    counter!("shardex_relayer_delivered_total").absolute(s.delivered);
    counter!("shardex_relayer_acked_total").absolute(s.acked);
    counter!("shardex_relayer_refunded_total").absolute(s.refunded);
    counter!("shardex_relayer_submitted_total").absolute(s.submitted);
    counter!("shardex_relayer_duplicates_total").absolute(s.duplicates);
    for e in &s.errors {
        counter!("shardex_relayer_errors_total", "reason" => e.reason.clone()).absolute(e.count);
    }
    for c in &s.shards {
        let shard = c.shard_id.to_string();
        gauge!("shardex_relayer_next_height", "shard" => shard.clone()).set(c.next_height as f64);
        gauge!("shardex_relayer_shard_connected", "shard" => shard).set(if c.connected { 1.0 } else { 0.0 });
    }
}

fn stage_name(stage: bpb::Stage) -> &'static str {
    match stage {
        bpb::Stage::Locked => "locked",
        bpb::Stage::Committed => "committed",
        bpb::Stage::Delivered => "delivered",
        _ => "other",
    }
}

/// Samples the relayer's status every second until the runtime stops.
pub async fn sample_every_second(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(shardex_service::metrics::SAMPLE_EVERY).await;
        status(&crate::rpc::status(&shared));
    }
}
