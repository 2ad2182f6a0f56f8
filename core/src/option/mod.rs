//! Options math without IO: the deterministic fixed-point arithmetic ([`fixed`]), the standard normal
//! distribution ([`normal`]) and the Black-76 pricer with its Greeks ([`black76`]). Everything here is
//! integer-only and bounded, so every node computes the same marks.

pub mod black76;
pub mod fixed;
pub mod normal;
#[cfg(test)]
mod vectors;
