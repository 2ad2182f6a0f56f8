//! Options markets: the chain (series listing, volatility by strike), option positions, their standard
//! margin, trading on each series' book, liquidation and settlement at expiry.

pub mod chain;
pub mod liquidate;
pub mod margin;
pub mod positions;
pub mod settle;
pub mod trade;

pub use chain::{list, params, refuse_on_options, update_vol};
