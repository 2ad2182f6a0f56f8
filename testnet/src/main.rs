//! `testnet`: runs a local shardex network of real processes on 127.0.0.1, and a demo workload on it.

mod demo;
mod load;
mod network;
mod process;

use std::{
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
    /// Generate keys and genesis (first time), start every node, wait until healthy, print endpoints.
    Up(UpArgs),
    /// Stop every node (SIGTERM, then SIGKILL after 5 s).
    Down,
    /// Heights, state roots and mempools of every node.
    Status,
    /// Print a node's log.
    Logs {
        /// Node name as `status` shows it (e.g. btc-perp-0).
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
    /// Signed orders at a fixed rate against the running network: orders/s and submit-to-final latency.
    Load(load::LoadArgs),
}

#[derive(Debug, Clone, Args)]
struct UpArgs {
    /// Markets, one shard each.
    #[arg(long, value_delimiter = ',', default_value = "BTC-PERP,ETH-PERP,SOL-PERP")]
    shards: Vec<String>,
    /// First gRPC port; shard i listens on base+i. 0 picks free ports.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Block interval of every node, ms.
    #[arg(long, default_value_t = 100)]
    block_interval_ms: u64,
    /// Directory of the shard-node binary (default: beside this executable).
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
        Cmd::Status => status(&dir).await,
        Cmd::Logs { node, tail } => {
            let net = Network::load(&dir)?;
            let entry = net.node(&node)?;
            let text = std::fs::read_to_string(entry.log_file())
                .wrap_err_with(|| format!("reading {}", entry.log_file().display()))?;
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
            let result = demo::run(&dir).await;
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
    }
}

fn running(dir: &Path) -> bool {
    Network::load(dir).map(|n| n.nodes.iter().all(|x| x.pid.is_some_and(process::alive))).unwrap_or(false)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn up(dir: &Path, args: &UpArgs) -> eyre::Result<()> {
    if args.shards.is_empty() || args.shards.len() > 64 {
        bail!("--shards takes 1 to 64 markets");
    }
    let shard_node = process::bin_path(args.bin_dir.as_deref(), "shard-node")?;
    let mut net = match Network::load(dir) {
        Ok(net) => {
            if net.nodes.iter().any(|n| n.pid.is_some_and(process::alive)) {
                bail!("a testnet is already running in {}; `testnet down` first", dir.display());
            }
            println!("restarting the testnet in {}", dir.display());
            net
        }
        Err(_) => {
            println!("creating a testnet in {} with shards {}", dir.display(), args.shards.join(", "));
            network::generate(dir, &args.shards, now_ms())?
        }
    };
    for i in 0..net.nodes.len() {
        let port = if args.base_port == 0 { 0 } else { args.base_port.saturating_add(i as u16) };
        let started = process::start_node(&shard_node, &net.nodes[i], port, args.block_interval_ms);
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
    for node in &net.nodes {
        wait_healthy(&node.endpoint)
            .await
            .wrap_err_with(|| format!("{} is not healthy; see {}", node.name, node.log_file().display()))?;
    }
    println!("\n{:<16} {:>5}  {:<26} {:>7}", "NODE", "SHARD", "ENDPOINT", "PID");
    for n in &net.nodes {
        println!("{:<16} {:>5}  {:<26} {:>7}", n.name, n.shard_id.0, n.endpoint, n.pid.unwrap_or(0));
    }
    println!("\nkeys and genesis in {}; stop with `testnet down`", dir.display());
    Ok(())
}

async fn wait_healthy(endpoint: &str) -> eyre::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ShardClient::connect(endpoint).await {
            Ok(c) if c.status().await.is_ok() => return Ok(()),
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => bail!("{endpoint} does not answer status"),
            Err(e) => return Err(e.into()),
        }
    }
}

fn down(dir: &Path) -> eyre::Result<()> {
    let mut net = Network::load(dir)?;
    for node in &mut net.nodes {
        if let Some(pid) = node.pid.take() {
            if process::stop(pid, Duration::from_secs(5)) {
                println!("stopped {} (pid {pid})", node.name);
            } else {
                eprintln!("warning: {} (pid {pid}) did not stop", node.name);
                node.pid = Some(pid);
            }
        }
    }
    net.save(dir)
}

async fn status(dir: &Path) -> eyre::Result<()> {
    let net = Network::load(dir)?;
    println!("{:<16} {:>5} {:<12} {:>8} {:<20} {:>8}", "NODE", "SHARD", "MARKET", "HEIGHT", "STATE ROOT", "MEMPOOL");
    for n in &net.nodes {
        let line = match (n.pid.is_some_and(process::alive), ShardClient::connect(&n.endpoint).await) {
            (false, _) => "stopped".to_owned(),
            (true, Err(e)) => format!("unreachable: {e}"),
            (true, Ok(c)) => match c.status().await {
                Ok(s) => format!("{:>8} 0x{:<18} {:>8}", s.height, &hex::encode(&s.state_root)[..16], s.mempool_txs),
                Err(e) => format!("error: {e}"),
            },
        };
        println!("{:<16} {:>5} {:<12} {line}", n.name, n.shard_id.0, n.symbol);
    }
    Ok(())
}
