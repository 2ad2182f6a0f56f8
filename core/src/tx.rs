//! Transactions: build and sign (clients), decode and verify with limits (nodes).
//!
//! A node never re-encodes a body to verify it: the signature covers the exact bytes received. Those bytes
//! must be the body's canonical protobuf encoding (fields in order, defaults omitted, minimal varints, no
//! unknown fields): a body that decodes but re-encodes differently is refused as `MALFORMED`, so nobody can
//! pad a cheap tx with bytes the VM never looks at, and one body has exactly one hash.

use alloy_primitives::B256;
use prost::Message;

use crate::{
    hash::tx_hash,
    ids::{AccountId, ChainId, ShardId},
    keys::Keypair,
    pb,
    reason::Reason,
    signing::{self, Domain, SignatureError},
};

/// Default largest accepted encoded `SignedTx`, in bytes.
pub const DEFAULT_MAX_TX_BYTES: usize = 4096;

/// Largest accepted encoded `SignedTx` that carries bridge proofs (deliver, ack, refund), in bytes: up to
/// three MPT proofs of a large state (about ten 532-byte branch nodes each) plus a global-trie proof, and the
/// other shard's certified header (at most `MAX_VALIDATORS` = 128 precommits of about 100 bytes: under
/// 13 KiB; a refund with all of that is about 30 KiB, see the test). Every other op keeps the node's
/// `max_tx_bytes`.
pub const MAX_PROOF_TX_BYTES: usize = 64 * 1024;

/// True for the ops that carry MPT proofs and may use [`MAX_PROOF_TX_BYTES`].
fn carries_proofs(body: &pb::TxBody) -> bool {
    use pb::tx_body::Op;
    matches!(body.op, Some(Op::DeliverMessage(_) | Op::AckMessage(_) | Op::TimeoutRefund(_)))
}

/// Why a tx was refused before execution. Every variant maps to one [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Encoded tx larger than the limit.
    #[error("tx is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Size received.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The envelope or body does not decode.
    #[error("malformed tx: {0}")]
    Malformed(String),
    /// The body is for another chain.
    #[error("tx is for chain {got}, this is chain {expected}")]
    WrongChain {
        /// This node's chain.
        expected: ChainId,
        /// The body's chain.
        got: ChainId,
    },
    /// The body is for another shard.
    #[error("tx is for shard {got}, this is shard {expected}")]
    WrongShard {
        /// This node's shard.
        expected: ShardId,
        /// The body's shard.
        got: ShardId,
    },
    /// The body carries no op.
    #[error("tx body carries no op")]
    MissingOp,
    /// Signer or signature invalid.
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
}

impl TxError {
    /// The machine-readable reason.
    pub fn reason(&self) -> Reason {
        match self {
            Self::TooLarge { .. } => Reason::TxTooLarge,
            Self::Malformed(_) => Reason::Malformed,
            Self::WrongChain { .. } => Reason::WrongChain,
            Self::WrongShard { .. } => Reason::WrongShard,
            Self::MissingOp => Reason::InvalidOp,
            Self::Signature(_) => Reason::BadSignature,
        }
    }
}

/// Where a tx must be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxDomain {
    /// The chain.
    pub chain: ChainId,
    /// The shard.
    pub shard: ShardId,
}

/// A tx whose envelope decoded within limits, whose body names this chain and shard, and whose signature
/// verified. Only [`decode_and_verify`] makes one, so holding it is proof of those checks.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    hash: B256,
    signer: AccountId,
    body: pb::TxBody,
    envelope: pb::SignedTx,
}

impl VerifiedTx {
    /// keccak256 of the body bytes.
    pub fn hash(&self) -> B256 {
        self.hash
    }
    /// The verified signer.
    pub fn signer(&self) -> AccountId {
        self.signer
    }
    /// The decoded body.
    pub fn body(&self) -> &pb::TxBody {
        &self.body
    }
    /// The op (present by construction).
    pub fn op(&self) -> Option<&pb::tx_body::Op> {
        self.body.op.as_ref()
    }
    /// The envelope exactly as received.
    pub fn envelope(&self) -> &pb::SignedTx {
        &self.envelope
    }
}

