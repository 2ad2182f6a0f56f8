//! Long fuzz runs: `shardex-fuzz [TARGET|all] [--secs N] [--seed N]`. Stops at the first panic, with the
//! input saved under `fuzz/crashes/`; copy it to `fuzz/regressions/<target>/` once fixed.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use shardex_fuzz::{all_targets, fuzz, FuzzOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut which = "all".to_owned();
    let (mut secs, mut seed) = (60u64, std::process::id() as u64);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |what: &str| -> Option<u64> {
            let v = it.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("{what} needs a number");
            }
            v
        };
        match arg.as_str() {
            "--secs" => match number("--secs") {
                Some(v) => secs = v,
                None => return ExitCode::from(2),
            },
            "--seed" => match number("--seed") {
                Some(v) => seed = v,
                None => return ExitCode::from(2),
            },
            "-h" | "--help" => {
                let names: Vec<&str> = all_targets().iter().map(|t| t.name()).collect();
                println!("usage: shardex-fuzz [TARGET|all] [--secs N] [--seed N]\ntargets: {}", names.join(", "));
                return ExitCode::SUCCESS;
            }
            name => which = name.to_owned(),
        }
    }
    let mut targets: Vec<_> = all_targets().into_iter().filter(|t| which == "all" || t.name() == which).collect();
    if targets.is_empty() {
        eprintln!("no target named {which:?}; see --help");
        return ExitCode::from(2);
    }
    let per_target = Duration::from_secs(secs) / targets.len() as u32;
    let crash_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes");
    for target in &mut targets {
        let options = FuzzOptions {
            max_inputs: u64::MAX,
            max_time: per_target,
            seed,
            max_len: 16 << 10,
            crash_dir: crash_dir.clone(),
        };
        println!("fuzzing {} for {:.0} s (seed {seed})", target.name(), per_target.as_secs_f64());
        match fuzz(target.as_mut(), &options) {
            Ok(stats) => println!(
                "{}: {} inputs, {} accepted, {} seeds kept, no panic",
                target.name(),
                stats.inputs,
                stats.accepted,
                stats.corpus
            ),
            Err(finding) => {
                eprintln!("{finding}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
