//! Server streams: finalized headers from any height up to [`MAX_STREAM_LEAD`] past the head (catch-up from
//! storage, then live), and live per-account events. Each holds a subscriber slot (`shardex_service::stream`)
//! that is released as soon as the client goes away, the stream has been idle for `rpc.stream_idle_ms`, or
//! the client has left its buffer full for `rpc.stream_stall_ms`. A subscriber that lags the broadcast of
//! committed blocks re-reads the blocks it missed from storage; none is unbounded.

use std::sync::Arc;

use shardex_core::{pb, AccountId};
use shardex_service::stream::{Ended, ItemStream, Sink};
use tokio::sync::broadcast::error::RecvError;
use tonic::Status;

use super::status::internal_status;
use crate::runtime::NodeHandle;

/// Items buffered per subscriber before the sender waits (and, after `rpc.stream_stall_ms`, drops the
/// subscriber): a header with its certificate is at most about 13 KiB, so a stalled header stream holds
/// under 1 MiB.
pub const STREAM_BUFFER: usize = 64;

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
            let view = node.head_view();
            while next <= view.head().height {
                let item = match view.header(next) {
                    Ok(Some(h)) => Ok(h),
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

/// Feeds `sink` the events of `account` from every block committed after the subscription, in order and
/// without gaps: a task that falls behind the broadcast reads the blocks it missed from storage.
pub fn account_events(node: Arc<NodeHandle>, account: AccountId, mut sink: Sink<pb::AccountEvent>) {
    tokio::spawn(async move {
        let mut live = node.subscribe();
        let mut next = node.head_view().head().height + 1;
        loop {
            let live_block = match sink.wait(live.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return,
                Ok(Err(RecvError::Lagged(_))) => None,
                Ok(Ok(c)) => Some(c),
            };
            // Blocks below the live one (or up to the head, after a lag) that this task has not seen.
            let stored_upto = match &live_block {
                Some(c) => c.height.saturating_sub(1),
                None => node.head_view().head().height,
            };
            while next <= stored_upto {
                let stored = node.head_view().block(next);
                let block = match stored {
                    Ok(Some(b)) => b,
                    Ok(None) => {
                        let gone = Status::data_loss(format!("block {next} is no longer stored; resubscribe"));
                        let _ = sink.send(Err(gone)).await;
                        return;
                    }
                    Err(e) => {
                        let _ = sink.send(Err(internal_status(&e))).await;
                        return;
                    }
                };
                if send_events(&mut sink, &account, next, &block).await.is_err() {
                    return;
                }
                next += 1;
            }
            if let Some(c) = live_block.filter(|c| c.height == next) {
                if send_events(&mut sink, &account, next, &c.block).await.is_err() {
                    return;
                }
                next += 1;
            }
        }
    });
}

/// Sends the events of `account` in `block` (at `height`), in receipt order.
async fn send_events(
    sink: &mut Sink<pb::AccountEvent>,
    account: &AccountId,
    height: u64,
    block: &pb::Block,
) -> Result<(), Ended> {
    for receipt in &block.receipts {
        for event in receipt.events.iter().filter(|e| e.account.as_slice() == account.0.as_slice()) {
            let item = pb::AccountEvent { height, tx_hash: receipt.tx_hash.clone(), event: Some(event.clone()) };
            sink.send(Ok(item)).await?;
        }
    }
    Ok(())
}
