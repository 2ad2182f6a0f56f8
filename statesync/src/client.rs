//! Asking peers for snapshots: a libp2p swarm with a fresh identity that dials the configured peers and
//! sends them requests on behalf of the sync.

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use libp2p::{
    request_response::{self, OutboundRequestId, ProtocolSupport},
    swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent},
    Multiaddr, PeerId, Swarm,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::{
    server::swarm,
    wire::{Codec, Request, Response, WireNode, WirePath},
    SyncError,
};

/// A peer the client reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The address it was dialed at.
    pub addr: Multiaddr,
    /// Its identity, as authenticated by the connection.
    pub id: PeerId,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)
    }
}

type Reply = oneshot::Sender<Result<Response, String>>;

struct Command {
    peer: Peer,
    request: Request,
    reply: Reply,
}

/// A connection to snapshot peers.
pub struct Client {
    peers: Vec<Peer>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Dials every address in `addrs` and waits up to `timeout` for the connections. Peers that cannot be
    /// reached are logged and left out; none reached is an error.
    pub async fn connect(addrs: &[Multiaddr], timeout: Duration) -> Result<Self, SyncError> {
        let mut swarm = swarm(libp2p_identity::Keypair::generate_ed25519(), ProtocolSupport::Outbound)?;
        let mut dialing: HashMap<ConnectionId, Multiaddr> = HashMap::new();
        for addr in addrs {
            let opts = DialOpts::from(addr.clone());
            let id = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => {
                    dialing.insert(id, addr.clone());
                }
                Err(e) => warn!(target: "shard::statesync", %addr, error = %e, "cannot dial snapshot peer"),
            }
        }
        let mut peers = Vec::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while !dialing.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                event = swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
                        if let Some(addr) = dialing.remove(&connection_id) {
                            peers.push(Peer { addr, id: peer_id });
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                        if let Some(addr) = dialing.remove(&connection_id) {
                            warn!(target: "shard::statesync", %addr, %error, "snapshot peer unreachable");
                        }
                    }
                    _ => {}
                }
            }
        }
        for addr in dialing.values() {
            warn!(target: "shard::statesync", %addr, "snapshot peer did not answer in time");
        }
        if peers.is_empty() {
            return Err(SyncError::NoPeers(addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")));
        }
        peers.sort_by_key(|p| p.addr.to_string());
        info!(target: "shard::statesync", peers = peers.len(), of = addrs.len(), "connected to snapshot peers");
        let (commands, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(swarm, rx));
        Ok(Self { peers, commands, task })
    }

    /// The peers reached, in address order.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Sends `request` to `peer` and waits for its answer (or the request timeout).
    pub async fn request(&self, peer: &Peer, request: Request) -> Result<Response, String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command { peer: peer.clone(), request, reply })
            .await
            .map_err(|_| "the snapshot client stopped".to_owned())?;
        answer.await.map_err(|_| "the snapshot client stopped".to_owned())?
    }

    /// `peer`'s snapshot on offer: its height and certified block (protobuf), unverified.
    pub async fn manifest(&self, peer: &Peer) -> Result<(u64, Vec<u8>), String> {
        match self.request(peer, Request::Manifest).await? {
            Response::Manifest { height, block } => Ok((height, block)),
            Response::Refused(why) => Err(format!("refused: {why}")),
            Response::Chunk { .. } => Err("answered a manifest request with a chunk".into()),
        }
    }

    /// Up to `max` nodes of `peer`'s state at `height` after `after`, unverified.
    pub async fn chunk(
        &self,
        peer: &Peer,
        height: u64,
        after: Option<WirePath>,
        max: u32,
    ) -> Result<Vec<WireNode>, String> {
        match self.request(peer, Request::Chunk { height, after, max }).await? {
            Response::Chunk { nodes } if nodes.len() > max as usize => {
                Err(format!("sent {} nodes for a chunk of at most {max}", nodes.len()))
            }
            Response::Chunk { nodes } => Ok(nodes),
            Response::Refused(why) => Err(format!("refused: {why}")),
            Response::Manifest { .. } => Err("answered a chunk request with a manifest".into()),
        }
    }
}

async fn run(mut swarm: Swarm<request_response::Behaviour<Codec>>, mut commands: mpsc::Receiver<Command>) {
    let mut waiting: HashMap<OutboundRequestId, Reply> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(Command { peer, request, reply }) = command else { return };
                let id = swarm.behaviour_mut().send_request_with_addresses(&peer.id, request, vec![peer.addr]);
                waiting.insert(id, reply);
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) => {
                    if let Some(reply) = waiting.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { request_id, error, .. }) => {
                    if let Some(reply) = waiting.remove(&request_id) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                _ => {}
            }
        }
    }
}
