//! `shard-node`: runs the sequencer of one shardex market.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::Parser;
use eyre::{eyre, WrapErr};
use shardex_core::{genesis::Genesis, Keypair};
use shardex_shard_node::{
    config::{ConfigFlags, NodeConfig},
    rpc,
    runtime::{run_producer, NodeHandle},
    sequencer::SoloSequencer,
    shard::Shard,
};
use tracing::info;

/// The node allocates and frees many small buffers per order (state values, receipts, protobuf); mimalloc
/// costs a fraction of glibc malloc's time here (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the sequencer of one shardex market: mempool, VM, state engine and gRPC.
#[derive(Debug, Parser)]
#[command(name = "shard-node", version, about, long_about = None, args_override_self = true)]
struct Cli {
    /// TOML config file; flags override its values.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    flags: ConfigFlags,
}

fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    let cfg = NodeConfig::load(cli.config.as_deref(), &cli.flags)?;
    shardex_service::process::init_stderr_logging(&cfg.log.filter).wrap_err("log.filter")?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cfg))
}

async fn run(cfg: NodeConfig) -> eyre::Result<()> {
    let genesis = Genesis::read_file(&cfg.node.genesis)?;
    let key = Keypair::read_file(&cfg.node.key_file).wrap_err("node key")?;
    std::fs::create_dir_all(&cfg.node.data_dir)
        .wrap_err_with(|| format!("creating {}", cfg.node.data_dir.display()))?;

    let db = shardex_service::storage::open_db(&cfg.node.data_dir.join("db"))?;
    let domain = shardex_core::tx::TxDomain { chain: genesis.chain_id, shard: genesis.shard_id };
    let shard = Shard::open(db, genesis, key.clone(), cfg.shard()).wrap_err("opening shard state")?;
    let head = shard.head().clone();
    info!(target: "shard::node", height = head.height, root = %head.state_root, node_key = %key.account(), "shard opened");
    let node = NodeHandle::new(shard);

    let listener =
        tokio::net::TcpListener::bind(&cfg.rpc.addr).await.wrap_err_with(|| format!("binding {}", cfg.rpc.addr))?;
    let local = listener.local_addr()?;
    shardex_service::process::write_addr_file(&cfg.node.data_dir, &local.to_string()).wrap_err("writing rpc.addr")?;
    println!("shard-node ready: chain {} shard {} height {} rpc {local}", domain.chain, domain.shard, head.height);

    let producer = tokio::spawn(run_producer(
        Arc::clone(&node),
        Box::new(SoloSequencer::new(key, domain)),
        Duration::from_millis(cfg.block.interval_ms),
    ));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rpc::serve(Arc::clone(&node), cfg.rpc_limits(), listener, async {
        let _ = stop_rx.await;
    }));

    let outcome = tokio::select! {
        e = producer => Err(match e {
            Ok(fatal) => eyre!(fatal).wrap_err("block producer stopped"),
            Err(join) => eyre!("block producer panicked: {join}"),
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
