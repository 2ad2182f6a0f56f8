//! The relayer's bookkeeping: open messages with their retry state, recently closed ones, counters and the
//! lock-to-credit latency window. Pure (times are passed in), bounded by [`TrackerLimits`].

use std::collections::{BTreeMap, VecDeque};

use shardex_core::ShardId;

use crate::lifecycle::{Message, MessageId, Stage, Transition};

/// Bounds of the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerLimits {
    /// Open messages tracked at once; shard scanning pauses while this many are open.
    pub max_open: usize,
    /// Closed messages remembered for queries.
    pub max_recent_closed: usize,
    /// Lock-to-credit samples kept for percentiles.
    pub latency_window: usize,
    /// First retry delay after a failure, ms (doubles per consecutive failure).
    pub min_backoff_ms: u64,
    /// Largest retry delay, ms.
    pub max_backoff_ms: u64,
}

impl Default for TrackerLimits {
    fn default() -> Self {
        Self {
            max_open: 100_000,
            max_recent_closed: 10_000,
            latency_window: 1_024,
            min_backoff_ms: 50,
            max_backoff_ms: 5_000,
        }
    }
}

/// One open message and its retry state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The lifecycle.
    pub msg: Message,
    /// Consecutive failed attempts.
    pub attempts: u32,
    /// Do nothing for this message before this time, ms.
    pub not_before_ms: u64,
    /// The last failure's reason.
    pub last_error: String,
    /// Whether the source's message and the destination's receipt were read since it was discovered.
    pub details_read: bool,
}

/// Counters and windows for status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages seen delivered, acked, refunded.
    pub delivered: u64,
    /// Acked.
    pub acked: u64,
    /// Refunded.
    pub refunded: u64,
    /// Txs a shard accepted from this relayer.
    pub submitted: u64,
    /// Refusals meaning the outcome was already there (DUPLICATE, or MESSAGE_STATE in the wanted direction).
    pub duplicates: u64,
    /// Failures by reason.
    pub errors: BTreeMap<String, u64>,
    /// Acked-versus-refunded contradictions seen (must stay 0).
    pub conflicts: u64,
}

/// The bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    limits: TrackerLimits,
    open: BTreeMap<MessageId, Open>,
    closed: VecDeque<Message>,
    latency_ms: VecDeque<u64>,
    /// Counters.
    pub counters: Counters,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(limits: TrackerLimits) -> Self {
        Self { limits, ..Default::default() }
    }

    /// Whether another message fits.
    pub fn has_room(&self) -> bool {
        self.open.len() < self.limits.max_open
    }

    /// A message seen locked; returns it when it is new.
    pub fn locked(&mut self, msg: Message) -> Option<Message> {
        if self.open.contains_key(&msg.id) || self.closed.iter().any(|c| c.id == msg.id) {
            return None;
        }
        self.open.insert(
            msg.id,
            Open { msg: msg.clone(), attempts: 0, not_before_ms: 0, last_error: String::new(), details_read: false },
        );
        Some(msg)
    }

    /// Moves `id` to `stage` (with the block time of the observation); returns the message when it moved.
    /// A closed message leaves the open set.
    pub fn advance(&mut self, id: MessageId, stage: Stage, time_ms: u64) -> Option<Message> {
        let open = self.open.get_mut(&id)?;
        let before = open.msg.stage;
        match open.msg.advance(stage) {
            Transition::Stale => return None,
            Transition::Conflict => {
                self.counters.conflicts += 1;
                return None;
            }
            Transition::Moved => {}
        }
        open.attempts = 0;
        open.not_before_ms = 0;
        open.last_error.clear();
        let msg = open.msg.clone();
        match stage {
            Stage::Delivered { .. } => {
                self.counters.delivered += 1;
                if let Some(o) = self.open.get_mut(&id) {
                    o.msg.delivered_time_ms = time_ms;
                    if let Some(l) = o.msg.lock_to_credit_ms() {
                        push_bounded(&mut self.latency_ms, l, self.limits.latency_window);
                    }
                    return Some(o.msg.clone());
                }
            }
            Stage::Acked { .. } => {
                self.counters.acked += 1;
                // An ack proves the delivery, which a relayer far behind may never have seen on its own.
                if matches!(before, Stage::Locked | Stage::Committed { .. }) {
                    self.counters.delivered += 1;
                }
            }
            Stage::Refunded { .. } => self.counters.refunded += 1,
            _ => {}
        }
        if stage.is_closed() {
            self.open.remove(&id);
            push_bounded(&mut self.closed, msg.clone(), self.limits.max_recent_closed);
        }
        Some(msg)
    }

    /// Records a failed attempt: exponential backoff from `now_ms`.
    pub fn failed(&mut self, id: MessageId, reason: &str, now_ms: u64) {
        *self.counters.errors.entry(reason.to_owned()).or_default() += 1;
        if let Some(o) = self.open.get_mut(&id) {
            o.attempts = o.attempts.saturating_add(1);
            o.last_error = reason.to_owned();
            o.not_before_ms = now_ms.saturating_add(backoff_ms(&self.limits, o.attempts));
        }
    }

    /// Holds `id` until `until_ms` (a submitted tx awaits its block) without counting a failure.
    pub fn hold(&mut self, id: MessageId, until_ms: u64) {
        if let Some(o) = self.open.get_mut(&id) {
            o.not_before_ms = until_ms;
        }
    }

    /// Mutable access to an open message (details, expiry).
    pub fn open_mut(&mut self, id: &MessageId) -> Option<&mut Open> {
        self.open.get_mut(id)
    }

    /// Open messages due at `now_ms`.
    pub fn due(&self, now_ms: u64) -> Vec<MessageId> {
        self.open.values().filter(|o| o.not_before_ms <= now_ms).map(|o| o.msg.id).collect()
    }

    /// An open or recently closed message.
    pub fn get(&self, id: &MessageId) -> Option<(Message, u32, String)> {
        if let Some(o) = self.open.get(id) {
            return Some((o.msg.clone(), o.attempts, o.last_error.clone()));
        }
        self.closed.iter().rev().find(|m| m.id == *id).map(|m| (m.clone(), 0, String::new()))
    }

    /// Open messages per stage name.
    pub fn backlog(&self) -> BTreeMap<&'static str, u64> {
        let mut b = BTreeMap::new();
        for o in self.open.values() {
            *b.entry(o.msg.stage.name()).or_default() += 1;
        }
        b
    }

    /// The lowest lock height of an open message from `src` (what a restart must rescan from).
    pub fn lowest_open_lock(&self, src: ShardId) -> Option<u64> {
        self.open.values().filter(|o| o.msg.id.src == src).map(|o| o.msg.locked_height).min()
    }

    /// Number of open messages.
    pub fn open_len(&self) -> usize {
        self.open.len()
    }

    /// The `q`-quantile (0..=1) of recent lock-to-credit latencies and the sample count.
    pub fn latency_quantile_ms(&self, q: f64) -> (u64, usize) {
        let mut v: Vec<u64> = self.latency_ms.iter().copied().collect();
        v.sort_unstable();
        (quantile(&v, q), v.len())
    }
}

