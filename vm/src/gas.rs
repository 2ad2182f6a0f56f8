//! Gas: a base cost per op plus a cost per state read and write, per proof node verified and per signature
//! checked inside the VM. Gas bounds work per block; it is not a fee.

/// Gas costs. Part of consensus: every replica must use the same schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasSchedule {
    /// Base cost of any op.
    pub base: u64,
    /// Per state read.
    pub per_read: u64,
    /// Per state write.
    pub per_write: u64,
    /// Per MPT proof node verified (a keccak256 over at most `MAX_PROOF_NODE_BYTES` plus an RLP decode).
    pub per_proof_node: u64,
    /// Per ed25519 signature verified by an op (the coordinator's, on import; each precommit of the other
    /// shard's certificate, on deliver, ack and refund); the tx's own signature is checked before execution
    /// and not charged.
    pub per_signature: u64,
}

/// The work one op did, in the units gas charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Work {
    /// State reads.
    pub reads: u64,
    /// Distinct keys written.
    pub writes: u64,
    /// Proof nodes verified.
    pub proof_nodes: u64,
    /// Signatures verified.
    pub signatures: u64,
}

impl GasSchedule {
    /// The schedule of protocol version 1. A read is a flat-table lookup; a proof node costs about three
    /// (hash and decode of up to a kilobyte), a signature about fifty.
    pub const V1: Self = Self { base: 1_000, per_read: 100, per_write: 400, per_proof_node: 300, per_signature: 5_000 };

    /// Gas for an op that did `reads` reads and `writes` writes and nothing else.
    pub fn cost(&self, reads: u64, writes: u64) -> u64 {
        self.cost_of(&Work { reads, writes, ..Work::default() })
    }

    /// Gas for `work`.
    pub fn cost_of(&self, work: &Work) -> u64 {
        self.base
            .saturating_add(work.reads.saturating_mul(self.per_read))
            .saturating_add(work.writes.saturating_mul(self.per_write))
            .saturating_add(work.proof_nodes.saturating_mul(self.per_proof_node))
            .saturating_add(work.signatures.saturating_mul(self.per_signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_and_signatures_cost_gas() {
        let g = GasSchedule::V1;
        assert_eq!(g.cost(2, 1), 1_000 + 200 + 400);
        let work = Work { reads: 2, writes: 1, proof_nodes: 10, signatures: 1 };
        assert_eq!(g.cost_of(&work), 1_600 + 3_000 + 5_000);
    }
}
