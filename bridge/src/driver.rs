//! The relaying loop: applies the followers' events to the [`Tracker`], and on every new event, epoch or
//! poll tick asks [`decide::next_step`] what each due message needs and runs it. Refusals that mean the
//! outcome is already there (another relayer, or an earlier attempt, did it) are counted, never fatal;
//! other failures back off per message. Scan cursors are persisted so a restart rescans only from the
//! lowest open lock.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use shardex_core::{pb, AccountId, ChainId, Keypair, Reason, ShardId};
use shardex_proto::bridge::v1 as bpb;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use crate::{
    actions::{self, Coordinator, RefundProof, Submitter},
    decide::{next_step, observe_epoch, Step, View},
    epochs::LatestEpoch,
    error::{remote, RelayerError, Result},
    follow::{FollowEvent, ShardLink},
    lifecycle::{Message, MessageId, Stage},
    rpc::lifecycle_pb,
    store::CursorStore,
    tracker::Tracker,
};

/// Wall-clock ms.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Per-shard scan position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Next height to scan.
    pub next: u64,
    /// Where a restart rescans from.
    pub safe: u64,
    /// Latest import known.
    pub imported: u64,
}

/// State shared with the Bridge service.
#[derive(Debug)]
pub struct Shared {
    /// The relayer's account.
    pub account: AccountId,
    /// The chain.
    pub chain: ChainId,
    /// Configured shards.
    pub links: BTreeMap<ShardId, Arc<ShardLink>>,
    /// Messages and counters.
    pub tracker: Mutex<Tracker>,
    /// Scan cursors.
    pub cursors: Mutex<BTreeMap<ShardId, Cursor>>,
    /// Latest verified epoch number.
    pub latest_epoch: AtomicU64,
    /// Lifecycle changes.
    pub events: broadcast::Sender<bpb::LifecycleEvent>,
    /// False while the tracker is full (followers pause).
    pub room: Arc<AtomicBool>,
}

impl Shared {
    /// The tracker (a poisoned lock still holds consistent data: every update is one call).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cursors.
    pub fn cursors(&self) -> MutexGuard<'_, BTreeMap<ShardId, Cursor>> {
        self.cursors.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Timing of the loop.
#[derive(Debug, Clone, Copy)]
pub struct DriverSettings {
    /// Pass interval when nothing arrives.
    pub poll: Duration,
    /// Hold after an accepted deliver/ack/refund, ms.
    pub inflight_ms: u64,
    /// Steps per message per pass.
    pub max_steps_per_pass: u32,
    /// Messages worked on at once.
    pub max_concurrent: usize,
    /// Cursor persistence interval.
    pub cursor_flush: Duration,
}

/// The loop's own state. A pass works on several messages at once: the coordinator's cache and each
/// shard's submitter (its nonces) sit behind async locks, so txs to one shard still leave in nonce order.
pub struct Driver {
    shared: Arc<Shared>,
    coord: tokio::sync::Mutex<Coordinator>,
    key: Keypair,
    submitters: tokio::sync::Mutex<HashMap<ShardId, Arc<tokio::sync::Mutex<Submitter>>>>,
    settings: DriverSettings,
    store: CursorStore,
}

/// What one step did.
enum Outcome {
    /// Something changed: decide again now.
    Again,
    /// Nothing more this pass.
    Stop,
}

impl Driver {
    /// A driver over `shared`.
    pub fn new(
        shared: Arc<Shared>,
        coord: Coordinator,
        key: Keypair,
        settings: DriverSettings,
        store: CursorStore,
    ) -> Self {
        Self {
            shared,
            coord: tokio::sync::Mutex::new(coord),
            key,
            submitters: tokio::sync::Mutex::new(HashMap::new()),
            settings,
            store,
        }
    }