/// The `q`-quantile of sorted `v` (nearest rank); 0 when empty.
pub fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v[rank.saturating_sub(1).min(v.len() - 1)]
}

/// Retry delay after `attempts` consecutive failures.
pub fn backoff_ms(limits: &TrackerLimits, attempts: u32) -> u64 {
    let shift = attempts.saturating_sub(1).min(20);
    limits.min_backoff_ms.saturating_mul(1u64 << shift).min(limits.max_backoff_ms)
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if cap == 0 {
        return;
    }
    while q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> MessageId {
        MessageId { src: ShardId(1), dst: ShardId(2), seq }
    }

    #[test]
    fn messages_close_once_and_count_latency() {
        let mut t = Tracker::new(TrackerLimits { max_open: 2, ..Default::default() });
        assert!(t.locked(Message::locked(id(1), 5, 10, 1_000)).is_some());
        assert!(t.locked(Message::locked(id(1), 5, 10, 1_000)).is_none(), "rediscovery is not new");
        assert!(t.locked(Message::locked(id(2), 5, 12, 1_000)).is_some());
        assert!(!t.has_room());
        assert_eq!(t.lowest_open_lock(ShardId(1)), Some(10));
        assert!(t.advance(id(1), Stage::Delivered { height: 4 }, 1_300).is_some());
        assert!(t.advance(id(1), Stage::Delivered { height: 4 }, 1_300).is_none());
        assert!(t.advance(id(1), Stage::Acked { height: 20 }, 1_500).is_some());
        assert!(t.advance(id(1), Stage::Refunded { height: 21 }, 1_600).is_none());
        assert!(t.locked(Message::locked(id(1), 5, 10, 1_000)).is_none(), "a closed message is not reopened");
        assert_eq!(t.lowest_open_lock(ShardId(1)), Some(12));
        assert_eq!((t.counters.delivered, t.counters.acked, t.counters.refunded), (1, 1, 0));
        assert_eq!(t.latency_quantile_ms(0.5), (300, 1));
        assert_eq!(t.get(&id(1)).map(|m| m.0.stage), Some(Stage::Acked { height: 20 }));
        // Seen acked before delivered (the relayer was behind on the destination): delivered all the same.
        assert!(t.advance(id(2), Stage::Acked { height: 22 }, 1_700).is_some());
        assert_eq!((t.counters.delivered, t.counters.acked), (2, 2));
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_limit() {
        let limits = TrackerLimits { min_backoff_ms: 50, max_backoff_ms: 300, ..Default::default() };
        assert_eq!([1, 2, 3, 4, 40].map(|a| backoff_ms(&limits, a)), [50, 100, 200, 300, 300]);
        let mut t = Tracker::new(limits);
        t.locked(Message::locked(id(1), 5, 10, 1_000));
        t.failed(id(1), "UNAVAILABLE", 1_000);
        assert!(t.due(1_049).is_empty());
        assert_eq!(t.due(1_050), vec![id(1)]);
        t.failed(id(1), "UNAVAILABLE", 1_050);
        assert!(t.due(1_149).is_empty());
        assert_eq!(t.counters.errors.get("UNAVAILABLE"), Some(&2));
        t.advance(id(1), Stage::Committed { epoch: 3 }, 0);
        assert_eq!(t.due(0), vec![id(1)], "progress resets the backoff");
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((quantile(&v, 0.5), quantile(&v, 0.99), quantile(&v, 1.0)), (50, 99, 100));
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
