//! The epoch stream: catch-up from storage from any retained number, then live, without gaps. A
//! subscriber that lags the broadcast re-reads from storage; buffers are bounded.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use futures::Stream;
use shardex_core::{coordpb, global::epoch_hash, Reason};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::status::{internal, reject};
use crate::runtime::Coordinator;

/// Items buffered per subscriber before the sender waits.
const STREAM_BUFFER: usize = 64;

/// Stream of signed epochs.
pub type EpochStream = Pin<Box<dyn Stream<Item = Result<coordpb::SignedEpoch, Status>> + Send>>;

/// Holds one subscriber slot; released on drop.
pub struct SubscriberGuard(pub Arc<AtomicUsize>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn number_of(e: &coordpb::SignedEpoch) -> u64 {
    use prost::Message;
    coordpb::EpochRecord::decode(e.record.as_slice()).map(|r| r.number).unwrap_or(0)
}

/// Epochs from `from` (≥ 1) on, in order.
pub fn epochs(coord: Arc<Coordinator>, from: u64, guard: SubscriberGuard) -> EpochStream {
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        let _guard = guard;
        let mut live = coord.subscribe();
        let mut next = from;
        loop {
            let latest = coord.latest_number();
            while next <= latest {
                let item = match coord.store.epoch(next) {
                    Ok(Some(e)) => Ok(e),
                    Ok(None) => Err(reject(Reason::NotFound, format!("epoch {next} is outside the retention window"))),
                    Err(e) => Err(internal(&e)),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
                next += 1;
            }
            match live.recv().await {
                Ok(e) if number_of(&e) == next => {
                    tracing::trace!(target: "coordinator::rpc", hash = %epoch_hash(&e.record), "stream epoch");
                    if tx.send(Ok(e)).await.is_err() {
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
