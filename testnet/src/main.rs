//! `testnet`: runs a local shardex network of real processes on 127.0.0.1, and a demo workload on it.

mod chaos;
mod check;
mod coordinator;
mod demo;
mod explorer;
mod load;
mod network;
mod options;
mod process;
mod relayer;
mod status;
mod top;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::{Args, Parser, Subcommand};
use eyre::{bail, WrapErr};
use shardex_client::ShardClient;

use network::Network;

/// Local shardex testnet: generate keys and genesis, start and stop nodes, run a demo.
#[derive(Debug, Parser)]
#[command(name = "testnet", version, about, long_about = None)]
struct Cli {
    /// Directory holding the network (keys, genesis, data, logs).
    #[arg(long, global = true, env = "SHARDEX_TESTNET_DIR", default_value = ".testnet")]
    dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Generate keys and genesis (first time), start every node, the coordinator, the bridge relayer and the
    /// explorer, wait until each answers and an epoch commits every shard that has a block, print endpoints.
    Up(UpArgs),
    /// Stop the explorer, the relayer, the coordinator and every node (SIGTERM, then SIGKILL after 5 s).
    Down,
    /// Heights, state roots, mempools and market modes of every node; the coordinator's latest epoch and
    /// per-shard lag; the relayer's backlog, counts and lock-to-credit latency.
    Status {
        /// Refresh every SECS seconds (default 1) until interrupted.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "1")]
        watch: Option<u64>,
    },
    /// The network live in the terminal: every node's role, height, round and mempool; each market's head,
    /// best bid and ask and last trade; the coordinator's epochs and the heights they commit; the bridge's
    /// messages with their stages. q or Esc quits.
    Top {
        /// Print one screen as text once every shard has a block, and exit (for scripts and logs).
        #[arg(long)]
        once: bool,
        /// Width of the `--once` screen, in columns.
        #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u16).range(40..=1000))]
        width: u16,
        /// Height of the `--once` screen, in rows.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(10..=1000))]
        height: u16,
    },
    /// Print a node's log.
    Logs {
        /// Node name as `status` shows it (e.g. btc-perp-0, coordinator, relayer).
        node: String,
        /// Only the last N lines.
        #[arg(long, default_value_t = 50)]
        tail: usize,
    },
    /// Run the narrated demo (starts the network first when nothing runs).
    Demo {
        #[command(flatten)]
        up: UpArgs,
        /// Stop the network after the demo.
        #[arg(long)]
        down_after: bool,
    },
    /// Signed orders (and, with --bridge-ratio, cross-shard transfers) at a fixed rate against the running
    /// network: orders/s, submit-to-final and lock-to-credit latency.
    Load(load::LoadArgs),
    /// Black-box invariants over gRPC, each from proofs: finalized heads, replicas, one epoch committing
    /// every shard, conservation per shard, and the bridge settled.
    Check(check::CheckArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) to stdout, e.g.
    /// `testnet completions bash > /etc/bash_completion.d/testnet`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// `load` while shard nodes, the coordinator and the relayer are SIGKILLed and restarted or SIGSTOPped and
    /// resumed (a seeded plan, the seed printed), then `check`.
    Chaos(chaos::ChaosArgs),
}

