//! The epoch stream: catch-up from storage from any retained number up to [`MAX_STREAM_LEAD`] past the
//! latest, then live, without gaps. Each stream holds a subscriber slot (`shardex_service::stream`) released as
//! soon as the client goes away or the stream has been idle for `rpc.stream_idle_ms`. A subscriber that lags
//! the broadcast re-reads from storage; buffers are bounded.

use std::sync::Arc;

use shardex_core::{coordpb, global::epoch_hash, Reason};
use shardex_service::stream::{ItemStream, Sink};
use tokio::sync::broadcast::error::RecvError;

use super::status::{internal, reject};
use crate::runtime::Coordinator;

/// Items buffered per subscriber before the sender waits.
pub const STREAM_BUFFER: usize = 64;

/// How far past the latest epoch a stream may start: a client slightly ahead (it followed another
/// coordinator) waits; one asking for a number hours away is refused.
pub const MAX_STREAM_LEAD: u64 = 1_000;

/// Stream of signed epochs.
pub type EpochStream = ItemStream<coordpb::SignedEpoch>;

fn number_of(e: &coordpb::SignedEpoch) -> u64 {
    use prost::Message;
    coordpb::EpochRecord::decode(e.record.as_slice()).map(|r| r.number).unwrap_or(0)
}

/// Feeds `sink` the epochs from `from` (≥ 1) on, in order, until the client goes away, the stream idles out
/// or the coordinator stops.
pub fn epochs(coord: Arc<Coordinator>, from: u64, mut sink: Sink<coordpb::SignedEpoch>) {
    tokio::spawn(async move {
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
                if sink.send(item).await.is_err() || stop {
                    return;
                }
                next += 1;
            }
            match sink.wait(live.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return,
                Ok(Ok(e)) if number_of(&e) == next => {
                    tracing::trace!(target: "coordinator::rpc", hash = %epoch_hash(&e.record), "stream epoch");
                    if sink.send(Ok(e)).await.is_err() {
                        return;
                    }
                    next += 1;
                }
                Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
            }
        }
    });
}