    /// Runs until the followers are gone or the store fails (fatal).
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<FollowEvent>,
        mut epochs: watch::Receiver<LatestEpoch>,
    ) -> Result<()> {
        let mut last_flush = tokio::time::Instant::now();
        let mut saved: Vec<(ShardId, u64)> = Vec::new();
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => self.apply(ev),
                    None => return Err(RelayerError::Protocol("every shard follower stopped".into())),
                },
                changed = epochs.changed() => if changed.is_err() {
                    return Err(RelayerError::Protocol("the coordinator follower stopped".into()));
                },
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
            while let Ok(ev) = rx.try_recv() {
                self.apply(ev);
            }
            let latest = epochs.borrow().as_ref().map(|(n, s)| (*n, s.clone()));
            if let Some((n, _)) = &latest {
                self.shared.latest_epoch.store(*n, Ordering::Relaxed);
            }
            self.pass(latest).await;
            if last_flush.elapsed() >= self.settings.cursor_flush {
                last_flush = tokio::time::Instant::now();
                let now: Vec<_> = self.shared.cursors().iter().map(|(s, c)| (*s, c.safe)).collect();
                if now != saved {
                    self.store.save(&now)?;
                    saved = now;
                }
            }
        }
    }

    fn emit(&self, msg: &Message, attempts: u32, last_error: &str) {
        let _ = self
            .shared
            .events
            .send(bpb::LifecycleEvent { message: Some(lifecycle_pb(msg, attempts, last_error)), time_ms: now_ms() });
    }

    fn advance(&self, id: MessageId, stage: Stage, time_ms: u64) {
        let moved = self.shared.tracker().advance(id, stage, time_ms);
        if let Some(m) = moved {
            crate::metrics::moved(&m);
            info!(target: "relayer::message", message = %id, stage = stage.name(), "message moved");
            self.emit(&m, 0, "");
        }
    }

    /// Applies one follower event.
    fn apply(&mut self, ev: FollowEvent) {
        match ev {
            FollowEvent::Locked { id, amount_micros, height, time_ms } => {
                let new = self.shared.tracker().locked(Message::locked(id, amount_micros, height, time_ms));
                if let Some(m) = new {
                    debug!(target: "relayer::message", message = %id, height, "message locked");
                    self.emit(&m, 0, "");
                }
            }
            FollowEvent::Delivered { id, height, time_ms } => self.advance(id, Stage::Delivered { height }, time_ms),
            FollowEvent::Closed { id, acked, height, time_ms } => {
                let stage = if acked { Stage::Acked { height } } else { Stage::Refunded { height } };
                self.advance(id, stage, time_ms)
            }
            FollowEvent::Scanned { shard, next, imported } => {
                let lowest = self.shared.tracker().lowest_open_lock(shard);
                let mut cursors = self.shared.cursors();
                let c = cursors.entry(shard).or_default();
                c.next = next;
                c.imported = c.imported.max(imported);
                c.safe = lowest.map_or(next, |l| l.min(next));
            }
        }
        let room = self.shared.tracker().has_room();
        self.shared.room.store(room, Ordering::Relaxed);
    }

    fn imported(&self, shard: ShardId) -> u64 {
        self.shared.cursors().get(&shard).map_or(0, |c| c.imported)
    }

    fn set_imported(&self, shard: ShardId, epoch: u64) {
        let mut cursors = self.shared.cursors();
        let c = cursors.entry(shard).or_default();
        c.imported = c.imported.max(epoch);
    }

    /// The submitter of `shard` (created on first use).
    async fn submitter(&self, shard: ShardId) -> Result<Arc<tokio::sync::Mutex<Submitter>>> {
        let mut submitters = self.submitters.lock().await;
        if let Some(s) = submitters.get(&shard) {
            return Ok(s.clone());
        }
        let link = self
            .shared
            .links
            .get(&shard)
            .ok_or_else(|| RelayerError::Shards { shard, message: "not configured".into() })?;
        let client = link.client().await?;
        let s = Arc::new(tokio::sync::Mutex::new(Submitter::new(client, self.key.clone())));
        submitters.insert(shard, s.clone());
        Ok(s)
    }

    /// Signs and submits `op` on `shard`, after the txs already queued for it.
    async fn submit(&self, shard: ShardId, what: &str, op: pb::tx_body::Op) -> Result<shardex_core::B256> {
        self.submitter(shard).await?.lock().await.submit(what, op).await
    }

    /// The coordinator's verified inclusion of `shard` in `epoch` (cached).
    async fn inclusion(&self, epoch: u64, shard: ShardId) -> Result<Option<actions::Inclusion>> {
        self.coord.lock().await.inclusion(epoch, shard).await
    }

    fn link(&self, shard: ShardId) -> Result<&Arc<crate::follow::ShardLink>> {
        self.shared.links.get(&shard).ok_or_else(|| RelayerError::Shards { shard, message: "not configured".into() })
    }

    async fn client(&self, shard: ShardId) -> Result<shardex_client::ShardClient> {
        self.link(shard)?.client().await
    }

    /// `shard`'s client and its header of the block `inc` commits, certified by its genesis validators.
    async fn certified(
        &self,
        shard: ShardId,
        inc: &actions::Inclusion,
    ) -> Result<(shardex_client::ShardClient, pb::FinalizedHeader)> {
        let link = self.link(shard)?;
        let client = link.client().await?;
        let header = actions::certified_header(&client, &link.validators, inc).await?;
        Ok((client, header))
    }

    /// One pass over the due messages, up to `max_concurrent` at a time.
    async fn pass(&self, latest: Option<(u64, shardex_core::coordpb::SignedEpoch)>) {
        use futures::StreamExt;
        let due = self.shared.tracker().due(now_ms());
        let latest = latest.as_ref();
        futures::stream::iter(due)
            .for_each_concurrent(self.settings.max_concurrent, |id| self.work_on(id, latest))
            .await;
    }

    /// Runs up to `max_steps_per_pass` steps of message `id`; a failure backs it off.
    async fn work_on(&self, id: MessageId, latest: Option<&(u64, shardex_core::coordpb::SignedEpoch)>) {
        let span = tracing::info_span!(target: "relayer::message", "relay", message = %id);
        for _ in 0..self.settings.max_steps_per_pass {
            match tracing::Instrument::instrument(self.step(id, latest), span.clone()).await {
                Ok(Outcome::Again) => continue,
                Ok(Outcome::Stop) => break,
                Err(e) => {
                    let reason = e.reason();
                    debug!(target: "relayer::message", message = %id, %reason, error = %e, "step failed");
                    let (attempts, last) = {
                        let mut t = self.shared.tracker();
                        t.failed(id, &reason, now_ms());
                        t.get(&id).map(|(_, a, l)| (a, l)).unwrap_or_default()
                    };
                    if attempts.is_power_of_two() {
                        warn!(target: "relayer::message", message = %id, attempts, reason = %last, error = %e, "step keeps failing");
                    }
                    break;
                }
            }
        }
    }

    async fn view(&self, id: MessageId, latest: u64) -> Result<View> {
        let mut v = View {
            latest_epoch: latest,
            src_imported: self.imported(id.src),
            dst_imported: self.imported(id.dst),
            ..View::default()
        };
        if latest == 0 {
            return Ok(v);
        }
        let src = self.inclusion(latest, id.src).await?;
        let dst = self.inclusion(latest, id.dst).await?;
        v.src_committed = src.map(|i| i.entry.height);
        v.dst_committed = dst.as_ref().map(|i| i.entry.height);
        v.dst_committed_import = dst.map(|i| i.header_imported);
        Ok(v)
    }

    async fn step(&self, id: MessageId, latest: Option<&(u64, shardex_core::coordpb::SignedEpoch)>) -> Result<Outcome> {
        let Some((msg, _, _)) = self.shared.tracker().get(&id) else { return Ok(Outcome::Stop) };
        let details_read = self.shared.tracker().open_mut(&id).is_some_and(|o| o.details_read);
        if !details_read {
            self.read_message(id).await?;
            return Ok(Outcome::Again);
        }
        let latest_n = latest.map_or(0, |(n, _)| *n);
        let view = self.view(id, latest_n).await?;
        if let Some(stage) = observe_epoch(&msg, &view) {
            self.advance(id, stage, 0);
        }
        let step = next_step(&msg, &view);
        match step {
            Step::Done | Step::Wait(_) => Ok(Outcome::Stop),
            Step::ReadMessage => {
                self.read_message(id).await?;
                Ok(Outcome::Again)
            }
            Step::Import { shard, epoch } => {
                let Some((_, signed)) = latest.filter(|(n, _)| *n == epoch) else { return Ok(Outcome::Stop) };
                let submitter = self.submitter(shard).await?;
                let mut submitter = submitter.lock().await;
                // Messages worked on at the same time want the same import: the first one does it.
                if self.imported(shard) >= epoch {
                    return Ok(Outcome::Again);
                }
                match submitter.submit("ImportGlobalCommitment", actions::import_op(signed)).await {
                    Ok(_) => {
                        self.shared.tracker().counters.submitted += 1;
                        self.set_imported(shard, epoch);
                    }
                    Err(e) if e.node_reason() == Some(Reason::Duplicate) => {
                        self.shared.tracker().counters.duplicates += 1;
                        self.set_imported(shard, epoch);
                    }
                    Err(e) => return Err(e),
                }
                Ok(Outcome::Again)
            }
            Step::Deliver { epoch } => {
                let Some(inc) = self.inclusion(epoch, id.src).await? else { return Ok(Outcome::Stop) };
                let (src, header) = self.certified(id.src, &inc).await?;
                let Some(op) = actions::deliver_op(&src, id, epoch, &inc, header).await? else {
                    return Err(RelayerError::Protocol(format!("epoch {epoch} holds no message {id}")));
                };
                self.submit_final(id, id.dst, "DeliverMessage", op).await
            }
            Step::Ack { epoch } => {
                let Some(inc) = self.inclusion(epoch, id.dst).await? else { return Ok(Outcome::Stop) };
                let (dst, header) = self.certified(id.dst, &inc).await?;
                let Some(op) = actions::ack_op(&dst, id, epoch, &inc, header).await? else {
                    return Err(RelayerError::Protocol(format!("epoch {epoch} holds no ack of {id}")));
                };
                self.submit_final(id, id.src, "AckMessage", op).await
            }
            Step::Refund { epoch } => {
                let Some(inc) = self.inclusion(epoch, id.dst).await? else { return Ok(Outcome::Stop) };
                let (dst, header) = self.certified(id.dst, &inc).await?;
                let expiry = msg.expiry_epoch.unwrap_or(u64::MAX);
                match actions::refund_op(&dst, id, expiry, epoch, &inc, header).await? {
                    RefundProof::Ready(op) => self.submit_final(id, id.src, "TimeoutRefund", op).await,
                    RefundProof::Delivered => {
                        self.read_message(id).await?;
                        Ok(Outcome::Again)
                    }
                    RefundProof::NotExpired(_) => Ok(Outcome::Stop),
                }
            }
        }
    }

    /// Submits a deliver, ack or refund. Accepted: hold until its block shows the outcome. Refused as
    /// already done: count it and reread the chain.
    async fn submit_final(&self, id: MessageId, shard: ShardId, what: &str, op: pb::tx_body::Op) -> Result<Outcome> {
        match self.submit(shard, what, op).await {
            Ok(_) => {
                let mut t = self.shared.tracker();
                t.counters.submitted += 1;
                t.hold(id, now_ms().saturating_add(self.settings.inflight_ms));
                Ok(Outcome::Stop)
            }
            Err(e) => match e.node_reason() {
                Some(Reason::Duplicate | Reason::MessageState) => {
                    self.shared.tracker().counters.duplicates += 1;
                    self.read_message(id).await?;
                    Ok(Outcome::Again)
                }
                Some(Reason::Expired | Reason::UnknownEpoch) => {
                    let client = self.client(shard).await?;
                    let imported = actions::imported_at_head(&client).await?;
                    self.set_imported(shard, imported);
                    Err(e)
                }
                _ => Err(e),
            },
        }
    }

    /// Reads the message from both shards' state: expiry and recipient from the source, the receipt from the
    /// destination, the escrow's outcome from the source.
    async fn read_message(&self, id: MessageId) -> Result<()> {
        let src = self.client(id.src).await?;
        let out = src
            .message(id.dst, id.seq, false, false, None)
            .await
            .map_err(remote(format!("GetMessage {id} on source")))?;
        let Some(message) = out.message else {
            return Err(RelayerError::Protocol(format!("source has no outbox message {id}")));
        };
        let dst = self.client(id.dst).await?;
        let inc = dst
            .message(id.src, id.seq, true, false, None)
            .await
            .map_err(remote(format!("GetMessage {id} on destination")))?;
        if let Some(o) = self.shared.tracker().open_mut(&id) {
            o.msg.expiry_epoch = Some(message.expiry_epoch);
            o.msg.recipient = message.account.clone();
            o.details_read = true;
        }
        if let Some(r) = inc.receipt.filter(|r| r.delivered_height > 0) {
            self.advance(id, Stage::Delivered { height: r.delivered_height }, 0);
        }
        if let Some(e) = out.escrow {
            match pb::MessageState::try_from(e.state) {
                Ok(pb::MessageState::Acked) => self.advance(id, Stage::Acked { height: e.closed_height }, 0),
                Ok(pb::MessageState::Refunded) => self.advance(id, Stage::Refunded { height: e.closed_height }, 0),
                _ => {}
            }
        }
        Ok(())
    }
}
