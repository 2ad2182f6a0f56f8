//! Signing consensus messages with ed25519 under shardex's rules: `shardex_core::signing`'s verification rule
//! (ZIP-215 with small-order keys refused), and the domain-separated
//! layouts of `shardex_core::vote`. The engine counts exactly the votes every shardex verifier (coordinator,
//! VM, SDK, tools) accepts, because both run the same function over the same bytes.

use std::fmt;

use async_trait::async_trait;
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{
    NilOrVal, Round, SignedMessage, SigningScheme, ValidatorProof, VoteExtensionScope, VoteType,
};
use malachitebft_signing::{Error, Signer, VerificationResult, Verifier};
use shardex_core::{
    signing::{self, Domain},
    vote::{self, VoteKind},
    AccountId, Keypair,
};

use crate::{
    context::ShardCtx,
    messages::{Proposal, Vote},
    types::Address,
};

/// An ed25519 signature, ordered by its bytes (the engine keeps signatures in ordered sets).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex_prefix(&self.0))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Bytes that are not a key or a signature of the expected length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} bytes, got {got}")]
pub struct BadLength {
    expected: usize,
    got: usize,
}

/// ed25519 under `shardex_core::signing`'s rule, keys as the 32 bytes genesis lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl SigningScheme for Ed25519 {
    type DecodingError = BadLength;
    type Signature = Signature;
    type PublicKey = Address;
    type PrivateKey = Keypair;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, BadLength> {
        <[u8; 64]>::try_from(bytes).map(Signature).map_err(|_| BadLength { expected: 64, got: bytes.len() })
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<Address, BadLength> {
        <[u8; 32]>::try_from(bytes).map(Address).map_err(|_| BadLength { expected: 32, got: bytes.len() })
    }

    fn encode_public_key(public_key: &Address) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

/// The vote's kind, round and block as `shardex_core::vote` signs them; None for a vote without a round.
fn vote_parts(v: &Vote) -> Option<(VoteKind, u32, Option<shardex_core::B256>)> {
    let kind = match v.vote_type {
        VoteType::Prevote => VoteKind::Prevote,
        VoteType::Precommit => VoteKind::Precommit,
    };
    let block = match &v.value {
        NilOrVal::Nil => None,
        NilOrVal::Val(id) => Some(id.hash()),
    };
    Some((kind, v.round.as_u32()?, block))
}

fn proposal_payload(p: &Proposal) -> Option<Vec<u8>> {
    Some(vote::proposal_payload(p.height.0, p.round.as_u32()?, p.pol_round.as_i64(), &p.value.hash()))
}

fn refused(what: &str) -> Error {
    Error::from_source(format!("shardex does not sign {what}"))
}

/// Signs this validator's votes, proposals and peer binding.
#[derive(Clone)]
pub struct ShardSigner {
    key: Keypair,
    ctx: ShardCtx,
}

impl ShardSigner {
    /// A signer with `key` on `ctx`'s chain and shard.
    pub fn new(key: Keypair, ctx: ShardCtx) -> Self {
        Self { key, ctx }
    }

    /// Signs a proposal (also carried in the `Fin` part of its stream).
    pub fn sign_proposal_now(&self, proposal: &Proposal) -> Option<Signature> {
        let payload = proposal_payload(proposal)?;
        Some(Signature(signing::sign(&self.key, Domain::Proposal, self.ctx.chain, self.ctx.shard, &payload)))
    }
}

#[async_trait]
impl Signer<ShardCtx> for ShardSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<ShardCtx, Vote>, Error> {
        let (kind, round, block) = vote_parts(&vote).ok_or_else(|| refused("a vote without a round"))?;
        let sig =
            vote::sign_vote(&self.key, kind, (self.ctx.chain, self.ctx.shard), vote.height.0, round, block.as_ref());
        Ok(SignedMessage::new(vote, Signature(sig)))
    }

    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<ShardCtx, Proposal>, Error> {
        let sig = self.sign_proposal_now(&proposal).ok_or_else(|| refused("a proposal without a round"))?;
        Ok(SignedMessage::new(proposal, sig))
    }

    async fn sign_vote_extension(
        &self,
        _scope: VoteExtensionScope<ShardCtx>,
        _extension: Vec<u8>,
    ) -> Result<SignedMessage<ShardCtx, Vec<u8>>, Error> {
        Err(refused("vote extensions (the policy is disabled)"))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<ShardCtx>, Error> {
        if public_key != self.key.account().0 {
            return Err(refused("a peer binding for another key"));
        }
        let preimage = ValidatorProof::<ShardCtx>::signing_bytes(&public_key, &peer_id);
        Ok(ValidatorProof::new(public_key, peer_id, Signature(self.key.sign_raw(&preimage))))
    }
}

/// Verifies consensus messages of one shard under `shardex_core::signing`'s rule.
#[derive(Clone, Copy)]
pub struct ShardVerifier {
    ctx: ShardCtx,
}

impl ShardVerifier {
    /// A verifier on `ctx`'s chain and shard.
    pub fn new(ctx: ShardCtx) -> Self {
        Self { ctx }
    }

    /// Checks a proposal signature (also used on the `Fin` part of a stream).
    pub fn proposal_is_signed(&self, proposal: &Proposal, signature: &Signature, key: &Address) -> bool {
        proposal_payload(proposal).is_some_and(|payload| {
            let ShardCtx { chain, shard } = self.ctx;
            signing::verify(&key.account(), &signature.0, Domain::Proposal, chain, shard, &payload).is_ok()
        })
    }
}

fn result(valid: bool) -> Result<VerificationResult, Error> {
    Ok(VerificationResult::from_bool(valid))
}

#[async_trait]
impl Verifier<ShardCtx> for ShardVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &Address,
    ) -> Result<VerificationResult, Error> {
        let Some((kind, round, block)) = vote_parts(vote) else { return result(false) };
        let domain = (self.ctx.chain, self.ctx.shard);
        result(
            vote::verify_vote(&public_key.account(), &signature.0, kind, domain, vote.height.0, round, block.as_ref())
                .is_ok(),
        )
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &Address,
    ) -> Result<VerificationResult, Error> {
        result(self.proposal_is_signed(proposal, signature, public_key))
    }

    async fn verify_signed_vote_extension(
        &self,
        _scope: &VoteExtensionScope<ShardCtx>,
        _extension: &Vec<u8>,
        _signature: &Signature,
        _public_key: &Address,
    ) -> Result<VerificationResult, Error> {
        result(false)
    }

    async fn verify_validator_proof(&self, proof: &ValidatorProof<ShardCtx>) -> Result<VerificationResult, Error> {
        let Ok(key) = AccountId::from_slice(&proof.public_key) else { return result(false) };
        result(signing::verify_raw(&key, &proof.signature.0, &proof.preimage()).is_ok())
    }
}

