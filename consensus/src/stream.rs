//! Proposed blocks as streams of parts: cutting a block into `Init`, `Header`, `Txs`… and `Fin`, and putting
//! streams from the network back together. Everything that arrives is adversarial: streams are bounded in
//! number, parts and bytes, malformed ones are dropped, and nothing is re-executed here.

use std::collections::{BTreeMap, HashMap, VecDeque};

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::{
    streaming::{StreamId, StreamMessage},
    types::PeerId,
};
use malachitebft_engine::util::streaming::StreamContent;
use shardex_core::{block::Certificate, hash::block_hash, pb, B256};

use crate::{
    messages::{PartInit, ProposalPart},
    signing::Signature,
    types::Height,
};

/// A block as consensus carries it: the exact header bytes and the encoded transactions, in order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockBody {
    /// The encoded `BlockHeader`.
    pub header: Vec<u8>,
    /// Each transaction's encoded `SignedTx`.
    pub txs: Vec<Vec<u8>>,
}

impl BlockBody {
    /// The block hash: keccak256 of the header bytes.
    pub fn hash(&self) -> B256 {
        block_hash(&self.header)
    }

    /// Bytes of header and transactions.
    pub fn size_bytes(&self) -> usize {
        self.header.len() + self.txs.iter().map(Vec::len).sum::<usize>()
    }
}

/// A decided block as value sync carries it: the body and the certificate that decided it, so that a node
/// catching up can tell a peer's bad body (refused) from a certified block that does not replay here
/// (divergence). The engine checks the certificate it carries beside the value; this copy binds the body.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CertifiedBody {
    /// The block.
    pub body: BlockBody,
    /// The deciding round.
    pub round: u32,
    /// `(signer, signature)` of each precommit, in signer order.
    pub signatures: Vec<(Vec<u8>, Vec<u8>)>,
}

impl CertifiedBody {
    /// `body` decided by `certificate`.
    pub fn new(body: BlockBody, certificate: &Certificate) -> Self {
        let signatures = certificate.signatures.iter().map(|s| (s.signer.clone(), s.signature.clone())).collect();
        Self { body, round: certificate.round, signatures }
    }

    /// The certificate, as the shard stores it.
    pub fn certificate(&self) -> Certificate {
        let signatures = self
            .signatures
            .iter()
            .map(|(signer, signature)| pb::HeaderSignature { signer: signer.clone(), signature: signature.clone() })
            .collect();
        Certificate { round: self.round, signatures }
    }
}

/// Bounds of proposal streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Bytes of transactions per `Txs` part.
    pub chunk_bytes: usize,
    /// Largest block (header and transactions) a stream may carry.
    pub max_block_bytes: usize,
    /// Most parts in one stream.
    pub max_parts: u64,
    /// Streams being reassembled at once; the oldest is dropped beyond it.
    pub max_streams: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self { chunk_bytes: 512 * 1024, max_block_bytes: 16 * 1024 * 1024, max_parts: 4_096, max_streams: 64 }
    }
}

/// The parts of a proposal of `body`, signed (`fin`) by its proposer.
pub fn parts(init: PartInit, body: &BlockBody, fin: Signature, chunk_bytes: usize) -> Vec<ProposalPart> {
    let mut out = vec![ProposalPart::Init(init), ProposalPart::Header(body.header.clone())];
    let mut chunk: Vec<Vec<u8>> = Vec::new();
    let mut size = 0usize;
    for tx in &body.txs {
        if size + tx.len() > chunk_bytes && !chunk.is_empty() {
            out.push(ProposalPart::Txs(std::mem::take(&mut chunk)));
            size = 0;
        }
        size += tx.len();
        chunk.push(tx.clone());
    }
    if !chunk.is_empty() {
        out.push(ProposalPart::Txs(chunk));
    }
    out.push(ProposalPart::Fin(fin));
    out
}

/// The stream id of a publication at (`height`, `round`); `nonce` tells restreams in one round apart.
pub fn stream_id(height: Height, round: u32, nonce: u32) -> StreamId {
    let mut id = Vec::with_capacity(16);
    id.extend_from_slice(&height.0.to_be_bytes());
    id.extend_from_slice(&round.to_be_bytes());
    id.extend_from_slice(&nonce.to_be_bytes());
    StreamId::new(Bytes::from(id))
}

/// The stream messages that publish `parts`: each part in order, then the end of the stream.
pub fn messages(id: &StreamId, parts: Vec<ProposalPart>) -> Vec<StreamMessage<ProposalPart>> {
    let n = parts.len() as u64;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p)))
        .chain(std::iter::once(StreamMessage::new(id.clone(), n, StreamContent::Fin)))
        .collect()
}

