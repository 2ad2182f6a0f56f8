//! The bounded fuzz run of the test suite: every target on a fixed number of mutated inputs (the seed is
//! fixed, so a failure replays; `SHARDEX_FUZZ_SEED` picks another), then every saved regression input.

use std::{path::PathBuf, time::Duration};

use shardex_fuzz::{all_targets, fuzz, FuzzOptions};

/// Inputs per target: the VM target executes each, the others only decode and verify.
fn budget(target: &str) -> u64 {
    match target {
        "vm" => 20_000,
        _ => 50_000,
    }
}

#[test]
fn every_target_survives_a_bounded_run() {
    let seed = std::env::var("SHARDEX_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_203);
    let crash_dir = std::env::temp_dir().join("shardex-fuzz-crashes");
    for mut target in all_targets() {
        let options = FuzzOptions {
            max_inputs: budget(target.name()),
            max_time: Duration::from_secs(120),
            seed,
            max_len: 16 << 10,
            crash_dir: crash_dir.clone(),
        };
        let stats = fuzz(target.as_mut(), &options).unwrap_or_else(|f| panic!("{f} (seed {seed})"));
        eprintln!("{}: {} inputs, {} accepted, {} kept", target.name(), stats.inputs, stats.accepted, stats.corpus);
        assert!(stats.accepted > 0, "{}: nothing was ever accepted, so nothing deep was fuzzed", target.name());
    }
}

#[test]
fn saved_crash_inputs_stay_fixed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for mut target in all_targets() {
        let dir = root.join(target.name());
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let input = std::fs::read(entry.path()).expect("readable regression input");
            // A panic here fails the test with the file named in the message.
            eprintln!("{}: {}", target.name(), entry.path().display());
            target.run(&input);
        }
    }
}
