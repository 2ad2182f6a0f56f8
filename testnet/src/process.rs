//! Starting and stopping node, coordinator and relayer processes. Nodes run in their own process group, so they outlive the
//! `testnet up` command and ignore a Ctrl-C aimed at the shell.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use eyre::{bail, eyre, WrapErr};

use shardex_core::{genesis::Genesis, AccountId};

use crate::network::{
    CoordinatorEntry, ExplorerEntry, Network, NodeEntry, RelayerEntry, COORDINATOR, EXPLORER, RELAYER,
};

/// Where a workspace binary (`shard-node`, `coordinator`, `relayer`) is: `--bin-dir`, `$SHARDEX_BIN_DIR`, or beside this executable.
pub fn bin_path(bin_dir: Option<&Path>, name: &str) -> eyre::Result<PathBuf> {
    let dir = match bin_dir {
        Some(d) => d.to_path_buf(),
        None => match std::env::var_os("SHARDEX_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                std::env::current_exe()?.parent().ok_or_else(|| eyre!("executable has no directory"))?.to_path_buf()
            }
        },
    };
    let path = dir.join(name);
    if !path.exists() {
        bail!("{} not found; build it with `cargo build --release --bins` or pass --bin-dir", path.display());
    }
    Ok(path)
}

/// Starts `node` of `net` on its ports and waits for it to report its gRPC address. A shard of several
/// validators runs the Malachite engine with the others as peers. Returns (pid, endpoint).
pub fn start_node(shard_node: &Path, node: &NodeEntry, net: &Network) -> eyre::Result<(u32, String)> {
    start_node_with_env(shard_node, node, net, &[])
}

/// As [`start_node`], with extra environment variables (fault injection).
pub fn start_node_with_env(
    shard_node: &Path,
    node: &NodeEntry,
    net: &Network,
    envs: &[(&str, String)],
) -> eyre::Result<(u32, String)> {
    let mut cmd = node_command(shard_node, node, net)?;
    cmd.envs(envs.iter().map(|(k, v)| (k, v)));
    spawn(cmd, &node.name, &node.dir.join("data").join("rpc.addr"), &node.log_file())
}

/// The command line that runs `node` of `net`.
pub fn node_command(shard_node: &Path, node: &NodeEntry, net: &Network) -> eyre::Result<Command> {
    let mut cmd = Command::new(shard_node);
    cmd.arg("--node.data-dir")
        .arg(node.dir.join("data"))
        .arg("--node.genesis")
        .arg(node.genesis_file())
        .arg("--node.key-file")
        .arg(node.dir.join("node.key"))
        .arg("--rpc.addr")
        .arg(format!("127.0.0.1:{}", node.rpc_port))
        .arg("--block.interval-ms")
        .arg(node.block_interval_ms.to_string())
        .arg("--metrics.addr")
        .arg("127.0.0.1:0");
    let set = net.validators_of(node.shard_id);
    if set.len() > 1 {
        let genesis = Genesis::read_file(&node.genesis_file())?;
        let keys: Vec<AccountId> = genesis.validators.keys().collect();
        cmd.arg("--consensus.engine").arg("malachite").arg("--consensus.listen").arg(node.p2p_addr());
        if node.follower {
            cmd.arg("--consensus.role").arg("follower");
        }
        for peer in set.iter().filter(|p| node.follower || p.validator != node.validator) {
            let key = keys.get(peer.validator).ok_or_else(|| eyre!("{} has no key in genesis", peer.name))?;
            cmd.arg("--consensus.peer").arg(format!("{key}@{}@http://127.0.0.1:{}", peer.p2p_addr(), peer.rpc_port));
        }
        if node.sync_port != 0 {
            cmd.arg("--sync.listen").arg(node.sync_addr());
        }
    }
    Ok(cmd)
}