/// A stream put back together: who proposed which block, and the proposer's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// The stream's `Init`.
    pub init: PartInit,
    /// The block.
    pub body: BlockBody,
    /// The `Fin` signature.
    pub signature: Signature,
}

#[derive(Default)]
struct Partial {
    messages: BTreeMap<u64, StreamContent<ProposalPart>>,
    end: Option<u64>,
    bytes: usize,
}

fn part_bytes(c: &StreamContent<ProposalPart>) -> usize {
    match c {
        StreamContent::Data(ProposalPart::Header(h)) => h.len(),
        StreamContent::Data(ProposalPart::Txs(txs)) => txs.iter().map(|t| t.len() + 4).sum(),
        _ => 96,
    }
}

/// Why a stream was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// More parts or bytes than the limits allow.
    #[error("proposal stream exceeds its limits: {0}")]
    TooLarge(String),
    /// Parts out of the `Init, Header, Txs…, Fin` shape.
    #[error("malformed proposal stream: {0}")]
    Malformed(String),
}

/// Streams being reassembled, by (publisher, stream id).
pub struct Reassembler {
    limits: StreamLimits,
    streams: HashMap<(PeerId, StreamId), Partial>,
    order: VecDeque<(PeerId, StreamId)>,
    /// Streams recently completed or dropped: late duplicates of their messages are ignored.
    closed: VecDeque<(PeerId, StreamId)>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(limits: StreamLimits) -> Self {
        Self { limits, streams: HashMap::new(), order: VecDeque::new(), closed: VecDeque::new() }
    }

    /// Streams in progress.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when no stream is in progress.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Adds one message from `publisher`. Returns the block once its stream is complete; an error drops the
    /// stream (the caller logs it, nothing else happens).
    pub fn insert(
        &mut self,
        publisher: PeerId,
        msg: StreamMessage<ProposalPart>,
    ) -> Result<Option<Assembled>, StreamError> {
        let key = (publisher, msg.stream_id.clone());
        if self.closed.contains(&key) {
            return Ok(None);
        }
        if !self.streams.contains_key(&key) {
            if self.streams.len() >= self.limits.max_streams {
                if let Some(oldest) = self.order.pop_front() {
                    self.streams.remove(&oldest);
                }
            }
            self.order.push_back(key.clone());
            self.streams.insert(key.clone(), Partial::default());
        }
        let result = self.add(&key, msg);
        match &result {
            Ok(Some(_)) | Err(_) => self.forget(&key),
            Ok(None) => {}
        }
        result
    }

    fn forget(&mut self, key: &(PeerId, StreamId)) {
        self.streams.remove(key);
        self.order.retain(|k| k != key);
        if self.closed.len() >= self.limits.max_streams {
            self.closed.pop_front();
        }
        self.closed.push_back(key.clone());
    }

    fn add(
        &mut self,
        key: &(PeerId, StreamId),
        msg: StreamMessage<ProposalPart>,
    ) -> Result<Option<Assembled>, StreamError> {
        let limits = self.limits;
        let Some(partial) = self.streams.get_mut(key) else { return Ok(None) };
        if msg.sequence >= limits.max_parts {
            return Err(StreamError::TooLarge(format!("part {} of at most {}", msg.sequence, limits.max_parts)));
        }
        if matches!(msg.content, StreamContent::Fin) {
            partial.end = Some(msg.sequence);
        }
        if partial.messages.contains_key(&msg.sequence) {
            return Ok(None); // a duplicate (gossip delivers some twice)
        }
        partial.bytes += part_bytes(&msg.content);
        if partial.bytes > limits.max_block_bytes + 64 * 1024 {
            return Err(StreamError::TooLarge(format!("more than {} bytes", limits.max_block_bytes)));
        }
        partial.messages.insert(msg.sequence, msg.content);
        let Some(end) = partial.end else { return Ok(None) };
        if partial.messages.len() as u64 != end + 1 {
            return Ok(None);
        }
        assemble(std::mem::take(&mut partial.messages), limits).map(Some)
    }
}

