//! Starting a shard's consensus: Malachite's actors (network, WAL, consensus, value sync) with shardex's
//! context, signer, verifier and codec, and the host loop in front of the application.

use std::{path::PathBuf, sync::Arc, time::Duration};

use malachitebft_app_channel::{
    app::{
        config::{ConsensusConfig, NodeConfig, P2pConfig, ProtocolNames, ValueSyncConfig},
        types::{codec::Codec, Keypair as PeerKeypair},
    },
    ConsensusContext, EngineHandle, NetworkContext, NetworkIdentity, RequestContext, Signer, SyncContext, WalContext,
};
use malachitebft_core_types::LinearTimeouts;
use malachitebft_engine::network::Multiaddr;
use shardex_core::{validators, AccountId, Keypair};
use tokio::task::JoinHandle;
use tracing::info;

use crate::{
    app::BlockApp,
    codec::BorshCodec,
    context::ShardCtx,
    host::{Host, HostError, HostSettings},
    signing::{ShardSigner, ShardVerifier},
    store::ProposalStore,
    stream::StreamLimits,
    types::Address,
};

/// Where a validator listens and whom it dials, and its pacing.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// A name for logs.
    pub moniker: String,
    /// libp2p listen address, e.g. `/ip4/127.0.0.1/tcp/7300`.
    pub listen: String,
    /// The other validators: their keys (which are also their libp2p identities) and libp2p addresses.
    pub peers: Vec<(AccountId, String)>,
    /// Consensus timeouts.
    pub timeouts: LinearTimeouts,
    /// Least time per height (the block interval).
    pub target_time: Option<Duration>,
    /// Longest an idle proposer waits for a first transaction before proposing an empty block.
    pub max_idle: Duration,
    /// The write-ahead log file.
    pub wal_path: PathBuf,
    /// Bounds of proposal streams.
    pub streams: StreamLimits,
    /// Most decided blocks one sync answer carries.
    pub max_sync_batch: u64,
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An address that is not a libp2p multiaddr.
    #[error("{what} {addr:?} is not a libp2p multiaddr: {why}")]
    BadAddress {
        /// Which setting.
        what: &'static str,
        /// The value.
        addr: String,
        /// Why.
        why: String,
    },
    /// The listen address is taken (Malachite's network would only log it and run deaf).
    #[error("consensus cannot listen on {addr}: {why}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        why: String,
    },
    /// The node key cannot be a libp2p identity, or the peer binding could not be signed.
    #[error("node identity: {0}")]
    Identity(String),
    /// Malachite refused to start.
    #[error("consensus engine: {0}")]
    Engine(String),
}

/// Malachite's node configuration, built from [`EngineSettings`].
#[derive(Clone, Debug)]
struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }

    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

fn multiaddr(what: &'static str, addr: &str) -> Result<Multiaddr, StartError> {
    addr.parse().map_err(|e: <Multiaddr as std::str::FromStr>::Err| StartError::BadAddress {
        what,
        addr: addr.to_owned(),
        why: e.to_string(),
    })
}

/// Fails if the TCP address of `listen` (`/ip4/A/tcp/P`, already parsed as a multiaddr) cannot be bound now. Malachite's network logs a
/// failed listen and carries on without one, so a node whose port another process took would follow
/// nothing and serve a frozen head; checked first, the node stops with the reason instead.
fn check_listen(listen: &str) -> Result<(), StartError> {
    let parts: Vec<&str> = listen.split('/').collect();
    let after = |name: &str| parts.windows(2).find(|w| w[0] == name).map(|w| w[1]);
    let ip = after("ip4").or_else(|| after("ip6")).and_then(|a| a.parse::<std::net::IpAddr>().ok());
    let port = after("tcp").and_then(|p| p.parse::<u16>().ok());
    let (Some(ip), Some(port)) = (ip, port) else { return Ok(()) };
    match std::net::TcpListener::bind((ip, port)) {
        Ok(_) => Ok(()),
        Err(e) => Err(StartError::Listen { addr: listen.to_owned(), why: e.to_string() }),
    }
}

/// libp2p protocol names of one shard, so that nodes of different chains or shards never talk consensus.
fn protocol_names(ctx: ShardCtx) -> ProtocolNames {
    let p = format!("/shardex/{}/{}", ctx.chain, ctx.shard);
    ProtocolNames {
        consensus: format!("{p}/consensus/1"),
        discovery_kad: format!("{p}/kad/1"),
        discovery_regres: format!("{p}/discovery/1"),
        // 2: decided values carry their certificate beside the body ([`crate::CertifiedBody`]).
        sync: format!("{p}/sync/2"),
        validator_proof: format!("{p}/validator-proof/1"),
    }
}

/// The libp2p peer id of a validator: its consensus key is its network identity too.
pub fn peer_id(key: &AccountId) -> Result<libp2p_identity::PeerId, StartError> {
    let public = libp2p_identity::ed25519::PublicKey::try_from_bytes(&key.0)
        .map_err(|e| StartError::Identity(format!("validator key {key}: {e}")))?;
    Ok(libp2p_identity::PublicKey::from(public).to_peer_id())
}

/// `addr` with the peer's identity appended, so that the connection is authenticated as that validator.
fn peer_addr(key: &AccountId, addr: &str) -> Result<Multiaddr, StartError> {
    let with_id = match addr.contains("/p2p/") {
        true => addr.to_owned(),
        false => format!("{}/p2p/{}", addr.trim_end_matches('/'), peer_id(key)?),
    };
    multiaddr("consensus peer", &with_id)
}

