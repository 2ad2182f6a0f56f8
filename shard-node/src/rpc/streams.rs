//! Server streams: finalized headers from any height up to [`MAX_STREAM_LEAD`] past the head (catch-up from
//! storage, then live), and live per-account events. Each holds a subscriber slot (`shardex_service::stream`)
//! that is released as soon as the client goes away or the stream has been idle for `rpc.stream_idle_ms`.
//! A header subscriber that lags the broadcast re-reads from storage; none is unbounded.

use std::sync::Arc;

use shardex_core::{pb, AccountId};
use shardex_service::stream::{ItemStream, Sink};
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

use super::status::internal_status;
use crate::runtime::NodeHandle;

/// Items buffered per subscriber before the sender waits.
pub const STREAM_BUFFER: usize = 256;

/// How far past the head a header stream may start: a client a little ahead of this node (it followed another
/// validator) waits; one asking for a height the chain will not reach for hours is refused.
pub const MAX_STREAM_LEAD: u64 = 1_000;

/// Stream of finalized headers.
pub type HeaderStream = ItemStream<pb::FinalizedHeader>;
/// Stream of account events.
pub type EventStream = ItemStream<pb::AccountEvent>;

/// Feeds `sink` the headers from `from_height` on, in order, without gaps, until the client goes away, the
/// stream idles out or the node stops.
pub fn headers(node: Arc<NodeHandle>, from_height: u64, mut sink: Sink<pb::FinalizedHeader>) {
    tokio::spawn(async move {
        let mut live = node.subscribe();
        let mut next = from_height;
        loop {
            let head = node.shard().head().height;
            while next <= head {
                let item = match node.shard().block(next) {
                    Ok(Some(b)) => b.header.ok_or_else(|| Status::data_loss(format!("block {next} has no header"))),
                    Ok(None) => Err(Status::data_loss(format!("block {next} is missing below the head"))),
                    Err(e) => Err(internal_status(&e)),
                };
                let stop = item.is_err();
                if sink.send(item).await.is_err() || stop {
                    return;
                }
                next += 1;
            }
            match sink.wait(live.recv()).await {
                Err(_) => return,
                Ok(Ok(c)) if c.height == next => {
                    let Some(h) = c.block.header.clone() else { return };
                    if sink.send(Ok(h)).await.is_err() {
                        return;
                    }
                    next += 1;
                }
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) => return,
            }
        }
    });
}

/// Feeds `sink` the live events of `account` from every committed block.
pub fn account_events(node: Arc<NodeHandle>, account: AccountId, mut sink: Sink<pb::AccountEvent>) {
    tokio::spawn(async move {
        let mut live = node.subscribe();
        loop {
            let committed = match sink.wait(live.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return,
                Ok(Ok(c)) => c,
                Ok(Err(RecvError::Lagged(n))) => {
                    let lagged = Status::data_loss(format!("subscriber lagged; {n} blocks of events skipped"));
                    let _ = sink.send(Err(lagged)).await;
                    return;
                }
            };
            for receipt in &committed.block.receipts {
                for event in receipt.events.iter().filter(|e| e.account.as_slice() == account.0.as_slice()) {
                    let item = pb::AccountEvent {
                        height: committed.height,
                        tx_hash: receipt.tx_hash.clone(),
                        event: Some(event.clone()),
                    };
                    if sink.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}
