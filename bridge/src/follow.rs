//! Following one shard: `StreamHeaders` from a cursor, then `GetBlock` for every height, turning the
//! `BridgeMessageChanged` events of its receipts into [`FollowEvent`]s (LOCKED on a source: a new message;
//! delivered on a destination; ACKED or REFUNDED on the source: closed). Events reach the relaying loop in
//! block order, each block's followed by a `Scanned` mark, so a persisted cursor never passes an event
//! the loop has not applied.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use shardex_client::ShardClient;
use shardex_core::{block::decode_header, genesis::Genesis, pb, validators::ValidatorSet, ChainId, ShardId};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::error::{remote, RelayerError, Result};

/// One configured shard: its endpoints (one per validator it is reached through), identity from its genesis,
/// and clients once connected. One endpoint is used at a time; a failed or stalled one gives way to the next.
#[derive(Debug)]
pub struct ShardLink {
    /// The shard.
    pub shard: ShardId,
    /// Its chain.
    pub chain: ChainId,
    /// gRPC endpoints.
    pub endpoints: Vec<String>,
    /// Its genesis validator set (checks the certificates of proven answers).
    pub validators: ValidatorSet,
    current: AtomicUsize,
    clients: Mutex<HashMap<usize, ShardClient>>,
    /// Whether the header stream is open.
    pub connected: AtomicBool,
}

impl ShardLink {
    /// A link to the shard of genesis `g`, reached through `endpoints` (at least one).
    pub fn new(endpoints: Vec<String>, g: &Genesis) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(RelayerError::Shards { shard: g.shard_id, message: "no endpoint".into() });
        }
        Ok(Self {
            shard: g.shard_id,
            chain: g.chain_id,
            endpoints,
            validators: g.validators.clone(),
            current: AtomicUsize::new(0),
            clients: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
        })
    }

    /// The endpoint in use.
    pub fn endpoint(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.endpoints.len().max(1);
        self.endpoints.get(i).map_or("", String::as_str)
    }

    /// Moves to the next endpoint (the current one failed or stalled).
    pub fn fail_over(&self) {
        if self.endpoints.len() > 1 {
            let next = (self.current.fetch_add(1, Ordering::Relaxed) + 1) % self.endpoints.len();
            debug!(target: "relayer::follow", shard = %self.shard, endpoint = %self.endpoints[next], "trying the next endpoint");
        }
    }

    /// The client of the endpoint in use, connecting on first use (a connected channel reconnects by itself
    /// afterwards).
    pub async fn client(&self) -> Result<ShardClient> {
        let i = self.current.load(Ordering::Relaxed) % self.endpoints.len().max(1);
        if let Some(c) = self.clients.lock().unwrap_or_else(|p| p.into_inner()).get(&i) {
            return Ok(c.clone());
        }
        let endpoint = self.endpoint().to_owned();
        let c = ShardClient::connect(&endpoint).await.map_err(remote(format!("connect {endpoint}")))?;
        let d = c.domain();
        if d.chain != self.chain || d.shard != self.shard {
            return Err(RelayerError::Shards {
                shard: self.shard,
                message: format!("{endpoint} serves chain {} shard {}", d.chain, d.shard),
            });
        }
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).insert(i, c.clone());
        Ok(c)
    }
}

/// What a shard's blocks said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// A transfer-out on `id.src`.
    Locked {
        /// The message.
        id: crate::lifecycle::MessageId,
        /// Amount, micro-USD.
        amount_micros: u64,
        /// Source height.
        height: u64,
        /// Block time, ms.
        time_ms: u64,
    },
    /// A delivery on `id.dst`.
    Delivered {
        /// The message.
        id: crate::lifecycle::MessageId,
        /// Destination height.
        height: u64,
        /// Block time, ms.
        time_ms: u64,
    },
    /// An ack (or refund) on `id.src`.
    Closed {
        /// The message.
        id: crate::lifecycle::MessageId,
        /// True for an ack, false for a refund.
        acked: bool,
        /// Source height.
        height: u64,
        /// Block time, ms.
        time_ms: u64,
    },
    /// Every block of `shard` below `next` was scanned; `imported` is its latest import as of `next − 1`.
    Scanned {
        /// The shard.
        shard: ShardId,
        /// Next height to scan.
        next: u64,
        /// The header's `last_imported_epoch`.
        imported: u64,
    },
}

/// The bridge events of one block of `shard`, then its `Scanned` mark.
pub fn block_events(shard: ShardId, block: &pb::Block) -> Result<Vec<FollowEvent>> {
    let fh =
        block.header.as_ref().ok_or_else(|| RelayerError::Protocol(format!("shard {shard}: block without header")))?;
    let h = decode_header(fh).map_err(|e| RelayerError::Protocol(format!("shard {shard}: header: {e}")))?.header;
    let (height, time_ms) = (h.height, h.timestamp_ms);
    let mut out = Vec::new();
    for event in block.receipts.iter().flat_map(|r| r.events.iter()) {
        let Some(pb::event::Kind::BridgeMessageChanged(c)) = &event.kind else { continue };
        let id = crate::lifecycle::MessageId { src: ShardId(c.src_shard), dst: ShardId(c.dst_shard), seq: c.seq };
        let state = pb::MessageState::try_from(c.state).unwrap_or(pb::MessageState::Unspecified);
        match state {
            pb::MessageState::Locked if id.src == shard => {
                out.push(FollowEvent::Locked { id, amount_micros: c.amount_micros, height, time_ms })
            }
            pb::MessageState::Acked | pb::MessageState::Refunded if id.src == shard => {
                out.push(FollowEvent::Closed { id, acked: state == pb::MessageState::Acked, height, time_ms })
            }
            _ if c.delivered && id.dst == shard => out.push(FollowEvent::Delivered { id, height, time_ms }),
            _ => {}
        }
    }
    out.push(FollowEvent::Scanned { shard, next: height + 1, imported: h.last_imported_epoch });
    Ok(out)
}