fn assemble(
    messages: BTreeMap<u64, StreamContent<ProposalPart>>,
    limits: StreamLimits,
) -> Result<Assembled, StreamError> {
    let malformed = |what: &str| StreamError::Malformed(what.to_owned());
    let mut parts = messages.into_values();
    let Some(StreamContent::Data(ProposalPart::Init(init))) = parts.next() else {
        return Err(malformed("no Init first"));
    };
    let Some(StreamContent::Data(ProposalPart::Header(header))) = parts.next() else {
        return Err(malformed("no Header after Init"));
    };
    let mut txs = Vec::new();
    let mut signature = None;
    for content in parts {
        match (content, signature) {
            (StreamContent::Data(ProposalPart::Txs(chunk)), None) => txs.extend(chunk),
            (StreamContent::Data(ProposalPart::Fin(sig)), None) => signature = Some(sig),
            (StreamContent::Fin, Some(_)) => {}
            _ => return Err(malformed("parts out of order: expected Txs… then Fin")),
        }
    }
    let signature = signature.ok_or_else(|| malformed("no Fin part"))?;
    let body = BlockBody { header, txs };
    if body.size_bytes() > limits.max_block_bytes {
        return Err(StreamError::TooLarge(format!("{} block bytes", body.size_bytes())));
    }
    Ok(Assembled { init, body, signature })
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::Round;

    use super::*;
    use crate::types::Address;

    fn init() -> PartInit {
        PartInit { height: Height(3), round: Round::new(1), pol_round: Round::Nil, proposer: Address([1; 32]) }
    }

    fn body(n: usize) -> BlockBody {
        BlockBody { header: vec![0xaa; 100], txs: (0..n).map(|i| vec![i as u8; 300]).collect() }
    }

    /// A peer id with an inline (identity multihash) digest of `i`s.
    fn peer(i: u8) -> PeerId {
        PeerId::from_bytes(&[0x00, 4, i, i, i, i]).expect("identity multihash")
    }

    fn stream(b: &BlockBody, chunk: usize) -> Vec<StreamMessage<ProposalPart>> {
        messages(&stream_id(Height(3), 1, 0), parts(init(), b, Signature([7; 64]), chunk))
    }

    #[test]
    fn a_block_survives_chunking_and_any_arrival_order() {
        let b = body(10);
        let mut msgs = stream(&b, 1_000);
        assert_eq!(msgs.len(), 2 + 4 + 1 + 1, "init, header, 4 chunks of 3/3/3/1 txs, fin part, end");
        msgs.reverse();
        let mut r = Reassembler::new(StreamLimits::default());
        let mut done = None;
        let publisher = peer(1);
        for (i, m) in msgs.iter().enumerate() {
            // Every message twice: duplicates are ignored.
            for _ in 0..2 {
                if let Some(a) = r.insert(publisher, m.clone()).expect("well formed") {
                    assert_eq!(i, msgs.len() - 1, "complete only with the last message");
                    done = Some(a);
                }
            }
        }
        let a = done.expect("assembled");
        assert_eq!((a.init, a.body, a.signature), (init(), b, Signature([7; 64])));
        assert!(r.is_empty());
        // An empty block is a header alone.
        let empty = body(0);
        let mut r = Reassembler::new(StreamLimits::default());
        let publisher = peer(2);
        let got: Vec<_> =
            stream(&empty, 1_000).into_iter().filter_map(|m| r.insert(publisher, m).expect("ok")).collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, empty);
    }

    #[test]
    fn malformed_and_oversized_streams_are_dropped() {
        let limits = StreamLimits { max_block_bytes: 2_000, max_parts: 16, max_streams: 2, ..StreamLimits::default() };
        // Too many bytes.
        let mut r = Reassembler::new(limits);
        let publisher = peer(1);
        let err = stream(&body(20), 1_000).into_iter().find_map(|m| r.insert(publisher, m).err());
        assert!(matches!(err, Some(StreamError::TooLarge(_))), "{err:?}");
        // A part number beyond the limit.
        let far = StreamMessage::new(stream_id(Height(3), 1, 1), 99, StreamContent::Fin);
        assert!(matches!(r.insert(publisher, far), Err(StreamError::TooLarge(_))));
        // Header before Init (another stream: a dropped stream's late messages are ignored).
        let mut msgs = messages(&stream_id(Height(3), 1, 2), parts(init(), &body(1), Signature([7; 64]), 1_000));
        msgs.swap(0, 1);
        let (a, b) = (msgs[0].sequence, msgs[1].sequence);
        msgs[0].sequence = b;
        msgs[1].sequence = a;
        let err = msgs.into_iter().find_map(|m| r.insert(publisher, m).err());
        assert!(matches!(err, Some(StreamError::Malformed(_))), "{err:?}");
        // Only `max_streams` partial streams are kept: the oldest goes first.
        let mut r = Reassembler::new(limits);
        for i in 0..5 {
            let first = stream(&body(1), 1_000).remove(0);
            r.insert(peer(i), first).expect("ok");
        }
        assert_eq!(r.len(), 2);
    }
}
