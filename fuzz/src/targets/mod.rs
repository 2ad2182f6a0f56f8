//! The targets. Each is a function of arbitrary bytes that must never panic.

mod codec;
mod vm;

pub use codec::{HistoryTarget, InclusionTarget, MessageTarget, StateProofTarget, TxTarget};
pub use vm::VmTarget;

/// What a target made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The input was valid and went through (kept as a seed for further mutation).
    Accepted,
    /// The input was refused, with an error, as it should be.
    Refused,
}

/// A fuzz target.
pub trait Target {
    /// Its name (file names, command line).
    fn name(&self) -> &'static str;
    /// Valid inputs to start from; each must be accepted.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// Runs one input. Panics only on a bug.
    fn run(&mut self, data: &[u8]) -> Outcome;
}

/// Every target, freshly set up.
pub fn all_targets() -> Vec<Box<dyn Target>> {
    vec![
        Box::new(TxTarget::new()),
        Box::new(InclusionTarget::new()),
        Box::new(StateProofTarget::new()),
        Box::new(HistoryTarget::new()),
        Box::new(MessageTarget::new()),
        Box::new(VmTarget::new()),
    ]
}
