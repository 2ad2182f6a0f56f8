//! The block log: blocks with receipts by height, the tx index, the head pointer and the history indexes,
//! in the node's `sled::Tree` (key prefixes `0x10..=0x15`, beside the state engine's `0x01..=0x0F`).

mod history;
mod store;

pub use history::HistoryPos;
pub use store::{ChainError, ChainStore, Head, TxLocation, STORE_FORMAT};
