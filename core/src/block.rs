//! Block headers: hashing, sequencer signatures and finality checks.

use alloy_primitives::B256;
use prost::Message;

use crate::{
    hash::{b256_from_slice, block_hash},
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
    pb,
    signing::{self, Domain},
};

/// Why a finalized header was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header bytes do not decode.
    #[error("header does not decode: {0}")]
    Malformed(String),
    /// The header is for another chain or shard.
    #[error("header is for chain {chain} shard {shard}, expected chain {expected_chain} shard {expected_shard}")]
    WrongDomain {
        /// Header chain.
        chain: u64,
        /// Header shard.
        shard: u32,
        /// Expected chain.
        expected_chain: ChainId,
        /// Expected shard.
        expected_shard: ShardId,
    },
    /// Fewer valid signatures from the sequencer set than the quorum.
    #[error("header at height {height} has {valid} valid sequencer signatures, needs {quorum}")]
    NoQuorum {
        /// Header height.
        height: u64,
        /// Distinct valid signatures from the set.
        valid: usize,
        /// Required.
        quorum: usize,
    },
}

/// A decoded header with its hash, taken from the exact bytes it was carried in.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedHeader {
    /// The header fields.
    pub header: pb::BlockHeader,
    /// keccak256 of the carried bytes.
    pub hash: B256,
}

impl DecodedHeader {
    /// The post-state root (zero if the field is malformed, which `decode_header` already refuses).
    pub fn state_root(&self) -> B256 {
        b256_from_slice(&self.header.state_root).unwrap_or_default()
    }
}

/// Encodes a header, returning the bytes to carry and sign and their hash.
pub fn encode_header(header: &pb::BlockHeader) -> (Vec<u8>, B256) {
    let bytes = header.encode_to_vec();
    let hash = block_hash(&bytes);
    (bytes, hash)
}

/// A sequencer's vote on a block hash.
pub fn sign_header(key: &Keypair, chain: ChainId, shard: ShardId, hash: &B256) -> pb::HeaderSignature {
    pb::HeaderSignature {
        signer: key.account().0.to_vec(),
        signature: signing::sign(key, Domain::BlockVote, chain, shard, hash.as_slice()).to_vec(),
    }
}

/// Decodes the header bytes of a finalized header and checks its shape (hash-sized fields).
pub fn decode_header(fh: &pb::FinalizedHeader) -> Result<DecodedHeader, HeaderError> {
    let header = pb::BlockHeader::decode(fh.header.as_slice()).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    for (name, field) in [
        ("parent_hash", &header.parent_hash),
        ("tx_root", &header.tx_root),
        ("receipts_root", &header.receipts_root),
        ("state_root", &header.state_root),
        ("events_root", &header.events_root),
    ] {
        if field.len() != 32 {
            return Err(HeaderError::Malformed(format!("{name} is {} bytes, expected 32", field.len())));
        }
    }
    Ok(DecodedHeader { hash: block_hash(&fh.header), header })
}

/// Smallest number of signatures that finalizes a block in a set of `n`: more than two thirds.
pub fn quorum(n: usize) -> usize {
    n * 2 / 3 + 1
}

/// Decodes `fh` and checks it is for (`chain`, `shard`) and signed by a quorum of `sequencers`.
pub fn verify_finalized(
    fh: &pb::FinalizedHeader,
    chain: ChainId,
    shard: ShardId,
    sequencers: &[AccountId],
) -> Result<DecodedHeader, HeaderError> {
    let decoded = decode_header(fh)?;
    let h = &decoded.header;
    if h.chain_id != chain.0 || h.shard_id != shard.0 {
        return Err(HeaderError::WrongDomain {
            chain: h.chain_id,
            shard: h.shard_id,
            expected_chain: chain,
            expected_shard: shard,
        });
    }
    let mut signed_by: Vec<AccountId> = Vec::new();
    for sig in &fh.signatures {
        let Ok(signer) = AccountId::from_slice(&sig.signer) else { continue };
        if !sequencers.contains(&signer) || signed_by.contains(&signer) {
            continue;
        }
        if signing::verify(&signer, &sig.signature, Domain::BlockVote, chain, shard, decoded.hash.as_slice()).is_ok() {
            signed_by.push(signer);
        }
    }
    let need = quorum(sequencers.len());
    if signed_by.len() < need {
        return Err(HeaderError::NoQuorum { height: h.height, valid: signed_by.len(), quorum: need });
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> pb::BlockHeader {
        pb::BlockHeader {
            chain_id: 1,
            shard_id: 2,
            height: 5,
            parent_hash: vec![1; 32],
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: vec![4; 32],
            events_root: vec![5; 32],
            ..Default::default()
        }
    }

    #[test]
    fn quorum_needs_more_than_two_thirds() {
        assert_eq!([1, 2, 3, 4, 7].map(quorum), [1, 2, 3, 3, 5]);
    }

    #[test]
    fn verifies_signed_header_and_rejects_forgeries() {
        let seq = Keypair::from_seed([1; 32]);
        let other = Keypair::from_seed([2; 32]);
        let (bytes, hash) = encode_header(&header());
        let signed = |k: &Keypair| pb::FinalizedHeader {
            header: bytes.clone(),
            signatures: vec![sign_header(k, ChainId(1), ShardId(2), &hash)],
        };
        let set = [seq.account()];
        let ok = verify_finalized(&signed(&seq), ChainId(1), ShardId(2), &set).expect("valid");
        assert_eq!(ok.hash, hash);
        assert_eq!(ok.state_root(), B256::from([4; 32]));
        assert!(matches!(
            verify_finalized(&signed(&other), ChainId(1), ShardId(2), &set),
            Err(HeaderError::NoQuorum { .. })
        ));
        assert!(matches!(
            verify_finalized(&signed(&seq), ChainId(1), ShardId(3), &set),
            Err(HeaderError::WrongDomain { .. })
        ));
        let mut tampered = signed(&seq);
        tampered.header[3] ^= 1;
        assert!(verify_finalized(&tampered, ChainId(1), ShardId(2), &set).is_err());
    }
}
