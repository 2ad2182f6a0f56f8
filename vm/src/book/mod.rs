//! The order book: a price-time-priority central limit order book kept entirely in state records
//! (orders, levels, side lists, per-account lists, client ids, counters), so it is committed by the state
//! root, provable, and needs no rebuild on restart. Margin, fees, positions, reduce-only, tick/lot checks
//! and time in force belong to the caller.

mod account;
mod keys;
mod level;
mod lifecycle;
mod matching;
mod query;
mod store;
mod types;

pub use keys::{account_orders_key, client_order_key, counters_key, level_key, order_key, side_key};
pub use lifecycle::{cancel, cancel_all, cancel_oldest, rest};
pub use matching::{match_incoming, match_incoming_with, would_cross};
pub use query::{account_orders, best_price, depth, order, order_id_by_client_id, DepthLevel};
pub use types::{Book, BookLimits, Fill, Incoming, MatchOutcome, NewOrder, Rested, Side};
