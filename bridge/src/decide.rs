//! The relayer's decision for one message: given what it has observed of the coordinator (latest epoch and
//! the heights that epoch commits) and of both shards (their latest imports), the one next step. Pure: the
//! driver gathers a [`View`], runs the step, and asks again.
//!
//! Policy (the VM decides what is valid; this decides what to try):
//! - an epoch is proven against only once the shard that checks it has imported it, and the relayer always
//!   imports the coordinator's latest epoch (never an older one), so one import serves every open message;
//! - the proof epoch is the checking shard's latest import when that is at least the latest epoch seen
//!   (another relayer may have imported a newer one), else the latest epoch after importing it;
//! - once the coordinator's latest epoch (or the destination's import) is past a message's expiry and no
//!   delivery is known, the relayer stops delivering and drives the refund: it moves the destination's
//!   import past the expiry, waits for an epoch committing that destination block, imports it on the source
//!   and refunds. A delivery racing this is settled by the VM: exactly one of them succeeds.

use shardex_core::ShardId;

use crate::lifecycle::{Message, Stage};

/// What the relayer knows of the world, for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// The coordinator's latest epoch (0: none seen).
    pub latest_epoch: u64,
    /// The source height the latest epoch commits (None: the source is not in it).
    pub src_committed: Option<u64>,
    /// The destination height the latest epoch commits.
    pub dst_committed: Option<u64>,
    /// The destination's latest import as of that committed destination block.
    pub dst_committed_import: Option<u64>,
    /// Latest epoch imported on the source (0: none).
    pub src_imported: u64,
    /// Latest epoch imported on the destination.
    pub dst_imported: u64,
}

/// Why nothing can be done yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// No epoch commits the source at or above the lock height yet.
    LockNotCommitted,
    /// No epoch commits the destination at or above the delivery height yet.
    DeliveryNotCommitted,
    /// The destination imported past the expiry, but no epoch commits that destination block yet.
    ExpiryNotCommitted,
}

/// The next step for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Closed: forget it.
    Done,
    /// Expiry and recipient unknown: read the source's outbox message (and the destination's receipt).
    ReadMessage,
    /// Nothing to do until more is observed.
    Wait(Waiting),
    /// Import `epoch` on `shard`.
    Import {
        /// Where.
        shard: ShardId,
        /// Which epoch (always the latest seen).
        epoch: u64,
    },
    /// Deliver on the destination, proven under `epoch` (imported there).
    Deliver {
        /// Proof epoch.
        epoch: u64,
    },
    /// Ack on the source, proven under `epoch` (imported there).
    Ack {
        /// Proof epoch.
        epoch: u64,
    },
    /// Refund on the source, proven under `epoch` (imported there).
    Refund {
        /// Proof epoch.
        epoch: u64,
    },
}

/// The stage a message reaches by `view` alone: Committed once the latest epoch commits its lock.
pub fn observe_epoch(msg: &Message, view: &View) -> Option<Stage> {
    let committed = view.src_committed.is_some_and(|h| h >= msg.locked_height && msg.locked_height > 0);
    (msg.stage == Stage::Locked && committed).then_some(Stage::Committed { epoch: view.latest_epoch })
}

/// Whether the message can no longer be delivered by this relayer's policy.
pub fn past_expiry(expiry: u64, view: &View) -> bool {
    view.latest_epoch > expiry || view.dst_imported > expiry
}

/// The proof epoch on a shard whose latest import is `imported`, or the import it needs first.
fn epoch_on(shard: ShardId, imported: u64, latest: u64) -> Result<u64, Step> {
    if imported >= latest {
        Ok(imported)
    } else {
        Err(Step::Import { shard, epoch: latest })
    }
}

