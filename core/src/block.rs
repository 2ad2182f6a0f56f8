//! Block headers: hashing, decoding and the check of a finalized header's commit certificate.

use alloy_primitives::B256;
use prost::Message;

use crate::{
    hash::{b256_from_slice, block_hash},
    ids::{AccountId, ChainId, ShardId},
    pb,
    validators::ValidatorSet,
    vote::{verify_vote, VoteKind},
};

/// The largest response the SDK (and so the relayer and `shardex`) decodes, bytes: a node's blocks must fit
/// in it with their certificate, so `block.max_bytes` is bounded by it.
pub const MAX_CLIENT_RESPONSE_BYTES: usize = 16 << 20;

/// Why a finalized header was not accepted. Each kind has a stable machine-readable name ([`HeaderError::kind`]).
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
    /// More signatures than the set has validators.
    #[error("certificate at height {height} carries {count} signatures, the set has {validators} validators")]
    TooManySignatures {
        /// Header height.
        height: u64,
        /// Signatures carried.
        count: usize,
        /// Validators in the set.
        validators: usize,
    },
    /// A signer that is not in the shard's genesis validator set.
    #[error("certificate at height {height} is signed by {signer}, which is not in the genesis validator set")]
    UnknownSigner {
        /// Header height.
        height: u64,
        /// The signer as carried (hex; may not even be 32 bytes).
        signer: String,
    },
    /// One validator's signature carried twice.
    #[error("certificate at height {height} carries two signatures of validator {signer}")]
    DuplicateSigner {
        /// Header height.
        height: u64,
        /// The validator.
        signer: AccountId,
    },
    /// A validator's signature that is not its precommit for this block at the certificate's round (another
    /// round, height, block or shard, or simply wrong).
    #[error("signature of validator {signer} is not its precommit for this block at height {height} round {round}")]
    BadSignature {
        /// Header height.
        height: u64,
        /// The certificate's round.
        round: u32,
        /// The validator.
        signer: AccountId,
    },
    /// Valid signatures of too little voting power.
    #[error("certificate at height {height} has voting power {power} of {total}, needs at least {needed}")]
    NoQuorum {
        /// Header height.
        height: u64,
        /// Power of the valid signers.
        power: u64,
        /// Total power of the set.
        total: u64,
        /// Least power of a quorum (more than two thirds).
        needed: u64,
    },
}

impl HeaderError {
    /// Stable machine-readable name, as logged and reported.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "UNDECODABLE",
            Self::WrongDomain { .. } => "WRONG_CHAIN_OR_SHARD",
            Self::TooManySignatures { .. } => "TOO_MANY_SIGNATURES",
            Self::UnknownSigner { .. } => "UNKNOWN_SIGNER",
            Self::DuplicateSigner { .. } => "DUPLICATE_SIGNER",
            Self::BadSignature { .. } => "BAD_SIGNATURE",
            Self::NoQuorum { .. } => "NO_QUORUM",
        }
    }
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

/// A block's commit certificate: the round it was decided in and the precommits of that round that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Certificate {
    /// The deciding round.
    pub round: u32,
    /// Precommits for the block hash at `round`, one per validator.
    pub signatures: Vec<pb::HeaderSignature>,
}

impl Certificate {
    /// The finalized header that carries `header_bytes` with this certificate.
    pub fn finalize(self, header_bytes: Vec<u8>) -> pb::FinalizedHeader {
        pb::FinalizedHeader { header: header_bytes, signatures: self.signatures, round: self.round }
    }

    /// The certificate a finalized header carries.
    pub fn of(fh: &pb::FinalizedHeader) -> Self {
        Self { round: fh.round, signatures: fh.signatures.clone() }
    }
}

