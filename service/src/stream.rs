//! Server streams that cannot leak: each holds one of a bounded number of subscriber slots, and its task ends
//! (releasing the slot) as soon as the client goes away, when it has had nothing to send for the idle limit,
//! or when the client has read nothing for the stall limit while its buffer was full. A stream's memory is
//! its buffer of `buffer` items plus one slot kept free for the final status, so a refusal always reaches
//! the client.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use shardex_core::Reason;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::Status;

use crate::status::refuse;

/// The stream a handler returns.
pub type ItemStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The subscriber slots of one service.
#[derive(Debug, Clone)]
pub struct Subscribers {
    active: Arc<AtomicUsize>,
    max: usize,
    idle: Duration,
    stall: Duration,
}

impl Subscribers {
    /// At most `max` concurrent streams, each ended after `idle` without an item, or dropped after `stall` with
    /// its buffer full.
    pub fn new(max: usize, idle: Duration, stall: Duration) -> Self {
        Self { active: Arc::new(AtomicUsize::new(0)), max, idle, stall }
    }

    /// Streams open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Takes a slot for a new stream of `T`, buffering `buffer` items, or refuses with `UNAVAILABLE` when all
    /// are taken. The returned sink feeds the stream; the slot is released when the sink is dropped.
    pub fn open<T: Send + 'static>(&self, buffer: usize) -> Result<(Sink<T>, ItemStream<T>), Status> {
        let before = self.active.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(&self.active));
        if before >= self.max {
            drop(slot);
            return Err(refuse(
                Reason::Unavailable,
                format!("{} stream subscribers is the limit; retry later", self.max),
            ));
        }
        // One slot more than the items: `send` never takes the last one, which is kept for the final status.
        let (tx, rx) = mpsc::channel(buffer.max(1) + 1);
        let sink = Sink { tx, idle: self.idle, stall: self.stall, last_sent: Instant::now(), _slot: slot };
        Ok((sink, Box::pin(ReceiverStream::new(rx))))
    }
}

/// Releases one slot on drop.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a stream task should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client went away (its end of the stream was dropped).
    ClientGone,
    /// Nothing was sent for the idle limit; the client was told so.
    Idle,
    /// The client read nothing for the stall limit while its buffer was full; it was told so.
    Stalled,
}

/// The sending half of a stream, owned by its task.
#[derive(Debug)]
pub struct Sink<T> {
    tx: mpsc::Sender<Result<T, Status>>,
    idle: Duration,
    stall: Duration,
    last_sent: Instant,
    _slot: Slot,
}