/// Decodes an encoded `SignedTx` with a size limit and verifies it.
pub fn decode_and_verify(bytes: &[u8], domain: TxDomain, max_tx_bytes: usize) -> Result<VerifiedTx, TxError> {
    let outer = max_tx_bytes.max(MAX_PROOF_TX_BYTES);
    if bytes.len() > outer {
        return Err(TxError::TooLarge { size: bytes.len(), limit: outer });
    }
    let envelope = pb::SignedTx::decode(bytes).map_err(|e| TxError::Malformed(format!("envelope: {e}")))?;
    verify_envelope(envelope, domain, max_tx_bytes)
}

/// Verifies an already-decoded envelope (as tonic hands it over), with the same checks and limits: at most
/// `max_tx_bytes`, or [`MAX_PROOF_TX_BYTES`] for an op carrying bridge proofs.
pub fn verify_envelope(envelope: pb::SignedTx, domain: TxDomain, max_tx_bytes: usize) -> Result<VerifiedTx, TxError> {
    let tx = check_format(envelope, domain, max_tx_bytes)?;
    signing::verify(&tx.signer, &tx.envelope.signature, Domain::Tx, domain.chain, domain.shard, &tx.envelope.body)?;
    Ok(tx)
}

/// Verifies many envelopes (a submitted batch, a block's txs) with the checks of [`verify_envelope`], each
/// verdict the one it would give: the format checks run per tx and the signatures as batches, spread with
/// their format checks over rayon's threads ([`signing::in_shares`]). Blocks the calling thread: run it on a
/// blocking or rayon thread, not an async runtime's worker.
pub fn verify_envelopes(
    envelopes: Vec<pb::SignedTx>,
    domain: TxDomain,
    max_tx_bytes: usize,
) -> Vec<Result<VerifiedTx, TxError>> {
    signing::in_shares(envelopes, |share| verify_chunk(share, domain, max_tx_bytes))
}

/// A block's txs, all of which must verify ([`verify_envelopes`]); the error names the first bad tx by its
/// index in the block.
pub fn verify_all(
    envelopes: Vec<pb::SignedTx>,
    domain: TxDomain,
    max_tx_bytes: usize,
) -> Result<Vec<VerifiedTx>, (usize, TxError)> {
    verify_envelopes(envelopes, domain, max_tx_bytes)
        .into_iter()
        .enumerate()
        .map(|(i, tx)| tx.map_err(|e| (i, e)))
        .collect()
}

/// [`verify_envelopes`] on one thread.
fn verify_chunk(
    envelopes: Vec<pb::SignedTx>,
    domain: TxDomain,
    max_tx_bytes: usize,
) -> Vec<Result<VerifiedTx, TxError>> {
    let mut checked: Vec<Result<VerifiedTx, TxError>> = Vec::with_capacity(envelopes.len());
    let mut pending = Vec::with_capacity(envelopes.len());
    let mut keys = signing::Keys::default();
    for envelope in envelopes {
        let tx = check_format(envelope, domain, max_tx_bytes).and_then(|tx| {
            let e = &tx.envelope;
            pending.push(signing::Pending::new_with(
                &mut keys,
                &tx.signer,
                &e.signature,
                Domain::Tx,
                domain.chain,
                domain.shard,
                &e.body,
            )?);
            Ok(tx)
        });
        checked.push(tx);
    }
    let mut verdicts = signing::verify_batch(&pending).into_iter();
    for tx in &mut checked {
        if tx.is_ok() {
            if let Some(Err(e)) = verdicts.next() {
                *tx = Err(e.into());
            }
        }
    }
    checked
}

