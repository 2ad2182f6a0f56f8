//! Measuring and reporting: CPU, signing, refusals, latency percentiles.

use super::*;

/// CPU seconds (user + system) used so far by each validator process of each shard, then by this process
/// (signing, gRPC client, followers) alone; 0 where unknown. Linux `/proc` only.
pub(super) fn cpu_snapshot(shards: &[ShardLoad]) -> Vec<Vec<f64>> {
    let cpu_s = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the parenthesized command: state is 3rd overall, utime 14th, stime 15th.
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        (ticks(11) + ticks(12)) as f64 / CLOCK_TICKS_PER_S
    };
    let mut out: Vec<Vec<f64>> = shards
        .iter()
        .map(|s| s.validators.iter().map(|(_, pid)| pid.map_or(0.0, |p| cpu_s(&p.to_string()))).collect())
        .collect();
    out.push(vec![cpu_s("self")]);
    out
}

pub(super) fn signed(shards: &[ShardLoad]) -> u64 {
    shards.iter().map(|s| s.signer.signed.load(Ordering::Relaxed)).sum()
}

/// ` (REASON n, …)` or nothing.
pub(super) fn reasons(refused: &BTreeMap<String, u64>, rpc_failed: u64) -> String {
    let mut parts: Vec<String> = refused.iter().map(|(r, n)| format!("{r} {n}")).collect();
    if rpc_failed > 0 {
        parts.push(format!("rpc-failed {rpc_failed}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Nearest-rank percentile of sorted values (NaN when there are none).
pub(super) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Block work and head-cache reads a node reports in its status (counters since it started).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NodeWork {
    staged: u64,
    stage_micros: u64,
    written: u64,
    write_micros: u64,
    cache_hits: u64,
    cache_misses: u64,
}

impl NodeWork {
    fn of(status: &pb::NodeStatus) -> Self {
        Self {
            staged: status.blocks_staged,
            stage_micros: status.stage_micros,
            written: status.blocks_written,
            write_micros: status.write_micros,
            cache_hits: status.head_cache_hits,
            cache_misses: status.head_cache_misses,
        }
    }

    /// The work done between `before` and `self` (None when the node restarted in between: its counters
    /// started again).
    pub(super) fn since(&self, before: &Self) -> Option<Self> {
        Some(Self {
            staged: self.staged.checked_sub(before.staged)?,
            stage_micros: self.stage_micros.checked_sub(before.stage_micros)?,
            written: self.written.checked_sub(before.written)?,
            write_micros: self.write_micros.checked_sub(before.write_micros)?,
            cache_hits: self.cache_hits.checked_sub(before.cache_hits)?,
            cache_misses: self.cache_misses.checked_sub(before.cache_misses)?,
        })
    }

    /// One report line: time per block staged and written, and the share of reads the head cache answered.
    /// The report line, with each stage's share of `over_s` seconds (the sending time the counters cover).
    fn line(&self, over_s: f64) -> String {
        let per_block = |micros: u64, blocks: u64| micros as f64 / 1_000.0 / blocks.max(1) as f64;
        let share = |micros: u64| 100.0 * micros as f64 / 1e6 / over_s.max(1e-3);
        let reads = self.cache_hits + self.cache_misses;
        format!(
            "{} state roots staged, {:.1} ms each; {} blocks written, {:.1} ms each (batch applied and flushed); \
             staging {:.1}% and writing {:.1}% of the sending time; head cache answered {:.1}% of {reads} admission \
             reads",
            self.staged,
            per_block(self.stage_micros, self.staged),
            self.written,
            per_block(self.write_micros, self.written),
            share(self.stage_micros),
            share(self.write_micros),
            100.0 * self.cache_hits as f64 / reads.max(1) as f64,
        )
    }
}

/// The block work counters of the node each shard's load talks to.
pub(super) async fn work_snapshot(shards: &[ShardLoad]) -> Vec<Option<NodeWork>> {
    let mut out = Vec::with_capacity(shards.len());
    for load in shards {
        out.push(load.client.status().await.ok().map(|s| NodeWork::of(&s)));
    }
    out
}

pub(super) async fn report(
    shards: &[ShardLoad],
    sent_s: f64,
    total: Duration,
    client: &Client,
    bridge: Option<&BridgeLoad>,
) -> eyre::Result<()> {
    println!(
        "\nresults ({sent_s:.1} s of sending, {:.1} s with the drain; final = header of the flushed block holding \
         the order arrived on StreamHeaders, matched by tx hash in GetBlock receipts)",
        total.as_secs_f64()
    );
    let mut failures = Vec::new();
    let (mut accepted_all, mut signed_all, mut busy_ns) = (0u64, 0u64, 0u64);
    for (i, load) in shards.iter().enumerate() {
        let mut s = lock(&load.stats);
        s.latencies_us.sort_unstable();
        s.header_delay_ms.sort_unstable();
        let lat = |p: f64| percentile(&s.latencies_us, p) / 1_000.0;
        let refused = s.sub.refused.values().sum::<u64>() + s.sub.rpc_failed;
        println!(
            "{}: accepted {:.1} orders/s (target {:.1}/s; sent {} of {}), refused {refused}{}, final {} ({:.1}% of \
             accepted; {:.1}% traded), latency p50 {:.1} ms p90 {:.1} ms p99 {:.1} ms max {:.1} ms",
            load.name,
            s.sub.accepted as f64 / sent_s,
            load.rate_per_s,
            s.sub.sent,
            load.orders,
            reasons(&s.sub.refused, s.sub.rpc_failed),
            s.finals,
            100.0 * s.finals as f64 / s.sub.accepted.max(1) as f64,
            100.0 * s.filled as f64 / s.finals.max(1) as f64,
            lat(50.0),
            lat(90.0),
            lat(99.0),
            lat(100.0),
        );
        for (reason, message) in &s.sub.first_refusal {
            println!("    first {reason} refusal: {message}");
        }
        let cores = client.cpu.get(i).cloned().unwrap_or_default();
        let per_order = |c: f64| 1e6 * c * sent_s / s.sub.accepted.max(1) as f64;
        let each: Vec<String> = load
            .validators
            .iter()
            .zip(&cores)
            .map(|((name, _), c)| format!("{name} {c:.2} cores ({:.0} µs/order)", per_order(*c)))
            .collect();
        println!("    validators' CPU: {}", each.join(", "));
        if let Some(work) = client.work.get(i).copied().flatten() {
            println!("    node the load talks to: {}", work.line(sent_s));
        }
        println!(
            "    blocks followed {} (unreadable {}), header arrived p50 {} ms p90 {} ms after \
             the block timestamp; not final after the drain {}; lost with a killed node {}; quote top-ups {} ({} \
             refused); failed oracle \
             updates {}; lanes waited {} ms for signed orders",
            s.blocks,
            s.block_errors,
            percentile(&s.header_delay_ms, 50.0),
            percentile(&s.header_delay_ms, 90.0),
            s.sub.pending.len(),
            s.sub.lost,
            s.quotes,
            s.quotes_refused,
            s.oracle_failed,
            s.starved.as_millis()
        );
        if let Some(e) = &s.sub.last_rpc_error {
            println!("    last failed SubmitBatch: {e}");
        }
        if load.orders == 0 {
            // Transfers only (--bridge-ratio 1): no orders to judge.
        } else if s.sub.accepted == 0 {
            failures.push(format!("{} accepted no orders", load.name));
        } else if s.finals == 0 {
            failures.push(format!("no accepted order of {} became final", load.name));
        }
        accepted_all += s.sub.accepted;
        signed_all += load.signer.signed.load(Ordering::Relaxed);
        busy_ns += load.signer.busy_ns.load(Ordering::Relaxed);
    }
    let busy_s = busy_ns as f64 / 1e9;
    println!(
        "total: accepted {:.1} orders/s of {:.0} targeted ({} shard(s))",
        accepted_all as f64 / sent_s,
        shards.iter().map(|s| s.rate_per_s).sum::<f64>(),
        shards.len()
    );
    let load_cpu = client.cpu.last().and_then(|c| c.first()).copied().unwrap_or(0.0);
    if client.presigned {
        println!(
            "client signing: all {signed_all} orders signed before the clock started, {:.0} orders/s per thread \
             ({:.0}/s on an idle core); load process CPU {load_cpu:.2} cores while sending",
            signed_all as f64 / busy_s.max(1e-9),
            client.reference_sign_rate,
        );
    } else {
        println!(
            "client signing: {signed_all} orders on {} thread(s), {:.0} orders/s per thread while signing under \
             load ({:.0}/s on an idle core before the run), busy {:.0}% of the sending time; load process CPU \
             {load_cpu:.2} cores",
            shards.len(),
            signed_all as f64 / busy_s.max(1e-9),
            client.reference_sign_rate,
            100.0 * busy_s / (sent_s * shards.len() as f64),
        );
    }
    if let Some(b) = bridge {
        failures.extend(b.report(sent_s).await);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(eyre!(failures.join("; ")))
    }
}