fn config(ctx: ShardCtx, s: &EngineSettings) -> Result<EngineConfig, StartError> {
    let p2p = P2pConfig {
        listen_addr: multiaddr("consensus listen address", &s.listen)?,
        persistent_peers: s.peers.iter().map(|(key, addr)| peer_addr(key, addr)).collect::<Result<_, _>>()?,
        persistent_peers_only: false,
        protocol_names: protocol_names(ctx),
        ..P2pConfig::default()
    };
    let consensus = ConsensusConfig { p2p, ..ConsensusConfig::default() };
    let value_sync = ValueSyncConfig {
        status_update_interval: Duration::from_millis(500),
        request_timeout: Duration::from_secs(5),
        ..ValueSyncConfig::default()
    };
    Ok(EngineConfig { moniker: s.moniker.clone(), consensus, value_sync })
}

/// A running consensus: the engine's actors and the host task in front of the application.
pub struct Running {
    engine: EngineHandle,
    host: JoinHandle<HostError>,
}

impl Running {
    /// Waits until the host stops (the engine stopped, or the application failed); returns why.
    pub async fn stopped(&mut self) -> HostError {
        match (&mut self.host).await {
            Ok(e) => e,
            Err(join) => HostError::EngineGone(format!("host task: {join}")),
        }
    }

    /// Stops the engine's actors (the WAL is already flushed: every signed message is written before it is
    /// sent) and the host.
    pub async fn shutdown(self) {
        let cell = self.engine.actor.get_cell();
        cell.stop_children_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5))).await;
        self.engine.actor.stop(Some("shutdown".into()));
        let _ = tokio::time::timeout(Duration::from_secs(5), self.engine.handle).await;
        self.host.abort();
    }
}

/// What this node is in its shard's consensus.
#[derive(Clone)]
pub enum Role {
    /// A member of the genesis set: it proposes and votes, signing with this key (also its libp2p identity).
    Validator(Keypair),
    /// A full node outside the set: it hears proposals and votes, re-executes and commits every decided
    /// block, and signs nothing. The key is only its libp2p identity.
    Follower(Keypair),
}

impl Role {
    fn key(&self) -> &Keypair {
        match self {
            Role::Validator(key) | Role::Follower(key) => key,
        }
    }
}

/// Starts consensus as `role` in the shard `ctx` whose set is `genesis`.
pub async fn start<A: BlockApp>(
    ctx: ShardCtx,
    role: Role,
    genesis: validators::ValidatorSet,
    settings: EngineSettings,
    app: Arc<A>,
    store: ProposalStore,
) -> Result<Running, StartError> {
    let cfg = config(ctx, &settings)?;
    check_listen(&settings.listen)?;
    let key = role.key().clone();
    let address = Address::from(key.account());
    let peer_key =
        PeerKeypair::ed25519_from_bytes(key.secret_bytes()).map_err(|e| StartError::Identity(e.to_string()))?;
    let verifier = Box::new(ShardVerifier::new(ctx));
    let (identity, consensus, signer) = match role {
        Role::Validator(_) => {
            let signer = ShardSigner::new(key.clone(), ctx);
            let peer_id = peer_key.public().to_peer_id().to_bytes();
            let proof = signer
                .sign_validator_proof(address.0.to_vec(), peer_id)
                .await
                .map_err(|e| StartError::Identity(format!("signing the peer binding: {e:?}")))?;
            let proof_bytes = BorshCodec.encode(&proof).map_err(|e| StartError::Identity(e.to_string()))?;
            let identity =
                NetworkIdentity::new_validator(settings.moniker.clone(), peer_key, address.to_string(), proof_bytes);
            let consensus = ConsensusContext::new_validator(address, verifier, Box::new(signer.clone()));
            (identity, consensus, Some(signer))
        }
        Role::Follower(_) => {
            let identity = NetworkIdentity::new(settings.moniker.clone(), peer_key, None);
            (identity, ConsensusContext::new_full_node(address, verifier), None)
        }
    };
    let follower = signer.is_none();

    let (channels, engine) = malachitebft_app_channel::start_engine(
        ctx,
        cfg,
        WalContext::new(settings.wal_path.clone(), BorshCodec),
        NetworkContext::new(identity, BorshCodec),
        consensus,
        SyncContext::new(BorshCodec),
        RequestContext::new(64),
    )
    .await
    .map_err(|e| StartError::Engine(format!("{e:#}")))?;
    info!(target: "shard::consensus", listen = %settings.listen, peers = settings.peers.len(), validators = genesis.len(), follower, "consensus engine started");

    let host_settings = HostSettings {
        timeouts: settings.timeouts,
        target_time: settings.target_time,
        max_idle: settings.max_idle,
        streams: settings.streams,
        max_sync_batch: settings.max_sync_batch,
        max_pending_proposals: 16,
    };
    let host = Host::new(app, ctx, genesis, key.account(), signer, store, host_settings);
    let host = tokio::spawn(host.run(channels));
    Ok(Running { engine, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_listen_port_stops_the_start() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("addr").port();
        let addr = format!("/ip4/127.0.0.1/tcp/{port}");
        let err = check_listen(&addr).expect_err("taken");
        assert!(matches!(err, StartError::Listen { .. }) && err.to_string().contains(&addr), "{err}");
        drop(held);
        assert!(check_listen(&addr).is_ok());
        // Addresses without a TCP port are left to libp2p.
        assert!(check_listen("/memory/7").is_ok());
    }
}
