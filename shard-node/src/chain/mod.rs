//! The block log: blocks with receipts by height, the tx index and the head pointer, in the node's
//! `sled::Tree` (key prefixes `0x10..`, beside the state engine's `0x01..=0x0F`).

mod store;

pub use store::{ChainError, ChainStore, Head, TxLocation};
