//! Multi-process test harness shared by the crates' integration tests: a server binary (shard node,
//! coordinator) runs as a child process that binds `127.0.0.1:0` and announces its address in
//! `<data dir>/rpc.addr`; it can be SIGKILLed and restarted on the same directory, and it is always killed
//! when the handle drops, whatever the test did. [`ShardNodeProcess`] runs a shard node with test settings.

#![allow(clippy::unwrap_used)]

use shardex_client::{
    core::{genesis::Genesis, Keypair},
    ShardClient,
};
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a server may take to announce its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to connect to an announced server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// One server process.
pub struct ServerProcess {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    addr_file: PathBuf,
    log_file: PathBuf,
    envs: Vec<(OsString, OsString)>,
    child: Option<Child>,
    /// `http://host:port` of the running server (renewed on restart).
    pub endpoint: String,
}

impl ServerProcess {
    /// Starts `program args…`, which must write its bound address to `<data_dir>/rpc.addr`; stderr is
    /// appended to `log_file`. Panics (with the log) if it exits or stays silent.
    pub fn start(
        name: &str,
        program: &Path,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        data_dir: &Path,
        log_file: &Path,
    ) -> Self {
        Self::start_with_env(name, program, args, data_dir, log_file, &[])
    }

    /// [`ServerProcess::start`] with environment variables (kept for restarts; see [`ServerProcess::set_env`]).
    pub fn start_with_env(
        name: &str,
        program: &Path,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        data_dir: &Path,
        log_file: &Path,
        envs: &[(&str, &str)],
    ) -> Self {
        let mut server = Self {
            name: name.to_owned(),
            program: program.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
            addr_file: data_dir.join("rpc.addr"),
            log_file: log_file.to_path_buf(),
            envs: Vec::new(),
            child: None,
            endpoint: String::new(),
        };
        server.set_env(envs);
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_file.display()));
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} ({}): {e}", self.name, self.program.display()));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(addr) = std::fs::read_to_string(&self.addr_file) {
                self.endpoint = format!("http://{}", addr.trim());
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited early with {status}; log:\n{}", self.name, self.log());
            }
            assert!(Instant::now() < deadline, "{} did not report its address; log:\n{}", self.name, self.log());
            std::thread::sleep(POLL);
        }
    }

    /// Connects with `connect`, retrying while the server comes up; panics with the log after
    /// [`CONNECT_TIMEOUT`].
    pub async fn connect<T, E, F, Fut>(&self, connect: F) -> T
    where
        E: std::fmt::Display,
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            match connect(self.endpoint.clone()).await {
                Ok(client) => return client,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Err(e) => panic!("cannot connect to {} at {}: {e}; log:\n{}", self.name, self.endpoint, self.log()),
            }
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap_or_else(|e| panic!("SIGKILL {}: {e}", self.name));
            child.wait().unwrap_or_else(|e| panic!("reap {}: {e}", self.name));
        }
    }

    /// Environment variables for the next (re)start, replacing any set before.
    pub fn set_env(&mut self, envs: &[(&str, &str)]) {
        self.envs = envs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
    }

    /// Waits up to `timeout` for the server to exit on its own and returns how it ended; panics with the
    /// log if it is still running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().unwrap_or_else(|| panic!("{} is not running", self.name));
            if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait for {}: {e}", self.name)) {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "{} still runs after {timeout:?}; log:\n{}", self.name, self.log());
            std::thread::sleep(POLL);
        }
    }

    /// Appends arguments for the next (re)start (later flags win over earlier ones).
    pub fn add_args(&mut self, args: &[&str]) {
        self.args.extend(args.iter().map(OsString::from));
    }

    /// Starts the server again, same program, arguments and directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running {}", self.name);
        self.spawn();
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory of every workspace binary, beside `bin` (a binary of the test's own package, e.g.
/// `env!("CARGO_BIN_EXE_shard-node")`), in the same profile. A nested `cargo build --workspace --tests
/// --bins` makes sure they exist and are fresh, once per test process: under `cargo test --workspace` it is a
/// no-op, because it resolves features exactly as that build did (dev-dependencies included); building only
/// the binaries would resolve them without dev-dependencies and compile libp2p, the consensus engine and
/// every shardex crate a second time.
pub fn workspace_bins(bin: &Path) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = bin.parent().expect("bin dir").to_path_buf();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--workspace", "--tests", "--bins"]);
            // Cargo gives a test process its package's variables (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …).
            // Some dependencies' builds track them (ring does), so passing them on would make this build
            // see those dependencies as changed and rebuild them and everything above them, and the next
            // `cargo test` would rebuild them back.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                let per_package = key.starts_with("CARGO_PKG_")
                    || key.starts_with("CARGO_BIN_")
                    || matches!(
                        key.as_ref(),
                        "CARGO_MANIFEST_DIR"
                            | "CARGO_MANIFEST_PATH"
                            | "CARGO_CRATE_NAME"
                            | "CARGO_PRIMARY_PACKAGE"
                            | "CARGO_TARGET_TMPDIR"
                            | "CARGO_RUSTC_CURRENT_DIR"
                            | "OUT_DIR"
                    );
                if per_package {
                    cmd.env_remove(key.as_ref());
                }
            }
            if dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().expect("cargo build").success(), "building the workspace binaries failed");
            dir
        })
        .clone()
}