impl<T: Send> Sink<T> {
    /// Sends one item (or a final error); `Err` when the client is gone or too slow. Waits while the client's
    /// buffer is full, but no longer than the stall limit: then the client gets `RESOURCE_EXHAUSTED`
    /// (`SLOW_CONSUMER`) in the slot kept for it and the stream ends.
    pub async fn send(&mut self, item: Result<T, Status>) -> Result<(), Ended> {
        // Two free slots: one for this item, one that stays free for a final status.
        let permits = tokio::select! {
            biased;
            permits = self.tx.reserve_many(2) => permits.map_err(|_| Ended::ClientGone)?,
            () = tokio::time::sleep(self.stall) => {
                let stall = self.stall.as_secs_f64();
                let _ = self.tx.try_send(Err(refuse(
                    Reason::SlowConsumer,
                    format!("the stream's buffer stayed full for {stall:.1} s; it ends, resubscribe from where you were"),
                )));
                return Err(Ended::Stalled);
            }
        };
        if let Some(permit) = permits.into_iter().next() {
            permit.send(item);
        }
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Waits for `next` unless the client goes away first or the idle limit passes without anything sent; on
    /// idle the client gets `UNAVAILABLE` (resubscribe) and the stream ends.
    pub async fn wait<F: Future>(&mut self, next: F) -> Result<F::Output, Ended> {
        let deadline = self.last_sent + self.idle;
        tokio::select! {
            biased;
            () = self.tx.closed() => Err(Ended::ClientGone),
            () = tokio::time::sleep_until(deadline) => {
                let idle = self.idle.as_secs_f64();
                let _ = self.tx.try_send(Err(refuse(
                    Reason::Unavailable,
                    format!("nothing to send for {idle:.1} s; the stream ends, resubscribe to continue"),
                )));
                Err(Ended::Idle)
            }
            out = next => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn slots_are_bounded_and_released_when_the_client_goes() {
        let subs = Subscribers::new(2, Duration::from_secs(3600), Duration::from_secs(3600));
        let (mut a, a_stream) = subs.open::<u32>(4).expect("first");
        let (_b, _b_stream) = subs.open::<u32>(4).expect("second");
        let refused = subs.open::<u32>(4).err().expect("third refused");
        assert_eq!(refused.code(), tonic::Code::Unavailable);
        assert_eq!(crate::status::reason_of(&refused), Some("UNAVAILABLE"));
        assert_eq!(subs.active(), 2);

        // The client drops its stream: a task waiting on a quiet source notices at once.
        drop(a_stream);
        let ended = a.wait(std::future::pending::<()>()).await;
        assert_eq!(ended, Err(Ended::ClientGone));
        drop(a);
        assert_eq!(subs.active(), 1);
        let _reopened = subs.open::<u32>(4).expect("a slot is free again");
    }

    #[tokio::test]
    async fn an_idle_stream_is_told_and_ended() {
        let subs = Subscribers::new(1, Duration::from_millis(200), Duration::from_secs(3600));
        let (mut sink, mut stream) = subs.open::<u32>(4).expect("open");
        sink.send(Ok(7)).await.expect("sent");
        assert_eq!(stream.next().await.map(|r| r.ok()), Some(Some(7)));
        let started = Instant::now();
        let ended = sink.wait(std::future::pending::<()>()).await;
        assert_eq!(ended, Err(Ended::Idle));
        assert!(started.elapsed() >= Duration::from_millis(150), "ended before the idle limit");
        drop(sink);
        let last = stream.next().await.expect("a final status").expect_err("an error");
        assert_eq!(last.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none(), "the stream ended");
        assert_eq!(subs.active(), 0);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_with_a_status_and_its_buffer_is_bounded() {
        let subs = Subscribers::new(1, Duration::from_secs(3600), Duration::from_millis(200));
        let (mut sink, mut stream) = subs.open::<u32>(3).expect("open");
        for i in 0..3 {
            sink.send(Ok(i)).await.expect("fits the buffer");
        }
        let started = Instant::now();
        assert_eq!(sink.send(Ok(3)).await, Err(Ended::Stalled), "a fourth item never fits");
        assert!(started.elapsed() >= Duration::from_millis(150), "dropped before the stall limit");
        drop(sink);
        for i in 0..3 {
            assert_eq!(stream.next().await.map(|r| r.ok()), Some(Some(i)));
        }
        let last = stream.next().await.expect("a final status").expect_err("an error");
        assert_eq!(last.code(), tonic::Code::ResourceExhausted);
        assert_eq!(crate::status::reason_of(&last), Some("SLOW_CONSUMER"));
        assert!(stream.next().await.is_none(), "the stream ended");
        assert_eq!(subs.active(), 0);
    }

    #[tokio::test]
    async fn a_reading_client_is_never_dropped() {
        let subs = Subscribers::new(1, Duration::from_secs(3600), Duration::from_millis(100));
        let (mut sink, mut stream) = subs.open::<u32>(2).expect("open");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = stream.next().await {
                got.push(item.expect("no error"));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            got
        });
        for i in 0..50 {
            sink.send(Ok(i)).await.expect("a reading client keeps up");
        }
        drop(sink);
        assert_eq!(reader.await.expect("reader"), (0..50).collect::<Vec<_>>());
    }
}
