//! `relayer`: carries cross-shard collateral messages between the configured shards, proven against the
//! coordinator's epochs; serves the Bridge service.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{atomic::AtomicBool, Arc, Mutex},
    time::Duration,
};

use clap::Parser;
use eyre::{eyre, WrapErr};
use shardex_bridge::{
    actions::Coordinator,
    config::{ConfigFlags, RelayerConfig},
    driver::{Cursor, Driver, DriverSettings, Shared},
    epochs::follow_epochs,
    follow::{follow_shard, Backoff, ShardLink},
    rpc,
    store::CursorStore,
    tracker::Tracker,
};
use shardex_core::AccountId;
use shardex_service::metrics::TaskGuard;
use tracing::info;

/// Relays cross-shard collateral messages: imports the coordinator's epochs, delivers, acks and refunds
/// with proofs; serves message lifecycles and status over gRPC.
#[derive(Debug, Parser)]
#[command(name = "relayer", version, about, long_about = None, args_override_self = true)]
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

/// Every setting's environment variable is `SHARDEX_RELAYER_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "SHARDEX_RELAYER";

fn main() -> eyre::Result<()> {
    let cli: Cli = shardex_service::config::parse_with_env(ENV_PREFIX);
    let cfg = RelayerConfig::load(cli.config.as_deref(), &cli.flags)?;
    if cli.print_config {
        print!("{}", toml::to_string(&cfg).wrap_err("printing the configuration")?);
        return Ok(());
    }
    shardex_service::process::init_stderr_logging(&cfg.log.filter, cfg.log.format).wrap_err("log.filter")?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cfg))
}

async fn run(cfg: RelayerConfig) -> eyre::Result<()> {
    let key = shardex_service::process::read_key_file(&cfg.node.key_file).wrap_err("relayer key")?;
    let coordinator_key = AccountId::from_hex(cfg.coordinator.key.trim()).wrap_err("coordinator.key")?;
    // Entries naming the same shard (with the same genesis) are that shard reached through several of its
    // validators; every shard is of one chain.
    let mut links = BTreeMap::new();
    for shard in shardex_service::config::group_shards(&cfg.shards)? {
        let link = ShardLink::new(shard.endpoints, &shard.genesis)?;
        links.insert(link.shard, Arc::new(link));
    }
    let chain = links.values().next().map(|l| l.chain).ok_or_else(|| eyre!("no shards"))?;
    std::fs::create_dir_all(&cfg.node.data_dir)
        .wrap_err_with(|| format!("creating {}", cfg.node.data_dir.display()))?;
    let store = CursorStore::open(&cfg.node.data_dir.join("db")).wrap_err("opening relayer store")?;

    let (events, _) = tokio::sync::broadcast::channel(cfg.rpc.stream_buffer);
    let shared = Arc::new(Shared {
        account: key.account(),
        chain,
        links: links.clone(),
        tracker: Mutex::new(Tracker::new(cfg.tracker_limits())),
        cursors: Mutex::new(BTreeMap::new()),
        latest_epoch: Default::default(),
        events,
        room: Arc::new(AtomicBool::new(true)),
    });
    let backoff = Backoff {
        min: Duration::from_millis(cfg.follow.min_backoff_ms),
        max: Duration::from_millis(cfg.follow.max_backoff_ms),
    };
    let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(cfg.follow.max_buffered_events);
    let mut starts = Vec::new();
    for link in links.values() {
        let from = store.cursor(link.shard)?.unwrap_or(1);
        shared.cursors().insert(link.shard, Cursor { next: from, safe: from, imported: 0 });
        starts.push(format!("{}@{from}", link.shard));
        tokio::spawn(follow_shard(Arc::clone(link), from, ev_tx.clone(), Arc::clone(&shared.room), backoff));
    }
    drop(ev_tx);
    let (epoch_tx, epoch_rx) = tokio::sync::watch::channel(None);
    tokio::spawn(follow_epochs(cfg.coordinator.endpoint.clone(), coordinator_key, chain, epoch_tx, backoff));
    let settings = DriverSettings {
        poll: Duration::from_millis(cfg.relay.poll_interval_ms),
        inflight_ms: cfg.relay.inflight_ms,
        max_steps_per_pass: cfg.relay.max_steps_per_pass,
        max_concurrent: cfg.relay.max_concurrent,
        cursor_flush: Duration::from_millis(cfg.relay.cursor_flush_ms),
    };
    let coord = Coordinator::new(cfg.coordinator.endpoint.clone(), coordinator_key, chain);
    let store_db = store.db();
    let driver =
        tokio::spawn(Driver::new(Arc::clone(&shared), coord, key.clone(), settings, store).run(ev_rx, epoch_rx));

    let listener =
        tokio::net::TcpListener::bind(&cfg.rpc.addr).await.wrap_err_with(|| format!("binding {}", cfg.rpc.addr))?;
    let local = listener.local_addr()?;
    let metrics = shardex_service::metrics::serve_configured(&cfg.metrics, &cfg.node.data_dir)
        .await
        .wrap_err("serving metrics")?;
    let _sampler = metrics.map(|_| TaskGuard::spawn(shardex_bridge::metrics::sample_every_second(Arc::clone(&shared))));
    // Last: a harness that waits for rpc.addr finds metrics.addr already written.
    shardex_service::process::write_addr_file(&cfg.node.data_dir, &local.to_string()).wrap_err("writing rpc.addr")?;
    info!(target: "relayer::node", chain = chain.0, shards = links.len(), account = %key.account(), "relayer started");
    println!(
        "relayer ready: chain {chain} shards {} from {} account {} rpc {local}{}",
        links.len(),
        starts.join(","),
        key.account(),
        metrics.map_or_else(String::new, |m| format!(" metrics http://{m}/metrics"))
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (rpc_shared, max_message_bytes, limits) =
        (Arc::clone(&shared), cfg.rpc.max_message_bytes, cfg.rpc.limits.clone());
    let subscribers = shardex_service::stream::Subscribers::new(
        cfg.rpc.max_subscribers,
        Duration::from_millis(cfg.rpc.stream_idle_ms),
        Duration::from_millis(cfg.rpc.stream_stall_ms),
    );
    let _streams = metrics.map(|_| {
        let sample = shardex_service::metrics::sample_streams_and_store;
        TaskGuard::spawn(sample("shardex_relayer", subscribers.clone(), store_db))
    });
    let server = tokio::spawn(async move {
        rpc::serve(rpc_shared, subscribers, max_message_bytes, &limits, listener, async {
            let _ = stop_rx.await;
        })
        .await
    });
    tokio::select! {
        d = driver => Err(match d {
            Ok(Ok(())) => eyre!("relaying loop ended"),
            Ok(Err(fatal)) => eyre!(fatal).wrap_err("relaying loop stopped"),
            Err(join) => eyre!("relaying loop panicked: {join}"),
        }),
        r = server => r.map_err(|e| eyre!("rpc task: {e}")).and_then(|r| r.wrap_err("rpc server")),
        _ = shardex_service::process::shutdown_signal() => {
            info!(target: "relayer::node", "shutting down");
            let _ = stop_tx.send(());
            Ok(())
        }
    }
}
