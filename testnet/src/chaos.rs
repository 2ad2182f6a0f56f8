//! `testnet chaos`: `testnet load` while processes of the network are killed and restarted (SIGKILL) or
//! frozen and thawed (SIGSTOP / SIGCONT), then `testnet check` on what is left.
//!
//! The fault plan is drawn from a seed before anything starts (printed, and replayable with `--seed`): one
//! fault at a time, spaced around `--fault-every-ms`, against a shard node, the coordinator or the relayer.
//! A shard node may also be torn: killed, then restarted armed (`SHARDEX_CRASH_BEFORE_FLUSH`) to abort
//! between writing a block and flushing it, a few blocks later. Where shards run several validators, a shard
//! node may also be wiped: killed, its data directory deleted, and restarted with `--sync snapshot` from the
//! other nodes of its shard. With `--replay-check`, after `check` every shard node in turn is killed, its
//! store replayed from genesis (`shard-node --replay-check`: the reopened head must be the state a replay
//! computes) and restarted; a wiped node began from a snapshot and holds no blocks to replay from genesis,
//! so it is named and skipped.
//! Faults start once the load's setup is final, and stop before the load does. A killed process restarts on
//! its own port with its own data, so every other process finds it again; the manifest is rewritten with its
//! new pid after every restart, so `testnet down` stops it. Whatever happens, every frozen process is thawed
//! and every process is running again before `check` (and before an error is returned).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Args;
use eyre::{bail, ensure, eyre, WrapErr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    check::{self, CheckArgs},
    load::{self, LoadArgs},
    network::{Network, COORDINATOR, RELAYER},
    process, wait_healthy,
};

/// Largest `--fault-every-ms`.
const MAX_FAULT_EVERY_MS: u64 = 60_000;
/// Smallest gap between two faults.
const MIN_GAP: Duration = Duration::from_millis(200);
/// How long a killed process stays down, at most.
const MAX_DOWN: Duration = Duration::from_millis(1_500);
/// How long a frozen process stays frozen, at most.
const MAX_FROZEN: Duration = Duration::from_millis(2_000);
/// How long a torn node may take to reach its crash point before it is killed instead.
const MAX_TORN_WAIT: Duration = Duration::from_secs(60);
/// Most blocks a torn node writes before its crash point.
const MAX_TORN_BLOCKS: u64 = 8;
/// How long to wait for the load's setup before giving up on faults.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// `testnet chaos` flags.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// Seed of the fault plan (default: drawn from the clock, and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Mean time between faults, ms.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(200..=MAX_FAULT_EVERY_MS))]
    pub fault_every_ms: u64,
    /// The load under the faults (`--duration` is also how long faults are injected).
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub check: CheckArgs,
    /// Directory of the binaries to restart (default: beside this executable).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// After `check`, kill each shard node in turn, replay its store from genesis (`shard-node
    /// --replay-check`) and restart it: every node must reopen to the state a replay computes.
    #[arg(long)]
    pub replay_check: bool,
}

/// A process of the network that faults can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A shard node, by its index in the manifest.
    Node(usize),
    /// The coordinator.
    Coordinator,
    /// The bridge relayer.
    Relayer,
}

/// What happens to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// SIGKILL, then a restart after the process stayed down this long.
    Kill { down: Duration },
    /// SIGSTOP, then SIGCONT after this long.
    Freeze { frozen: Duration },
    /// A shard node only: SIGKILL, then a restart armed to abort between the write and the flush of the
    /// `blocks`-th block it writes; once it has, it stays down `down` and restarts.
    Torn { blocks: u64, down: Duration },
    /// A shard node of a multi-validator shard only: SIGKILL, its data directory deleted, and after `down` a
    /// restart that state-syncs from the other nodes of its shard.
    Wiped { down: Duration },
}

impl FaultKind {
    /// How long the target is down or frozen.
    pub fn length(&self) -> Duration {
        match *self {
            Self::Kill { down } | Self::Torn { down, .. } | Self::Wiped { down } => down,
            Self::Freeze { frozen } => frozen,
        }
    }
}

