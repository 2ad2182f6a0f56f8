//! Epoch records: what the coordinator signs once per epoch.
//!
//! The epoch hash is keccak256 of the exact encoded `EpochRecord` bytes carried in `SignedEpoch.record`
//! (as a block hash is over the exact header bytes); verifiers decode those bytes and never re-encode.
//! The coordinator signs the epoch hash in [`Domain::GlobalCommitment`] with shard id
//! [`GLOBAL_SIGNING_SHARD`], so an epoch signature never verifies as a block vote or a tx.

use alloy_primitives::{keccak256, B256};
use prost::Message;

use super::verify::GlobalError;
use crate::{
    coordpb,
    hash::b256_from_slice,
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
    signing::{self, Domain},
};

/// The shard id in the signing domain of global commitments: the commitment belongs to no shard, and
/// shard ids start at 1.
pub const GLOBAL_SIGNING_SHARD: ShardId = ShardId(0);

/// Encodes a record, returning the bytes to carry and their hash (the epoch hash).
pub fn encode_epoch(record: &coordpb::EpochRecord) -> (Vec<u8>, B256) {
    let bytes = record.encode_to_vec();
    let hash = epoch_hash(&bytes);
    (bytes, hash)
}

/// keccak256 of the exact record bytes.
pub fn epoch_hash(record_bytes: &[u8]) -> B256 {
    keccak256(record_bytes)
}

/// Encodes and signs `record` with the coordinator key.
pub fn sign_epoch(key: &Keypair, record: &coordpb::EpochRecord) -> (coordpb::SignedEpoch, B256) {
    let (bytes, hash) = encode_epoch(record);
    let signature =
        signing::sign(key, Domain::GlobalCommitment, ChainId(record.chain_id), GLOBAL_SIGNING_SHARD, hash.as_slice());
    (coordpb::SignedEpoch { record: bytes, signature: signature.to_vec(), coordinator: key.account().0.to_vec() }, hash)
}

/// An epoch whose signature was checked against a trusted coordinator key.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEpoch {
    /// The decoded record.
    pub record: coordpb::EpochRecord,
    /// keccak256 of the carried record bytes.
    pub hash: B256,
    /// The global root the record commits to.
    pub global_root: B256,
    /// The parent epoch's hash.
    pub parent_hash: B256,
}

