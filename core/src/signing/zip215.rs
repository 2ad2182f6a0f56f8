//! The arithmetic of ZIP-215 ed25519 verification on curve25519-dalek, single and batched.
//!
//! Decoding happens once, in [`decode_key`] and [`Prepared::new`], for both paths: a key or `R` that is not
//! a curve point, a small-order key, or a non-canonical `s` is refused there with the same error either way.
//! What remains is the cofactored equation `[8]([s]B − R − [k]A) = 0`, checked alone by [`Prepared::verify`]
//! or as one random linear combination by [`verify_batch`]. For a valid signature `[s]B − R − [k]A` is a
//! small-order point, which the factor 8 removes whatever the combination's weights: a batch of valid
//! signatures always passes, and one with an invalid signature fails except with probability about 2^-128.
//!
//! The `ed25519-consensus` crate implements the same rule (without the key rule); the tests check both
//! agree on every edge case.

use std::collections::HashMap;

use curve25519_dalek::{
    constants::ED25519_BASEPOINT_POINT,
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
    traits::{IsIdentity, VartimeMultiscalarMul},
};
use rand::RngCore;
use sha2::{Digest, Sha512};

use super::SignatureError;

/// Decodes a key that may sign: a curve point (non-canonical encodings accepted) not of small order.
pub fn decode_key(bytes: &[u8; 32]) -> Result<EdwardsPoint, SignatureError> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(SignatureError::BadSigner)?;
    match point.is_small_order() {
        true => Err(SignatureError::WeakSigner),
        false => Ok(point),
    }
}

/// A signature decoded and its challenge `k` hashed: all that is left is the equation.
#[derive(Clone, Debug)]
pub struct Prepared {
    key_bytes: [u8; 32],
    key: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Prepared {
    /// Decodes `signature` by `key` (decoded from `key_bytes` by [`decode_key`]) over `message` (the
    /// concatenation of its parts).
    pub fn new(
        key_bytes: &[u8; 32],
        key: EdwardsPoint,
        signature: &[u8; 64],
        message: &[&[u8]],
    ) -> Result<Self, SignatureError> {
        let (r_bytes, s_bytes) = signature.split_at(32);
        let r_bytes: [u8; 32] = r_bytes.try_into().map_err(|_| SignatureError::Invalid)?;
        let s_bytes: [u8; 32] = s_bytes.try_into().map_err(|_| SignatureError::Invalid)?;
        let r = CompressedEdwardsY(r_bytes).decompress().ok_or(SignatureError::Invalid)?;
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(SignatureError::Invalid)?;
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key_bytes);
        for part in message {
            hash.update(part);
        }
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        Ok(Self { key_bytes: *key_bytes, key, r, s, k })
    }

    /// The cofactored equation for this signature alone.
    pub fn verify(&self) -> Result<(), SignatureError> {
        // [s]B − [k]A, then minus R.
        let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.key, &self.s);
        match (r_prime - self.r).mul_by_cofactor().is_identity() {
            true => Ok(()),
            false => Err(SignatureError::Invalid),
        }
    }
}

