//! The consensus seam: propose → decided → apply. A consensus engine decides a proposal by collecting
//! the sequencer set's votes; the solo sequencer decides alone by signing. The VM and state engine never
//! know which one runs.

use shardex_core::{block::Certificate, tx::TxDomain, vote::sign_precommit, Keypair};

use crate::shard::Proposal;

/// Consensus could not decide a proposal.
#[derive(Debug, thiserror::Error)]
#[error("consensus: {0}")]
pub struct ConsensusError(pub String);

/// Decides proposals: returns the commit certificate that finalizes the block.
pub trait Consensus: Send {
    /// Blocks until `proposal` is decided (or fails).
    fn decide(&mut self, proposal: &Proposal) -> Result<Certificate, ConsensusError>;
}

/// A validator set of one: every proposal is decided at round 0 by this node's own precommit.
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
    fn decide(&mut self, proposal: &Proposal) -> Result<Certificate, ConsensusError> {
        let domain = (self.domain.chain, self.domain.shard);
        let precommit = sign_precommit(&self.key, domain, proposal.header.height, 0, &proposal.hash);
        Ok(Certificate { round: 0, signatures: vec![precommit] })
    }
}