/// One fault of the plan: `after` the previous one ended (or the load started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Wait before the fault.
    pub after: Duration,
    /// Who is hit.
    pub target: Target,
    /// How.
    pub kind: FaultKind,
}

/// The fault plan of `seed` over `duration`: faults one after the other, gaps uniform in
/// [`MIN_GAP`, 2 × `every` − `MIN_GAP`], targets uniform over `targets`; a shard node is torn with
/// probability 1/3, and otherwise, when `wipe` (the shards run several validators), wiped with probability
/// 1/5; otherwise (and for the other processes) kill and freeze are equally likely. The same inputs always
/// give the same plan.
pub fn plan(seed: u64, duration: Duration, every: Duration, targets: &[Target], wipe: bool) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut faults = Vec::new();
    if targets.is_empty() {
        return faults;
    }
    let mut t = Duration::ZERO;
    let max_gap = (every * 2).saturating_sub(MIN_GAP).max(MIN_GAP);
    loop {
        let after = Duration::from_millis(rng.gen_range(MIN_GAP.as_millis() as u64..=max_gap.as_millis() as u64));
        let target = targets[rng.gen_range(0..targets.len())];
        let node = matches!(target, Target::Node(_));
        let torn = node && rng.gen_bool(1.0 / 3.0);
        let wiped = node && wipe && !torn && rng.gen_bool(0.2);
        let down = |rng: &mut ChaCha8Rng| Duration::from_millis(rng.gen_range(100..=MAX_DOWN.as_millis() as u64));
        let kind = if torn {
            FaultKind::Torn { blocks: rng.gen_range(1..=MAX_TORN_BLOCKS), down: down(&mut rng) }
        } else if wiped {
            FaultKind::Wiped { down: down(&mut rng) }
        } else if rng.gen_bool(0.5) {
            FaultKind::Kill { down: down(&mut rng) }
        } else {
            FaultKind::Freeze { frozen: Duration::from_millis(rng.gen_range(100..=MAX_FROZEN.as_millis() as u64)) }
        };
        let length = kind.length();
        if t + after + length >= duration {
            return faults;
        }
        t += after + length;
        faults.push(Fault { after, target, kind });
    }
}

/// Runs the load with the seeded faults, restores every process, then checks the invariants.
pub async fn run(dir: &Path, args: &ChaosArgs) -> eyre::Result<()> {
    args.load.check()?;
    let net = Network::load(dir)?;
    ensure!(net.all_running(process::alive), "not every process of the testnet runs; `testnet up` first");
    let bins = Bins::find(args.bin_dir.as_deref())?;
    let seed = args.seed.unwrap_or_else(|| crate::now_ms() ^ u64::from(std::process::id()));
    let targets = targets(&net);
    // Wiping needs peers that serve snapshots: every shard node of a multi-validator network does.
    let wipe = !net.nodes.is_empty() && net.nodes.iter().all(|n| n.sync_port != 0);
    let faults =
        plan(seed, Duration::from_secs(args.load.duration), Duration::from_millis(args.fault_every_ms), &targets, wipe);
    let count = |f: fn(&FaultKind) -> bool| faults.iter().filter(|x| f(&x.kind)).count();
    println!(
        "chaos: seed {seed} (replay with --seed {seed}); {} fault(s) over {} s against {} process(es): {} SIGKILL, \
         {} torn (SIGKILL, then a crash between a block's write and its flush), {} wiped (SIGKILL, data directory \
         deleted, restarted by state sync), {} SIGSTOP",
        faults.len(),
        args.load.duration,
        targets.len(),
        count(|k| matches!(k, FaultKind::Kill { .. })),
        count(|k| matches!(k, FaultKind::Torn { .. })),
        count(|k| matches!(k, FaultKind::Wiped { .. })),
        count(|k| matches!(k, FaultKind::Freeze { .. })),
    );

    let (started, load_ended) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
    let mut injector =
        Injector { dir, bins, frozen: None, log: Vec::new(), origin: None, torn_crashed: 0, wiped: Vec::new() };
    let load = async {
        let result = load::run_observed(dir, &args.load, Some(&started)).await;
        load_ended.notify_one();
        result
    };
    tokio::pin!(load);
    let faults_done = async {
        tokio::select! {
            _ = started.notified() => {}
            // The load failed in its setup: no faults, and its error is the one reported.
            _ = load_ended.notified() => return Ok(()),
            _ = tokio::time::sleep(SETUP_TIMEOUT) => return Err(eyre!("the load did not start within {SETUP_TIMEOUT:?}")),
        }
        injector.origin = Some(Instant::now());
        for fault in &faults {
            injector.inject(fault).await?;
        }
        Ok(())
    };
    let (fault_result, load_result) = tokio::select! {
        (f, l) = async { tokio::join!(faults_done, &mut load) } => (f, l),
        _ = tokio::signal::ctrl_c() => (Err(eyre!("interrupted")), Ok(())),
    };
    // Whatever happened above: nothing stays frozen or dead.
    let restored = injector.restore_all().await;
    println!(
        "\nchaos: {} fault(s) injected; {} torn node(s) crashed between a block's write and its flush",
        injector.log.len(),
        injector.torn_crashed
    );
    for line in &injector.log {
        println!("  {line}");
    }
    fault_result.wrap_err("injecting faults")?;
    restored.wrap_err("restoring the network after the faults")?;
    load_result.wrap_err("the load under faults")?;
    println!("\nchecking the network after the faults");
    check::run(dir, &args.check).await?;
    if args.replay_check {
        println!("\nreplaying every shard node's store from genesis");
        injector.replay_all().await?;
    }
    Ok(())
}

