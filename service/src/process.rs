//! The lifecycle of a server process: logging, announcing the bound address, stopping on a signal.

use std::path::Path;

/// Writes `addr` to `<dir>/rpc.addr` atomically (write, then rename), so a harness polling for the file
/// never reads half a line.
pub fn write_addr_file(dir: &Path, addr: &str) -> std::io::Result<()> {
    write_named_addr_file(dir, "rpc.addr", addr)
}

/// Writes `addr` to `<dir>/<name>` atomically (temp file + rename), for tests and tools to read another
/// listener's actual address (e.g. `sync.addr`).
pub fn write_named_addr_file(dir: &Path, name: &str, addr: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, addr)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// How a server writes its log lines (`[log] format`, `--log.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (ANSI colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`) and the spans
    /// the event is in.
    Json,
}

/// Logs to stderr through `tracing` with the EnvFilter `filter`, in `format`.
pub fn init_stderr_logging(filter: &str, format: LogFormat) -> Result<(), tracing_subscriber::filter::ParseError> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter)?)
        .with_target(true)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
    Ok(())
}

/// Resolves on ctrl-c or, on unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Reads a server's secret key file, and warns when anyone but its owner may read it (the key signs for the
/// server: blocks, epochs or relayed txs).
pub fn read_key_file(path: &std::path::Path) -> Result<shardex_core::Keypair, shardex_core::keys::KeyFileError> {
    let key = shardex_core::Keypair::read_file(path)?;
    if let Some(mode) = shardex_core::keys::loose_mode(path) {
        tracing::warn!(
            target: "service::keys",
            file = %path.display(),
            mode = %format!("{mode:03o}"),
            "the key file is readable by others; make it readable by its owner only (chmod 600)"
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_addr_file(dir.path(), "127.0.0.1:1").expect("write");
        write_addr_file(dir.path(), "127.0.0.1:2").expect("rewrite");
        assert_eq!(std::fs::read_to_string(dir.path().join("rpc.addr")).expect("read"), "127.0.0.1:2");
        assert!(!dir.path().join("rpc.addr.tmp").exists());
    }
}
