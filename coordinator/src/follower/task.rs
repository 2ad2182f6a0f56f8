//! The follower of one shard: header stream from the last accepted height + 1, catch-up through
//! `GetHeader` when the stream skips heights, reconnect with bounded exponential backoff, and a periodic
//! `GetStatus` for the shard's own head (lag in blocks). A shard run by several validators is followed
//! through one of its endpoints at a time: a failed, closed or stalled one gives way to the next.

use std::{sync::Arc, time::Duration};

use shardex_core::{pb, ShardId};
use shardex_proto::shard::v1::shard_service_client::ShardServiceClient;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn, Instrument};

use super::accept::{accept, anchor, equivocation, Head, Rejection};
use crate::{registry::now_ms, runtime::Coordinator};

/// Limits of following one shard; every one explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowLimits {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt.
    pub min_backoff: Duration,
    /// Largest reconnect delay.
    pub max_backoff: Duration,
    /// Most headers fetched one by one to fill a gap before reconnecting the stream instead.
    pub max_catchup_blocks: u64,
    /// How often the shard's own head is asked for.
    pub status_interval: Duration,
    /// Largest gRPC message accepted from a shard.
    pub max_message_bytes: usize,
    /// With several endpoints: how long a stream may bring no header before the next endpoint is tried.
    pub stall_timeout: Duration,
}

impl Default for FollowLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_catchup_blocks: 1_024,
            status_interval: Duration::from_millis(500),
            max_message_bytes: 4 << 20,
            stall_timeout: Duration::from_secs(3),
        }
    }
}

/// Why one follow session ended.
#[derive(Debug)]
enum Ended {
    /// Never connected (or the anchor call failed): back off longer.
    Unreachable(String),
    /// Was connected; the stream closed or failed.
    Disconnected(String),
    /// Storage failed: the coordinator must stop.
    Fatal(String),
}

