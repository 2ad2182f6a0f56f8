//! Gas: a base cost per op plus a cost per state read and write. Gas bounds work per block; it is not a fee.

/// Gas costs. Part of consensus: every replica must use the same schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasSchedule {
    /// Base cost of any op.
    pub base: u64,
    /// Per state read.
    pub per_read: u64,
    /// Per state write.
    pub per_write: u64,
}

impl GasSchedule {
    /// The schedule of protocol version 1.
    pub const V1: Self = Self { base: 1_000, per_read: 100, per_write: 400 };

    /// Gas for an op that did `reads` reads and `writes` writes.
    pub fn cost(&self, reads: u64, writes: u64) -> u64 {
        self.base
            .saturating_add(reads.saturating_mul(self.per_read))
            .saturating_add(writes.saturating_mul(self.per_write))
    }
}
