//! Serving snapshots: a libp2p swarm that answers the snapshot protocol from a [`Provider`].
//!
//! Answers are computed on blocking threads (they read the store), at most [`MAX_IN_FLIGHT`] at a time; a
//! request beyond that is refused as busy rather than queued without bound.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    request_response::{self, ProtocolSupport, ResponseChannel},
    swarm::SwarmEvent,
    Multiaddr, PeerId, Swarm,
};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, info, warn};

use crate::{
    wire::{Codec, Request, Response, WireNode, WirePath, MAX_CHUNK_NODES, PROTOCOL},
    SyncError,
};

/// Requests answered at once; more are refused as busy.
pub const MAX_IN_FLIGHT: usize = 8;

/// How long a serving node gives itself to write one answer, and a syncing node waits for one.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a serving node offers: the node implements it over its store.
pub trait Provider: Send + Sync + 'static {
    /// The newest snapshot on offer: its height and its certified block (protobuf). The node keeps that
    /// height's state readable for a while (see the node's docs) so that a sync started now can finish.
    fn manifest(&self) -> Result<(u64, Vec<u8>), String>;

    /// Up to `max` trie nodes of the state at `height`, in path order after `after`.
    fn chunk(&self, height: u64, after: Option<&WirePath>, max: u32) -> Result<Vec<WireNode>, String>;
}

/// A running snapshot server.
pub struct Server {
    /// The address it listens on (the actual port when asked for port 0).
    pub listen_addr: Multiaddr,
    /// Its libp2p identity.
    pub peer_id: PeerId,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops serving.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Behaviour = request_response::Behaviour<Codec>;

pub(crate) fn swarm(key: libp2p_identity::Keypair, support: ProtocolSupport) -> Result<Swarm<Behaviour>, SyncError> {
    let behaviour = Behaviour::with_codec(
        Codec,
        [(PROTOCOL, support)],
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
    );
    Ok(libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::new().nodelay(true), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .map_err(|e| SyncError::Transport(format!("tcp/noise: {e}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| SyncError::Transport(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build())
}

/// Listens on `listen` as `key` and answers snapshot requests from `provider` until dropped.
pub async fn serve(
    listen: Multiaddr,
    key: libp2p_identity::Keypair,
    provider: Arc<dyn Provider>,
) -> Result<Server, SyncError> {
    let mut swarm = swarm(key, ProtocolSupport::Inbound)?;
    let peer_id = *swarm.local_peer_id();
    swarm.listen_on(listen.clone()).map_err(|e| SyncError::Transport(format!("listening on {listen}: {e}")))?;
    let listen_addr = loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => break address,
            SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                return Err(SyncError::Transport(format!("listening on {listen}: {error}")));
            }
            _ => {}
        }
    };
    info!(target: "shard::statesync", %listen_addr, %peer_id, "serving state snapshots");
    let task = tokio::spawn(run(swarm, provider));
    Ok(Server { listen_addr, peer_id, task })
}

async fn run(mut swarm: Swarm<Behaviour>, provider: Arc<dyn Provider>) {
    let (done_tx, mut done_rx) = mpsc::channel::<(ResponseChannel<Response>, Response)>(MAX_IN_FLIGHT);
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            Some((channel, response)) = done_rx.recv() => {
                if swarm.behaviour_mut().send_response(channel, response).is_err() {
                    debug!(target: "shard::statesync", "a requester left before its answer");
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                }) => {
                    if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
                        in_flight.fetch_sub(1, Ordering::AcqRel);
                        let busy = Response::Refused(format!("busy: {MAX_IN_FLIGHT} requests in flight"));
                        let _ = swarm.behaviour_mut().send_response(channel, busy);
                        continue;
                    }
                    let (provider, done, in_flight) = (Arc::clone(&provider), done_tx.clone(), Arc::clone(&in_flight));
                    tokio::spawn(async move {
                        let answer = tokio::task::spawn_blocking(move || answer(provider.as_ref(), request)).await;
                        in_flight.fetch_sub(1, Ordering::AcqRel);
                        let response = answer.unwrap_or_else(|e| Response::Refused(format!("serving failed: {e}")));
                        if let Response::Refused(why) = &response {
                            debug!(target: "shard::statesync", %peer, %why, "snapshot request refused");
                        }
                        let _ = done.send((channel, response)).await;
                    });
                }
                SwarmEvent::Behaviour(request_response::Event::InboundFailure { peer, error, .. }) => {
                    warn!(target: "shard::statesync", %peer, %error, "snapshot request failed");
                }
                _ => {}
            }
        }
    }
}

fn answer(provider: &dyn Provider, request: Request) -> Response {
    match request {
        Request::Manifest => match provider.manifest() {
            Ok((height, block)) => Response::Manifest { height, block },
            Err(why) => Response::Refused(why),
        },
        Request::Chunk { height, after, max } => {
            if after.as_ref().is_some_and(|p| !p.is_well_formed()) {
                return Response::Refused("malformed resume path".into());
            }
            if max == 0 || max > MAX_CHUNK_NODES {
                return Response::Refused(format!("chunk of {max} nodes: ask for 1 to {MAX_CHUNK_NODES}"));
            }
            match provider.chunk(height, after.as_ref(), max) {
                Ok(nodes) => Response::Chunk { nodes },
                Err(why) => Response::Refused(why),
            }
        }
    }
}
