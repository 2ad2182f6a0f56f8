//! The shard VM: a pure state transition over a key→value view. No IO, no clocks, no async:
//! the same txs over the same state give the same writes on every replica.

pub mod book;
mod error;
mod exec;
mod gas;
pub mod ops;
pub mod records;
mod totals;
mod view;

pub use error::{ExecError, StorageError};
pub use exec::{begin_block, execute, BlockCtx, Outcome, VmParams};
pub use gas::{GasSchedule, Work};
pub use records::{genesis_changes, load_account, load_market};
pub use totals::TotalsDelta;
pub use view::{Changes, StateReader, TxScope};
