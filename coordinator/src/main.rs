//! `coordinator`: follows every configured shard and signs one global commitment per epoch.

use std::{path::PathBuf, sync::Arc};

use clap::Parser;
use eyre::{eyre, WrapErr};
use futures::future::select_all;
use shardex_coordinator::{
    config::{ConfigFlags, CoordConfig},
    follower::follow,
    rpc,
    runtime::{run_epochs, Coordinator},
    store::Store,
};
use shardex_service::metrics::TaskGuard;
use tracing::info;

/// Follows every shard's finalized headers and signs one global commitment per epoch; serves epochs,
/// inclusion proofs and a stream over gRPC.
#[derive(Debug, Parser)]
#[command(name = "coordinator", version, about, long_about = None, args_override_self = true)]
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
    /// Operator action: lift the hold an equivocation put on this shard (its evidence stays), then run.
    /// Repeat per shard.
    #[arg(long = "release-shard", value_name = "SHARD_ID")]
    release_shards: Vec<u32>,
}

/// Every setting's environment variable is `SHARDEX_COORDINATOR_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "SHARDEX_COORDINATOR";

fn main() -> eyre::Result<()> {
    let cli: Cli = shardex_service::config::parse_with_env(ENV_PREFIX);
    let cfg = CoordConfig::load(cli.config.as_deref(), &cli.flags)?;
    if cli.print_config {
        print!("{}", toml::to_string(&cfg).wrap_err("printing the configuration")?);
        return Ok(());
    }
    shardex_service::process::init_stderr_logging(&cfg.log.filter, cfg.log.format).wrap_err("log.filter")?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cfg, cli.release_shards))
}

async fn run(cfg: CoordConfig, release: Vec<u32>) -> eyre::Result<()> {
    let key = shardex_service::process::read_key_file(&cfg.node.key_file).wrap_err("coordinator key")?;
    let (chain, views) = cfg.shard_views()?;
    std::fs::create_dir_all(&cfg.node.data_dir)
        .wrap_err_with(|| format!("creating {}", cfg.node.data_dir.display()))?;
    let store = Store::open(&cfg.node.data_dir.join("db")).wrap_err("opening coordinator storage")?;
    for shard in release {
        match store.release(shardex_core::ShardId(shard))? {
            Some(at) => {
                tracing::warn!(target: "coordinator::node", shard, at, "operator released the shard held since an equivocation")
            }
            None => tracing::warn!(target: "coordinator::node", shard, "--release-shard: the shard was not held"),
        }
    }
    let shard_ids: Vec<_> = views.iter().map(|v| v.spec.shard).collect();
    let coord =
        Coordinator::open(store, key.clone(), chain, views, cfg.follow.max_recent_rejections, cfg.epoch_settings())?;
    info!(
        target: "coordinator::node",
        chain = chain.0,
        shards = shard_ids.len(),
        latest_epoch = coord.latest_number(),
        key = %key.account(),
        "coordinator opened"
    );

    let listener =
        tokio::net::TcpListener::bind(&cfg.rpc.addr).await.wrap_err_with(|| format!("binding {}", cfg.rpc.addr))?;
    let local = listener.local_addr()?;
    let metrics = shardex_service::metrics::serve_configured(&cfg.metrics, &cfg.node.data_dir)
        .await
        .wrap_err("serving metrics")?;
    let _sampler =
        metrics.map(|_| TaskGuard::spawn(shardex_coordinator::metrics::sample_every_second(Arc::clone(&coord))));
    // Last: a harness that waits for rpc.addr finds metrics.addr already written.
    shardex_service::process::write_addr_file(&cfg.node.data_dir, &local.to_string()).wrap_err("writing rpc.addr")?;
    println!(
        "coordinator ready: chain {chain} shards {} epoch {} key {} rpc {local}{}",
        shard_ids.len(),
        coord.latest_number(),
        key.account(),
        metrics.map_or_else(String::new, |m| format!(" metrics http://{m}/metrics"))
    );

    let followers = select_all(
        shard_ids.iter().map(|s| Box::pin(tokio::spawn(follow(Arc::clone(&coord), *s, cfg.follow_limits())))),
    );
    let epochs = tokio::spawn(run_epochs(Arc::clone(&coord)));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (rpc_coord, limits, server_limits) = (Arc::clone(&coord), cfg.rpc_limits(), cfg.rpc.limits.clone());
    let sample_metrics = metrics.is_some();
    let server = tokio::spawn(async move {
        rpc::serve(rpc_coord, limits, &server_limits, listener, sample_metrics, async {
            let _ = stop_rx.await;
        })
        .await
    });

    tokio::select! {
        e = epochs => Err(match e {
            Ok(fatal) => eyre!(fatal).wrap_err("epoch producer stopped"),
            Err(join) => eyre!("epoch producer panicked: {join}"),
        }),
        (f, _, _) = followers => Err(match f {
            Ok(fatal) => eyre!("a follower stopped on a storage failure: {fatal}"),
            Err(join) => eyre!("a follower panicked: {join}"),
        }),
        r = server => r.map_err(|e| eyre!("rpc task: {e}")).and_then(|r| r.wrap_err("rpc server")),
        _ = shardex_service::process::shutdown_signal() => {
            info!(target: "coordinator::node", "shutting down");
            let _ = stop_tx.send(());
            Ok(())
        }
    }
}