/// Encodes a header, returning the bytes to carry and sign and their hash.
pub fn encode_header(header: &pb::BlockHeader) -> (Vec<u8>, B256) {
    let bytes = header.encode_to_vec();
    let hash = block_hash(&bytes);
    (bytes, hash)
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

/// Decodes `fh` and checks its commit certificate: it is for (`chain`, `shard`), and its signatures are
/// precommits for its hash at its round from distinct members of `validators` holding a quorum of their power.
///
/// Every signature must be good: a certificate carrying a stranger's, a duplicated or a bad signature is
/// refused even if the rest would be a quorum, so a relayed certificate cannot carry padding.
pub fn verify_finalized(
    fh: &pb::FinalizedHeader,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
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
    let height = h.height;
    if fh.signatures.len() > validators.len() {
        return Err(HeaderError::TooManySignatures {
            height,
            count: fh.signatures.len(),
            validators: validators.len(),
        });
    }
    let mut seen = vec![false; validators.len()];
    let mut power = 0u64;
    for sig in &fh.signatures {
        let unknown = || HeaderError::UnknownSigner { height, signer: hex::encode(&sig.signer) };
        let signer = AccountId::from_slice(&sig.signer).map_err(|_| unknown())?;
        let (index, validator) = validators.get(&signer).ok_or_else(unknown)?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(HeaderError::DuplicateSigner { height, signer });
        }
        verify_vote(
            &signer,
            &sig.signature,
            VoteKind::Precommit,
            (chain, shard),
            height,
            fh.round,
            Some(&decoded.hash),
        )
        .map_err(|_| HeaderError::BadSignature { height, round: fh.round, signer })?;
        power += validator.power;
    }
    if !validators.is_quorum(power) {
        return Err(HeaderError::NoQuorum {
            height,
            power,
            total: validators.total_power(),
            needed: validators.quorum_power(),
        });
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{keys::Keypair, validators::Validator, vote::sign_precommit};

    const CHAIN: ChainId = ChainId(1);
    const SHARD: ShardId = ShardId(2);

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

    fn keys(n: u8) -> Vec<Keypair> {
        (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("valid set")
    }

    fn certified(signers: &[&Keypair], round: u32) -> pb::FinalizedHeader {
        let (bytes, hash) = encode_header(&header());
        pb::FinalizedHeader {
            header: bytes,
            signatures: signers.iter().map(|k| sign_precommit(k, (CHAIN, SHARD), 5, round, &hash)).collect(),
            round,
        }
    }

    fn kind(r: Result<DecodedHeader, HeaderError>) -> Result<u64, &'static str> {
        r.map(|d| d.header.height).map_err(|e| e.kind())
    }

    #[test]
    fn a_quorum_of_precommits_finalizes() {
        let k = keys(4);
        let vs = set(&k);
        let ok = verify_finalized(&certified(&[&k[0], &k[2], &k[3]], 2), CHAIN, SHARD, &vs).expect("3 of 4");
        assert_eq!(ok.state_root(), B256::from([4; 32]));
        assert_eq!(ok.hash, encode_header(&header()).1);
        assert_eq!(kind(verify_finalized(&certified(&[&k[0], &k[1], &k[2], &k[3]], 0), CHAIN, SHARD, &vs)), Ok(5));
    }

    #[test]
    fn refuses_each_malformed_certificate_with_its_own_reason() {
        let k = keys(4);
        let vs = set(&k);
        let check = |fh: &pb::FinalizedHeader| kind(verify_finalized(fh, CHAIN, SHARD, &vs));
        // Two of four: a third of the power is missing.
        assert_eq!(check(&certified(&[&k[0], &k[1]], 0)), Err("NO_QUORUM"));
        assert_eq!(check(&certified(&[], 0)), Err("NO_QUORUM"));
        // One validator twice.
        assert_eq!(check(&certified(&[&k[0], &k[1], &k[1]], 0)), Err("DUPLICATE_SIGNER"));
        // A key outside the set, even beside a quorum.
        let stranger = Keypair::from_seed([9; 32]);
        assert_eq!(check(&certified(&[&k[0], &k[1], &k[2], &stranger], 0)), Err("UNKNOWN_SIGNER"));
        let mut short = certified(&[&k[0], &k[1], &k[2]], 0);
        short.signatures[0].signer.pop();
        assert_eq!(check(&short), Err("UNKNOWN_SIGNER"));
        // Signatures made at round 1 carried as a round-0 certificate.
        let mut other_round = certified(&[&k[0], &k[1], &k[2]], 1);
        other_round.round = 0;
        assert_eq!(check(&other_round), Err("BAD_SIGNATURE"));
        // One signature for round 0 mixed into a round-1 certificate.
        let mut mixed = certified(&[&k[0], &k[1], &k[2]], 1);
        mixed.signatures[2] = certified(&[&k[2]], 0).signatures[0].clone();
        assert_eq!(check(&mixed), Err("BAD_SIGNATURE"));
        // More signatures than validators.
        let mut padded = certified(&[&k[0], &k[1], &k[2], &k[3]], 0);
        padded.signatures.push(padded.signatures[0].clone());
        assert_eq!(check(&padded), Err("TOO_MANY_SIGNATURES"));
        // A tampered header no longer matches the votes.
        let mut tampered = certified(&[&k[0], &k[1], &k[2]], 0);
        tampered.header[3] ^= 1;
        assert!(check(&tampered).is_err());
        // Another shard.
        assert_eq!(
            kind(verify_finalized(&certified(&[&k[0], &k[1], &k[2]], 0), CHAIN, ShardId(3), &vs)),
            Err("WRONG_CHAIN_OR_SHARD")
        );
        let junk = pb::FinalizedHeader { header: vec![0xff; 3], ..Default::default() };
        assert_eq!(check(&junk), Err("UNDECODABLE"));
    }

    #[test]
    fn voting_power_weighs_signers() {
        let k = keys(3);
        let vs = ValidatorSet::new(vec![
            Validator { key: k[0].account(), power: 5 },
            Validator { key: k[1].account(), power: 1 },
            Validator { key: k[2].account(), power: 1 },
        ])
        .expect("valid");
        assert_eq!(kind(verify_finalized(&certified(&[&k[0]], 0), CHAIN, SHARD, &vs)), Ok(5));
        assert_eq!(kind(verify_finalized(&certified(&[&k[1], &k[2]], 0), CHAIN, SHARD, &vs)), Err("NO_QUORUM"));
    }
}
