//! Cross-shard message queries at the head: the two records that say where a message is, as its source
//! (escrow state and outbox message) or its destination (inbox receipt and ack), with proofs when asked.

use shardex_core::{bridge, pb, ShardId};

use super::{query::decode_opt, HeadView, KeyRead, Reject, ShardError};

/// One message as this shard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    /// Source side: the escrow (None: never sent from here).
    pub escrow: Option<pb::BridgeEscrowRecord>,
    /// Source side: the outbox message.
    pub message: Option<pb::OutboxMessage>,
    /// Destination side: the receipt (None: not delivered here).
    pub receipt: Option<pb::InboxReceipt>,
    /// Destination side: the ack written on delivery.
    pub ack: Option<pb::OutboxMessage>,
    /// Height.
    pub height: u64,
    /// State root.
    pub state_root: alloy_primitives::B256,
    /// Proofs of the two records read and the header, when asked.
    pub proofs: Option<(Vec<pb::StateProof>, pb::FinalizedHeader)>,
}

impl HeadView {
    /// Message `seq` exchanged with `peer`: sent to it (`incoming` false) or received from it (true).
    pub fn message(&self, peer: ShardId, seq: u64, incoming: bool, prove: bool) -> Result<MessageView, ShardError> {
        let head_only = |r: Result<KeyRead, Reject>| r.map_err(|e| ShardError::Inconsistent(e.to_string()));
        let (first_key, second_key) = if incoming {
            (bridge::inbox_key(peer, seq), bridge::ack_key(peer, seq))
        } else {
            (bridge::escrow_key(peer, seq), bridge::outbox_key(peer, seq))
        };
        let first = head_only(self.read_at(first_key, None, prove)?)?;
        let second = head_only(self.read_at(second_key, None, prove)?)?;
        let (height, state_root) = (first.height, first.state_root);
        let proofs = match (first.proof, second.proof) {
            (Some((p1, header)), Some((p2, _))) => Some((vec![p1, p2], header)),
            _ => None,
        };
        let mut view =
            MessageView { escrow: None, message: None, receipt: None, ack: None, height, state_root, proofs };
        if incoming {
            view.receipt = decode_opt("inbox receipt", first.value)?;
            view.ack = decode_opt("outbox ack", second.value)?;
        } else {
            view.escrow = decode_opt("bridge escrow", first.value)?;
            view.message = decode_opt("outbox message", second.value)?;
        }
        Ok(view)
    }
}