/// The workspace binary `name` (see [`workspace_bins`]).
pub fn sibling_bin(bin: &Path, name: &str) -> PathBuf {
    workspace_bins(bin).join(name)
}

/// `GET /metrics` from a server's metrics listener at `addr` (`host:port`) with one plain HTTP/1.1 request,
/// which must answer 200; the Prometheus page.
pub fn scrape_metrics(addr: &str) -> String {
    match http_get(addr, "/metrics") {
        Ok((200, body)) => body,
        Ok((status, body)) => panic!("{addr}: HTTP {status}: {body}"),
        Err(e) => panic!("{addr}: {e}"),
    }
}

/// `GET path` from `addr` (`host:port`, or an `http://host:port` URL) with one plain HTTP/1.1 request
/// (`connection: close`): the status code and the body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{addr}{path}: {what}"));
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| bad("no end of the response head"))?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("not an HTTP/1.1 response"))?;
    let chunked = head.lines().any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    Ok((status, if chunked { dechunk(body).ok_or_else(|| bad("bad chunked body"))? } else { body.to_owned() }))
}

/// The payload of a `transfer-encoding: chunked` body.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// The value of the sample `name` (with its labels, if any) on a Prometheus page.
pub fn metric_sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for processes that must name each other's ports
/// before any of them starts). Panics if none is; see [`try_free_port`].
pub fn free_port() -> u16 {
    try_free_port().expect("free port")
}

/// Lowest port [`try_free_port`] picks.
const PORT_FLOOR: u32 = 10_000;

/// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range where it can:
/// outgoing connections take their local ports from that range, so a port picked there (as `bind(0)`
/// does) can be taken by some process's connection in the moment before its server binds it. Ports are
/// scanned from a start that differs per process and moves on with each call, so one process never picks
/// the same port twice and concurrent test processes rarely meet. Falls back to `bind(0)`.
pub fn try_free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ceiling = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next().and_then(|low| low.parse::<u32>().ok()))
        .unwrap_or(32_768)
        .min(65_536);
    let span = ceiling.saturating_sub(PORT_FLOOR);
    if span >= 1_000 {
        // A per-process start: the pid and the clock spread concurrent processes over the range.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let seed = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(nanos);
        let _ = NEXT.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
        for _ in 0..256 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let Ok(port) = u16::try_from(PORT_FLOOR + n % span) else { continue };
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr().map(|a| a.port())
}

/// Polls `f` every 20 ms until it returns Some, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A `shard-node` process in its own directory (genesis, key, data, log) with test settings: a free port,
/// 20 ms blocks.
pub struct ShardNodeProcess {
    /// The node's directory.
    pub dir: PathBuf,
    server: ServerProcess,
}

