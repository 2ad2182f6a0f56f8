//! Domain-separated signatures: `tag || chain_id (u64 BE) || shard_id (u32 BE) || payload`, and the one
//! verification rule every shardex verifier applies.
//!
//! Every signed kind has its own tag, so a signature for one kind, shard or chain never verifies as another.
//!
//! # The verification rule
//! A signature `(R, s)` by the 32-byte key `A` over message `M` is valid when:
//! 1. `A` decodes to a curve point that is not of small order (a key no one holds a secret for cannot sign);
//! 2. `R` decodes to a curve point (non-canonical encodings of `A` and `R` are accepted);
//! 3. `s` is canonical: an integer below the group order `l`;
//! 4. the cofactored equation `[8][s]B = [8]R + [8][k]A` holds, with `k = SHA-512(R || A || M) mod l`.
//!
//! Points 2–4 are ZIP-215 (as in the `ed25519-consensus` crate; [`zip215`] implements them on
//! curve25519-dalek, whose vectorised backend is about twice as fast here); point 1 is checked on the key
//! alone. Under this rule single and batch verification accept exactly the same signatures: a valid
//! signature leaves only a small-order remainder in its equation, which the batch's factor 8 removes
//! whatever its random weights. So a node may check a block's or a submission's signatures as one batch
//! and still agree with every replica, coordinator and client that checks them one at a time.
//! ed25519-dalek's `verify_strict` (the rule before) accepts a strict subset: it refuses small-order
//! components in `R` that this rule accepts.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::{
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
};

mod zip215;

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
    /// The signer bytes are not an ed25519 public key (not a curve point).
    #[error("signer is not a valid ed25519 public key")]
    BadSigner,
    /// The signer is a point of small order: anyone could sign for it, so nothing it signs is accepted.
    #[error("signer is a small-order ed25519 point, which cannot sign")]
    WeakSigner,
    /// The signature is not 64 bytes.
    #[error("signature must be 64 bytes, got {0}")]
    BadLength(usize),
    /// The signature does not verify (ZIP-215: `R` a point, `s` canonical, the cofactored equation).
    #[error("signature does not verify for this signer, domain, chain and shard")]
    Invalid,
}

/// Rule 1 alone: `signer` is a key that can sign (a curve point, not of small order). Genesis checks every
/// key it lists with it.
pub fn check_signer(signer: &AccountId) -> Result<(), SignatureError> {
    zip215::decode_key(&signer.0).map(|_| ())
}

fn signature_array(signature: &[u8]) -> Result<&[u8; 64], SignatureError> {
    <&[u8; 64]>::try_from(signature).map_err(|_| SignatureError::BadLength(signature.len()))
}

/// Verifies a signature over the raw `message` (already domain-separated by the caller) under the rule of
/// this module.
pub fn verify_raw(signer: &AccountId, signature: &[u8], message: &[u8]) -> Result<(), SignatureError> {
    let key = zip215::decode_key(&signer.0)?;
    zip215::Prepared::new(&signer.0, key, signature_array(signature)?, &[message])?.verify()
}

/// Verifies one signature over the domain-separated message under the rule of this module.
pub fn verify(
    signer: &AccountId,
    signature: &[u8],
    domain: Domain,
    chain: ChainId,
    shard: ShardId,
    payload: &[u8],
) -> Result<(), SignatureError> {
    Pending::new(signer, signature, domain, chain, shard, payload)?.0.verify()
}

/// One signature awaiting the equation: its key, `R` and `s` decoded (every error but `Invalid` for a failed
/// equation is found here) and its challenge hashed.
#[derive(Clone, Debug)]
pub struct Pending(zip215::Prepared);

impl Pending {
    /// Decodes the signature by `signer` over `payload`'s domain-separated message; the equation is left to
    /// [`verify_each`] or [`verify_batch`].
    pub fn new(
        signer: &AccountId,
        signature: &[u8],
        domain: Domain,
        chain: ChainId,
        shard: ShardId,
        payload: &[u8],
    ) -> Result<Self, SignatureError> {
        let key = zip215::decode_key(&signer.0)?;
        Self::prepare(signer, key, signature, (domain, chain, shard), payload)
    }

