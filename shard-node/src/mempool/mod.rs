//! The mempool: admitted txs, already executed into the open blocks they will be committed in, and a bounded
//! log of refused ones.

mod pending;
mod rejects;

pub use pending::{block_bytes, block_events_bytes, entry_bytes, Mempool, OpenBlock, PendingLimits, Slot};
pub use rejects::{RefusalBudget, RejectLog};
