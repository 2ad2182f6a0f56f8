//! The Malachite `Context` of one shard: its types, the sticky-leader proposer rule, and message builders.

use malachitebft_core_types::{self as mc, LinearTimeouts, NilOrVal, Round, VoteType};
use shardex_core::{ChainId, ShardId};

use crate::{
    messages::{Proposal, ProposalPart, Vote},
    signing::Ed25519,
    types::{Address, BlockId, Height, Validator, ValidatorSet},
};

/// One shard's consensus context: the chain and shard every signature is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardCtx {
    /// The chain.
    pub chain: ChainId,
    /// The shard.
    pub shard: ShardId,
}

impl mc::Context for ShardCtx {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = Vec<u8>;
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(&self, validator_set: &'a ValidatorSet, _height: Height, round: Round) -> &'a Validator {
        // The engine never asks for the proposer of the nil round; treat it as round 0.
        validator_set.proposer(round.as_u32().unwrap_or(0))
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal { height, round, value, pol_round, proposer: address }
    }

    fn new_prevote(&self, height: Height, round: Round, value_id: NilOrVal<BlockId>, address: Address) -> Vote {
        Vote { vote_type: VoteType::Prevote, height, round, value: value_id, validator: address, extension: None }
    }

    fn new_precommit(&self, height: Height, round: Round, value_id: NilOrVal<BlockId>, address: Address) -> Vote {
        Vote { vote_type: VoteType::Precommit, height, round, value: value_id, validator: address, extension: None }
    }
}
