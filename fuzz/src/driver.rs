//! The mutation driver: seeds, mutations, validity feedback, panic capture.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::targets::{Outcome, Target};

/// How long and how a run goes.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// The run stops after this many inputs...
    pub max_inputs: u64,
    /// ...or after this long, whichever comes first.
    pub max_time: Duration,
    /// The random seed (the same seed replays the same inputs).
    pub seed: u64,
    /// Longest input generated, bytes.
    pub max_len: usize,
    /// Where a crashing input is written.
    pub crash_dir: PathBuf,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs run.
    pub inputs: u64,
    /// Inputs the target accepted (a valid tx, a proof that verified, an admitted op).
    pub accepted: u64,
    /// Accepted inputs kept as seeds.
    pub corpus: usize,
}

/// A panic: the input that caused it (saved at `path`) and the panic message.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The target's name.
    pub target: &'static str,
    /// Where the input was written.
    pub path: PathBuf,
    /// The panic message.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "target {} panicked: {} (input saved to {})", self.target, self.message, self.path.display())
    }
}

/// Most seeds kept per run: new accepted inputs replace random old ones beyond it.
const MAX_CORPUS: usize = 512;

/// Runs `target` on mutated inputs until the options' bound, or until it panics.
pub fn fuzz(target: &mut dyn Target, options: &FuzzOptions) -> Result<Stats, Finding> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut corpus = target.seeds();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut stats = Stats::default();
    let started = Instant::now();
    // Seeds first, as they are: they must be accepted (a target whose seeds are refused fuzzes nothing).
    for seed in corpus.clone() {
        run_one(target, &seed, options, &mut stats)?;
    }
    while stats.inputs < options.max_inputs && started.elapsed() < options.max_time {
        let base = corpus.choose(&mut rng).cloned().unwrap_or_default();
        let other = corpus.choose(&mut rng).cloned().unwrap_or_default();
        let input = mutate(&mut rng, base, &other, options.max_len);
        if run_one(target, &input, options, &mut stats)? == Outcome::Accepted {
            if corpus.len() < MAX_CORPUS {
                corpus.push(input);
            } else {
                let at = rng.gen_range(0..corpus.len());
                corpus[at] = input;
            }
        }
    }
    stats.corpus = corpus.len();
    Ok(stats)
}

fn run_one(
    target: &mut dyn Target,
    input: &[u8],
    options: &FuzzOptions,
    stats: &mut Stats,
) -> Result<Outcome, Finding> {
    stats.inputs += 1;
    match catch_unwind(AssertUnwindSafe(|| target.run(input))) {
        Ok(outcome) => {
            if outcome == Outcome::Accepted {
                stats.accepted += 1;
            }
            Ok(outcome)
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".into());
            let path = save(&options.crash_dir, target.name(), input);
            Err(Finding { target: target.name(), path, message })
        }
    }
}

/// Writes `input` to `<dir>/<target>-<fnv64 of input>.bin` (best effort: the finding is reported either way).
fn save(dir: &Path, target: &str, input: &[u8]) -> PathBuf {
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
    let path = dir.join(format!("{target}-{hash:016x}.bin"));
    let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    path
}

/// Bytes that tend to sit on boundaries of protobuf varints, lengths and tags.
const INTERESTING: [u8; 10] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12, 0x1a, 0x22];

/// One to four random mutations of `input`, splicing from `other`, capped at `max_len`.
fn mutate(rng: &mut ChaCha8Rng, mut input: Vec<u8>, other: &[u8], max_len: usize) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..=4) {
        let len = input.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
            }
            2 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] = rng.gen();
            }
            3 => {
                let at = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = rng.gen_range(start..=len.min(start + 16));
                input.drain(start..end);
            }
            5 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = rng.gen_range(start..=len.min(start + 32));
                let copy = input[start..end].to_vec();
                let at = rng.gen_range(0..=input.len());
                input.splice(at..at, copy);
            }
            6 if !other.is_empty() => {
                let start = rng.gen_range(0..other.len());
                let end = rng.gen_range(start..=other.len());
                let at = rng.gen_range(0..=len);
                let cut = rng.gen_range(at..=len);
                input.splice(at..cut, other[start..end].iter().copied());
            }
            7 if len > 0 => input.truncate(rng.gen_range(0..len)),
            _ => {
                // A ten-byte varint of all ones somewhere: the longest a length or number can be.
                let at = rng.gen_range(0..=len);
                input.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
            }
        }
    }
    input.truncate(max_len);
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panicky;

    impl Target for Panicky {
        fn name(&self) -> &'static str {
            "panicky"
        }
        fn seeds(&self) -> Vec<Vec<u8>> {
            vec![vec![1, 2, 3]]
        }
        fn run(&mut self, data: &[u8]) -> Outcome {
            assert!(!data.contains(&0xff), "found the byte");
            Outcome::Accepted
        }
    }

    #[test]
    fn a_panic_is_caught_and_its_input_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = FuzzOptions {
            max_inputs: 100_000,
            max_time: Duration::from_secs(30),
            seed: 1,
            max_len: 64,
            crash_dir: dir.path().to_path_buf(),
        };
        let finding = fuzz(&mut Panicky, &options).expect_err("the driver finds the byte");
        assert!(finding.message.contains("found the byte"), "{finding}");
        let saved = std::fs::read(&finding.path).expect("saved input");
        assert!(saved.contains(&0xff));
    }
}