    /// [`Pending::new`], decoding each signer's key once per `keys` (a batch from a few keys decodes only
    /// those).
    pub fn new_with(
        keys: &mut Keys,
        signer: &AccountId,
        signature: &[u8],
        domain: Domain,
        chain: ChainId,
        shard: ShardId,
        payload: &[u8],
    ) -> Result<Self, SignatureError> {
        let key = (*keys.0.entry(signer.0).or_insert_with(|| zip215::decode_key(&signer.0)))?;
        Self::prepare(signer, key, signature, (domain, chain, shard), payload)
    }

    fn prepare(
        signer: &AccountId,
        key: curve25519_dalek::EdwardsPoint,
        signature: &[u8],
        (domain, chain, shard): (Domain, ChainId, ShardId),
        payload: &[u8],
    ) -> Result<Self, SignatureError> {
        let signature = signature_array(signature)?;
        let (chain, shard) = (chain.0.to_be_bytes(), shard.0.to_be_bytes());
        let message: [&[u8]; 4] = [domain.tag(), &chain, &shard, payload];
        zip215::Prepared::new(&signer.0, key, signature, &message).map(Self)
    }
}

/// Keys decoded so far (or refused) while preparing one batch.
#[derive(Default)]
pub struct Keys(HashMap<[u8; 32], Result<curve25519_dalek::EdwardsPoint, SignatureError>>);

/// Signatures per batch below which spreading over threads costs more than it saves.
pub const MIN_SIGNATURES_PER_THREAD: usize = 32;

/// Checks every pending signature, with the verdict single verification would give each (the rule makes
/// batch and single verification agree). The signatures are checked as batches spread over rayon's threads
/// ([`in_shares`]); a batch that fails is checked one by one to name the bad signatures. Blocks the calling
/// thread: call it from a blocking or rayon thread, not an async runtime's worker.
pub fn verify_each(items: Vec<Pending>) -> Vec<Result<(), SignatureError>> {
    in_shares(items, |share| verify_batch(&share))
}

/// Runs `check` on an even share of `items` per rayon thread (at least [`MIN_SIGNATURES_PER_THREAD`] each,
/// so a small batch stays on the calling thread) and returns its verdicts in the order of `items`.
pub fn in_shares<T: Send, R: Send>(items: Vec<T>, check: impl Fn(Vec<T>) -> Vec<R> + Sync + Send) -> Vec<R> {
    let share = items.len().div_ceil(rayon::current_num_threads().max(1)).max(MIN_SIGNATURES_PER_THREAD);
    if items.len() <= share {
        return check(items);
    }
    items.into_par_iter().chunks(share).flat_map_iter(check).collect()
}

