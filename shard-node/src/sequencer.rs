//! The consensus seam: propose → decided → apply. A consensus engine decides a proposal by collecting
//! the sequencer set's votes; the solo sequencer decides alone by signing. The VM and state engine never
//! know which one runs.

use shardex_core::{block::sign_header, pb, tx::TxDomain, Keypair};

use crate::shard::Proposal;

/// Consensus could not decide a proposal.
#[derive(Debug, thiserror::Error)]
#[error("consensus: {0}")]
pub struct ConsensusError(pub String);

/// Decides proposals: returns the signatures that finalize the block.
pub trait Consensus: Send {
    /// Blocks until `proposal` is decided (or fails).
    fn decide(&mut self, proposal: &Proposal) -> Result<Vec<pb::HeaderSignature>, ConsensusError>;
}

/// A sequencer set of one: every proposal is decided by this node's own signature.
pub struct SoloSequencer {
    key: Keypair,
    domain: TxDomain,
}

impl SoloSequencer {
    /// The solo sequencer signing with `key`.
    pub fn new(key: Keypair, domain: TxDomain) -> Self {
        Self { key, domain }
    }
}

impl Consensus for SoloSequencer {
    fn decide(&mut self, proposal: &Proposal) -> Result<Vec<pb::HeaderSignature>, ConsensusError> {
        Ok(vec![sign_header(&self.key, self.domain.chain, self.domain.shard, &proposal.hash)])
    }
}