/// Decodes a signed epoch and checks it is for `chain`, well formed, and signed by `coordinator`.
pub fn verify_epoch(
    signed: &coordpb::SignedEpoch,
    coordinator: &AccountId,
    chain: ChainId,
) -> Result<VerifiedEpoch, GlobalError> {
    if signed.coordinator.as_slice() != coordinator.0.as_slice() {
        return Err(GlobalError::UntrustedCoordinator(hex::encode(&signed.coordinator)));
    }
    let record = coordpb::EpochRecord::decode(signed.record.as_slice())
        .map_err(|e| GlobalError::Malformed(format!("epoch record: {e}")))?;
    if record.chain_id != chain.0 {
        return Err(GlobalError::WrongChain { got: record.chain_id, expected: chain });
    }
    let hash = epoch_hash(&signed.record);
    signing::verify(
        coordinator,
        &signed.signature,
        Domain::GlobalCommitment,
        chain,
        GLOBAL_SIGNING_SHARD,
        hash.as_slice(),
    )
    .map_err(GlobalError::Signature)?;
    let global_root = b256_from_slice(&record.global_root)
        .ok_or_else(|| GlobalError::Malformed("global_root is not 32 bytes".into()))?;
    let parent_hash = b256_from_slice(&record.parent_hash)
        .ok_or_else(|| GlobalError::Malformed("parent_hash is not 32 bytes".into()))?;
    if record.number == 0 {
        return Err(GlobalError::Malformed("epoch numbers start at 1".into()));
    }
    Ok(VerifiedEpoch { record, hash, global_root, parent_hash })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SignatureError;

    fn record() -> coordpb::EpochRecord {
        coordpb::EpochRecord {
            chain_id: 7,
            number: 3,
            parent_hash: vec![0x11; 32],
            global_root: vec![0x22; 32],
            time_ms: 1_700_000_000_250,
            new_headers: 2,
        }
    }

    #[test]
    fn golden_epoch_record_bytes_hash_and_signature() {
        // An accidental change of the record encoding, the hash or the signing domain fails here.
        let (bytes, hash) = encode_epoch(&record());
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0807",
                "1003",
                "1a20",
                "1111111111111111111111111111111111111111111111111111111111111111",
                "2220",
                "2222222222222222222222222222222222222222222222222222222222222222",
                "28fad195ffbc31",
                "3002"
            )
        );
        assert_eq!(hash, keccak256(&bytes));
        assert_eq!(hex::encode(hash), "1e267f5a34a921b9bc3a2bb6f1aaf18bf4e395e7e2213e02cada0316eb62e2d4");
        let key = Keypair::from_seed([9; 32]);
        let (signed, h) = sign_epoch(&key, &record());
        assert_eq!(h, hash);
        assert_eq!(
            hex::encode(signing::signing_message(Domain::GlobalCommitment, ChainId(7), GLOBAL_SIGNING_SHARD, &[])),
            hex::encode(b"shardex/global-commitment/v1\0\0\0\0\0\0\0\x07\0\0\0\0")
        );
        assert_eq!(
            hex::encode(&signed.signature),
            "f48b1a59710a89164cf36e5d4c2cd5faf9eabe5597b019195b2531f55d639f2d\
             2b4991a52ece30d7e6975b40fdd51df6956a959347ea8e992c3213d87d60e109"
        );
    }

    #[test]
    fn verify_accepts_the_signed_epoch_and_rejects_tampering() {
        let key = Keypair::from_seed([9; 32]);
        let (signed, hash) = sign_epoch(&key, &record());
        let v = verify_epoch(&signed, &key.account(), ChainId(7)).expect("valid");
        assert_eq!(v.hash, hash);
        assert_eq!(v.global_root, B256::from([0x22; 32]));

        let other = Keypair::from_seed([8; 32]);
        assert!(matches!(
            verify_epoch(&signed, &other.account(), ChainId(7)),
            Err(GlobalError::UntrustedCoordinator(_))
        ));
        assert!(matches!(verify_epoch(&signed, &key.account(), ChainId(8)), Err(GlobalError::WrongChain { .. })));
        let mut tampered = signed.clone();
        let last = tampered.record.len() - 1;
        tampered.record[last] ^= 1;
        assert_eq!(
            verify_epoch(&tampered, &key.account(), ChainId(7)),
            Err(GlobalError::Signature(SignatureError::Invalid))
        );
        // A forger who signs with their own key and claims the trusted key fails the signature.
        let (mut forged, _) = sign_epoch(&other, &record());
        forged.coordinator = key.account().0.to_vec();
        assert_eq!(
            verify_epoch(&forged, &key.account(), ChainId(7)),
            Err(GlobalError::Signature(SignatureError::Invalid))
        );
    }

    #[test]
    fn epoch_signature_is_domain_separated() {
        // The same key signing the same hash as a precommit (or for shard 1) does not make an epoch signature.
        let key = Keypair::from_seed([9; 32]);
        let (mut signed, hash) = sign_epoch(&key, &record());
        for (domain, shard) in [(Domain::Precommit, GLOBAL_SIGNING_SHARD), (Domain::GlobalCommitment, ShardId(1))] {
            signed.signature = signing::sign(&key, domain, ChainId(7), shard, hash.as_slice()).to_vec();
            assert_eq!(
                verify_epoch(&signed, &key.account(), ChainId(7)),
                Err(GlobalError::Signature(SignatureError::Invalid))
            );
        }
    }
}