/// The processes faults may hit: every shard node, the coordinator and the relayer.
fn targets(net: &Network) -> Vec<Target> {
    let mut t: Vec<Target> = (0..net.nodes.len()).map(Target::Node).collect();
    if net.coordinator.is_some() {
        t.push(Target::Coordinator);
    }
    if net.relayer.is_some() {
        t.push(Target::Relayer);
    }
    t
}

/// The binaries a restart runs.
struct Bins {
    shard_node: PathBuf,
    coordinator: PathBuf,
    relayer: PathBuf,
}

impl Bins {
    fn find(dir: Option<&Path>) -> eyre::Result<Self> {
        Ok(Self {
            shard_node: process::bin_path(dir, "shard-node")?,
            coordinator: process::bin_path(dir, "coordinator")?,
            relayer: process::bin_path(dir, "relayer")?,
        })
    }
}

/// Carries out faults and keeps the manifest current.
struct Injector<'a> {
    dir: &'a Path,
    bins: Bins,
    /// A process frozen right now (pid), thawed by [`Injector::restore_all`] if the fault is cut short.
    frozen: Option<u32>,
    log: Vec<String>,
    origin: Option<Instant>,
    /// Torn nodes that reached their crash point.
    torn_crashed: usize,
    /// Nodes wiped and state-synced (their stores began from a snapshot), by manifest index.
    wiped: Vec<usize>,
}

/// How a process is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// On its data, as it ran.
    Plain,
    /// A shard node armed to abort before flushing the n-th block it writes.
    Armed(u64),
    /// A shard node whose data directory is gone: it state-syncs from its shard's other nodes.
    FromSnapshot,
}

