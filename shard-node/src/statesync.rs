//! State sync over the network: the node's side of `shardex-statesync`.
//!
//! A serving node answers manifests and chunks from its committed state ([`SnapshotProvider`]); a node
//! started with `sync.mode = snapshot` on an empty data directory asks its `sync.peers` for their manifests,
//! takes the highest height whose block is certified by the genesis validators, and imports that height's
//! state from every peer in turn ([`sync_from_peers`]): a peer whose chunk does not verify is passed over for
//! the next, which is asked for the same range. Consensus then catches up from that height by value sync.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_trie::Nibbles;
use prost::Message;
use shardex_core::{genesis::Genesis, pb};
use shardex_statesync::{Client, Peer, Provider, WireNode, WirePath};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::{
    runtime::NodeHandle,
    shard::{
        faults,
        sync::{sync_certified, CertifiedSnapshotBlock, SnapshotSource, SyncProgress, SyncReport},
        ShardConfig, ShardError,
    },
    state::SnapshotNode,
};

/// Serves snapshots of a running node's committed state.
pub struct SnapshotProvider {
    node: Arc<NodeHandle>,
}

impl SnapshotProvider {
    /// A provider over `node`.
    pub fn new(node: Arc<NodeHandle>) -> Self {
        Self { node }
    }
}

impl Provider for SnapshotProvider {
    fn manifest(&self) -> Result<(u64, Vec<u8>), String> {
        let (height, block) = self.node.head_view().snapshot_manifest().map_err(|e| e.to_string())?;
        Ok((height, block.encode_to_vec()))
    }

    fn chunk(&self, height: u64, after: Option<&WirePath>, max: u32) -> Result<Vec<WireNode>, String> {
        let after = after.map(from_wire).transpose()?;
        let nodes =
            self.node.head_view().snapshot_chunk_at(height, after.as_ref(), max as usize).map_err(|e| e.to_string())?;
        let mut wire: Vec<WireNode> = nodes.iter().map(to_wire).collect();
        if let (true, Some(first)) = (faults::corrupts_snapshots(), wire.first_mut()) {
            if let Some(byte) = first.rlp.last_mut() {
                *byte ^= 0x01;
            }
        }
        Ok(wire)
    }
}

/// A snapshot node as sent.
pub fn to_wire(node: &SnapshotNode) -> WireNode {
    WireNode { path: wire_path(&node.path), rlp: node.rlp.clone() }
}

/// A trie path as sent.
pub fn wire_path(path: &Nibbles) -> WirePath {
    // A path is at most 64 nibbles (32-byte keys), so its length fits a byte.
    WirePath { nibbles: path.len() as u8, packed: path.pack().to_vec() }
}

/// A trie path as received (refused unless well formed).
pub fn from_wire(path: &WirePath) -> Result<Nibbles, String> {
    if !path.is_well_formed() {
        return Err(format!("malformed trie path of {} nibbles in {} bytes", path.nibbles, path.packed.len()));
    }
    let mut nibbles = Nibbles::unpack(&path.packed);
    nibbles.truncate(usize::from(path.nibbles));
    Ok(nibbles)
}

/// A chunk request in flight.
type PendingChunk = JoinHandle<Result<Vec<WireNode>, String>>;

/// One peer as a source of the chunks of one height; prefetches the range it is told comes next, and
/// counts the bytes it delivered.
pub struct PeerSource {
    client: Arc<Client>,
    peer: Peer,
    height: u64,
    runtime: tokio::runtime::Handle,
    prefetched: Option<(Nibbles, usize, PendingChunk)>,
    bytes: u64,
}

impl PeerSource {
    /// `peer` of `client`, asked for the state at `height`; requests run on `runtime` (the caller blocks on
    /// them from a thread outside it).
    pub fn new(client: Arc<Client>, peer: Peer, height: u64, runtime: tokio::runtime::Handle) -> Self {
        Self { client, peer, height, runtime, prefetched: None, bytes: 0 }
    }

    /// Bytes of trie nodes received from this peer (paths and RLP, as framed).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Drops the prefetched request, if any.
    fn cancel_prefetch(&mut self) {
        if let Some((_, _, pending)) = self.prefetched.take() {
            pending.abort();
        }
    }

    fn request(&self, after: Option<&Nibbles>, max: usize) -> PendingChunk {
        let (client, peer, height) = (Arc::clone(&self.client), self.peer.clone(), self.height);
        let (after, max) = (after.map(wire_path), u32::try_from(max).unwrap_or(u32::MAX));
        self.runtime.spawn(async move { client.chunk(&peer, height, after, max).await })
    }
}

impl Drop for PeerSource {
    fn drop(&mut self) {
        self.cancel_prefetch();
    }
}

impl SnapshotSource for PeerSource {
    fn name(&self) -> String {
        self.peer.to_string()
    }