/// Every check of [`verify_envelope`] but the signature's equation. Not public: a `VerifiedTx` leaves this
/// module only once its signature verified.
fn check_format(envelope: pb::SignedTx, domain: TxDomain, max_tx_bytes: usize) -> Result<VerifiedTx, TxError> {
    let size = envelope.encoded_len();
    let outer = max_tx_bytes.max(MAX_PROOF_TX_BYTES);
    if size > outer {
        return Err(TxError::TooLarge { size, limit: outer });
    }
    let oversize = size > max_tx_bytes;
    let body = pb::TxBody::decode(envelope.body.as_slice()).map_err(|e| match oversize {
        // Only a proof-carrying op may be this large, and this is none.
        true => TxError::TooLarge { size, limit: max_tx_bytes },
        false => TxError::Malformed(format!("body: {e}")),
    })?;
    if oversize && !carries_proofs(&body) {
        return Err(TxError::TooLarge { size, limit: max_tx_bytes });
    }
    if body.encoded_len() != envelope.body.len() || body.encode_to_vec() != envelope.body {
        return Err(TxError::Malformed(
            "body is not in canonical protobuf form (unknown fields, repeated or out-of-order fields, encoded \
             defaults or padding)"
                .into(),
        ));
    }
    if body.chain_id != domain.chain.0 {
        return Err(TxError::WrongChain { expected: domain.chain, got: ChainId(body.chain_id) });
    }
    if body.shard_id != domain.shard.0 {
        return Err(TxError::WrongShard { expected: domain.shard, got: ShardId(body.shard_id) });
    }
    if body.op.is_none() {
        return Err(TxError::MissingOp);
    }
    let signer = AccountId::from_slice(&body.signer).map_err(|_| SignatureError::BadSigner)?;
    Ok(VerifiedTx { hash: tx_hash(&envelope.body), signer, body, envelope })
}

/// Builds and signs a tx for `domain` (client side). The body's signer is the key's account.
pub fn sign_tx(key: &Keypair, domain: TxDomain, nonce: u64, op: pb::tx_body::Op) -> pb::SignedTx {
    let body = pb::TxBody {
        chain_id: domain.chain.0,
        shard_id: domain.shard.0,
        signer: key.account().0.to_vec(),
        nonce,
        op: Some(op),
    };
    sign_body(key, domain, &body)
}

