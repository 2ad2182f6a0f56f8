//! Prometheus metrics: every server records through the `metrics` facade, and [`serve`] installs the recorder
//! and answers `GET /metrics` in Prometheus's text format on a listener of its own.
//!
//! The listener is deliberately small: one request per connection, a request head of at most
//! [`MAX_REQUEST_BYTES`] read within [`REQUEST_TIMEOUT`], at most [`MAX_CONNECTIONS`] connections at once
//! (more wait to be accepted). Anything but `GET /metrics` gets 404 or 405.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use clap::Args;
use serde::{Deserialize, Serialize};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

/// Upper bounds of every duration histogram, seconds (1 ms to 10 s).
pub const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds of every histogram of tx counts (names ending in `_txs`).
pub const TXS_BUCKETS: &[f64] = &[0.0, 1.0, 10.0, 100.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0];
/// Largest request head read, bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// A connection that has not sent its request head by then is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How often every server samples the figures its `GetStatus` reports into gauges.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often the recorder's histograms are compacted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The name of the file a server writes its bound metrics address to, in its data directory.
pub const ADDR_FILE: &str = "metrics.addr";

/// `[metrics]` of every server's config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Where to serve Prometheus metrics (`GET /metrics`); empty serves none. Port 0 picks a free port, written
    /// to `<data_dir>/metrics.addr`.
    pub addr: String,
}

/// `--metrics.addr`, overriding `[metrics] addr`.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsFlags {
    /// Where to serve Prometheus metrics (port 0 = any free port, written to <data_dir>/metrics.addr).
    #[arg(long = "metrics.addr", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsFlags {
    /// Applies the flag to `section`.
    pub fn apply(self, section: &mut MetricsSection) {
        if let Some(addr) = self.metrics_addr {
            section.addr = addr;
        }
    }
}

/// Serves metrics as `section` says: none when its address is empty (and an address file left by an earlier
/// run is removed), else [`serve`], with the bound address written to `<data_dir>/metrics.addr`. Call it before
/// writing `rpc.addr`, so that a supervisor waiting for that file finds this one written.
pub async fn serve_configured(section: &MetricsSection, data_dir: &Path) -> Result<Option<SocketAddr>, MetricsError> {
    let file = data_dir.join(ADDR_FILE);
    if section.addr.is_empty() {
        let _ = std::fs::remove_file(&file);
        return Ok(None);
    }
    let bound = serve(&section.addr).await?;
    crate::process::write_named_addr_file(data_dir, ADDR_FILE, &bound.to_string())
        .map_err(|source| MetricsError::AddrFile { path: file, source })?;
    Ok(Some(bound))
}

/// Why metrics could not be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Another recorder is installed in this process already.
    #[error("a metrics recorder is installed in this process already")]
    AlreadyInstalled,
    /// The bound address could not be written to its file.
    #[error("writing {path}: {source}")]
    AddrFile {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The recorder refused its configuration.
    #[error("building the metrics recorder: {0}")]
    Build(String),
    /// The address could not be parsed or bound.
    #[error("binding the metrics listener at {addr}: {source}")]
    Bind {
        /// What was asked for.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Installs the process's metrics recorder (histograms over [`SECONDS_BUCKETS`] for names ending in `_seconds`,
/// over [`TXS_BUCKETS`] for names ending in `_txs`) and serves it at `addr` (port 0 picks a free port). Returns
/// the bound address. Must run inside a Tokio runtime; the server runs until the runtime stops.
pub async fn serve(addr: &str) -> Result<SocketAddr, MetricsError> {
    let bind_error = |source| MetricsError::Bind { addr: addr.to_owned(), source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let handle = install()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP_EVERY).await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(accept(listener, handle));
    Ok(local)
}

/// Builds the recorder and installs it as the process's own.
fn install() -> Result<PrometheusHandle, MetricsError> {
    use metrics_exporter_prometheus::Matcher;
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_txs".into()), TXS_BUCKETS))
        .map_err(|e| MetricsError::Build(e.to_string()))?;
    builder.install_recorder().map_err(|_| MetricsError::AlreadyInstalled)
}

async fn accept(listener: TcpListener, handle: PrometheusHandle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
        let Ok((stream, _)) = listener.accept().await else { continue };
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &handle).await;
            drop(permit);
        });
    }
}

/// Reads one request head and answers it; closes the connection.
async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            respond(&mut stream, "431 Request Header Fields Too Large", "request too large\n").await?;
            // Read what the client still sends (briefly), so closing with unread input does not reset the
            // connection before the client has read the answer.
            let mut sink = [0u8; 1024];
            let drain = async { while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
            return Ok(());
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match (method, path.split('?').next().unwrap_or_default()) {
        ("GET", "/metrics") => respond(&mut stream, "200 OK", &handle.render()).await,
        ("GET", _) => respond(&mut stream, "404 Not Found", "metrics are at /metrics\n").await,
        _ => respond(&mut stream, "405 Method Not Allowed", "only GET /metrics\n").await,
    }
}

/// The request head up to its blank line; None when it is longer than [`MAX_REQUEST_BYTES`].
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The store's size on disk is read every this many samples.
const STORE_SIZE_EVERY: u64 = 10;

/// Samples, every [`SAMPLE_EVERY`] until dropped, the stream subscribers open now into
/// `{prefix}_stream_subscribers`, and every tenth time the store's size on disk into `{prefix}_store_bytes`.
/// The size lists the store's files, so it is read on a blocking thread.
pub async fn sample_streams_and_store(prefix: &'static str, subscribers: crate::stream::Subscribers, db: sled::Db) {
    let (streams, store) = (format!("{prefix}_stream_subscribers"), format!("{prefix}_store_bytes"));
    for n in 0u64.. {
        if n.is_multiple_of(STORE_SIZE_EVERY) {
            let db = db.clone();
            if let Ok(Ok(bytes)) = tokio::task::spawn_blocking(move || db.size_on_disk()).await {
                metrics::gauge!(store.clone()).set(bytes as f64);
            }
        }
        metrics::gauge!(streams.clone()).set(subscribers.active() as f64);
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// A background task that is aborted when this is dropped: a server's metrics sampler ends with the server.
#[derive(Debug)]
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl TaskGuard {
    /// Spawns `task` on the current runtime.
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fetches `http://{addr}{path}` with one plain HTTP/1.1 GET: the status line's code and the body.
    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok((code, body.to_owned()))
    }

    #[tokio::test]
    async fn serves_recorded_metrics_and_refuses_other_requests() {
        let addr = serve("127.0.0.1:0").await.expect("serve");
        metrics::counter!("shardex_test_things_total", "kind" => "a").increment(3);
        metrics::histogram!("shardex_test_wait_seconds").record(0.02);
        let (code, body) = get(addr, "/metrics").await.expect("scrape");
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("shardex_test_things_total{kind=\"a\"} 3"), "{body}");
        assert!(body.contains("shardex_test_wait_seconds_bucket{le=\"0.025\"} 1"), "{body}");
        assert_eq!(get(addr, "/").await.expect("get /").0, 404);
        // A second recorder in one process is refused, not silently ignored.
        assert!(matches!(serve("127.0.0.1:0").await, Err(MetricsError::AlreadyInstalled)));

        // A request head that never ends is cut off at the bound.
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let junk = vec![b'a'; MAX_REQUEST_BYTES + 2048];
        stream.write_all(&junk).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 431"));
        // The server still answers afterwards.
        assert_eq!(get(addr, "/metrics").await.expect("scrape").0, 200);
    }
}