/// [`verify_each`] on the calling thread: one batch, checked one by one only if it fails.
pub fn verify_batch(items: &[Pending]) -> Vec<Result<(), SignatureError>> {
    match zip215::verify_batch(items.iter().map(|p| &p.0), &mut rand::thread_rng()) {
        true => vec![Ok(()); items.len()],
        false => items.iter().map(|p| p.0.verify()).collect(),
    }
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
    fn batch_verifies_and_names_the_bad_one() {
        // More than one thread's share, so the batch is split and each part checked on its own.
        let n = 3 * MIN_SIGNATURES_PER_THREAD as u8;
        let keys: Vec<_> = (0..n).map(|i| Keypair::from_seed([i; 32])).collect();
        let pending = |bad: Option<u8>| -> Vec<Pending> {
            keys.iter()
                .zip(0u8..)
                .map(|(k, i)| {
                    let sig = sign(k, Domain::Tx, CHAIN, SHARD, &[i]);
                    let payload = if bad == Some(i) { vec![i, 0] } else { vec![i] };
                    Pending::new(&k.account(), &sig, Domain::Tx, CHAIN, SHARD, &payload).expect("well formed")
                })
                .collect()
        };
        assert!(verify_each(pending(None)).iter().all(Result::is_ok));
        for bad in [0, 3, n - 1] {
            let verdicts = verify_each(pending(Some(bad)));
            assert_eq!(verdicts.len(), n as usize);
            for (i, v) in (0u8..).zip(verdicts) {
                assert_eq!(v, if i == bad { Err(SignatureError::Invalid) } else { Ok(()) }, "item {i}, bad {bad}");
            }
        }
    }

    /// Signatures built by hand from scalars, to reach the edge cases an honest signer never produces.
    pub(super) mod edge {
        use curve25519_dalek::{
            constants::ED25519_BASEPOINT_POINT as B,
            edwards::{CompressedEdwardsY, EdwardsPoint},
            traits::IsIdentity,
            Scalar,
        };
        use sha2::{Digest, Sha512};

        /// The group order l, little-endian.
        pub const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];

        pub fn scalar(seed: u8) -> Scalar {
            Scalar::from_bytes_mod_order_wide(&Sha512::digest([b's', seed]).into())
        }

        /// A torsion point of order 8: the small-order part of a point decoded from arbitrary bytes.
        pub fn torsion8() -> EdwardsPoint {
            (2u8..)
                .filter_map(|y| {
                    let mut bytes = [0u8; 32];
                    bytes[0] = y;
                    CompressedEdwardsY(bytes).decompress()
                })
                .map(|p| p - (p.mul_by_cofactor() * Scalar::from(8u8).invert()))
                .find(|t| !(t + t + t + t).is_identity())
                .expect("some point has a torsion part of order 8")
        }

        /// `s = r + k·a` with `k = H(R_bytes || A_bytes || msg)`: valid under the cofactored equation whenever
        /// `R_bytes` decodes to `rB` plus torsion and `A_bytes` to `aB` plus torsion.
        pub fn sign(a: Scalar, a_bytes: [u8; 32], r: Scalar, r_bytes: [u8; 32], msg: &[u8]) -> [u8; 64] {
            let k = Scalar::from_bytes_mod_order_wide(
                &Sha512::new().chain_update(r_bytes).chain_update(a_bytes).chain_update(msg).finalize().into(),
            );
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r_bytes);
            sig[32..].copy_from_slice((r + k * a).as_bytes());
            sig
        }

        /// Adds l to a canonical `s`: the same value mod l, but not canonical.
        pub fn add_l(mut sig: [u8; 64]) -> [u8; 64] {
            let mut carry = 0u16;
            for i in 0..32 {
                let sum = sig[32 + i] as u16 + L[i] as u16 + carry;
                sig[32 + i] = sum as u8;
                carry = sum >> 8;
            }
            sig
        }

        pub fn compress(p: EdwardsPoint) -> [u8; 32] {
            p.compress().to_bytes()
        }

        pub fn base(a: Scalar) -> EdwardsPoint {
            a * B
        }

        /// Bytes that do not decode to a curve point.
        pub fn not_a_point() -> [u8; 32] {
            (2u8..)
                .map(|y| {
                    let mut bytes = [0u8; 32];
                    bytes[0] = y;
                    bytes
                })
                .find(|b| CompressedEdwardsY(*b).decompress().is_none())
                .expect("some y is not on the curve")
        }
    }

    /// One edge case: who signs, the signature, and the verdict under the rule.
    struct Case {
        name: &'static str,
        signer: [u8; 32],
        sig: [u8; 64],
        verdict: Result<(), SignatureError>,
        /// What ed25519-dalek's `verify_strict` (the rule before) says, where it differs.
        strict_accepts: bool,
    }

    const PAYLOAD: &[u8] = b"edge";

    fn cases() -> Vec<Case> {
        use edge::*;
        let msg = signing_message(Domain::Tx, CHAIN, SHARD, PAYLOAD);
        let (a, r) = (scalar(1), scalar(2));
        let a_bytes = compress(base(a));
        let t = torsion8();
        let honest = sign(a, a_bytes, r, compress(base(r)), &msg);
        let mixed_key = compress(base(a) + t);
        let identity = compress(curve25519_dalek::EdwardsPoint::default());
        // y = p + 1: a non-canonical encoding of the identity.
        let mut noncanonical_identity = [0xff; 32];
        noncanonical_identity[0] = 0xee;
        noncanonical_identity[31] = 0x7f;
        let mut zero_s_by_identity = [0u8; 64];
        zero_s_by_identity[..32].copy_from_slice(&identity);
        let mut r_not_a_point = honest;
        r_not_a_point[..32].copy_from_slice(&not_a_point());
        let mut wrong = honest;
        wrong[40] ^= 1;
        vec![
            Case { name: "honest", signer: a_bytes, sig: honest, verdict: Ok(()), strict_accepts: true },
            Case {
                name: "R carries an order-8 component",
                signer: a_bytes,
                sig: sign(a, a_bytes, r, compress(base(r) + t), &msg),
                verdict: Ok(()),
                strict_accepts: false,
            },
            Case {
                name: "the key carries an order-8 component",
                signer: mixed_key,
                sig: sign(a, mixed_key, r, compress(base(r)), &msg),
                verdict: Ok(()),
                strict_accepts: false,
            },
            Case {
                name: "R is a non-canonical encoding (of the identity: r = 0)",
                signer: a_bytes,
                sig: sign(a, a_bytes, curve25519_dalek::Scalar::ZERO, noncanonical_identity, &msg),
                verdict: Ok(()),
                strict_accepts: false,
            },
            Case {
                name: "s is not canonical (s + l)",
                signer: a_bytes,
                sig: add_l(honest),
                verdict: Err(SignatureError::Invalid),
                strict_accepts: false,
            },
            Case {
                name: "a small-order key (the identity), R the identity, s = 0: ZIP-215 alone accepts it",
                signer: identity,
                sig: zero_s_by_identity,
                verdict: Err(SignatureError::WeakSigner),
                strict_accepts: false,
            },
            Case {
                name: "the key is not a point",
                signer: not_a_point(),
                sig: honest,
                verdict: Err(SignatureError::BadSigner),
                strict_accepts: false,
            },
            Case {
                name: "R is not a point",
                signer: a_bytes,
                sig: r_not_a_point,
                verdict: Err(SignatureError::Invalid),
                strict_accepts: false,
            },
            Case {
                name: "s altered",
                signer: a_bytes,
                sig: wrong,
                verdict: Err(SignatureError::Invalid),
                strict_accepts: false,
            },
        ]
    }

    fn strict_accepts(signer: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(signer)
            .is_ok_and(|k| k.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig)).is_ok())
    }

    #[test]
    fn edge_cases_get_the_rules_verdicts_single_and_batched() {
        let msg = signing_message(Domain::Tx, CHAIN, SHARD, PAYLOAD);
        for c in cases() {
            let signer = AccountId(c.signer);
            assert_eq!(verify(&signer, &c.sig, Domain::Tx, CHAIN, SHARD, PAYLOAD), c.verdict, "{}", c.name);
            assert_eq!(strict_accepts(&c.signer, &c.sig, &msg), c.strict_accepts, "{}", c.name);
            let pending = Pending::new(&signer, &c.sig, Domain::Tx, CHAIN, SHARD, PAYLOAD);
            let batched = pending.map(|p| verify_each(vec![p])[0]).and_then(|r| r);
            assert_eq!(batched, c.verdict, "{} (batched)", c.name);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any mix of edge cases and honest signatures, in any order and split anywhere across threads, gets
        /// from the batch exactly the verdicts single verification gives. Valid signatures with small-order
        /// components are the ones a non-cofactored batch equation would get wrong, with random weights.
        #[test]
        fn batches_agree_with_single_verification(picks in proptest::collection::vec(0usize..12, 1..160)) {
            let edge = cases();
            let items: Vec<([u8; 32], [u8; 64])> = picks
                .iter()
                .map(|&p| match edge.get(p) {
                    Some(c) => (c.signer, c.sig),
                    None => {
                        let k = Keypair::from_seed([p as u8; 32]);
                        (k.account().0, sign(&k, Domain::Tx, CHAIN, SHARD, PAYLOAD))
                    }
                })
                .collect();
            let single: Vec<_> = items
                .iter()
                .map(|(signer, sig)| verify(&AccountId(*signer), sig, Domain::Tx, CHAIN, SHARD, PAYLOAD))
                .collect();
            let mut batched = vec![Ok(()); items.len()];
            let mut pending = Vec::new();
            let mut slots = Vec::new();
            for (i, (signer, sig)) in items.iter().enumerate() {
                match Pending::new(&AccountId(*signer), sig, Domain::Tx, CHAIN, SHARD, PAYLOAD) {
                    Ok(p) => {
                        pending.push(p);
                        slots.push(i);
                    }
                    Err(e) => batched[i] = Err(e),
                }
            }
            for (slot, verdict) in slots.into_iter().zip(verify_each(pending)) {
                batched[slot] = verdict;
            }
            proptest::prop_assert_eq!(batched, single);
        }
    }

    /// The edge cases as fixed bytes (signer, signature) over the `Tx` message of `PAYLOAD` on chain 7,
    /// shard 1, with their verdicts: a change of the rule, of either crate's behaviour or of the domain
    /// format fails here. docs/signatures.md lists the same vectors for clients in other languages.
    const GOLDEN: [(&str, &str, Result<(), SignatureError>); 9] = [
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "b38d5d136424deb8c3d663dde1d87f7d00f85c5783da9c36629cc359ba5d864d\
             6560f6b5e823f237bb9d898881e09beb75a39697798e4baad3c536d565b84100",
            Ok(()),
        ),
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "4989f3397e415d10e7f7ec4209e76a50e323fb33fbce760430bf0472a1ee6a31\
             4798e8ad277b4557daed85f64714ecdf95dc3e07baab95ff1a5eacea97e1f30f",
            Ok(()),
        ),
        (
            "8d25d1f97de154573e050c5aba64ac1dfce03c6ccb51b5bbeb42de17beb71d54",
            "b38d5d136424deb8c3d663dde1d87f7d00f85c5783da9c36629cc359ba5d864d\
             08ecb2236c43027d25b2c504ddb8f1fcf3a45d1b77c19caa521a4a0a878e390b",
            Ok(()),
        ),
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f\
             e5a980109fc8e5842a1154bcfe673497a6f5e6c876b0e1a08f43bc47949d8807",
            Ok(()),
        ),
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "b38d5d136424deb8c3d663dde1d87f7d00f85c5783da9c36629cc359ba5d864d\
             5234ec1203870490913a812b60da7a0076a39697798e4baad3c536d565b84110",
            Err(SignatureError::Invalid),
        ),
        (
            "0100000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000000000000000000000000000000000000000000000",
            Err(SignatureError::WeakSigner),
        ),
        (
            "0200000000000000000000000000000000000000000000000000000000000000",
            "b38d5d136424deb8c3d663dde1d87f7d00f85c5783da9c36629cc359ba5d864d\
             6560f6b5e823f237bb9d898881e09beb75a39697798e4baad3c536d565b84100",
            Err(SignatureError::BadSigner),
        ),
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "0200000000000000000000000000000000000000000000000000000000000000\
             6560f6b5e823f237bb9d898881e09beb75a39697798e4baad3c536d565b84100",
            Err(SignatureError::Invalid),
        ),
        (
            "db932a79b6524974539a3dc46f53108a6e06129d1dc874070b86c7e9324de56c",
            "b38d5d136424deb8c3d663dde1d87f7d00f85c5783da9c36629cc359ba5d864d\
             6560f6b5e823f237ba9d898881e09beb75a39697798e4baad3c536d565b84100",
            Err(SignatureError::Invalid),
        ),
    ];

    #[test]
    fn golden_edge_vectors() {
        let built = cases();
        assert_eq!(built.len(), GOLDEN.len());
        for (c, (signer, sig, verdict)) in built.iter().zip(GOLDEN) {
            let sig = sig.split_whitespace().collect::<String>();
            assert_eq!((hex::encode(c.signer), hex::encode(c.sig)), (signer.to_string(), sig.clone()), "{}", c.name);
            assert_eq!(c.verdict, verdict, "{}", c.name);
            let signer = AccountId::from_slice(&hex::decode(signer).expect("hex")).expect("32 bytes");
            let sig = hex::decode(sig).expect("hex");
            assert_eq!(verify(&signer, &sig, Domain::Tx, CHAIN, SHARD, PAYLOAD), verdict, "{}", c.name);
        }
        // Without the rule on keys, ZIP-215 alone would accept the small-order key's "signature" of anything.
        let identity = ed25519_consensus::VerificationKey::try_from(built[5].signer).expect("a point");
        for payload in [PAYLOAD, b"anything else"] {
            let msg = signing_message(Domain::Tx, CHAIN, SHARD, payload);
            assert!(identity.verify(&ed25519_consensus::Signature::from(built[5].sig), &msg).is_ok());
        }
    }
}