/// Signs an arbitrary body under `domain` (which need not match the body: tests build wrong-domain txs).
pub fn sign_body(key: &Keypair, domain: TxDomain, body: &pb::TxBody) -> pb::SignedTx {
    let bytes = body.encode_to_vec();
    let signature = signing::sign(key, Domain::Tx, domain.chain, domain.shard, &bytes).to_vec();
    pb::SignedTx { body: bytes, signature }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: TxDomain = TxDomain { chain: ChainId(9), shard: ShardId(3) };

    fn withdraw(amount: u64) -> pb::tx_body::Op {
        pb::tx_body::Op::Withdraw(pb::Withdraw { amount_micros: amount })
    }

    #[test]
    fn accepts_a_good_tx_and_keeps_exact_bytes() {
        let k = Keypair::from_seed([5; 32]);
        let tx = sign_tx(&k, D, 1, withdraw(10));
        let bytes = tx.encode_to_vec();
        let v = decode_and_verify(&bytes, D, DEFAULT_MAX_TX_BYTES).expect("valid");
        assert_eq!(v.signer(), k.account());
        assert_eq!(v.envelope().body, tx.body);
        assert_eq!(v.hash(), tx_hash(&tx.body));
    }

    /// Golden vector: the body encoding and tx hash of a fixed withdrawal.
    #[test]
    fn golden_tx_encoding() {
        let k = Keypair::from_seed([5; 32]);
        let tx = sign_tx(&k, D, 1, withdraw(10));
        assert_eq!(
            hex::encode(&tx.body),
            "080910031a206e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf120015a02080a"
        );
        assert_eq!(
            format!("{:x}", tx_hash(&tx.body)),
            "fa592fb7fbc14f500e0d653a898da5da393e289360c933b5d49044e256f7a600"
        );
    }

    #[test]
    fn each_bad_input_has_its_own_reason() {
        let k = Keypair::from_seed([5; 32]);
        let good = sign_tx(&k, D, 1, withdraw(10));
        let check =
            |bytes: &[u8]| decode_and_verify(bytes, D, DEFAULT_MAX_TX_BYTES).map(|_| ()).map_err(|e| e.reason());

        assert_eq!(check(&[0xff, 0xff, 0xff]), Err(Reason::Malformed));
        assert_eq!(check(&vec![0u8; MAX_PROOF_TX_BYTES + 1]), Err(Reason::TxTooLarge));
        // Above the node's limit: refused unless the op carries bridge proofs.
        let padded = pb::tx_body::Op::CancelAll(pb::CancelAll {});
        let mut big = sign_tx(&k, D, 1, padded);
        big.signature.resize(DEFAULT_MAX_TX_BYTES + 1, 0);
        assert_eq!(check(&big.encode_to_vec()), Err(Reason::TxTooLarge));
        let proofs =
            pb::tx_body::Op::AckMessage(pb::AckMessage { ack_proof: vec![vec![7; 1000]; 6], ..Default::default() });
        let big_proof = sign_tx(&k, D, 1, proofs);
        assert!(big_proof.encoded_len() > DEFAULT_MAX_TX_BYTES);
        assert_eq!(check(&big_proof.encode_to_vec()), Ok(()));

        let other_shard = TxDomain { shard: ShardId(4), ..D };
        assert_eq!(check(&sign_tx(&k, other_shard, 1, withdraw(1)).encode_to_vec()), Err(Reason::WrongShard));
        let other_chain = TxDomain { chain: ChainId(10), ..D };
        assert_eq!(check(&sign_tx(&k, other_chain, 1, withdraw(1)).encode_to_vec()), Err(Reason::WrongChain));

        // Body says this shard, but it was signed for another: the signature fails.
        let body = pb::TxBody::decode(good.body.as_slice()).expect("decodes");
        assert_eq!(check(&sign_body(&k, other_shard, &body).encode_to_vec()), Err(Reason::BadSignature));

        let mut flipped = good.clone();
        flipped.signature[0] ^= 1;
        assert_eq!(check(&flipped.encode_to_vec()), Err(Reason::BadSignature));

        let mut no_op = body.clone();
        no_op.op = None;
        assert_eq!(check(&sign_body(&k, D, &no_op).encode_to_vec()), Err(Reason::InvalidOp));
    }

    /// A batch gives every envelope the verdict it gets alone, in order, whatever the mix and however the
    /// batch is split across threads.
    #[test]
    fn a_batch_gets_the_verdicts_of_single_verification() {
        let keys: Vec<_> = (0u8..5).map(|i| Keypair::from_seed([i; 32])).collect();
        let other_shard = TxDomain { shard: ShardId(4), ..D };
        let kinds = |i: usize, k: &Keypair| -> pb::SignedTx {
            let good = sign_tx(k, D, i as u64, withdraw(i as u64));
            match (i + 4) % 6 {
                0 => sign_tx(k, other_shard, 1, withdraw(1)),
                1 => {
                    let mut flipped = good;
                    flipped.signature[i % 64] ^= 1;
                    flipped
                }
                2 => pb::SignedTx { signature: vec![0; 63], ..good },
                3 => pb::SignedTx { body: vec![0xff, 0xff], ..good },
                _ => good,
            }
        };
        for n in [1, 7, 100, 301] {
            let envelopes: Vec<_> = (0..n).map(|i| kinds(i, &keys[i % keys.len()])).collect();
            let alone: Vec<_> = envelopes
                .iter()
                .map(|e| verify_envelope(e.clone(), D, DEFAULT_MAX_TX_BYTES).map(|t| t.hash()))
                .collect();
            let batched: Vec<_> =
                verify_envelopes(envelopes, D, DEFAULT_MAX_TX_BYTES).into_iter().map(|r| r.map(|t| t.hash())).collect();
            assert_eq!(batched, alone, "n = {n}");
            assert!(alone.iter().any(Result::is_ok) && (n < 6 || alone.iter().any(Result::is_err)));
        }
    }

    /// The proof-tx bound holds the largest certificate: a refund (the op with the most proofs) with three
    /// ten-node proofs of 532-byte branches (global, imported commitment, receipt absence) and 128 precommits.
    #[test]
    fn a_refund_with_a_full_certificate_fits_the_proof_tx_bound() {
        let k = Keypair::from_seed([5; 32]);
        let header = pb::BlockHeader {
            chain_id: u64::MAX,
            shard_id: u32::MAX,
            height: u64::MAX,
            parent_hash: vec![1; 32],
            timestamp_ms: u64::MAX,
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: vec![4; 32],
            last_imported_epoch: u64::MAX,
            proposer: vec![5; 32],
            gas_used: u64::MAX,
            tx_count: u32::MAX,
            events_root: vec![6; 32],
        };
        let certificate = pb::FinalizedHeader {
            header: header.encode_to_vec(),
            signatures: (0..crate::validators::MAX_VALIDATORS)
                .map(|_| pb::HeaderSignature { signer: vec![7; 32], signature: vec![8; 64] })
                .collect(),
            round: u32::MAX,
        };
        let branch = || vec![vec![9u8; 532]; 10];
        let refund = pb::tx_body::Op::TimeoutRefund(pb::TimeoutRefund {
            dst_shard: u32::MAX,
            seq: u64::MAX,
            dst_entry: vec![1; 120],
            non_receipt_proof: branch(),
            header_proof: branch(),
            epoch: u64::MAX,
            dst_imported: vec![2; 200],
            imported_proof: branch(),
            dst_header: Some(certificate),
        });
        let tx = sign_tx(&k, D, u64::MAX, refund);
        let size = tx.encoded_len();
        assert!(size <= MAX_PROOF_TX_BYTES, "{size} bytes");
        assert!(size < 32 * 1024, "{size} bytes: the documented figure is about 30 KiB");
        assert_eq!(decode_and_verify(&tx.encode_to_vec(), D, DEFAULT_MAX_TX_BYTES).map(|_| ()), Ok(()));
    }

    /// A body must be its canonical encoding: every way to pad or re-spell one that still decodes (and that
    /// the signer signed) is refused, and the canonical spelling passes.
    #[test]
    fn padded_or_non_canonical_bodies_are_refused() {
        let k = Keypair::from_seed([5; 32]);
        let check = |body: Vec<u8>| {
            let signature = signing::sign(&k, Domain::Tx, D.chain, D.shard, &body).to_vec();
            let tx = pb::SignedTx { body, signature }.encode_to_vec();
            decode_and_verify(&tx, D, DEFAULT_MAX_TX_BYTES).map(|_| ()).map_err(|e| e.reason())
        };
        let canonical = sign_tx(&k, D, 1, pb::tx_body::Op::CancelAll(pb::CancelAll {})).body;
        assert_eq!(check(canonical.clone()), Ok(()));

        // An unknown field (number 99, 3,000 bytes): the padding a fresh key would use to fill blocks for free.
        let mut unknown = canonical.clone();
        prost::encoding::bytes::encode(99, &vec![0u8; 3000], &mut unknown);
        assert_eq!(check(unknown), Err(Reason::Malformed));
        // A small unknown varint field.
        let mut unknown_varint = canonical.clone();
        prost::encoding::uint64::encode(77, &1, &mut unknown_varint);
        assert_eq!(check(unknown_varint), Err(Reason::Malformed));
        // A field repeated (the last one wins when decoding): the nonce twice.
        let mut repeated = canonical.clone();
        prost::encoding::uint64::encode(4, &1, &mut repeated);
        assert_eq!(check(repeated), Err(Reason::Malformed));
        // A default written out: nonce 0 explicitly encoded in front.
        let body = pb::TxBody::decode(canonical.as_slice()).expect("decodes");
        let mut zero_nonce = body.clone();
        zero_nonce.nonce = 0;
        let mut explicit_default = Vec::new();
        prost::encoding::uint64::encode(4, &0, &mut explicit_default);
        explicit_default.extend(zero_nonce.encode_to_vec());
        assert_eq!(check(explicit_default), Err(Reason::Malformed));
        // A non-minimal varint: the chain id (field 1) as 9 spelled in two bytes.
        let mut non_minimal = vec![0x08, 0x89, 0x00];
        let mut rest = body.clone();
        rest.chain_id = 0;
        non_minimal.extend(rest.encode_to_vec());
        assert_eq!(check(non_minimal), Err(Reason::Malformed));
    }
}
