//! The lifecycle of one cross-shard message as the relayer observes it on the chain:
//! Locked → Committed(epoch) → Delivered(height) → Acked | Refunded. Transitions only move forward; an
//! observation that would move a message back (a late or repeated event) is ignored.

use shardex_core::ShardId;

/// A message: (source, destination, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    /// Source shard (where the collateral is escrowed).
    pub src: ShardId,
    /// Destination shard (where it is credited).
    pub dst: ShardId,
    /// Per-destination sequence number on the source, from 1.
    pub seq: u64,
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.src, self.dst, self.seq)
    }
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Escrowed on the source; no epoch seen committing it yet.
    Locked,
    /// An epoch commits the source at or above the lock height.
    Committed {
        /// The first such epoch seen.
        epoch: u64,
    },
    /// Credited on the destination at `height`.
    Delivered {
        /// Destination height of the delivery.
        height: u64,
    },
    /// Escrow released on the source at `height`.
    Acked {
        /// Source height of the ack.
        height: u64,
    },
    /// Escrow returned on the source at `height`.
    Refunded {
        /// Source height of the refund.
        height: u64,
    },
}

impl Stage {
    /// Order of stages: a transition never lowers it.
    pub fn rank(self) -> u8 {
        match self {
            Self::Locked => 0,
            Self::Committed { .. } => 1,
            Self::Delivered { .. } => 2,
            Self::Acked { .. } | Self::Refunded { .. } => 3,
        }
    }

    /// Acked or refunded: nothing left to do.
    pub fn is_closed(self) -> bool {
        self.rank() == 3
    }

    /// A short name for logs and counters.
    pub fn name(self) -> &'static str {
        match self {
            Self::Locked => "locked",
            Self::Committed { .. } => "committed",
            Self::Delivered { .. } => "delivered",
            Self::Acked { .. } => "acked",
            Self::Refunded { .. } => "refunded",
        }
    }
}

/// What the relayer knows of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: MessageId,
    /// Amount, micro-USD.
    pub amount_micros: u64,
    /// Recipient on the destination (32 bytes; empty until read from the source).
    pub recipient: Vec<u8>,
    /// Deliverable while the destination's latest import is at most this; None until read from the source.
    pub expiry_epoch: Option<u64>,
    /// Source height of the transfer-out (0 when only known from state without its height).
    pub locked_height: u64,
    /// Block time of the lock, ms.
    pub locked_time_ms: u64,
    /// Block time of the delivery, ms (0 before).
    pub delivered_time_ms: u64,
    /// Current stage.
    pub stage: Stage,
    /// The first epoch seen committing the lock, kept once the message moves on.
    pub committed_epoch: u64,
}

/// Why a transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The stage moved forward.
    Moved,
    /// Same or later stage already known: nothing changed.
    Stale,
    /// Contradicts a closed outcome (acked vs refunded): a protocol violation worth an alarm.
    Conflict,
}

impl Message {
    /// A message just seen locked at `height`.
    pub fn locked(id: MessageId, amount_micros: u64, height: u64, time_ms: u64) -> Self {
        Self {
            id,
            amount_micros,
            recipient: Vec::new(),
            expiry_epoch: None,
            locked_height: height,
            locked_time_ms: time_ms,
            delivered_time_ms: 0,
            stage: Stage::Locked,
            committed_epoch: 0,
        }
    }

    /// Moves to `next` if it is later than the current stage.
    pub fn advance(&mut self, next: Stage) -> Transition {
        let closed_differently = matches!(
            (self.stage, next),
            (Stage::Acked { .. }, Stage::Refunded { .. }) | (Stage::Refunded { .. }, Stage::Acked { .. })
        );
        if closed_differently {
            return Transition::Conflict;
        }
        if next.rank() <= self.stage.rank() {
            return Transition::Stale;
        }
        if let Stage::Committed { epoch } = next {
            self.committed_epoch = epoch;
        }
        if let Stage::Refunded { .. } = next {
            debug_assert!(!matches!(self.stage, Stage::Delivered { .. }), "a delivered message cannot be refunded");
        }
        self.stage = next;
        Transition::Moved
    }

    /// Lock-to-credit latency in block time, ms, once delivered.
    pub fn lock_to_credit_ms(&self) -> Option<u64> {
        (self.delivered_time_ms > 0 && self.locked_time_ms > 0)
            .then(|| self.delivered_time_ms.saturating_sub(self.locked_time_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message::locked(MessageId { src: ShardId(1), dst: ShardId(2), seq: 1 }, 5, 10, 1000)
    }

    #[test]
    fn stages_only_move_forward() {
        let mut m = msg();
        assert_eq!(m.advance(Stage::Committed { epoch: 4 }), Transition::Moved);
        assert_eq!(m.advance(Stage::Locked), Transition::Stale);
        assert_eq!(m.advance(Stage::Delivered { height: 7 }), Transition::Moved);
        assert_eq!(m.advance(Stage::Committed { epoch: 9 }), Transition::Stale);
        assert_eq!(m.committed_epoch, 4);
        assert_eq!(m.advance(Stage::Acked { height: 12 }), Transition::Moved);
        assert_eq!(m.advance(Stage::Acked { height: 12 }), Transition::Stale);
        assert_eq!(m.advance(Stage::Refunded { height: 13 }), Transition::Conflict);
        assert_eq!(m.stage, Stage::Acked { height: 12 });
    }

    #[test]
    fn a_locked_message_may_be_refunded_directly() {
        let mut m = msg();
        assert_eq!(m.advance(Stage::Refunded { height: 30 }), Transition::Moved);
        assert!(m.stage.is_closed());
        assert_eq!(m.advance(Stage::Delivered { height: 3 }), Transition::Stale);
    }

    #[test]
    fn latency_is_block_time_from_lock_to_credit() {
        let mut m = msg();
        assert_eq!(m.lock_to_credit_ms(), None);
        m.delivered_time_ms = 1350;
        assert_eq!(m.lock_to_credit_ms(), Some(350));
    }
}
