//! `shard-node`: runs one validator of one shardex market (alone, or with its genesis validator set), or a
//! follower of its validator set.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use eyre::{eyre, WrapErr};
use shardex_core::{genesis::Genesis, Keypair};
use shardex_shard_node::{
    config::{ConfigFlags, EngineKind, NodeConfig, SyncMode},
    consensus::{self, Forwarder, Leader, Routing},
    rpc,
    runtime::{run_producer, NodeHandle},
    sequencer::SoloSequencer,
    shard::{
        audit, faults,
        sync::{discard_interrupted, store_state, StoreState},
        Role, Shard,
    },
    statesync::{sync_from_peers, NetSyncSettings, SnapshotProvider},
};
use tracing::info;

/// The node allocates and frees many small buffers per order (state values, receipts, protobuf); mimalloc
/// costs a fraction of glibc malloc's time here (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs one validator of a shardex market: mempool, VM, state engine, consensus and gRPC.
#[derive(Debug, Parser)]
#[command(name = "shard-node", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// TOML config file; flags override its values.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Do not run: reopen the (stopped) node's store as a restart would, re-execute every stored block from
    /// genesis into a scratch store, require every rebuilt header to equal the stored one, print the head
    /// and exit (non-zero, naming the first differing height, if they part).
    #[arg(long)]
    replay_check: bool,
    /// Print the effective configuration (defaults, then the file, then environment variables, then flags) as
    /// TOML, and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    flags: ConfigFlags,
}

/// Every setting's environment variable is `SHARDEX_NODE_<SECTION>_<KEY>` (`--rpc.addr`: `SHARDEX_NODE_RPC_ADDR`).
const ENV_PREFIX: &str = "SHARDEX_NODE";

fn main() -> eyre::Result<()> {
    let cli: Cli = shardex_service::config::parse_with_env(ENV_PREFIX);
    let cfg = NodeConfig::load(cli.config.as_deref(), &cli.flags)?;
    if cli.print_config {
        print!("{}", toml::to_string(&cfg).wrap_err("printing the configuration")?);
        return Ok(());
    }
    shardex_service::process::init_stderr_logging(&cfg.log.filter, cfg.log.format).wrap_err("log.filter")?;
    if cli.replay_check {
        return replay_check(&cfg);
    }
    arm_crash_point()?;
    arm_divergence()?;
    arm_snapshot_corruption();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cfg))
}

