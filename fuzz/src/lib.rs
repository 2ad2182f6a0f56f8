//! Fuzz targets of shardex and a mutation driver that runs them on the stable toolchain.
//!
//! A target takes arbitrary bytes and must never panic; each also checks what must hold of what it
//! accepts (a verified tx re-encodes to its exact bytes, a refused VM op leaves the mempool as it was,
//! admission-time execution equals a replay). The driver ([`fuzz`]) starts from valid seeds of each target,
//! mutates them (bit flips, interesting bytes, inserts, deletes, splices, truncation), keeps inputs the
//! target accepted as new seeds, and stops at the first panic with the input saved to a file. Inputs that
//! once crashed a target live in `fuzz/regressions/<target>/` and run on every `cargo test`.

pub mod driver;
pub mod targets;

pub use driver::{fuzz, Finding, FuzzOptions, Stats};
pub use targets::{all_targets, Outcome, Target};
