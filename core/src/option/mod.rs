//! Options math without IO: the deterministic fixed-point arithmetic the Black-76 pricer is built on
//! ([`fixed`]) and the standard normal distribution ([`normal`]). Everything here is integer-only and bounded, so every node computes the same marks.

pub mod fixed;
pub mod normal;
