//! `explorer`: serves a live web page of a shardex network (shards, validators, epochs, books, trades,
//! option Greeks, bridge messages, verified account balances).

use std::{path::PathBuf, sync::Arc};

use clap::Parser;
use eyre::WrapErr;
use shardex_explorer::{
    collect::{Explorer, Network},
    config::{ConfigFlags, ExplorerConfig},
    http, ADDR_FILE,
};
use tracing::info;

/// Serves a live web page of a shardex network, fed by its nodes', coordinator's and relayer's gRPC services.
#[derive(Debug, Parser)]
#[command(name = "explorer", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// TOML config file; flags override its values.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (defaults, then the file, then environment variables, then flags) as
    /// TOML, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    flags: ConfigFlags,
}

/// Every setting's environment variable is `SHARDEX_EXPLORER_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "SHARDEX_EXPLORER";

fn main() -> eyre::Result<()> {
    let cli: Cli = shardex_service::config::parse_with_env(ENV_PREFIX);
    let cfg = ExplorerConfig::load(cli.config.as_deref(), &cli.flags)?;
    if cli.print_config {
        print!("{}", toml::to_string(&cfg).wrap_err("printing the configuration")?);
        return Ok(());
    }
    shardex_service::process::init_stderr_logging(&cfg.log.filter, cfg.log.format).wrap_err("log.filter")?;
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(run(cfg))
}

async fn run(cfg: ExplorerConfig) -> eyre::Result<()> {
    let net = Network::from_config(&cfg)?;
    let explorer = Arc::new(Explorer::new(net, cfg.view.clone()));
    let listener = tokio::net::TcpListener::bind(&cfg.http.addr)
        .await
        .wrap_err_with(|| format!("binding http.addr {}", cfg.http.addr))?;
    let addr = listener.local_addr()?;
    std::fs::create_dir_all(&cfg.node.data_dir)
        .wrap_err_with(|| format!("creating {}", cfg.node.data_dir.display()))?;
    shardex_service::process::write_named_addr_file(&cfg.node.data_dir, ADDR_FILE, &addr.to_string())
        .wrap_err("writing the address file")?;
    let tasks = explorer.spawn();
    info!(
        %addr,
        shards = explorer.net.shards.len(),
        coordinator = explorer.net.coordinator.is_some(),
        relayer = explorer.net.relayer.is_some(),
        "explorer serving http://{addr}/"
    );
    let app = http::router(Arc::clone(&explorer), cfg.http.max_concurrent_requests, cfg.http.max_account_lookups);
    let served = axum::serve(listener, app).with_graceful_shutdown(shardex_service::process::shutdown_signal()).await;
    for t in tasks {
        t.abort();
    }
    served.wrap_err("serving http")?;
    info!("explorer stopped");
    Ok(())
}