impl ShardNodeProcess {
    /// Writes genesis and key into `dir` and starts `program` (a `shard-node` binary) with `extra_args`
    /// after the test settings (later flags win).
    pub fn start(program: &Path, dir: &Path, genesis: &Genesis, key: &Keypair, extra_args: &[&str]) -> Self {
        Self::start_with_env(program, dir, genesis, key, extra_args, &[])
    }

    /// [`ShardNodeProcess::start`] with environment variables (fault injection, kept for restarts).
    pub fn start_with_env(
        program: &Path,
        dir: &Path,
        genesis: &Genesis,
        key: &Keypair,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        std::fs::create_dir_all(dir).expect("create node dir");
        std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).expect("write genesis");
        key.write_file(&dir.join("node.key")).expect("write key");
        let mut args: Vec<OsString> = vec![
            "--node.data-dir".into(),
            dir.join("data").into(),
            "--node.genesis".into(),
            dir.join("genesis.toml").into(),
            "--node.key-file".into(),
            dir.join("node.key").into(),
        ];
        args.extend(
            ["--rpc.addr", "127.0.0.1:0", "--block.interval-ms", "20", "--log.filter", "info"].map(OsString::from),
        );
        args.extend(extra_args.iter().map(OsString::from));
        let server =
            ServerProcess::start_with_env("shard-node", program, args, &dir.join("data"), &dir.join("node.log"), envs);
        Self { dir: dir.to_path_buf(), server }
    }

    /// The genesis file the node runs with.
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.toml")
    }

    /// `http://host:port` of the running node (renewed on restart).
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// Connects a client, retrying while the node comes up.
    pub async fn client(&self) -> ShardClient {
        self.server.connect(|endpoint| async move { ShardClient::connect(&endpoint).await }).await
    }

    /// Runs `shard-node --replay-check` on the node's (stopped) store with its arguments and returns
    /// (success, stdout, stderr).
    pub fn replay_check(&self) -> (bool, String, String) {
        assert!(self.server.pid().is_none(), "replay check of a running node");
        let out = Command::new(&self.server.program)
            .args(&self.server.args)
            .arg("--replay-check")
            .output()
            .unwrap_or_else(|e| panic!("run {} --replay-check: {e}", self.server.program.display()));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }
}

/// Starts a `coordinator` (`program`) in `dir` with `key` (written to `dir/coordinator.key`), following
/// `shards` (endpoint, genesis file), on a free port with 100 ms epochs; `extra_args` come after the test
/// settings (later flags win). Its log is `dir/coordinator.log`.
pub fn start_coordinator(
    program: &Path,
    dir: &Path,
    key: &Keypair,
    shards: &[(String, PathBuf)],
    extra_args: &[&str],
) -> ServerProcess {
    std::fs::create_dir_all(dir).expect("create coordinator dir");
    key.write_file(&dir.join("coordinator.key")).expect("write key");
    let mut args: Vec<OsString> = vec![
        "--node.data-dir".into(),
        dir.join("data").into(),
        "--node.key-file".into(),
        dir.join("coordinator.key").into(),
    ];
    args.extend(["--rpc.addr", "127.0.0.1:0", "--epoch.interval-ms", "100"].map(OsString::from));
    for (endpoint, genesis) in shards {
        args.push("--shard".into());
        args.push(format!("{endpoint}={}", genesis.display()).into());
    }
    args.extend(extra_args.iter().map(OsString::from));
    ServerProcess::start("coordinator", program, args, &dir.join("data"), &dir.join("coordinator.log"))
}

impl std::ops::Deref for ShardNodeProcess {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.server
    }
}

impl std::ops::DerefMut for ShardNodeProcess {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.server
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_exits_early_is_reported_with_its_log() {
        let dir = std::env::temp_dir().join(format!("shardex-test-support-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = std::panic::catch_unwind(|| {
            ServerProcess::start("sh", Path::new("/bin/sh"), ["-c", "echo broken >&2; exit 3"], &dir, &dir.join("log"))
        });
        let message = result.err().and_then(|e| e.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(message.contains("sh exited early") && message.contains("broken"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
