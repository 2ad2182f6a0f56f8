//! One file per family of ops; `exec` dispatches to them.

pub mod bridge;
pub mod funding;
pub mod ledger;
pub mod liquidate;
pub mod mode;
pub mod options;
pub mod oracle;
pub mod positions;
pub mod trade;
