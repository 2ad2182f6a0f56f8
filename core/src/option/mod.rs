//! Options math without IO: the deterministic fixed-point arithmetic ([`fixed`]), the standard normal
//! distribution ([`normal`]) the Black-76 pricer with its Greeks ([`black76`]) and option series, expiries and
//! volatility by strike ([`series`]). Everything here is
//! integer-only and bounded, so every node computes the same marks.

pub mod black76;
pub mod fixed;
pub mod greeks;
pub mod margin;
pub mod normal;
pub mod portfolio;
pub mod series;
#[cfg(test)]
mod vectors;