/// The cofactored equation for all of `items` at once: `[8](Σ zᵢ([sᵢ]B − Rᵢ − [kᵢ]Aᵢ)) = 0` with random
/// 128-bit weights `zᵢ`, one term per distinct key. `true` means every item would verify alone.
pub fn verify_batch<'a>(items: impl Iterator<Item = &'a Prepared> + Clone, rng: &mut impl RngCore) -> bool {
    let mut key_index: HashMap<[u8; 32], usize> = HashMap::new();
    let mut keys: Vec<EdwardsPoint> = Vec::new();
    let mut key_weights: Vec<Scalar> = Vec::new();
    let mut r_weights = Vec::new();
    let mut base_weight = Scalar::ZERO;
    for item in items.clone() {
        let z = Scalar::from(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()));
        base_weight += z * item.s;
        r_weights.push(-z);
        let i = *key_index.entry(item.key_bytes).or_insert_with(|| {
            keys.push(item.key);
            key_weights.push(Scalar::ZERO);
            keys.len() - 1
        });
        key_weights[i] -= z * item.k;
    }
    let sum = EdwardsPoint::vartime_multiscalar_mul(
        std::iter::once(&base_weight).chain(&key_weights).chain(&r_weights),
        std::iter::once(&ED25519_BASEPOINT_POINT).chain(&keys).chain(items.map(|item| &item.r)),
    );
    sum.mul_by_cofactor().is_identity()
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use proptest::prelude::*;

    use super::*;
    use crate::signing::tests::edge;

    /// ed25519-consensus's verdict (ZIP-215 without the key rule).
    fn theirs(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
        ed25519_consensus::VerificationKey::try_from(*key)
            .is_ok_and(|k| k.verify(&ed25519_consensus::Signature::from(*sig), msg).is_ok())
    }

    fn prepare(key: &[u8; 32], sig: &[u8; 64], parts: &[&[u8]]) -> Result<Prepared, SignatureError> {
        Prepared::new(key, decode_key(key)?, sig, parts)
    }

    fn ours(key: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> Result<(), SignatureError> {
        prepare(key, sig, &[msg]).and_then(|p| p.verify())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// On honest signatures, signatures carrying torsion in R or in the key, and any of them with one bit
        /// flipped anywhere, this implementation agrees with ed25519-consensus, except that it refuses
        /// small-order keys (which ed25519-consensus accepts for some signatures).
        #[test]
        fn agrees_with_ed25519_consensus(
            seed in any::<u8>(),
            torsion_in_r in 0u8..8,
            torsion_in_key in 0u8..8,
            flip in proptest::option::of(0usize..(96 * 8)),
            msg in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let t = edge::torsion8();
            let times = |n: u8| (0..n).fold(EdwardsPoint::default(), |acc, _| acc + t);
            let (a, r) = (edge::scalar(seed), edge::scalar(seed.wrapping_add(1)));
            let mut key = edge::compress(edge::base(a) + times(torsion_in_key));
            let r_bytes = edge::compress(edge::base(r) + times(torsion_in_r));
            let mut sig = edge::sign(a, key, r, r_bytes, &msg);
            if let Some(bit) = flip {
                let byte = bit / 8;
                match byte < 64 {
                    true => sig[byte] ^= 1 << (bit % 8),
                    false => key[byte - 64] ^= 1 << (bit % 8),
                }
            }
            let verdict = ours(&key, &sig, &msg);
            match verdict {
                Err(SignatureError::WeakSigner) => {
                    let point = CompressedEdwardsY(key).decompress().expect("decodes");
                    prop_assert!(point.is_small_order());
                }
                _ => prop_assert_eq!(verdict.is_ok(), theirs(&key, &sig, &msg)),
            }
            if flip.is_none() {
                prop_assert_eq!(verdict, Ok(()));
            }
            // A batch of it among honest signatures passes exactly when it verifies alone.
            if let Ok(p) = prepare(&key, &sig, &[&msg]) {
                let honest: Vec<Prepared> = (0..3u8)
                    .map(|i| {
                        let (a, r) = (edge::scalar(i), edge::scalar(i + 100));
                        let key = edge::compress(edge::base(a));
                        let sig = edge::sign(a, key, r, edge::compress(edge::base(r) + times(i)), &msg);
                        prepare(&key, &sig, &[&msg]).expect("decodes")
                    })
                    .collect();
                let all: Vec<&Prepared> = honest.iter().chain(std::iter::once(&p)).collect();
                prop_assert_eq!(verify_batch(all.into_iter(), &mut rand::thread_rng()), p.verify().is_ok());
            }
        }
    }

    #[test]
    fn the_challenge_covers_the_message_parts_in_order() {
        let a = edge::scalar(9);
        let key = edge::compress(edge::base(a));
        let r = edge::scalar(10);
        let sig = edge::sign(a, key, r, edge::compress(edge::base(r)), b"abcdef");
        let ok = |parts: &[&[u8]]| prepare(&key, &sig, parts).and_then(|p| p.verify()).is_ok();
        assert!(ok(&[b"abcdef"]) && ok(&[b"abc", b"def"]) && ok(&[b"", b"abcdef", b""]));
        assert!(!ok(&[b"def", b"abc"]) && !ok(&[b"abcde"]));
    }
}