/// With several endpoints: how long a header stream may stay silent before the next endpoint is followed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Reconnect delays of a follower.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// First delay.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

/// Follows `link` from height `from` until the receiver is dropped; `room` false pauses scanning (the
/// relaying loop holds its maximum of open messages).
pub async fn follow_shard(
    link: Arc<ShardLink>,
    from: u64,
    tx: mpsc::Sender<FollowEvent>,
    room: Arc<AtomicBool>,
    backoff: Backoff,
) {
    let mut next = from.max(1);
    let mut delay = backoff.min;
    loop {
        let before = next;
        match follow_once(&link, &mut next, &tx, &room).await {
            Ok(()) => return,
            Err(e) => {
                link.connected.store(false, Ordering::Relaxed);
                if next > before {
                    delay = backoff.min;
                }
                warn!(target: "relayer::follow", shard = %link.shard, next, endpoint = %link.endpoint(), error = %e, "shard stream ended; reconnecting");
                link.fail_over();
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(backoff.max);
            }
        }
    }
}

/// One stream session; Ok when the relaying loop is gone.
async fn follow_once(
    link: &ShardLink,
    next: &mut u64,
    tx: &mpsc::Sender<FollowEvent>,
    room: &AtomicBool,
) -> Result<()> {
    let client = link.client().await?;
    let mut stream = client
        .raw()
        .stream_headers(pb::StreamHeadersRequest { from_height: *next })
        .await
        .map_err(|s| remote("StreamHeaders")(s.into()))?
        .into_inner();
    link.connected.store(true, Ordering::Relaxed);
    debug!(target: "relayer::follow", shard = %link.shard, from = *next, endpoint = %link.endpoint(), "following");
    // With other endpoints to fall back on, a stream that brings nothing for a while is given up: a validator
    // cut off from its set is alive but no longer learns blocks.
    let stall = if link.endpoints.len() > 1 { STALL_TIMEOUT } else { Duration::from_secs(365 * 86_400) };
    loop {
        let fh = match tokio::time::timeout(stall, stream.message()).await {
            Err(_) => return Err(RelayerError::Protocol(format!("no header for {} ms", stall.as_millis()))),
            Ok(Ok(Some(fh))) => fh,
            Ok(Ok(None)) => return Err(RelayerError::Protocol("header stream closed".into())),
            Ok(Err(s)) => return Err(remote("StreamHeaders")(s.into())),
        };
        let height = decode_header(&fh).map_err(|e| RelayerError::Protocol(format!("header: {e}")))?.header.height;
        while *next <= height {
            while !room.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let block = client.block(*next).await.map_err(remote(format!("GetBlock {}", *next)))?;
            for ev in block_events(link.shard, &block)? {
                if tx.send(ev).await.is_err() {
                    return Ok(());
                }
            }
            *next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::MessageId;
    use prost::Message;

    fn block(height: u64, events: Vec<pb::BridgeMessageChanged>) -> pb::Block {
        let header = pb::BlockHeader {
            chain_id: 1,
            shard_id: 1,
            height,
            parent_hash: vec![0; 32],
            timestamp_ms: 500,
            tx_root: vec![0; 32],
            receipts_root: vec![0; 32],
            state_root: vec![0; 32],
            events_root: vec![0; 32],
            last_imported_epoch: 9,
            ..Default::default()
        };
        let events = events
            .into_iter()
            .map(|c| pb::Event { account: vec![1; 32], kind: Some(pb::event::Kind::BridgeMessageChanged(c)) })
            .collect();
        pb::Block {
            header: Some(pb::FinalizedHeader { header: header.encode_to_vec(), ..Default::default() }),
            receipts: vec![pb::Receipt { events, ..Default::default() }],
            ..Default::default()
        }
    }

    #[test]
    fn bridge_events_are_read_from_the_side_that_owns_them() {
        let ev = |src, dst, state: pb::MessageState, delivered| pb::BridgeMessageChanged {
            src_shard: src,
            dst_shard: dst,
            seq: 3,
            amount_micros: 7,
            state: state as i32,
            delivered,
        };
        let b = block(
            4,
            vec![
                ev(1, 2, pb::MessageState::Locked, false),
                ev(2, 1, pb::MessageState::Unspecified, true),
                ev(1, 2, pb::MessageState::Acked, false),
                ev(1, 2, pb::MessageState::Refunded, false),
            ],
        );
        let id = |s, d| MessageId { src: ShardId(s), dst: ShardId(d), seq: 3 };
        let got = block_events(ShardId(1), &b).expect("decodes");
        assert_eq!(
            got,
            vec![
                FollowEvent::Locked { id: id(1, 2), amount_micros: 7, height: 4, time_ms: 500 },
                FollowEvent::Delivered { id: id(2, 1), height: 4, time_ms: 500 },
                FollowEvent::Closed { id: id(1, 2), acked: true, height: 4, time_ms: 500 },
                FollowEvent::Closed { id: id(1, 2), acked: false, height: 4, time_ms: 500 },
                FollowEvent::Scanned { shard: ShardId(1), next: 5, imported: 9 },
            ]
        );
        // The same events seen on another shard say nothing about it.
        assert_eq!(block_events(ShardId(3), &b).expect("decodes").len(), 1);
    }
}