#[derive(Debug, Clone, Args)]
struct UpArgs {
    /// Markets, one shard each: perpetuals (`*-PERP`) and options on an underlying (`*-OPTIONS`).
    #[arg(long, value_delimiter = ',', default_value = "BTC-PERP,ETH-PERP,ETH-OPTIONS")]
    shards: Vec<String>,
    /// Validators per shard (a new network only): with more than one, each shard runs Malachite BFT and
    /// keeps going while fewer than a third of its validators are down.
    #[arg(long, default_value_t = 4)]
    sequencers: usize,
    /// Followers per shard (a new network only): read replicas that re-execute every block of the set; the
    /// coordinator and the relayer read from them as well as from the validators. Default 1, or 0 with
    /// `--sequencers 1` (a single validator runs the solo engine, which followers cannot follow).
    #[arg(long)]
    followers: Option<usize>,
    /// First gRPC port: node k (validators of shard 1 first) listens on base+k, the coordinator on base+100,
    /// the relayer on base+101, the explorer's page on base+102, node k's consensus on base+200+k. 0 picks
    /// free ports.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Block interval of every node, ms.
    #[arg(long, default_value_t = 100)]
    block_interval_ms: u64,
    /// Time between the coordinator's epochs, ms.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    epoch_ms: u64,
    /// Directory of the shard-node, coordinator and relayer binaries (default: beside this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> eyre::Result<()> {
    let dir = cli.dir;
    match cli.cmd {
        Cmd::Up(args) => up(&dir, &args).await,
        Cmd::Down => down(&dir),
        Cmd::Status { watch: None } => status::print(&dir).await,
        Cmd::Status { watch: Some(secs) } => status::watch(&dir, std::time::Duration::from_secs(secs.max(1))).await,
        Cmd::Top { once: true, width, height } => top::once(&dir, width, height).await,
        Cmd::Top { once: false, .. } => top::run(&dir).await,
        Cmd::Logs { node, tail } => {
            let log = Network::load(&dir)?.log_file(&node)?;
            let text = std::fs::read_to_string(&log).wrap_err_with(|| format!("reading {}", log.display()))?;
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(tail)..] {
                println!("{line}");
            }
            Ok(())
        }
        Cmd::Demo { up: args, down_after } => {
            if !running(&dir) {
                up(&dir, &args).await?;
            }
            let result = demo::run(&dir, args.bin_dir.as_deref()).await;
            if down_after {
                down(&dir)?;
            } else {
                println!(
                    "\nthe network keeps running: `testnet status`, `shardex --node <endpoint> status`, `testnet down`"
                );
            }
            result
        }
        Cmd::Load(args) => load::run(&dir, &args).await,
        Cmd::Check(args) => check::run(&dir, &args).await,
        Cmd::Chaos(args) => chaos::run(&dir, &args).await,
        Cmd::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "testnet",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn running(dir: &Path) -> bool {
    Network::load(dir).map(|n| n.all_running(process::alive)).unwrap_or(false)
}

/// The coordinator listens on `--base-port` + this (7200 by default), above the ports of up to 64 shards.
const COORDINATOR_PORT_OFFSET: u16 = 100;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn up(dir: &Path, args: &UpArgs) -> eyre::Result<()> {
    if args.shards.is_empty() || args.shards.len() > 64 {
        bail!("--shards takes 1 to 64 markets");
    }
    let shard_node = process::bin_path(args.bin_dir.as_deref(), "shard-node")?;
    let coordinator = process::bin_path(args.bin_dir.as_deref(), "coordinator")?;
    let explorer_bin = process::bin_path(args.bin_dir.as_deref(), "explorer")?;
    let mut net = match Network::load(dir) {
        Ok(net) => {
            if net.any_running(process::alive) {
                bail!("a testnet is already running in {}; `testnet down` first", dir.display());
            }
            println!("restarting the testnet in {}", dir.display());
            net
        }
        Err(_) => {
            let followers = args.followers.unwrap_or(if args.sequencers == 1 { 0 } else { 1 });
            println!(
                "creating a testnet in {} with shards {}, {} validator(s) and {followers} follower(s) each",
                dir.display(),
                args.shards.join(", "),
                args.sequencers
            );
            network::generate(dir, &args.shards, args.sequencers, followers, now_ms())?
        }
    };
    assign_ports(&mut net, args)?;
    if net.coordinator.is_none() {
        net.coordinator = Some(network::generate_coordinator(dir)?);
    }
    // The bridge runs when every genesis trusts the coordinator; an older network runs without it.
    let bridge_off = relayer::bridge_off_reason(&net)?;
    let relayer_bin = match &bridge_off {
        None => Some(process::bin_path(args.bin_dir.as_deref(), "relayer")?),
        Some(_) => None,
    };
    for i in 0..net.nodes.len() {
        net.nodes[i].block_interval_ms = args.block_interval_ms;
        let started = process::start_node(&shard_node, &net.nodes[i], &net);
        match started {
            Ok((pid, endpoint)) => {
                net.nodes[i].pid = Some(pid);
                net.nodes[i].endpoint = endpoint;
                net.save(dir)?;
            }
            Err(e) => {
                net.save(dir)?;
                let _ = down(dir);
                return Err(e);
            }
        }
    }
    let mut heights: BTreeMap<u32, u64> = BTreeMap::new();
    for node in &net.nodes {
        let height = wait_healthy(&node.endpoint, node.p2p_port != 0)
            .await
            .wrap_err_with(|| format!("{} is not healthy; see {}", node.name, node.log_file().display()))?;
        let h = heights.entry(node.shard_id.0).or_insert(height);
        *h = (*h).min(height);
    }
    let ready = start_coordinator(dir, &mut net, &coordinator, args, &heights).await?;
    let relayer_status = match &relayer_bin {
        Some(bin) => Some(start_relayer(dir, &mut net, bin, args).await?),
        None => {
            net.relayer = None;
            net.save(dir)?;
            None
        }
    };
    let port = if args.base_port == 0 { 0 } else { args.base_port.saturating_add(explorer::EXPLORER_PORT_OFFSET) };
    if let Err(e) = explorer::start(dir, &mut net, &explorer_bin, port).await {
        let _ = down(dir);
        return Err(e);
    }

    println!("\n{:<16} {:>5}  {:<26} {:>7}  CONSENSUS", "NODE", "SHARD", "ENDPOINT", "PID");
    for n in &net.nodes {
        let consensus = match n.p2p_port {
            0 => "solo".to_owned(),
            _ if n.follower => format!("follower {}, {}, snapshots {}", n.validator, n.p2p_addr(), n.sync_addr()),
            _ => format!(
                "validator {} of {}, {}, snapshots {}",
                n.validator,
                net.validators_of(n.shard_id).len(),
                n.p2p_addr(),
                n.sync_addr()
            ),
        };
        println!("{:<16} {:>5}  {:<26} {:>7}  {consensus}", n.name, n.shard_id.0, n.endpoint, n.pid.unwrap_or(0));
    }
    if let Some(c) = &net.coordinator {
        println!("{:<16} {:>5}  {:<26} {:>7}", network::COORDINATOR, "all", c.endpoint, c.pid.unwrap_or(0));
    }
    if let Some(r) = &net.relayer {
        println!("{:<16} {:>5}  {:<26} {:>7}", network::RELAYER, "all", r.endpoint, r.pid.unwrap_or(0));
    }
    if let Some(line) = net.metrics_line() {
        println!("\n{line}");
    }
    if let Some(e) = &net.explorer {
        println!("explorer: open {}/ in a browser (shards, epochs, books, trades, bridge, verified balances)", e.url);
    }
    if let Some(c) = &net.coordinator {
        println!("\ncoordinator key {}", c.public_key);
        println!(
            "epoch {} commits {} of {} shards (a shard enters with its first block)",
            ready.epoch.record.number,
            ready.committed,
            net.shards().len()
        );
    }
    match (&net.relayer, &relayer_status, &bridge_off) {
        (Some(r), Some(s), _) => println!(
            "relayer account {} carries collateral between all {} shards (following {} of them)",
            r.account,
            net.shards().len(),
            s.shards.iter().filter(|c| c.connected).count()
        ),
        (_, _, Some(why)) => println!("bridge off: {why}; no relayer started"),
        _ => {}
    }
    println!("keys and genesis in {}; stop with `testnet down`", dir.display());
    Ok(())
}

/// Fixes every node's gRPC, consensus and state-sync ports before any starts: validators name each other's.
fn assign_ports(net: &mut Network, args: &UpArgs) -> eyre::Result<()> {
    let total = net.nodes.len();
    if args.base_port != 0
        && (total >= usize::from(COORDINATOR_PORT_OFFSET) || usize::from(args.base_port) + 300 + total > 65_535)
    {
        bail!("{total} nodes do not fit the port layout above --base-port {}; use --base-port 0", args.base_port);
    }
    let sets: BTreeMap<shardex_core::ShardId, usize> =
        net.shards().iter().map(|n| (n.shard_id, net.validators_of(n.shard_id).len())).collect();
    for (k, node) in net.nodes.iter_mut().enumerate() {
        let several = sets.get(&node.shard_id).is_some_and(|n| *n > 1);
        if args.base_port == 0 {
            node.rpc_port = process::free_port()?;
            node.p2p_port = if several { process::free_port()? } else { 0 };
            node.sync_port = if several { process::free_port()? } else { 0 };
        } else {
            let k = k as u16;
            node.rpc_port = args.base_port + k;
            node.p2p_port = if several { args.base_port + 200 + k } else { 0 };
            node.sync_port = if several { args.base_port + 300 + k } else { 0 };
        }
    }
    Ok(())
}

/// Writes the coordinator's config for the running shards, starts it, and waits for an epoch that commits
/// every shard.
async fn start_coordinator(
    dir: &Path,
    net: &mut Network,
    bin: &Path,
    args: &UpArgs,
    heights: &BTreeMap<u32, u64>,
) -> eyre::Result<coordinator::Ready> {
    let mut entry = net.coordinator.clone().ok_or_else(|| eyre::eyre!("the network has no coordinator"))?;
    let port = if args.base_port == 0 { 0 } else { args.base_port.saturating_add(COORDINATOR_PORT_OFFSET) };
    coordinator::write_config(dir, net, &entry, port, args.epoch_ms)?;
    match process::start_coordinator(bin, &entry, None) {
        Ok((pid, endpoint)) => {
            (entry.pid, entry.endpoint) = (Some(pid), endpoint);
            net.coordinator = Some(entry.clone());
            net.save(dir)?;
        }
        Err(e) => {
            let _ = down(dir);
            return Err(e);
        }
    }
    coordinator::wait_ready(net, &entry, heights).await.wrap_err_with(|| format!("see {}", entry.log_file().display()))
}

/// Starts the bridge relayer after the coordinator (`--base-port` + 101) and waits until it follows every
/// shard; stops the network if it cannot be started.
async fn start_relayer(
    dir: &Path,
    net: &mut Network,
    bin: &Path,
    args: &UpArgs,
) -> eyre::Result<shardex_proto::bridge::v1::RelayerStatus> {
    let port = if args.base_port == 0 { 0 } else { args.base_port.saturating_add(relayer::RELAYER_PORT_OFFSET) };
    match relayer::start(dir, net, bin, port).await {
        Ok(status) => Ok(status),
        Err(e) => {
            let _ = down(dir);
            Err(e)
        }
    }
}

/// Waits until the node at `endpoint` answers `GetStatus`; returns its height.
/// Waits until the node at `endpoint` answers its status and, when it runs under consensus (`in_set`), a
/// round has started there (a proposer is known), so that it takes submissions as soon as `up` returns.
/// Returns its height.
async fn wait_healthy(endpoint: &str, in_set: bool) -> eyre::Result<u64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = match ShardClient::connect(endpoint).await {
            Ok(c) => c.status().await.map_err(eyre::Report::from),
            Err(e) => Err(e.into()),
        };
        let problem = match status {
            Ok(s) if !in_set || !s.proposer.is_empty() => return Ok(s.height),
            Ok(_) => eyre::eyre!("{endpoint} answers, but consensus has not started a round"),
            Err(e) => e.wrap_err(format!("{endpoint} does not answer status")),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(problem);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn down(dir: &Path) -> eyre::Result<()> {
    let mut net = Network::load(dir)?;
    // The explorer, the relayer, then the coordinator, so none logs the shards going away.
    let explorer = net.explorer.as_mut().map(|e| (network::EXPLORER.to_owned(), &mut e.pid));
    let relayer = net.relayer.as_mut().map(|r| (network::RELAYER.to_owned(), &mut r.pid));
    let coordinator = net.coordinator.as_mut().map(|c| (network::COORDINATOR.to_owned(), &mut c.pid));
    let nodes = net.nodes.iter_mut().map(|n| (n.name.clone(), &mut n.pid));
    for (name, pid_slot) in explorer.into_iter().chain(relayer).chain(coordinator).chain(nodes) {
        if let Some(pid) = pid_slot.take() {
            if process::stop(pid, Duration::from_secs(5)) {
                println!("stopped {name} (pid {pid})");
            } else {
                eprintln!("warning: {name} (pid {pid}) did not stop");
                *pid_slot = Some(pid);
            }
        }
    }
    net.save(dir)
}
