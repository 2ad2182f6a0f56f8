//! Ids and leaf keys of the bridge's records. Shard ids are u32 big-endian and seqs u64 big-endian, so ids
//! sort by (shard, seq).

use alloy_primitives::B256;

use super::ACK_SUFFIX;
use crate::{
    ids::ShardId,
    state_key::{leaf_key, Namespace},
};

/// `shard (u32 BE) ‖ seq (u64 BE)`: the id of a message by its peer shard.
pub fn message_id(shard: ShardId, seq: u64) -> [u8; 12] {
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&shard.0.to_be_bytes());
    id[4..].copy_from_slice(&seq.to_be_bytes());
    id
}

/// `dst ‖ seq ‖ 0x01`: the outbox id of the acknowledgement a destination writes for message `seq` of `dst`
/// (the original source).
pub fn ack_id(dst: ShardId, seq: u64) -> [u8; 13] {
    let mut id = [0u8; 13];
    id[..12].copy_from_slice(&message_id(dst, seq));
    id[12] = ACK_SUFFIX;
    id
}

/// The outbox key of message `seq` to `dst`.
pub fn outbox_key(dst: ShardId, seq: u64) -> B256 {
    leaf_key(Namespace::Outbox, &message_id(dst, seq))
}

/// The outbox key of the acknowledgement of message `seq` from `src`, on the destination.
pub fn ack_key(src: ShardId, seq: u64) -> B256 {
    leaf_key(Namespace::Outbox, &ack_id(src, seq))
}

/// The inbox receipt key of message `seq` from `src`.
pub fn inbox_key(src: ShardId, seq: u64) -> B256 {
    leaf_key(Namespace::InboxReceipt, &message_id(src, seq))
}

/// The escrow key of message `seq` to `dst`, on the source.
pub fn escrow_key(dst: ShardId, seq: u64) -> B256 {
    leaf_key(Namespace::BridgeEscrow, &message_id(dst, seq))
}

/// The key of the last seq sent to `dst`.
pub fn seq_key(dst: ShardId) -> B256 {
    leaf_key(Namespace::BridgeSeq, &dst.0.to_be_bytes())
}

/// The key of `peer`'s genesis validator set (a bridge peer of this shard; absent: not a peer).
pub fn peer_key(peer: ShardId) -> B256 {
    leaf_key(Namespace::BridgePeer, &peer.0.to_be_bytes())
}

/// The key of the settled messages the block at `height` prunes.
pub fn settled_key(height: u64) -> B256 {
    leaf_key(Namespace::BridgeSettled, &height.to_be_bytes())
}

/// The key of the latest imported epoch.
pub fn imported_latest_key() -> B256 {
    leaf_key(Namespace::ImportedCommitment, &[])
}

/// The key of retained imported epoch `number`.
pub fn imported_epoch_key(number: u64) -> B256 {
    leaf_key(Namespace::ImportedCommitment, &number.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_big_endian_and_acks_are_distinct() {
        assert_eq!(hex::encode(message_id(ShardId(2), 5)), "000000020000000000000005");
        assert_eq!(hex::encode(ack_id(ShardId(2), 5)), "00000002000000000000000501");
        assert_ne!(outbox_key(ShardId(2), 5), ack_key(ShardId(2), 5));
        assert_ne!(outbox_key(ShardId(2), 5), escrow_key(ShardId(2), 5));
        assert_ne!(imported_latest_key(), imported_epoch_key(0));
        assert_ne!(peer_key(ShardId(2)), seq_key(ShardId(2)));
    }
}
