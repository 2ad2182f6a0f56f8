//! The bytes a validator signs for each consensus message. Every kind has its own domain tag, and every vote
//! names its height and round, so a signature for one round, height, shard or chain never counts for another:
//!
//! - prevote / precommit for a block: `tag || chain || shard || height (u64 BE) || round (u32 BE) || block_hash`
//! - prevote / precommit for nil: the same without the hash (12 bytes of payload, never confused with 44)
//! - proposal: `tag || chain || shard || height || round || pol_round (i64 BE, -1 = none) || block_hash`
//!
//! A block's commit certificate is the set of precommit signatures for its hash at one round, so the
//! coordinator, the VM, the SDK and every tool check consensus's own votes (see [`crate::block`]).

use alloy_primitives::B256;

use crate::{
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
    pb,
    signing::{self, Domain, SignatureError},
};

/// The two voting steps of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteKind {
    /// First step: a validator saw a valid proposal (or nil).
    Prevote,
    /// Second step: a validator saw a quorum of prevotes; a quorum of these decides.
    Precommit,
}

impl VoteKind {
    /// The signing domain of this kind.
    pub const fn domain(self) -> Domain {
        match self {
            Self::Prevote => Domain::Prevote,
            Self::Precommit => Domain::Precommit,
        }
    }
}

/// The payload of a vote for `block` (None: nil) at (`height`, `round`).
pub fn vote_payload(height: u64, round: u32, block: Option<&B256>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(44);
    payload.extend_from_slice(&height.to_be_bytes());
    payload.extend_from_slice(&round.to_be_bytes());
    if let Some(hash) = block {
        payload.extend_from_slice(hash.as_slice());
    }
    payload
}

/// The payload of a proposal of `block` at (`height`, `round`), re-proposed from `pol_round` (-1: none).
pub fn proposal_payload(height: u64, round: u32, pol_round: i64, block: &B256) -> Vec<u8> {
    let mut payload = Vec::with_capacity(52);
    payload.extend_from_slice(&height.to_be_bytes());
    payload.extend_from_slice(&round.to_be_bytes());
    payload.extend_from_slice(&pol_round.to_be_bytes());
    payload.extend_from_slice(block.as_slice());
    payload
}

/// Signs a vote of `kind` for `block` (None: nil).
pub fn sign_vote(
    key: &Keypair,
    kind: VoteKind,
    (chain, shard): (ChainId, ShardId),
    height: u64,
    round: u32,
    block: Option<&B256>,
) -> [u8; 64] {
    signing::sign(key, kind.domain(), chain, shard, &vote_payload(height, round, block))
}

/// Verifies a vote signature under [`signing`]'s rule.
pub fn verify_vote(
    signer: &AccountId,
    signature: &[u8],
    kind: VoteKind,
    (chain, shard): (ChainId, ShardId),
    height: u64,
    round: u32,
    block: Option<&B256>,
) -> Result<(), SignatureError> {
    signing::verify(signer, signature, kind.domain(), chain, shard, &vote_payload(height, round, block))
}

/// A precommit for `block` at (`height`, `round`) as carried in a finalized header.
pub fn sign_precommit(
    key: &Keypair,
    domain: (ChainId, ShardId),
    height: u64,
    round: u32,
    block: &B256,
) -> pb::HeaderSignature {
    pb::HeaderSignature {
        signer: key.account().0.to_vec(),
        signature: sign_vote(key, VoteKind::Precommit, domain, height, round, Some(block)).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: (ChainId, ShardId) = (ChainId(7), ShardId(3));

    #[test]
    fn a_vote_binds_kind_height_round_block_and_domain() {
        let k = Keypair::from_seed([1; 32]);
        let block = B256::repeat_byte(0xab);
        let sig = sign_vote(&k, VoteKind::Precommit, D, 10, 2, Some(&block));
        let ok = |kind, d, h, r, b: Option<&B256>| verify_vote(&k.account(), &sig, kind, d, h, r, b).is_ok();
        assert!(ok(VoteKind::Precommit, D, 10, 2, Some(&block)));
        assert!(!ok(VoteKind::Prevote, D, 10, 2, Some(&block)), "another step");
        assert!(!ok(VoteKind::Precommit, D, 11, 2, Some(&block)), "another height");
        assert!(!ok(VoteKind::Precommit, D, 10, 3, Some(&block)), "another round");
        assert!(!ok(VoteKind::Precommit, D, 10, 2, None), "nil");
        assert!(!ok(VoteKind::Precommit, D, 10, 2, Some(&B256::ZERO)), "another block");
        assert!(!ok(VoteKind::Precommit, (ChainId(7), ShardId(4)), 10, 2, Some(&block)), "another shard");
    }

    /// Golden vector: the precommit layout is part of the protocol (clients in other languages rebuild it).
    #[test]
    fn golden_precommit_bytes_and_signature() {
        let k = Keypair::from_seed([42; 32]);
        let block = B256::repeat_byte(0x11);
        let msg = signing::signing_message(Domain::Precommit, D.0, D.1, &vote_payload(5, 1, Some(&block)));
        assert_eq!(
            hex::encode(&msg),
            concat!(
                "736861726465782f707265636f6d6d69742f7631", // "shardex/precommit/v1"
                "0000000000000007",                         // chain
                "00000003",                                 // shard
                "0000000000000005",                         // height
                "00000001",                                 // round
                "1111111111111111111111111111111111111111111111111111111111111111"
            )
        );
        let sig = sign_precommit(&k, D, 5, 1, &block);
        assert_eq!(
            hex::encode(&sig.signature),
            "a023538c30f5ea457680f73812d92887ad4b86f8cc9da5bfebf28724beb41a16db7617db3abad15e5901a73df1610ae2dc4e398486184320011a6e2b994d3903"
        );
    }
}