/// Starts `node` of `net` after its data directory was lost: it state-syncs from the snapshots the other
/// nodes of its shard serve (`--sync snapshot`), then runs as usual. Returns (pid, endpoint).
pub fn start_node_from_snapshot(shard_node: &Path, node: &NodeEntry, net: &Network) -> eyre::Result<(u32, String)> {
    let mut cmd = node_command(shard_node, node, net)?;
    let peers: Vec<&NodeEntry> =
        net.nodes.iter().filter(|n| n.shard_id == node.shard_id && n.name != node.name && n.sync_port != 0).collect();
    if peers.is_empty() {
        bail!("{} has no peer serving snapshots: its shard runs one node", node.name);
    }
    cmd.arg("--sync").arg("snapshot");
    for peer in peers {
        cmd.arg("--sync.peer").arg(peer.sync_addr());
    }
    spawn(cmd, &node.name, &node.dir.join("data").join("rpc.addr"), &node.log_file())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for `--base-port 0`, where every port is picked
/// before any node starts, since validators name each other's ports), below the ephemeral range where it
/// can be ([`shardex_test_support::try_free_port`]).
pub fn free_port() -> eyre::Result<u16> {
    shardex_test_support::try_free_port().wrap_err("finding a free port")
}

/// Starts the coordinator with its config file (listening on `port` instead of the config's address when
/// given) and waits for it to report its gRPC address. Returns (pid, endpoint).
pub fn start_coordinator(
    coordinator: &Path,
    entry: &CoordinatorEntry,
    port: Option<u16>,
) -> eyre::Result<(u32, String)> {
    let mut cmd = Command::new(coordinator);
    cmd.arg("-c").arg(entry.config_file());
    if let Some(port) = port {
        cmd.arg("--rpc.addr").arg(format!("127.0.0.1:{port}"));
    }
    spawn(cmd, COORDINATOR, &entry.data_dir().join("rpc.addr"), &entry.log_file())
}

/// Starts the relayer with its config file (listening on `port` instead of the config's address when given)
/// and waits for it to report its gRPC address. Returns (pid, endpoint).
pub fn start_relayer(relayer: &Path, entry: &RelayerEntry, port: Option<u16>) -> eyre::Result<(u32, String)> {
    let mut cmd = Command::new(relayer);
    cmd.arg("-c").arg(entry.config_file());
    if let Some(port) = port {
        cmd.arg("--rpc.addr").arg(format!("127.0.0.1:{port}"));
    }
    spawn(cmd, RELAYER, &entry.data_dir().join("rpc.addr"), &entry.log_file())
}

/// Starts the explorer with its config file and waits for it to report its HTTP address. Returns (pid,
/// `http://ADDR`).
pub fn start_explorer(explorer: &Path, entry: &ExplorerEntry) -> eyre::Result<(u32, String)> {
    let mut cmd = Command::new(explorer);
    cmd.arg("-c").arg(entry.config_file());
    let data = entry.data_dir();
    std::fs::create_dir_all(&data).wrap_err_with(|| format!("creating {}", data.display()))?;
    spawn(cmd, EXPLORER, &data.join(shardex_explorer::ADDR_FILE), &entry.log_file())
}

/// Spawns `cmd` in its own process group with stderr appended to `log`, and waits until it writes its
/// bound address to `addr_file`. Returns (pid, `http://ADDR`).
fn spawn(mut cmd: Command, name: &str, addr_file: &Path, log: &Path) -> eyre::Result<(u32, String)> {
    let _ = std::fs::remove_file(addr_file);
    let log_out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .wrap_err_with(|| format!("opening {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log_out);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().wrap_err_with(|| format!("starting {program}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(addr) = std::fs::read_to_string(addr_file) {
            return Ok((child.id(), format!("http://{}", addr.trim())));
        }
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited with {status} at start; see {}", log.display());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("{name} did not start within 30 s; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// True while a process with `pid` exists (and is not a zombie we could reap).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 3 is the state; `Z` is a zombie, i.e. already dead.
    !stat.is_empty() && stat.rsplit(')').next().map(|rest| !rest.trim_start().starts_with('Z')).unwrap_or(false)
}

/// Sends `sig` (a name such as `KILL`, `STOP`, `CONT`) to `pid`; a process already gone is not an error.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

/// SIGTERM, then SIGKILL after `grace`. Returns true if the process is gone.
pub fn stop(pid: u32, grace: Duration) -> bool {
    if !alive(pid) {
        return true;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    signal(pid, "KILL");
    std::thread::sleep(Duration::from_millis(50));
    !alive(pid)
}

/// The port of an `http://127.0.0.1:PORT` endpoint.
pub fn endpoint_port(endpoint: &str) -> eyre::Result<u16> {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .ok_or_else(|| eyre!("endpoint {endpoint:?} names no port"))
}
