//! The one wire and WAL format of a shard's consensus: borsh. Engine types that have a borsh impl use it; the
//! two that cannot (the peer binding and sync responses carrying extended certificates) go through local
//! mirrors. Sizes are bounded before decoding by the network's message limits.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::{
    streaming::StreamMessage,
    types::codec::{Codec, HasEncodedLen},
};
use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, ValidatorProof,
};
use malachitebft_sync::{RawDecidedValue, Request, Response, Status, ValueResponse};

use crate::{
    context::ShardCtx,
    messages::ProposalPart,
    signing::Signature,
    types::{Address, BlockId, Height},
};

/// Encodes every consensus, sync and WAL message of a shard.
#[derive(Clone, Copy, Debug, Default)]
pub struct BorshCodec;

/// Bytes that do not decode.
pub type CodecError = borsh::io::Error;

fn encode<T: BorshSerialize>(msg: &T) -> Result<Bytes, CodecError> {
    borsh::to_vec(msg).map(Bytes::from)
}

fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    borsh::from_slice(bytes)
}

macro_rules! borsh_codec {
    ($($t:ty),* $(,)?) => {$(
        impl Codec<$t> for BorshCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                decode(&bytes)
            }

            fn encode(&self, msg: &$t) -> Result<Bytes, CodecError> {
                encode(msg)
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    SignedConsensusMsg<ShardCtx>,
    LivenessMsg<ShardCtx>,
    StreamMessage<ProposalPart>,
    ProposedValue<ShardCtx>,
    PolkaCertificate<ShardCtx>,
    Status<ShardCtx>,
    Request<ShardCtx>,
);

#[derive(BorshSerialize, BorshDeserialize)]
struct WireProof {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Codec<ValidatorProof<ShardCtx>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<ShardCtx>, CodecError> {
        let w: WireProof = decode(&bytes)?;
        Ok(ValidatorProof::new(w.public_key, w.peer_id, w.signature))
    }

    fn encode(&self, p: &ValidatorProof<ShardCtx>) -> Result<Bytes, CodecError> {
        encode(&WireProof { public_key: p.public_key.clone(), peer_id: p.peer_id.clone(), signature: p.signature })
    }
}

/// A decided block as sync carries it: its bytes and its commit certificate. Vote extensions are not used in
/// shardex, so none are carried (a peer cannot smuggle one in: decoding sets none).
#[derive(BorshSerialize, BorshDeserialize)]
struct WireDecided {
    value_bytes: Vec<u8>,
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<(Address, Signature)>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct WireResponse {
    start_height: Height,
    values: Vec<WireDecided>,
}

fn to_wire(r: &Response<ShardCtx>) -> WireResponse {
    let Response::ValueResponse(v) = r;
    WireResponse {
        start_height: v.start_height,
        values: v
            .values
            .iter()
            .map(|d| WireDecided {
                value_bytes: d.value_bytes.to_vec(),
                height: d.certificate.height,
                round: d.certificate.round,
                value_id: d.certificate.value_id,
                signatures: d.certificate.commit_signatures.iter().map(|s| (s.address, s.signature)).collect(),
            })
            .collect(),
    }
}

fn from_wire(w: WireResponse) -> Response<ShardCtx> {
    let values = w
        .values
        .into_iter()
        .map(|d| {
            let certificate = ExtendedCommitCertificate {
                height: d.height,
                round: d.round,
                value_id: d.value_id,
                commit_signatures: d
                    .signatures
                    .into_iter()
                    .map(|(address, signature)| ExtendedCommitSignature { address, signature, extension: None })
                    .collect(),
            };
            RawDecidedValue::new(Bytes::from(d.value_bytes), certificate)
        })
        .collect();
    Response::ValueResponse(ValueResponse::new(w.start_height, values))
}

impl Codec<Response<ShardCtx>> for BorshCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Response<ShardCtx>, CodecError> {
        decode(&bytes).map(from_wire)
    }

    fn encode(&self, r: &Response<ShardCtx>) -> Result<Bytes, CodecError> {
        encode(&to_wire(r))
    }
}

impl HasEncodedLen<Response<ShardCtx>> for BorshCodec {
    fn encoded_len(&self, r: &Response<ShardCtx>) -> Result<usize, CodecError> {
        borsh::object_length(&to_wire(r))
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{NilOrVal, SignedMessage};

    use super::*;
    use crate::messages::{PartInit, Vote};

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let c = BorshCodec;
        let vote = Vote {
            vote_type: malachitebft_core_types::VoteType::Precommit,
            height: Height(4),
            round: Round::new(1),
            value: NilOrVal::Val(BlockId([3; 32])),
            validator: Address([5; 32]),
            extension: None,
        };
        let msg = SignedConsensusMsg::<ShardCtx>::Vote(SignedMessage::new(vote, Signature([9; 64])));
        let bytes = c.encode(&msg).expect("encodes");
        assert_eq!(Codec::<SignedConsensusMsg<ShardCtx>>::decode(&c, bytes.clone()).expect("decodes"), msg);
        let mut cut = bytes.to_vec();
        cut.truncate(cut.len() - 1);
        assert!(Codec::<SignedConsensusMsg<ShardCtx>>::decode(&c, Bytes::from(cut)).is_err());
        assert!(Codec::<SignedConsensusMsg<ShardCtx>>::decode(&c, Bytes::from_static(&[7, 7, 7])).is_err());

        let part = ProposalPart::Init(PartInit {
            height: Height(4),
            round: Round::new(0),
            pol_round: Round::Nil,
            proposer: Address([1; 32]),
        });
        let bytes = c.encode(&part).expect("encodes");
        assert_eq!(Codec::<ProposalPart>::decode(&c, bytes).expect("decodes"), part);
    }

    #[test]
    fn sync_responses_round_trip_without_extensions() {
        let c = BorshCodec;
        let cert = ExtendedCommitCertificate::<ShardCtx> {
            height: Height(8),
            round: Round::new(2),
            value_id: BlockId([1; 32]),
            commit_signatures: vec![ExtendedCommitSignature {
                address: Address([2; 32]),
                signature: Signature([3; 64]),
                extension: None,
            }],
        };
        let r = Response::ValueResponse(ValueResponse::new(
            Height(8),
            vec![RawDecidedValue::new(Bytes::from_static(b"block"), cert)],
        ));
        let bytes = c.encode(&r).expect("encodes");
        assert_eq!(c.encoded_len(&r).expect("length"), bytes.len());
        assert_eq!(Codec::<Response<ShardCtx>>::decode(&c, bytes).expect("decodes"), r);
    }
}
