//! Consensus messages: votes, proposals and the parts a proposed block is streamed in. What each signs is
//! `shardex_core::vote`'s layout (see [`crate::signing`]), a pure function of the message's own fields.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{self as mc, NilOrVal, Round, SignedExtension, VoteType};

use crate::{
    context::ShardCtx,
    signing::Signature,
    types::{Address, BlockId, Height},
};

/// A prevote or precommit, for a block or nil. Vote extensions are not used (the policy is disabled); the
/// field exists because the engine's trait has it, and it is never part of the signed bytes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height voted at.
    pub height: Height,
    /// Round voted at.
    pub round: Round,
    /// The block voted for, or nil.
    pub value: NilOrVal<BlockId>,
    /// The voter.
    pub validator: Address,
    /// Always `None` in shardex.
    pub extension: Option<SignedExtension<ShardCtx>>,
}

impl mc::Vote<ShardCtx> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&SignedExtension<ShardCtx>> {
        self.extension.as_ref()
    }

    fn take_extension(&mut self) -> Option<SignedExtension<ShardCtx>> {
        self.extension.take()
    }

    fn extend(self, extension: SignedExtension<ShardCtx>) -> Self {
        Self { extension: Some(extension), ..self }
    }
}

/// A proposer's signed proposal of a block at (height, round), possibly re-proposing the block that got a
/// polka at `pol_round`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed block.
    pub value: BlockId,
    /// The round of the polka this re-proposal rests on (`Round::Nil` for a new block).
    pub pol_round: Round,
    /// The proposer.
    pub proposer: Address,
}

impl mc::Proposal<ShardCtx> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockId {
        &self.value
    }

    fn take_value(self) -> BlockId {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// The first part of a proposal stream: who proposes what, where.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PartInit {
    /// Height of the block.
    pub height: Height,
    /// The round the block was first proposed in.
    pub round: Round,
    /// Polka round of the proposal (`Round::Nil` for a new block).
    pub pol_round: Round,
    /// The proposer (the block's builder).
    pub proposer: Address,
}

/// A proposed block streamed in parts: `Init`, the exact header bytes, the encoded transactions in chunks,
/// then `Fin` with the proposer's signature of the proposal (height, round, pol_round, block hash). A
/// receiver checks that signature before it re-executes anything.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    /// Who proposes what, where.
    Init(PartInit),
    /// The exact encoded `BlockHeader`; its keccak256 is the block hash.
    Header(Vec<u8>),
    /// A chunk of the block's encoded `SignedTx`s, in order.
    Txs(Vec<Vec<u8>>),
    /// The proposer's signature of the proposal.
    Fin(Signature),
}

impl mc::ProposalPart<ShardCtx> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, Self::Init(_))
    }

    fn is_last(&self) -> bool {
        matches!(self, Self::Fin(_))
    }
}
