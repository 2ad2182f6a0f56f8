//! Domain-separated signatures: `tag || chain_id (u64 BE) || shard_id (u32 BE) || payload`.
//!
//! Every signed kind has its own tag, so a signature for one kind, shard or chain never verifies as another.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::{
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
};

/// What a signature is for. The tag is part of the signed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// A transaction body.
    Tx,
    /// A validator's prevote (for a block or nil) at one height and round.
    Prevote,
    /// A validator's precommit at one height and round; a quorum of them is a block's commit certificate.
    Precommit,
    /// A proposer's signed proposal of a block at one height and round.
    Proposal,
    /// A validator binding its consensus key to its libp2p peer id.
    ValidatorProof,
    /// The coordinator's signature over a global commitment epoch record.
    GlobalCommitment,
    /// An oracle price.
    OraclePrice,
}

impl Domain {
    /// The tag prefixed to every message of this kind.
    pub const fn tag(self) -> &'static [u8] {
        match self {
            Self::Tx => b"shardex/tx/v1",
            Self::Prevote => b"shardex/prevote/v1",
            Self::Precommit => b"shardex/precommit/v1",
            Self::Proposal => b"shardex/proposal/v1",
            Self::ValidatorProof => b"shardex/validator-proof/v1",
            Self::GlobalCommitment => b"shardex/global-commitment/v1",
            Self::OraclePrice => b"shardex/oracle-price/v1",
        }
    }
}

/// The exact bytes that are signed for `payload` in `domain` on (`chain`, `shard`).
pub fn signing_message(domain: Domain, chain: ChainId, shard: ShardId, payload: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut msg = Vec::with_capacity(tag.len() + 12 + payload.len());
    msg.extend_from_slice(tag);
    msg.extend_from_slice(&chain.0.to_be_bytes());
    msg.extend_from_slice(&shard.0.to_be_bytes());
    msg.extend_from_slice(payload);
    msg
}

/// Signs `payload` in `domain` for (`chain`, `shard`).
pub fn sign(key: &Keypair, domain: Domain, chain: ChainId, shard: ShardId, payload: &[u8]) -> [u8; 64] {
    key.sign_raw(&signing_message(domain, chain, shard, payload))
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signer bytes are not a valid ed25519 public key.
    #[error("signer is not a valid ed25519 public key")]
    BadSigner,
    /// The signature is not 64 bytes.
    #[error("signature must be 64 bytes, got {0}")]
    BadLength(usize),
    /// The signature does not verify (strict: no malleable or small-order forms).
    #[error("signature does not verify for this signer, domain, chain and shard")]
    Invalid,
}

/// Verifies with ed25519 `verify_strict` over the domain-separated message.
pub fn verify(
    signer: &AccountId,
    signature: &[u8],
    domain: Domain,
    chain: ChainId,
    shard: ShardId,
    payload: &[u8],
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(&signer.0).map_err(|_| SignatureError::BadSigner)?;
    let sig_bytes = <[u8; 64]>::try_from(signature).map_err(|_| SignatureError::BadLength(signature.len()))?;
    let sig = Signature::from_bytes(&sig_bytes);
    key.verify_strict(&signing_message(domain, chain, shard, payload), &sig).map_err(|_| SignatureError::Invalid)
}

/// Verifies many (signer, signature, message) triples at once with ed25519 batch verification.
///
/// All messages must already be domain-separated with [`signing_message`]. Returns `Invalid` if any fails;
/// callers that need to know which one fall back to [`verify`] per item.
pub fn verify_batch(items: &[(AccountId, [u8; 64], Vec<u8>)]) -> Result<(), SignatureError> {
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(items.len());
    for (signer, sig, msg) in items {
        keys.push(VerifyingKey::from_bytes(&signer.0).map_err(|_| SignatureError::BadSigner)?);
        sigs.push(Signature::from_bytes(sig));
        msgs.push(msg);
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: ChainId = ChainId(7);
    const SHARD: ShardId = ShardId(1);

    #[test]
    fn signature_binds_domain_chain_and_shard() {
        let k = Keypair::from_seed([1; 32]);
        let sig = sign(&k, Domain::Tx, CHAIN, SHARD, b"body");
        assert_eq!(verify(&k.account(), &sig, Domain::Tx, CHAIN, SHARD, b"body"), Ok(()));
        let bad = SignatureError::Invalid;
        assert_eq!(verify(&k.account(), &sig, Domain::Tx, CHAIN, ShardId(2), b"body"), Err(bad));
        assert_eq!(verify(&k.account(), &sig, Domain::Tx, ChainId(8), SHARD, b"body"), Err(bad));
        assert_eq!(verify(&k.account(), &sig, Domain::Precommit, CHAIN, SHARD, b"body"), Err(bad));
        assert_eq!(verify(&k.account(), &sig, Domain::Tx, CHAIN, SHARD, b"bodY"), Err(bad));
        assert_eq!(
            verify(&k.account(), &sig[..63], Domain::Tx, CHAIN, SHARD, b"body"),
            Err(SignatureError::BadLength(63))
        );
    }

    #[test]
    fn golden_signature_vector() {
        // Fixed seed and payload: an accidental change of the domain format fails here.
        let k = Keypair::from_seed([42; 32]);
        let sig = sign(&k, Domain::Tx, CHAIN, SHARD, b"golden");
        assert_eq!(
            hex::encode(signing_message(Domain::Tx, CHAIN, SHARD, b"golden")),
            "73686172646578     2f74782f7631000000000000000700000001676f6c64656e".replace(' ', "")
        );
        assert_eq!(verify(&k.account(), &sig, Domain::Tx, CHAIN, SHARD, b"golden"), Ok(()));
        assert_eq!(hex::encode(sig), "da36119942d53f9346aa07fc8063cc798afb24ba13549e85efeff87110962764fa400a9073e93e731696a6e73effcd6199cb484d003faf4d244ce53387f3a505");
    }

    #[test]
    fn batch_verifies_and_catches_one_bad() {
        let items: Vec<_> = (0u8..8)
            .map(|i| {
                let k = Keypair::from_seed([i; 32]);
                let msg = signing_message(Domain::Tx, CHAIN, SHARD, &[i]);
                (k.account(), k.sign_raw(&msg), msg)
            })
            .collect();
        assert_eq!(verify_batch(&items), Ok(()));
        let mut broken = items.clone();
        broken[3].2.push(0);
        assert_eq!(verify_batch(&broken), Err(SignatureError::Invalid));
    }
}
