//! The snapshot protocol on the wire: borsh messages in length-prefixed frames, every length bounded before
//! anything is allocated.

use std::io;

use async_trait::async_trait;
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The protocol name negotiated on every stream.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/shardex/snapshot/1");

/// Largest request frame, bytes (a request is a height and a path).
pub const MAX_REQUEST_BYTES: usize = 1024;

/// Largest response frame, bytes: a chunk of [`MAX_CHUNK_NODES`] branch nodes (at most 532 bytes of RLP
/// each, plus its path) fits with room to spare, and so does a manifest's certified block.
pub const MAX_RESPONSE_BYTES: usize = 24 * 1024 * 1024;

/// Most trie nodes one chunk request may ask for.
pub const MAX_CHUNK_NODES: u32 = 16_384;

/// Longest trie path, nibbles (32-byte keys).
pub const MAX_PATH_NIBBLES: u8 = 64;

/// A trie path: its length in nibbles and its nibbles packed two per byte, high nibble first (an odd path
/// leaves the low half of its last byte zero).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WirePath {
    /// Nibbles in the path.
    pub nibbles: u8,
    /// The nibbles, packed.
    pub packed: Vec<u8>,
}

impl WirePath {
    /// True when the packed bytes hold exactly `nibbles` nibbles (and no more than a 32-byte key's).
    pub fn is_well_formed(&self) -> bool {
        self.nibbles <= MAX_PATH_NIBBLES
            && self.packed.len() == usize::from(self.nibbles).div_ceil(2)
            && (self.nibbles.is_multiple_of(2) || self.packed.last().is_some_and(|b| b & 0x0f == 0))
    }
}

/// One trie node of a snapshot: where it sits and its RLP.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WireNode {
    /// Its path from the root.
    pub path: WirePath,
    /// Its standard Ethereum RLP.
    pub rlp: Vec<u8>,
}

/// What a syncing node asks.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// The newest height this peer offers a snapshot of, with its certified block.
    Manifest,
    /// Up to `max` nodes of the state at `height`, in path order, after `after` (None: from the root).
    Chunk {
        /// The snapshot's height (a manifest's).
        height: u64,
        /// Resume after this path.
        after: Option<WirePath>,
        /// At most this many nodes (at most [`MAX_CHUNK_NODES`]).
        max: u32,
    },
}

/// What a serving node answers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Response {
    /// The snapshot on offer: its height and the protobuf of its certified block (header with certificate,
    /// and body). The syncing node trusts none of it before checking the certificate itself.
    Manifest {
        /// The height.
        height: u64,
        /// `pb::Block`, protobuf-encoded.
        block: Vec<u8>,
    },
    /// Trie nodes in path order; fewer than asked for means the trie has been sent whole.
    Chunk {
        /// The nodes.
        nodes: Vec<WireNode>,
    },
    /// The request could not be served (a height no longer retained, a malformed request), and why.
    Refused(String),
}

/// Frames each message as a little-endian `u32` length and its borsh bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes, more than {max}")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], max: usize) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes, more than {max}", bytes.len()),
        ));
    }
    let len = u32::try_from(bytes.len()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn decode<M: BorshDeserialize>(bytes: &[u8]) -> io::Result<M> {
    borsh::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn encode<M: BorshSerialize>(message: &M) -> io::Result<Vec<u8>> {
    borsh::to_vec(message).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

#[async_trait]
impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Request> {
        decode(&read_frame(io, MAX_REQUEST_BYTES).await?)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response> {
        decode(&read_frame(io, MAX_RESPONSE_BYTES).await?)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()> {
        write_frame(io, &encode(&request)?, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()> {
        write_frame(io, &encode(&response)?, MAX_RESPONSE_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_well_formed_only_when_length_and_bytes_agree() {
        let ok = |n, p: &[u8]| WirePath { nibbles: n, packed: p.to_vec() }.is_well_formed();
        assert!(ok(0, &[]));
        assert!(ok(3, &[0xab, 0xc0]));
        assert!(ok(64, &[0x11; 32]));
        assert!(!ok(3, &[0xab, 0xcd]), "a stray low nibble");
        assert!(!ok(2, &[0xab, 0xc0]), "a byte too many");
        assert!(!ok(65, &[0x11; 33]), "longer than a key");
    }

    #[test]
    fn a_frame_longer_than_its_bound_is_refused_before_allocating() {
        let mut frame = ((MAX_REQUEST_BYTES + 1) as u32).to_le_bytes().to_vec();
        frame.extend([0u8; 8]);
        let err = futures::executor::block_on(read_frame(&mut frame.as_slice(), MAX_REQUEST_BYTES))
            .expect_err("an oversized frame");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("more than 1024"), "{err}");
    }

    #[test]
    fn messages_round_trip_through_frames() {
        let request = Request::Chunk { height: 7, after: Some(WirePath { nibbles: 1, packed: vec![0x50] }), max: 100 };
        let mut buf = Vec::new();
        futures::executor::block_on(write_frame(&mut buf, &encode(&request).expect("encode"), MAX_REQUEST_BYTES))
            .expect("write");
        let back: Request =
            decode(&futures::executor::block_on(read_frame(&mut buf.as_slice(), MAX_REQUEST_BYTES)).expect("read"))
                .expect("decode");
        assert_eq!(back, request);
    }
}
