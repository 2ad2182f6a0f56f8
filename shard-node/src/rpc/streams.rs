//! Server streams: finalized headers from any height (catch-up from storage, then live), and live
//! per-account events. A slow subscriber that lags the broadcast re-reads from storage; none is unbounded.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use futures::Stream;
use shardex_core::{pb, AccountId};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status::internal_status;
use crate::runtime::NodeHandle;

/// Items buffered per subscriber before the sender waits.
const STREAM_BUFFER: usize = 256;

/// Stream of finalized headers.
pub type HeaderStream = Pin<Box<dyn Stream<Item = Result<pb::FinalizedHeader, Status>> + Send>>;
/// Stream of account events.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::AccountEvent, Status>> + Send>>;

/// Holds one subscriber slot; released on drop.
pub struct SubscriberGuard(pub Arc<AtomicUsize>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Headers from `from_height` on, in order, without gaps.
pub fn headers(node: Arc<NodeHandle>, from_height: u64, guard: SubscriberGuard) -> HeaderStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let _guard = guard;
        let mut live = node.subscribe();
        let mut next = from_height;
        loop {
            let head = node.shard().head().height;
            while next <= head {
                let block = node.shard().block(next);
                let item = match block {
                    Ok(Some(b)) => b.header.ok_or_else(|| Status::data_loss(format!("block {next} has no header"))),
                    Ok(None) => Err(Status::data_loss(format!("block {next} is missing below the head"))),
                    Err(e) => Err(internal_status(&e)),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
                next += 1;
            }
            match live.recv().await {
                Ok(c) if c.height == next => {
                    let Some(h) = c.block.header.clone() else { return };
                    if tx.send(Ok(h)).await.is_err() {
                        return;
                    }
                    next += 1;
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Live events of `account` from every committed block.
pub fn account_events(node: Arc<NodeHandle>, account: AccountId, guard: SubscriberGuard) -> EventStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let _guard = guard;
        let mut live = node.subscribe();
        loop {
            let committed = match live.recv().await {
                Ok(c) => c,
                Err(RecvError::Lagged(n)) => {
                    let _ = tx
                        .send(Err(Status::data_loss(format!("subscriber lagged; {n} blocks of events skipped"))))
                        .await;
                    return;
                }
                Err(RecvError::Closed) => return,
            };
            for receipt in &committed.block.receipts {
                for event in receipt.events.iter().filter(|e| e.account.as_slice() == account.0.as_slice()) {
                    let item = pb::AccountEvent {
                        height: committed.height,
                        tx_hash: receipt.tx_hash.clone(),
                        event: Some(event.clone()),
                    };
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}