/// Follows `shard` for as long as the process runs; returns only on a storage failure.
pub async fn follow(coord: Arc<Coordinator>, shard: ShardId, limits: FollowLimits) -> String {
    let mut backoff = limits.min_backoff;
    let endpoints = coord.registry.view(shard).map_or(1, |v| v.endpoints.len().max(1));
    let mut failures_in_a_row = 0usize;
    loop {
        let ended = session(&coord, shard, &limits).await;
        coord.registry.set_connected(shard, false);
        match ended {
            Ended::Fatal(e) => return e,
            Ended::Disconnected(why) => {
                info!(target: "coordinator::follow", shard = shard.0, reason = %why, "header stream ended; reconnecting");
                backoff = limits.min_backoff;
                failures_in_a_row = 0;
            }
            Ended::Unreachable(why) => {
                debug!(target: "coordinator::follow", shard = shard.0, reason = %why, backoff_ms = backoff.as_millis() as u64, "shard unreachable");
                failures_in_a_row += 1;
            }
        }
        if endpoints > 1 {
            let next = coord.registry.next_endpoint(shard).unwrap_or_default();
            debug!(target: "coordinator::follow", shard = shard.0, endpoint = %next, "trying the next endpoint");
            // Every endpoint gets a try before the follower backs off.
            if !failures_in_a_row.is_multiple_of(endpoints) {
                continue;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(limits.max_backoff);
    }
}

async fn connect(endpoint: &str, limits: &FollowLimits) -> Result<ShardServiceClient<Channel>, String> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(limits.connect_timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(ShardServiceClient::new(channel).max_decoding_message_size(limits.max_message_bytes))
}

/// One connection: anchor if needed, stream from the head, handle every header until the stream ends.
async fn session(coord: &Arc<Coordinator>, shard: ShardId, limits: &FollowLimits) -> Ended {
    let Some(view) = coord.registry.view(shard) else { return Ended::Fatal(format!("shard {shard} not registered")) };
    let endpoint = view.endpoints.get(view.current).cloned().unwrap_or_default();
    let mut rpc = match connect(&endpoint, limits).await {
        Ok(c) => c,
        Err(e) => return Ended::Unreachable(e),
    };
    let mut head = match view.head {
        Some(h) => h,
        None => {
            let fh = match rpc.get_header(pb::GetBlockRequest { height: 0 }).await {
                Ok(r) => r.into_inner(),
                Err(s) => return Ended::Unreachable(format!("genesis header: {s}")),
            };
            match anchor(&view.spec, &fh) {
                Ok(h) => {
                    if let Err(e) = store_head(coord, shard, &h).await {
                        return Ended::Fatal(e);
                    }
                    info!(target: "coordinator::follow", shard = shard.0, genesis = %h.hash, "anchored at the genesis block");
                    h
                }
                Err(r) => {
                    reject(coord, shard, 0, &r);
                    return Ended::Unreachable(format!("genesis anchor refused: {r}"));
                }
            }
        }
    };
    let mut stream = match rpc.stream_headers(pb::StreamHeadersRequest { from_height: head.height + 1 }).await {
        Ok(s) => s.into_inner(),
        Err(s) => return Ended::Unreachable(format!("stream headers: {s}")),
    };
    coord.registry.set_connected(shard, true);
    info!(target: "coordinator::follow", shard = shard.0, from = head.height + 1, %endpoint, "following headers");
    let mut status_tick = tokio::time::interval(limits.status_interval);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // With other endpoints to fall back on, a stream that brings nothing for a while is given up: a
    // validator cut off from its set is alive but no longer learns blocks.
    let stall = if view.endpoints.len() > 1 { limits.stall_timeout } else { Duration::from_secs(365 * 86_400) };
    let mut stall_at = tokio::time::Instant::now() + stall;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(stall_at) => {
                return Ended::Disconnected(format!("no header from {endpoint} for {} ms", stall.as_millis()));
            }
            msg = stream.message() => match msg {
                Ok(Some(fh)) => {
                    stall_at = tokio::time::Instant::now() + stall;
                    let height = shardex_core::block::decode_header(&fh).map_or(0, |d| d.header.height);
                    let span = tracing::info_span!(target: "coordinator::follow", "header", shard = shard.0, height);
                    let handled = handle(coord, shard, &mut rpc, &mut head, fh, limits).instrument(span).await;
                    if let Err(end) = handled {
                        return end;
                    }
                }
                Ok(None) => return Ended::Disconnected("stream closed by the shard".into()),
                Err(s) => return Ended::Disconnected(format!("stream error: {s}")),
            },
            _ = status_tick.tick() => {
                if let Ok(s) = rpc.get_status(pb::GetStatusRequest {}).await {
                    coord.registry.set_reported(shard, s.into_inner().height);
                }
            }
        }
    }
}

