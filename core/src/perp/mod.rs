//! Perpetuals margin math: pure integer functions shared by the VM and by clients.
//!
//! Collateral and PnL in micro-USD (i64), prices in micro-USD per whole base unit (u64), sizes in lots of
//! `lot_size` base micro-units. Intermediate math is i128; anything that does not fit is
//! [`Overflow`](crate::money::Overflow). Every function documents its rounding, which favours the protocol.

mod arith;
pub mod fee;
pub mod funding;
pub mod health;
pub mod liquidation;
pub mod market;
pub mod position;

pub use fee::fee;
pub use funding::{funding_payment, FUNDING_INDEX_SCALE};
pub use health::{health, Health};
pub use liquidation::liquidation_price;
pub use market::{InvalidMarket, MarketMath, MAX_MARGIN_BPS};
pub use position::Position;
