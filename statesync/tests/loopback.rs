//! A server and a client over loopback TCP: manifests, chunks resumed after a path, refusals, and peers
//! that cannot be reached.

use std::{sync::Arc, time::Duration};

use shardex_statesync::{serve, Client, Provider, Response, WireNode, WirePath, MAX_CHUNK_NODES};

/// Serves 10 one-nibble nodes at height 5 only.
struct Toy;

fn node(i: u8) -> WireNode {
    WireNode { path: WirePath { nibbles: 1, packed: vec![i << 4] }, rlp: vec![0xc0 + i] }
}

impl Provider for Toy {
    fn manifest(&self) -> Result<(u64, Vec<u8>), String> {
        Ok((5, b"certified block".to_vec()))
    }

    fn chunk(&self, height: u64, after: Option<&WirePath>, max: u32) -> Result<Vec<WireNode>, String> {
        if height != 5 {
            return Err(format!("height {height} is not retained"));
        }
        let start = after.map_or(0, |p| (p.packed[0] >> 4) + 1);
        Ok((start..10).take(max as usize).map(node).collect())
    }
}

fn loopback() -> libp2p::Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fetches_a_manifest_and_every_chunk_and_hears_refusals() {
    let server = serve(loopback(), libp2p_identity::Keypair::generate_ed25519(), Arc::new(Toy)).await.expect("serve");
    let dead: libp2p::Multiaddr = {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("multiaddr")
    };
    let client = Client::connect(&[server.listen_addr.clone(), dead], Duration::from_secs(10)).await.expect("connect");
    assert_eq!(client.peers().len(), 1, "the dead address is left out");
    let peer = &client.peers()[0];
    assert_eq!(peer.id, server.peer_id);

    assert_eq!(client.manifest(peer).await.expect("manifest"), (5, b"certified block".to_vec()));
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let chunk = client.chunk(peer, 5, after.clone(), 4).await.expect("chunk");
        if chunk.is_empty() {
            break;
        }
        after = chunk.last().map(|n| n.path.clone());
        all.extend(chunk);
    }
    assert_eq!(all, (0..10).map(node).collect::<Vec<_>>());

    let err = client.chunk(peer, 4, None, 4).await.expect_err("an unretained height");
    assert!(err.contains("height 4 is not retained"), "{err}");
    let err = client.chunk(peer, 5, None, MAX_CHUNK_NODES + 1).await.expect_err("too large");
    assert!(err.contains("ask for 1 to"), "{err}");
    let bad = WirePath { nibbles: 1, packed: vec![0x12] };
    let err = client.chunk(peer, 5, Some(bad), 4).await.expect_err("malformed path");
    assert!(err.contains("malformed resume path"), "{err}");
    let raw = client.request(peer, shardex_statesync::Request::Manifest).await.expect("raw");
    assert!(matches!(raw, Response::Manifest { height: 5, .. }));

    drop(server);
    let err = client.manifest(peer).await.expect_err("the server stopped");
    assert!(!err.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reachable_peer_is_an_error_naming_the_addresses() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dead: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().expect("multiaddr");
    let err = Client::connect(&[dead], Duration::from_secs(5)).await.err().expect("nobody there");
    assert!(err.to_string().contains(&format!("tcp/{port}")), "{err}");
}
