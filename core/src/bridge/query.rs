//! Client-side check of a `GetMessageResponse`: the two records it returns are the ones proven under its
//! state root (and, given the validator set, that root is a finalized header's).

use prost::Message;

use super::keys;
use crate::{
    ids::{ChainId, ShardId},
    pb,
    proof::{verify_header_carries, verify_pb_proof, ProofError},
    validators::ValidatorSet,
};

/// Verifies the proofs of `resp`, the answer of shard `shard` about message `seq` exchanged with `peer`
/// (`incoming`: `shard` is the destination). With `validators`, the header is checked to be finalized by a
/// quorum of that set and to carry the proven state root.
pub fn verify_message_response(
    resp: &pb::GetMessageResponse,
    chain: ChainId,
    shard: ShardId,
    peer: ShardId,
    seq: u64,
    incoming: bool,
    validators: Option<&ValidatorSet>,
) -> Result<(), ProofError> {
    let encode = |m: Option<Vec<u8>>| m.filter(|v| !v.is_empty());
    let checks = if incoming {
        [
            (keys::inbox_key(peer, seq), encode(resp.receipt.as_ref().map(Message::encode_to_vec))),
            (keys::ack_key(peer, seq), encode(resp.ack.as_ref().map(Message::encode_to_vec))),
        ]
    } else {
        [
            (keys::escrow_key(peer, seq), encode(resp.escrow.as_ref().map(Message::encode_to_vec))),
            (keys::outbox_key(peer, seq), encode(resp.message.as_ref().map(Message::encode_to_vec))),
        ]
    };
    if resp.proofs.len() != checks.len() {
        return Err(ProofError::Missing);
    }
    for (proof, (key, returned)) in resp.proofs.iter().zip(checks) {
        if proof.state_root != resp.state_root || proof.height != resp.height {
            return Err(ProofError::RootMismatch("a proof is against another root or height than the response".into()));
        }
        if encode(verify_pb_proof(proof, key)?) != returned {
            return Err(ProofError::RecordMismatch("a returned record differs from the proven one".into()));
        }
    }
    if let Some(set) = validators {
        verify_header_carries(resp.header.as_ref(), chain, shard, set, &resp.state_root, resp.height)?;
    }
    Ok(())
}
