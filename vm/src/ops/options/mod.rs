//! Options markets: the chain (series listing, volatility by strike), option positions, their standard
//! margin and trading on each series' book.

pub mod chain;
pub mod margin;
pub mod positions;
pub mod trade;

pub use chain::{list, params, refuse_on_options, update_vol};