async fn run(cfg: NodeConfig) -> eyre::Result<()> {
    let genesis = Genesis::read_file(&cfg.node.genesis)?;
    let key = shardex_service::process::read_key_file(&cfg.node.key_file).wrap_err("node key")?;
    std::fs::create_dir_all(&cfg.node.data_dir)
        .wrap_err_with(|| format!("creating {}", cfg.node.data_dir.display()))?;

    let db = shardex_service::storage::open_db(&cfg.node.data_dir.join("db"))?;
    let domain = shardex_core::tx::TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
    check_engine(&cfg, &genesis, &key)?;
    if cfg.sync.mode == SyncMode::Snapshot {
        snapshot_sync(&cfg, &db, &genesis).await?;
    }
    let shard = Shard::open(db.clone(), genesis, key.clone(), cfg.shard()).wrap_err("opening shard state")?;
    let head = shard.head().clone();
    info!(target: "shard::node", height = head.height, root = %head.state_root, node_key = %key.account(), engine = ?cfg.consensus.engine, role = cfg.consensus.role.as_str(), "shard opened");
    let node = NodeHandle::new(shard);
    let _snapshots = serve_snapshots(&cfg, &key, &node).await?;

    let listener =
        tokio::net::TcpListener::bind(&cfg.rpc.addr).await.wrap_err_with(|| format!("binding {}", cfg.rpc.addr))?;
    let local = listener.local_addr()?;
    let metrics = shardex_service::metrics::serve_configured(&cfg.metrics, &cfg.node.data_dir)
        .await
        .wrap_err("serving metrics")?;
    // Last: a harness that waits for rpc.addr finds metrics.addr already written.
    shardex_service::process::write_addr_file(&cfg.node.data_dir, &local.to_string()).wrap_err("writing rpc.addr")?;

    // Block production: the solo producer, or the consensus engine driving the shard.
    let (decider, routing) = match cfg.consensus.engine {
        EngineKind::Solo => {
            let producer = run_producer(
                Arc::clone(&node),
                Box::new(SoloSequencer::new(key, domain)),
                Duration::from_millis(cfg.block.interval_ms),
            );
            let task = tokio::spawn(async move { eyre!(producer.await).wrap_err("block producer stopped") });
            (task, None)
        }
        EngineKind::Malachite => {
            let endpoints = cfg.consensus.peers.iter().map(|p| (p.key, p.rpc.clone())).collect();
            let forwarder = Forwarder::new(endpoints, cfg.rpc.max_message_bytes);
            let routing = Arc::new(Routing { leader: Arc::new(Leader::new(key.account())), forwarder });
            let mut running = consensus::start(Arc::clone(&node), &db, key, &cfg, Arc::clone(&routing))
                .await
                .wrap_err("starting consensus")?;
            let task = tokio::spawn(async move { eyre!(running.stopped().await).wrap_err("consensus stopped") });
            (task, Some(routing))
        }
    };
    println!(
        "shard-node ready: chain {} shard {} height {} rpc {local} consensus {}{}",
        domain.chain,
        domain.shard,
        head.height,
        match cfg.consensus.engine {
            EngineKind::Solo => "solo".to_owned(),
            EngineKind::Malachite => format!("malachite {} {}", cfg.consensus.role.as_str(), cfg.consensus.listen),
        },
        metrics.map_or_else(String::new, |m| format!(" metrics http://{m}/metrics"))
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (rpc_node, limits, server_limits) = (Arc::clone(&node), cfg.rpc_limits(), cfg.rpc.limits.clone());
    let metrics_db = metrics.map(|_| db.clone());
    let server = tokio::spawn(async move {
        rpc::serve(rpc_node, limits, &server_limits, routing, listener, metrics_db, async {
            let _ = stop_rx.await;
        })
        .await
    });

    let outcome = tokio::select! {
        e = decider => Err(match e {
            Ok(fatal) => fatal,
            Err(join) => eyre!("block production panicked: {join}"),
        }),
        r = server => r.map_err(|e| eyre!("rpc task: {e}")).and_then(|r| r.wrap_err("rpc server")),
        _ = shardex_service::process::shutdown_signal() => {
            info!(target: "shard::node", "shutting down");
            let _ = stop_tx.send(());
            Ok(())
        }
    };
    outcome
}

/// `sync.mode = snapshot`: an empty data directory (or one an interrupted sync left) is filled from the
/// newest certified snapshot its peers offer; a store that holds a head resumes from it as usual.
async fn snapshot_sync(cfg: &NodeConfig, db: &sled::Db, genesis: &Genesis) -> eyre::Result<()> {
    match store_state(db).wrap_err("reading the store")? {
        StoreState::Holds => {
            info!(target: "shard::statesync", "the store holds a head: resuming from it, no snapshot needed");
            return Ok(());
        }
        StoreState::Interrupted(height) => {
            tracing::warn!(target: "shard::statesync", height, "a snapshot sync was interrupted here: discarding its partial state and starting over");
            discard_interrupted(db).wrap_err("discarding the interrupted sync")?;
        }
        StoreState::Empty => {}
    }
    let peers = cfg.sync.peers.iter().map(|p| p.parse()).collect::<Result<Vec<_>, _>>().wrap_err("sync.peers")?;
    let settings = NetSyncSettings {
        peers,
        chunk_nodes: cfg.sync.chunk_nodes,
        connect_timeout: Duration::from_millis(cfg.sync.connect_timeout_ms),
    };
    println!("shard-node: state sync from {} peer(s)", settings.peers.len());
    let mut last = std::time::Instant::now();
    let progress = move |p: shardex_shard_node::shard::sync::SyncProgress| {
        if last.elapsed() >= Duration::from_secs(1) {
            last = std::time::Instant::now();
            println!(
                "shard-node: state sync at height {}: {} values, {} trie nodes, {} chunks",
                p.height, p.leaves, p.nodes, p.chunks
            );
        }
    };
    let report = sync_from_peers(db.clone(), genesis.clone(), cfg.shard(), settings, progress)
        .await
        .wrap_err("state sync from a snapshot failed (the data directory is left to be started over)")?;
    for (peer, why) in &report.sync.refused {
        println!("shard-node: state sync refused a chunk from {peer}: {why}");
    }
    println!(
        "shard-node: state synced to height {}: {} values, {} trie nodes, {} bytes in {} chunks, {} ms, {} chunk(s)          refused",
        report.sync.height,
        report.sync.leaves,
        report.sync.nodes,
        report.bytes,
        report.sync.chunks,
        report.elapsed.as_millis(),
        report.sync.refused.len()
    );
    Ok(())
}

/// Serves snapshots of this node's state on `sync.listen`, if set; the address goes to `<data_dir>/sync.addr`.
async fn serve_snapshots(
    cfg: &NodeConfig,
    key: &shardex_core::Keypair,
    node: &Arc<NodeHandle>,
) -> eyre::Result<Option<shardex_statesync::Server>> {
    if cfg.sync.listen.is_empty() {
        return Ok(None);
    }
    let listen = cfg.sync.listen.parse().wrap_err("sync.listen")?;
    let identity = libp2p_identity::Keypair::ed25519_from_bytes(key.secret_bytes()).wrap_err("node key")?;
    let server = shardex_statesync::serve(listen, identity, Arc::new(SnapshotProvider::new(Arc::clone(node))))
        .await
        .wrap_err("serving snapshots")?;
    shardex_service::process::write_named_addr_file(&cfg.node.data_dir, "sync.addr", &server.listen_addr.to_string())
        .wrap_err("writing sync.addr")?;
    Ok(Some(server))
}

/// Arms `SHARDEX_CORRUPT_SNAPSHOT` (fault injection for state sync tests), if set to anything but `0`.
fn arm_snapshot_corruption() {
    if std::env::var(faults::ENV_CORRUPT_SNAPSHOT).is_ok_and(|v| v != "0") {
        faults::corrupt_snapshots(true);
        tracing::warn!(target: "shard::node", "fault injection armed: every snapshot chunk served is corrupted");
    }
}

/// `--replay-check`: see [`shardex_shard_node::shard::audit`].
fn replay_check(cfg: &NodeConfig) -> eyre::Result<()> {
    let genesis = Genesis::read_file(&cfg.node.genesis)?;
    let key = shardex_service::process::read_key_file(&cfg.node.key_file).wrap_err("node key")?;
    let db_path = cfg.node.data_dir.join("db");
    eyre::ensure!(db_path.exists(), "no store at {}: nothing to check", db_path.display());
    let db = shardex_service::storage::open_db(&db_path)
        .wrap_err_with(|| format!("opening {} (is the node still running?)", db_path.display()))?;
    let scratch = cfg.node.data_dir.join("replay-check.tmp");
    let report = audit::replay_check(db, genesis, key, cfg.shard(), &scratch, |done, of| {
        eprintln!("replay-check: {done} of {of} blocks");
    })
    .wrap_err("replay check failed")?;
    println!(
        "replay-check: ok: {} blocks ({} txs) replayed from genesis in {} ms; every header equal; {} state values \
         hash to the head's root; head {} hash {} root {}",
        report.blocks, report.txs, report.elapsed_ms, report.leaves, report.height, report.hash, report.state_root
    );
    Ok(())
}

/// Arms the crash point of `SHARDEX_CRASH_BEFORE_FLUSH` (fault injection for crash tests), if set.
fn arm_crash_point() -> eyre::Result<()> {
    let Ok(value) = std::env::var(faults::ENV_CRASH_BEFORE_FLUSH) else { return Ok(()) };
    let n: u64 = value.parse().wrap_err_with(|| {
        format!("{}={value:?}: expected the number of blocks to write before crashing", faults::ENV_CRASH_BEFORE_FLUSH)
    })?;
    faults::crash_before_flush_of(n);
    tracing::warn!(target: "shard::node", n, "fault injection armed: aborting before the flush of written block {n}");
    Ok(())
}

/// Arms the divergence of `SHARDEX_DIVERGE_AT` (fault injection for divergence tests), if set.
fn arm_divergence() -> eyre::Result<()> {
    let Ok(value) = std::env::var(faults::ENV_DIVERGE_AT) else { return Ok(()) };
    let height: u64 = value.parse().wrap_err_with(|| {
        format!("{}={value:?}: expected the height whose re-execution diverges", faults::ENV_DIVERGE_AT)
    })?;
    faults::diverge_at(height);
    tracing::warn!(target: "shard::node", height, "fault injection armed: the re-execution of this height diverges");
    Ok(())
}

/// The engine must fit the genesis set: solo only when this node alone is a quorum; under malachite every
/// configured peer must be a validator (a follower follows the validators it names).
fn check_engine(cfg: &NodeConfig, genesis: &Genesis, key: &Keypair) -> eyre::Result<()> {
    let set = &genesis.validators;
    match cfg.consensus.engine {
        EngineKind::Solo => {
            let mine = set.get(&key.account()).map_or(0, |(_, v)| v.power);
            if !set.is_quorum(mine) {
                return Err(eyre!(
                    "consensus.engine = solo, but this node holds {mine} of {} voting power in the genesis set of \
                     {} validators: run the set with consensus.engine = malachite",
                    set.total_power(),
                    set.len()
                ));
            }
        }
        EngineKind::Malachite => {
            if cfg.consensus.role == Role::Follower && cfg.consensus.peers.is_empty() {
                return Err(eyre!(
                    "consensus.role = follower needs consensus.peers: the validators to follow (KEY@MULTIADDR@URL)"
                ));
            }
            if let Some(stranger) = cfg.consensus.peers.iter().find(|p| !set.contains(&p.key)) {
                return Err(eyre!("consensus peer {} is not in the genesis validator set", stranger.key));
            }
            let missing: Vec<String> = set
                .keys()
                .filter(|k| *k != key.account() && !cfg.consensus.peers.iter().any(|p| p.key == *k))
                .map(|k| k.to_string())
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    target: "shard::node",
                    missing = %missing.join(","),
                    "consensus.peers does not name every other validator: submissions cannot be forwarded to them \
                     while they propose"
                );
            }
        }
    }
    Ok(())
}