impl Injector<'_> {
    async fn inject(&mut self, fault: &Fault) -> eyre::Result<()> {
        tokio::time::sleep(fault.after).await;
        let net = Network::load(self.dir)?;
        let (name, pid) = match fault.target {
            Target::Node(i) => {
                let n = net.nodes.get(i).ok_or_else(|| eyre!("no node {i}"))?;
                (n.name.clone(), n.pid)
            }
            Target::Coordinator => (COORDINATOR.to_owned(), net.coordinator.as_ref().and_then(|c| c.pid)),
            Target::Relayer => (RELAYER.to_owned(), net.relayer.as_ref().and_then(|r| r.pid)),
        };
        let pid = pid.filter(|p| process::alive(*p)).ok_or_else(|| eyre!("{name} is not running"))?;
        let at = self.origin.map_or(0.0, |o| o.elapsed().as_secs_f64());
        match fault.kind {
            FaultKind::Kill { down } => {
                kill(pid, &name).await?;
                tokio::time::sleep(down).await;
                let new_pid = self.restart(fault.target, Restart::Plain).await?;
                let line = format!(
                    "[{at:>5.1}s] SIGKILL {name} (pid {pid}); restarted after {} ms as pid {new_pid}",
                    down.as_millis()
                );
                println!("chaos {line}");
                self.log.push(line);
            }
            FaultKind::Wiped { down } => {
                let Target::Node(i) = fault.target else { bail!("only shard nodes are wiped") };
                kill(pid, &name).await?;
                let data = net.nodes.get(i).ok_or_else(|| eyre!("no node {i}"))?.dir.join("data");
                std::fs::remove_dir_all(&data).wrap_err_with(|| format!("deleting {}", data.display()))?;
                tokio::time::sleep(down).await;
                let started = Instant::now();
                let new_pid = self.restart(fault.target, Restart::FromSnapshot).await?;
                self.wiped.push(i);
                let line = format!(
                    "[{at:>5.1}s] SIGKILL {name} (pid {pid}), data directory deleted; after {} ms restarted from a \
                     snapshot of its shard as pid {new_pid}, serving after {} ms",
                    down.as_millis(),
                    started.elapsed().as_millis()
                );
                println!("chaos {line}");
                self.log.push(line);
            }
            FaultKind::Torn { blocks, down } => {
                kill(pid, &name).await?;
                let armed = self.restart(fault.target, Restart::Armed(blocks)).await?;
                let started = Instant::now();
                while process::alive(armed) && started.elapsed() < MAX_TORN_WAIT {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let crashed = !process::alive(armed);
                if !crashed {
                    kill(armed, &name).await?;
                }
                self.torn_crashed += usize::from(crashed);
                tokio::time::sleep(down).await;
                let new_pid = self.restart(fault.target, Restart::Plain).await?;
                let how = if crashed {
                    format!("crashed before flushing its block {blocks} after {} ms", started.elapsed().as_millis())
                } else {
                    format!("wrote no {blocks} blocks in {MAX_TORN_WAIT:?}, killed")
                };
                let line = format!(
                    "[{at:>5.1}s] SIGKILL {name} (pid {pid}); armed as pid {armed}, {how}; restarted after {} ms as \
                     pid {new_pid}",
                    down.as_millis()
                );
                println!("chaos {line}");
                self.log.push(line);
            }
            FaultKind::Freeze { frozen } => {
                process::signal(pid, "STOP");
                self.frozen = Some(pid);
                tokio::time::sleep(frozen).await;
                process::signal(pid, "CONT");
                self.frozen = None;
                let line =
                    format!("[{at:>5.1}s] SIGSTOP {name} (pid {pid}) for {} ms, then SIGCONT", frozen.as_millis());
                println!("chaos {line}");
                self.log.push(line);
            }
        }
        Ok(())
    }

    /// Starts `target` again on its port with its data (or, [`Restart::FromSnapshot`], from its shard's
    /// snapshots), records its pid, and waits until it answers. A node [`Restart::Armed`] is started with
    /// `SHARDEX_CRASH_BEFORE_FLUSH` and not waited on (it may be gone before it answers).
    async fn restart(&self, target: Target, how: Restart) -> eyre::Result<u32> {
        let mut net = Network::load(self.dir)?;
        type Start = Box<dyn FnOnce() -> eyre::Result<(u32, String)> + Send>;
        let (name, endpoint, start): (String, String, Start) = match target {
            Target::Node(i) => {
                let node = net.nodes.get(i).cloned().ok_or_else(|| eyre!("no node {i}"))?;
                let bin = self.bins.shard_node.clone();
                let (name, endpoint) = (node.name.clone(), node.endpoint.clone());
                let all = net.clone();
                let start: Start = match how {
                    Restart::Plain => Box::new(move || process::start_node(&bin, &node, &all)),
                    Restart::Armed(n) => {
                        let envs = [("SHARDEX_CRASH_BEFORE_FLUSH", n.to_string())];
                        Box::new(move || process::start_node_with_env(&bin, &node, &all, &envs))
                    }
                    Restart::FromSnapshot => Box::new(move || process::start_node_from_snapshot(&bin, &node, &all)),
                };
                (name, endpoint, start)
            }
            Target::Coordinator => {
                let entry = net.coordinator.clone().ok_or_else(|| eyre!("the network has no coordinator"))?;
                let (port, bin) = (process::endpoint_port(&entry.endpoint)?, self.bins.coordinator.clone());
                let endpoint = entry.endpoint.clone();
                (COORDINATOR.into(), endpoint, Box::new(move || process::start_coordinator(&bin, &entry, Some(port))))
            }
            Target::Relayer => {
                let entry = net.relayer.clone().ok_or_else(|| eyre!("the network has no relayer"))?;
                let (port, bin) = (process::endpoint_port(&entry.endpoint)?, self.bins.relayer.clone());
                let endpoint = entry.endpoint.clone();
                (RELAYER.into(), endpoint, Box::new(move || process::start_relayer(&bin, &entry, Some(port))))
            }
        };
        // Starting waits (blocking) for the process to write its address.
        let (pid, got) = tokio::task::spawn_blocking(start).await??;
        ensure!(got == endpoint, "{name} came back on {got}, not {endpoint}");
        let slot = match target {
            Target::Node(i) => net.nodes.get_mut(i).map(|n| &mut n.pid),
            Target::Coordinator => net.coordinator.as_mut().map(|c| &mut c.pid),
            Target::Relayer => net.relayer.as_mut().map(|r| &mut r.pid),
        };
        if let Some(slot) = slot {
            *slot = Some(pid);
        }
        net.save(self.dir)?;
        if matches!(target, Target::Node(_)) && !matches!(how, Restart::Armed(_)) {
            wait_healthy(&endpoint, false).await?;
        }
        Ok(pid)
    }

    /// Kills each shard node in turn, replays its store from genesis (`shard-node --replay-check`) and
    /// restarts it. Fails on the first node whose store does not replay to its head.
    async fn replay_all(&mut self) -> eyre::Result<()> {
        let count = Network::load(self.dir)?.nodes.len();
        for i in 0..count {
            let net = Network::load(self.dir)?;
            let node = net.nodes.get(i).cloned().ok_or_else(|| eyre!("no node {i}"))?;
            if self.wiped.contains(&i) {
                println!(
                    "replay-check {}: skipped; it was wiped and began from a snapshot, so it holds no blocks from \
                     genesis (check compared its blocks from the snapshot on)",
                    node.name
                );
                continue;
            }
            let pid = node.pid.filter(|p| process::alive(*p)).ok_or_else(|| eyre!("{} is not running", node.name))?;
            kill(pid, &node.name).await?;
            let mut cmd = process::node_command(&self.bins.shard_node, &node, &net)?;
            cmd.arg("--replay-check");
            let out = tokio::task::spawn_blocking(move || cmd.output()).await?.wrap_err("running --replay-check")?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                bail!(
                    "{}: its store does not replay to its head: {}{}",
                    node.name,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let summary = stdout.trim().trim_start_matches("replay-check: ok: ").to_owned();
            println!("replay-check {}: {summary}", node.name);
            let new_pid = self.restart(Target::Node(i), Restart::Plain).await?;
            self.log.push(format!("after the run: replay-checked {} and restarted it as pid {new_pid}", node.name));
        }
        println!(
            "replay-check: every one of {} shard nodes that began at genesis reopens to the state a replay from genesis \
             computes",
            count - self.wiped.len()
        );
        Ok(())
    }

    /// Thaws a frozen process and restarts every process that is not running.
    async fn restore_all(&mut self) -> eyre::Result<()> {
        if let Some(pid) = self.frozen.take() {
            process::signal(pid, "CONT");
        }
        let net = Network::load(self.dir)?;
        let mut dead = Vec::new();
        for (i, n) in net.nodes.iter().enumerate() {
            if !n.pid.is_some_and(process::alive) {
                dead.push(Target::Node(i));
            }
        }
        if net.coordinator.as_ref().is_some_and(|c| !c.pid.is_some_and(process::alive)) {
            dead.push(Target::Coordinator);
        }
        if net.relayer.as_ref().is_some_and(|r| !r.pid.is_some_and(process::alive)) {
            dead.push(Target::Relayer);
        }
        for target in dead {
            let pid = self.restart(target, Restart::Plain).await?;
            self.log.push(format!("after the run: restarted {target:?} as pid {pid}"));
        }
        Ok(())
    }
}

/// SIGKILLs `pid` (the process `name`) and waits until it is gone.
async fn kill(pid: u32, name: &str) -> eyre::Result<()> {
    process::signal(pid, "KILL");
    wait_gone(pid).await.wrap_err_with(|| format!("{name} (pid {pid}) survived SIGKILL"))
}

/// Waits until `pid` is gone (a SIGKILLed process is, within milliseconds).
async fn wait_gone(pid: u32) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process::alive(pid) {
        if Instant::now() > deadline {
            bail!("still running after 5 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: [Target; 5] =
        [Target::Node(0), Target::Node(1), Target::Node(2), Target::Coordinator, Target::Relayer];

    #[test]
    fn a_seed_always_gives_the_same_plan() {
        let a = plan(7, Duration::from_secs(60), Duration::from_millis(1_000), &TARGETS, true);
        let b = plan(7, Duration::from_secs(60), Duration::from_millis(1_000), &TARGETS, true);
        assert_eq!(a, b);
        assert_ne!(a, plan(8, Duration::from_secs(60), Duration::from_millis(1_000), &TARGETS, true));
    }

    #[test]
    fn a_plan_fits_its_duration_and_hits_every_target_both_ways() {
        let duration = Duration::from_secs(120);
        let faults = plan(42, duration, Duration::from_millis(800), &TARGETS, true);
        assert!(faults.len() > 20, "{}", faults.len());
        let mut total = Duration::ZERO;
        for f in &faults {
            assert!(f.after >= MIN_GAP);
            total += f.after + f.kind.length();
        }
        assert!(total < duration);
        for t in TARGETS {
            assert!(faults.iter().any(|f| f.target == t && matches!(f.kind, FaultKind::Kill { .. })), "{t:?}");
            assert!(faults.iter().any(|f| f.target == t && matches!(f.kind, FaultKind::Freeze { .. })), "{t:?}");
            let torn = faults.iter().filter(|f| f.target == t && matches!(f.kind, FaultKind::Torn { .. })).count();
            assert_eq!(torn > 0, matches!(t, Target::Node(_)), "{t:?}: only shard nodes are torn");
            let wiped = faults.iter().any(|f| f.target == t && matches!(f.kind, FaultKind::Wiped { .. }));
            assert!(!wiped || matches!(t, Target::Node(_)), "{t:?}: only shard nodes are wiped");
        }
        assert!(faults.iter().any(|f| matches!(f.kind, FaultKind::Wiped { .. })), "no node wiped");
        // Without snapshot peers (solo shards) nothing is wiped.
        let solo = plan(42, duration, Duration::from_millis(800), &TARGETS, false);
        assert!(!solo.iter().any(|f| matches!(f.kind, FaultKind::Wiped { .. })));
        for f in &faults {
            if let FaultKind::Torn { blocks, .. } = f.kind {
                assert!((1..=MAX_TORN_BLOCKS).contains(&blocks));
            }
        }
    }

    #[test]
    fn no_targets_or_no_time_means_no_faults() {
        assert!(plan(1, Duration::from_secs(60), Duration::from_secs(1), &[], true).is_empty());
        assert!(plan(1, Duration::from_millis(100), Duration::from_secs(1), &TARGETS, true).is_empty());
    }
}