/// The next step for `msg` given `view`.
pub fn next_step(msg: &Message, view: &View) -> Step {
    let id = msg.id;
    match msg.stage {
        Stage::Acked { .. } | Stage::Refunded { .. } => Step::Done,
        Stage::Delivered { height } => {
            if view.dst_committed.is_none_or(|h| h < height) {
                return Step::Wait(Waiting::DeliveryNotCommitted);
            }
            match epoch_on(id.src, view.src_imported, view.latest_epoch) {
                Ok(epoch) => Step::Ack { epoch },
                Err(import) => import,
            }
        }
        Stage::Locked | Stage::Committed { .. } => {
            let Some(expiry) = msg.expiry_epoch else { return Step::ReadMessage };
            if past_expiry(expiry, view) {
                if view.dst_imported <= expiry {
                    return Step::Import { shard: id.dst, epoch: view.latest_epoch };
                }
                if view.dst_committed_import.is_none_or(|i| i <= expiry) {
                    return Step::Wait(Waiting::ExpiryNotCommitted);
                }
                return match epoch_on(id.src, view.src_imported, view.latest_epoch) {
                    Ok(epoch) => Step::Refund { epoch },
                    Err(import) => import,
                };
            }
            let committed = view.src_committed.is_some_and(|h| h >= msg.locked_height);
            if !committed || msg.locked_height == 0 {
                return Step::Wait(Waiting::LockNotCommitted);
            }
            match epoch_on(id.dst, view.dst_imported, view.latest_epoch) {
                Ok(epoch) => Step::Deliver { epoch },
                Err(import) => import,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::MessageId;

    const A: ShardId = ShardId(1);
    const B: ShardId = ShardId(2);

    fn msg(expiry: u64) -> Message {
        let mut m = Message::locked(MessageId { src: A, dst: B, seq: 1 }, 100, 10, 1_000);
        m.expiry_epoch = Some(expiry);
        m
    }

    fn view(latest: u64, src_h: u64, dst_h: u64) -> View {
        View {
            latest_epoch: latest,
            src_committed: Some(src_h),
            dst_committed: Some(dst_h),
            dst_committed_import: Some(0),
            src_imported: 0,
            dst_imported: 0,
        }
    }

    #[test]
    fn delivery_waits_for_an_epoch_committing_the_lock_then_imports_then_delivers() {
        let m = msg(100);
        assert_eq!(next_step(&m, &view(5, 9, 3)), Step::Wait(Waiting::LockNotCommitted));
        assert_eq!(observe_epoch(&m, &view(5, 9, 3)), None);
        let v = view(6, 10, 3);
        assert_eq!(observe_epoch(&m, &v), Some(Stage::Committed { epoch: 6 }));
        assert_eq!(next_step(&m, &v), Step::Import { shard: B, epoch: 6 });
        assert_eq!(next_step(&m, &View { dst_imported: 6, ..v }), Step::Deliver { epoch: 6 });
        // A newer import by someone else is used as it is, without importing again.
        assert_eq!(next_step(&m, &View { dst_imported: 8, ..v }), Step::Deliver { epoch: 8 });
    }

    #[test]
    fn an_unknown_expiry_is_read_first() {
        let mut m = msg(100);
        m.expiry_epoch = None;
        assert_eq!(next_step(&m, &view(6, 10, 3)), Step::ReadMessage);
    }

    #[test]
    fn ack_waits_for_the_delivery_block_to_be_committed_and_imports_on_the_source() {
        let mut m = msg(100);
        m.advance(Stage::Delivered { height: 40 });
        assert_eq!(next_step(&m, &view(7, 12, 39)), Step::Wait(Waiting::DeliveryNotCommitted));
        assert_eq!(next_step(&m, &view(8, 12, 40)), Step::Import { shard: A, epoch: 8 });
        assert_eq!(next_step(&m, &View { src_imported: 8, ..view(8, 12, 40) }), Step::Ack { epoch: 8 });
        // Delivered before the expiry passed: acked, never refunded, whatever the epochs.
        assert_eq!(next_step(&m, &View { src_imported: 300, ..view(300, 12, 40) }), Step::Ack { epoch: 300 });
    }

    #[test]
    fn past_expiry_the_destination_is_moved_past_it_then_the_source_refunds() {
        let m = msg(5);
        let v = view(9, 10, 3);
        assert_eq!(next_step(&m, &v), Step::Import { shard: B, epoch: 9 });
        let v = View { dst_imported: 9, ..v };
        assert_eq!(next_step(&m, &v), Step::Wait(Waiting::ExpiryNotCommitted));
        let v = View { dst_committed_import: Some(5), ..v };
        assert_eq!(next_step(&m, &v), Step::Wait(Waiting::ExpiryNotCommitted), "import 5 is not past expiry 5");
        let v = View { dst_committed_import: Some(9), ..v };
        assert_eq!(next_step(&m, &v), Step::Import { shard: A, epoch: 9 });
        assert_eq!(next_step(&m, &View { src_imported: 9, ..v }), Step::Refund { epoch: 9 });
    }

    #[test]
    fn a_destination_already_past_expiry_is_not_delivered_to_even_before_the_coordinator_passes_it() {
        let m = msg(5);
        let v = View { dst_imported: 6, dst_committed_import: Some(6), src_imported: 7, ..view(5, 10, 3) };
        assert_eq!(next_step(&m, &v), Step::Refund { epoch: 7 });
    }

    #[test]
    fn closed_messages_are_done() {
        let mut m = msg(5);
        m.advance(Stage::Refunded { height: 3 });
        assert_eq!(next_step(&m, &view(9, 10, 3)), Step::Done);
        let mut m = msg(5);
        m.advance(Stage::Acked { height: 3 });
        assert_eq!(next_step(&m, &view(9, 10, 3)), Step::Done);
    }

    #[test]
    fn without_any_epoch_nothing_moves() {
        let m = msg(5);
        let v = View::default();
        assert_eq!(next_step(&m, &v), Step::Wait(Waiting::LockNotCommitted));
    }
}