    fn chunk(&mut self, after: Option<&Nibbles>, max: usize) -> Result<Vec<SnapshotNode>, String> {
        let pending = match self.prefetched.take() {
            Some((at, m, pending)) if Some(&at) == after && m == max => pending,
            stale => {
                self.prefetched = stale;
                self.cancel_prefetch();
                self.request(after, max)
            }
        };
        let nodes = self.runtime.block_on(pending).map_err(|e| format!("snapshot request failed: {e}"))??;
        self.bytes += nodes.iter().map(|n| (n.path.packed.len() + n.rlp.len() + 9) as u64).sum::<u64>();
        nodes.into_iter().map(|n| Ok(SnapshotNode { path: from_wire(&n.path)?, rlp: n.rlp })).collect()
    }

    fn prefetch(&mut self, after: &Nibbles, max: usize) {
        self.cancel_prefetch();
        self.prefetched = Some((*after, max, self.request(Some(after), max)));
    }
}

/// What a network sync did.
#[derive(Debug, Clone)]
pub struct NetSyncReport {
    /// The import itself.
    pub sync: SyncReport,
    /// Bytes of trie nodes received (paths and RLP, as framed).
    pub bytes: u64,
    /// Wall time from the first connection to the flushed head.
    pub elapsed: Duration,
}

/// How to reach the snapshot peers.
#[derive(Debug, Clone)]
pub struct NetSyncSettings {
    /// Their `sync.listen` multiaddrs.
    pub peers: Vec<libp2p::Multiaddr>,
    /// Nodes per chunk.
    pub chunk_nodes: u32,
    /// How long to wait for connections.
    pub connect_timeout: Duration,
}

/// Syncs the empty store `db` from the peers of `settings` (see the module docs), printing progress through
/// `progress`. Runs the import on a blocking thread.
pub async fn sync_from_peers(
    db: sled::Db,
    genesis: Genesis,
    config: ShardConfig,
    settings: NetSyncSettings,
    progress: impl FnMut(SyncProgress) + Send + 'static,
) -> Result<NetSyncReport, ShardError> {
    let started = Instant::now();
    let client = Client::connect(&settings.peers, settings.connect_timeout)
        .await
        .map_err(|e| ShardError::Inconsistent(format!("snapshot sync: {e}")))?;
    // The newest certified height on offer; a peer whose manifest does not verify is not trusted for it.
    let mut offers = Vec::new();
    for peer in client.peers() {
        let offer = client.manifest(peer).await.and_then(|(height, bytes)| {
            let block = pb::Block::decode(bytes.as_slice()).map_err(|e| format!("manifest block: {e}"))?;
            let certified = CertifiedSnapshotBlock::verify(&genesis, &config, block).map_err(|e| e.to_string())?;
            match certified.height() == height {
                true => Ok(certified),
                false => Err(format!("manifest says height {height}, its block is {}", certified.height())),
            }
        });
        match offer {
            Ok(certified) => {
                info!(target: "shard::statesync", peer = %peer, height = certified.height(), "snapshot offered");
                offers.push((peer.clone(), certified));
            }
            Err(why) => warn!(target: "shard::statesync", peer = %peer, %why, "snapshot offer refused"),
        }
    }
    let Some((first, block)) = offers.into_iter().max_by_key(|(_, b)| b.height()) else {
        return Err(ShardError::Inconsistent(
            "snapshot sync: no peer offered a snapshot certified by the genesis validators".into(),
        ));
    };
    let height = block.height();
    info!(target: "shard::statesync", height, root = %block.state_root(), from = %first, "syncing state from a snapshot");
    // The offering peer first, then every other (each keeps the height while it is within its retention).
    let mut order = vec![first.clone()];
    order.extend(client.peers().iter().filter(|p| **p != first).cloned());
    let runtime = tokio::runtime::Handle::current();
    let chunk_nodes = settings.chunk_nodes as usize;
    let mut progress = progress;
    let client = Arc::new(client);
    let (sync, bytes) = tokio::task::spawn_blocking(move || {
        let mut sources: Vec<PeerSource> =
            order.into_iter().map(|peer| PeerSource::new(Arc::clone(&client), peer, height, runtime.clone())).collect();
        let mut dyns: Vec<&mut dyn SnapshotSource> = sources.iter_mut().map(|s| s as &mut dyn SnapshotSource).collect();
        let report = sync_certified(&db, &genesis, block, &mut dyns, chunk_nodes, &mut progress)?;
        let bytes = sources.iter().map(PeerSource::bytes).sum::<u64>();
        Ok::<_, ShardError>((report, bytes))
    })
    .await
    .map_err(|e| ShardError::Inconsistent(format!("snapshot sync panicked: {e}")))??;
    Ok(NetSyncReport { sync, bytes, elapsed: started.elapsed() })
}