/// Accepts or rejects one streamed header; a gap is filled through `GetHeader` first.
async fn handle(
    coord: &Arc<Coordinator>,
    shard: ShardId,
    rpc: &mut ShardServiceClient<Channel>,
    head: &mut Head,
    fh: pb::FinalizedHeader,
    limits: &FollowLimits,
) -> Result<(), Ended> {
    let view = coord.registry.view(shard).ok_or_else(|| Ended::Fatal("unregistered".into()))?;
    let spec = view.spec;
    if let Some(at) = view.held {
        let height = shardex_core::block::decode_header(&fh).map(|d| d.header.height).unwrap_or(0);
        reject(coord, shard, height, &Rejection::Held { height, at });
        return Ok(());
    }
    match accept(head, &spec, &fh) {
        Ok(next) => commit(coord, shard, head, next).await,
        Err(Rejection::NonConsecutive { height, expected }) => {
            let last = height.min(expected.saturating_add(limits.max_catchup_blocks));
            info!(target: "coordinator::follow", shard = shard.0, from = expected, to = last - 1, "gap in the header stream; catching up");
            for h in expected..last {
                let missing = rpc
                    .get_header(pb::GetBlockRequest { height: h })
                    .await
                    .map_err(|s| Ended::Disconnected(format!("catch-up GetHeader({h}): {s}")))?
                    .into_inner();
                match accept(head, &spec, &missing) {
                    Ok(next) => commit(coord, shard, head, next).await?,
                    Err(r) => {
                        reject(coord, shard, h, &r);
                        return Err(Ended::Disconnected(format!("catch-up header {h} refused")));
                    }
                }
            }
            if last < height {
                return Err(Ended::Disconnected("gap larger than follow.max_catchup_blocks; re-streaming".into()));
            }
            match accept(head, &spec, &fh) {
                Ok(next) => commit(coord, shard, head, next).await,
                Err(r) => {
                    reject(coord, shard, height, &r);
                    Ok(())
                }
            }
        }
        Err(r @ Rejection::Replayed { .. }) => {
            let height = shardex_core::block::decode_header(&fh).map(|d| d.header.height).unwrap_or(0);
            match check_equivocation(coord, shard, &spec, height, fh).await? {
                Some(evidence) => reject(coord, shard, height, &evidence),
                None => reject(coord, shard, height, &r),
            }
            Ok(())
        }
        Err(r) => {
            let height = shardex_core::block::decode_header(&fh).map(|d| d.header.height).unwrap_or(0);
            reject(coord, shard, height, &r);
            Ok(())
        }
    }
}

/// A header at an accepted height with its own valid certificate is equivocation: the pair is kept (flushed)
/// and the shard held before anything else happens.
async fn check_equivocation(
    coord: &Arc<Coordinator>,
    shard: ShardId,
    spec: &super::ShardSpec,
    height: u64,
    candidate: pb::FinalizedHeader,
) -> Result<Option<Rejection>, Ended> {
    let c = Arc::clone(coord);
    let accepted = tokio::task::spawn_blocking(move || c.store.header(shard, height))
        .await
        .map_err(|e| Ended::Fatal(e.to_string()))?
        .map_err(|e| Ended::Fatal(e.to_string()))?;
    let Some(accepted) = accepted else { return Ok(None) };
    let Some(evidence) = equivocation(spec, &accepted, &candidate) else { return Ok(None) };
    let record = shardex_core::coordpb::Equivocation {
        shard_id: shard.0,
        height,
        accepted: Some(accepted),
        conflicting: Some(candidate),
        time_ms: now_ms(),
    };
    let c = Arc::clone(coord);
    tokio::task::spawn_blocking(move || c.store.put_evidence(&record))
        .await
        .map_err(|e| Ended::Fatal(e.to_string()))?
        .map_err(|e| Ended::Fatal(e.to_string()))?;
    coord.registry.hold(shard, height);
    tracing::error!(target: "coordinator::follow", shard = shard.0, height, detail = %evidence, "validators equivocated: evidence kept, shard held until an operator releases it");
    Ok(Some(evidence))
}

async fn commit(coord: &Arc<Coordinator>, shard: ShardId, head: &mut Head, next: Head) -> Result<(), Ended> {
    store_head(coord, shard, &next).await.map_err(Ended::Fatal)?;
    debug!(target: "coordinator::follow", shard = shard.0, height = next.height, hash = %next.hash, "header accepted");
    *head = next;
    Ok(())
}

/// Stores the header and then moves the registry's head, so no epoch refers to an unstored header.
async fn store_head(coord: &Arc<Coordinator>, shard: ShardId, head: &Head) -> Result<(), String> {
    let c = Arc::clone(coord);
    let (height, header) = (head.height, head.header.clone());
    tokio::task::spawn_blocking(move || c.store.put_header(shard, height, &header))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    coord.registry.set_head(shard, head.clone());
    Ok(())
}

fn reject(coord: &Coordinator, shard: ShardId, height: u64, r: &Rejection) {
    warn!(target: "coordinator::follow", shard = shard.0, height, reason = r.kind(), detail = %r, "header rejected");
    coord.registry.record_rejection(shard, height, r, now_ms());
}