/// Rounds as the engine numbers them, for messages built outside it.
pub fn round(r: u32) -> Round {
    Round::new(r)
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::Context;
    use shardex_core::{block::verify_finalized, validators::ValidatorSet, vote::sign_precommit, ChainId, ShardId};

    use super::*;
    use crate::types::{BlockId, Height};

    const CTX: ShardCtx = ShardCtx { chain: ChainId(3), shard: ShardId(9) };

    #[tokio::test]
    async fn engine_precommits_are_the_certificates_core_verifies() {
        let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let set = ValidatorSet::equal(&keys.iter().map(Keypair::account).collect::<Vec<_>>()).expect("valid");
        let header = shardex_core::pb::BlockHeader {
            chain_id: 3,
            shard_id: 9,
            height: 7,
            parent_hash: vec![0; 32],
            tx_root: vec![0; 32],
            receipts_root: vec![0; 32],
            state_root: vec![0; 32],
            events_root: vec![0; 32],
            ..Default::default()
        };
        let header_bytes = prost::Message::encode_to_vec(&header);
        let hash = shardex_core::hash::block_hash(&header_bytes);
        let mut signatures = Vec::new();
        for k in &keys[..3] {
            let signer = ShardSigner::new(k.clone(), CTX);
            let vote = CTX.new_precommit(Height(7), round(2), NilOrVal::Val(BlockId::from(hash)), k.account().into());
            let signed = signer.sign_vote(vote.clone()).await.expect("signs");
            // The engine's verifier accepts it, and so does the core certificate check.
            let verifier = ShardVerifier::new(CTX);
            assert!(verifier
                .verify_signed_vote(&vote, &signed.signature, &k.account().into())
                .await
                .expect("ok")
                .is_valid());
            assert_eq!(signed.signature.0.to_vec(), sign_precommit(k, (CTX.chain, CTX.shard), 7, 2, &hash).signature);
            signatures.push(shardex_core::pb::HeaderSignature {
                signer: k.account().0.to_vec(),
                signature: signed.signature.0.to_vec(),
            });
        }
        let fh = shardex_core::pb::FinalizedHeader { header: header_bytes, signatures, round: 2 };
        assert!(verify_finalized(&fh, CTX.chain, CTX.shard, &set).is_ok());
    }

    #[tokio::test]
    async fn a_prevote_or_nil_vote_never_verifies_as_a_precommit() {
        let k = Keypair::from_seed([1; 32]);
        let signer = ShardSigner::new(k.clone(), CTX);
        let verifier = ShardVerifier::new(CTX);
        let block = BlockId([7; 32]);
        let prevote = CTX.new_prevote(Height(1), round(0), NilOrVal::Val(block), k.account().into());
        let signed = signer.sign_vote(prevote).await.expect("signs");
        let precommit = CTX.new_precommit(Height(1), round(0), NilOrVal::Val(block), k.account().into());
        assert!(verifier
            .verify_signed_vote(&precommit, &signed.signature, &k.account().into())
            .await
            .expect("ok")
            .is_invalid());
        let nil = CTX.new_precommit(Height(1), round(0), NilOrVal::Nil, k.account().into());
        let signed_nil = signer.sign_vote(nil.clone()).await.expect("signs");
        assert!(verifier
            .verify_signed_vote(&nil, &signed_nil.signature, &k.account().into())
            .await
            .expect("ok")
            .is_valid());
        assert!(verifier
            .verify_signed_vote(&precommit, &signed_nil.signature, &k.account().into())
            .await
            .expect("ok")
            .is_invalid());
        // Another shard's context does not accept it.
        let other = ShardVerifier::new(ShardCtx { chain: ChainId(3), shard: ShardId(10) });
        assert!(other
            .verify_signed_vote(&nil, &signed_nil.signature, &k.account().into())
            .await
            .expect("ok")
            .is_invalid());
    }

    #[tokio::test]
    async fn peer_binding_is_signed_and_checked() {
        let k = Keypair::from_seed([5; 32]);
        let signer = ShardSigner::new(k.clone(), CTX);
        let proof = signer.sign_validator_proof(k.account().0.to_vec(), b"peer".to_vec()).await.expect("signs");
        let verifier = ShardVerifier::new(CTX);
        assert!(verifier.verify_validator_proof(&proof).await.expect("ok").is_valid());
        let forged = ValidatorProof::<ShardCtx>::new(proof.public_key.clone(), b"other".to_vec(), proof.signature);
        assert!(verifier.verify_validator_proof(&forged).await.expect("ok").is_invalid());
        assert!(signer.sign_validator_proof(vec![0; 32], b"peer".to_vec()).await.is_err());
    }
}
