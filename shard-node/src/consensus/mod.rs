//! The shard under a validator set: the consensus engine (Malachite, through `shardex-consensus`) drives,
//! the shard builds, re-executes and commits ([`app`]); submissions follow the proposer ([`leader`],
//! [`forward`]).

pub mod app;
pub mod forward;
pub mod leader;

use std::{sync::Arc, time::Duration};

use malachitebft_core_types::LinearTimeouts;
use shardex_consensus::{engine, store::ProposalStore, Running, ShardCtx, StartError, StreamLimits};
use shardex_core::Keypair;

pub use app::{ShardApp, ValidationLimits};
pub use forward::Forwarder;
pub use leader::{Leader, RoundView, Route};

use crate::{config::NodeConfig, runtime::NodeHandle, shard::Role};

/// What the RPC needs to send submissions to the proposer.
pub struct Routing {
    /// The round in progress.
    pub leader: Arc<Leader>,
    /// Clients of the other validators.
    pub forwarder: Forwarder,
}

/// Starts consensus for this node (a validator, or a follower) over `node`, with `db` holding its proposals of the height in
/// progress beside the shard's state.
pub async fn start(
    node: Arc<NodeHandle>,
    db: &sled::Db,
    key: Keypair,
    cfg: &NodeConfig,
    routing: Arc<Routing>,
) -> Result<Running, StartError> {
    let (genesis, max_tx_bytes) = {
        let shard = node.shard();
        (shard.genesis().clone(), shard.config().max_tx_bytes)
    };
    let ctx = ShardCtx { chain: genesis.chain_id, shard: genesis.shard_id };
    let c = &cfg.consensus;
    let ms = Duration::from_millis;
    let settings = engine::EngineSettings {
        moniker: format!("{}-{}", genesis.market.symbol, &key.account().to_hex()[..8]),
        listen: c.listen.clone(),
        peers: c.peers.iter().map(|p| (p.key, p.p2p.clone())).collect(),
        timeouts: LinearTimeouts {
            propose: ms(c.timeout_propose_ms),
            propose_delta: ms(c.timeout_delta_ms),
            prevote: ms(c.timeout_vote_ms),
            prevote_delta: ms(c.timeout_delta_ms),
            precommit: ms(c.timeout_vote_ms),
            precommit_delta: ms(c.timeout_delta_ms),
            rebroadcast: ms(c.timeout_propose_ms + 2 * c.timeout_vote_ms),
            max_timeout: ms(60_000),
        },
        target_time: Some(ms(cfg.block.interval_ms)),
        max_idle: ms(c.max_idle_ms),
        wal_path: cfg.node.data_dir.join("consensus.wal"),
        streams: StreamLimits::default(),
        max_sync_batch: 32,
    };
    let store = ProposalStore::new(db.open_tree("consensus").map_err(|e| StartError::Engine(e.to_string()))?);
    let limits = ValidationLimits { max_tx_bytes, max_future_ms: c.max_future_ms };
    let app = Arc::new(ShardApp::new(node, limits, routing));
    let role = match cfg.consensus.role {
        Role::Validator => engine::Role::Validator(key),
        Role::Follower => engine::Role::Follower(key),
    };
    engine::start(ctx, role, genesis.validators, settings, app, store).await
}
