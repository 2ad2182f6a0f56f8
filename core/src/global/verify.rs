//! Client-side checks of the global commitment: coordinator signature → global root → shard entry →
//! finalized shard header → state root → account record.

use alloy_primitives::{Bytes, B256};
use prost::Message;

use super::{
    epoch::{verify_epoch, VerifiedEpoch},
    trie::shard_key,
};
use crate::{
    block::{verify_finalized, DecodedHeader, HeaderError},
    coordpb,
    hash::b256_from_slice,
    ids::{AccountId, ChainId, ShardId},
    pb,
    proof::{verify_account_response, verify_state_proof, ProofError},
    signing::SignatureError,
    validators::ValidatorSet,
};

/// Why a global commitment or a proof against it was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalError {
    /// A message does not decode or a field has the wrong size.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The epoch names another coordinator key than the one trusted.
    #[error("epoch is signed by {0}, not by the trusted coordinator key")]
    UntrustedCoordinator(String),
    /// The epoch is for another chain.
    #[error("epoch is for chain {got}, expected {expected}")]
    WrongChain {
        /// Chain in the record.
        got: u64,
        /// Chain expected.
        expected: ChainId,
    },
    /// The coordinator signature does not verify.
    #[error("coordinator signature: {0}")]
    Signature(SignatureError),
    /// The entry is for another shard than the one asked about.
    #[error("entry is for shard {got}, expected {expected}")]
    WrongShard {
        /// Shard in the entry.
        got: u32,
        /// Shard expected.
        expected: ShardId,
    },
    /// The MPT proof does not put the entry under the global root.
    #[error("shard entry is not proven under the global root: {0}")]
    Inclusion(String),
    /// The shard header is not certified by the shard's validator set.
    #[error("shard header: {0}")]
    Header(#[from] HeaderError),
    /// The header is not the one the entry commits to.
    #[error("header does not match the committed entry: {0}")]
    HeaderMismatch(String),
    /// The account proof does not verify against the header's state root.
    #[error("account proof: {0}")]
    Account(#[from] ProofError),
}

/// Checks that `entry` is what `entry.shard_id`'s key holds under the verified epoch's global root.
pub fn verify_shard_inclusion(
    epoch: &VerifiedEpoch,
    entry: &coordpb::ShardEntry,
    proof: &[Bytes],
) -> Result<(), GlobalError> {
    verify_entry_under_root(epoch.global_root, entry, proof)
}

/// Checks that `entry` is what `entry.shard_id`'s key holds under `global_root`: the root of an epoch verified
/// earlier (a shard VM keeps the roots of the epochs it imported).
pub fn verify_entry_under_root(
    global_root: B256,
    entry: &coordpb::ShardEntry,
    proof: &[Bytes],
) -> Result<(), GlobalError> {
    if entry.height == 0 || entry.block_hash.len() != 32 || entry.state_root.len() != 32 {
        return Err(GlobalError::Malformed("entry needs a height and 32-byte hash and root".into()));
    }
    let key = shard_key(ShardId(entry.shard_id));
    verify_state_proof(global_root, key, Some(&entry.encode_to_vec()), proof)
        .map_err(|e| GlobalError::Inclusion(e.to_string()))
}

/// A shard's head as a coordinator-signed epoch commits it: everything [`verify_inclusion`] established.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedInclusion {
    /// The epoch, checked against the trusted coordinator key.
    pub epoch: VerifiedEpoch,
    /// The shard's entry, proven under the epoch's global root.
    pub entry: coordpb::ShardEntry,
    /// The committed header's hash.
    pub block_hash: B256,
    /// The committed header's state root: any record of the shard at `entry.height` proves under it.
    pub state_root: B256,
}

/// Verifies that a coordinator-signed epoch commits a finalized header of `shard`:
///
/// 1. `inclusion.epoch` is signed by `coordinator` (domain separated) for `chain`;
/// 2. `inclusion.entry` is `shard`'s entry under the epoch's global root (`inclusion.proof`);
/// 3. `inclusion.header` hashes to the entry's block hash, has its height and state root, and is finalized
///    by a quorum of `validators` (the shard's genesis set).
pub fn verify_inclusion(
    inclusion: &coordpb::ShardInclusion,
    coordinator: &AccountId,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
) -> Result<VerifiedInclusion, GlobalError> {
    let signed = inclusion.epoch.as_ref().ok_or_else(|| GlobalError::Malformed("no epoch".into()))?;
    let epoch = verify_epoch(signed, coordinator, chain)?;
    let entry = inclusion.entry.as_ref().ok_or_else(|| GlobalError::Malformed("no shard entry".into()))?;
    if entry.shard_id != shard.0 {
        return Err(GlobalError::WrongShard { got: entry.shard_id, expected: shard });
    }
    let proof: Vec<Bytes> = inclusion.proof.iter().map(|n| Bytes::copy_from_slice(n)).collect();
    verify_shard_inclusion(&epoch, entry, &proof)?;

    let fh = inclusion.header.as_ref().ok_or_else(|| GlobalError::Malformed("no shard header".into()))?;
    let header = verify_header_of_entry(fh, entry, chain, shard, validators)?;
    Ok(VerifiedInclusion { epoch, entry: entry.clone(), block_hash: header.hash, state_root: header.state_root() })
}

/// Checks that `fh` is finalized for (`chain`, `shard`) by a quorum of `validators` (the shard's genesis set,
/// [`verify_finalized`]) and is the block `entry` commits to: its hash is the entry's block hash, its height
/// and state root the entry's. The one binding of a certified header to a coordinator entry, shared by
/// clients ([`verify_inclusion`]) and the bridge (`bridge::verify_certified_entry`).
pub fn verify_header_of_entry(
    fh: &pb::FinalizedHeader,
    entry: &coordpb::ShardEntry,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
) -> Result<DecodedHeader, GlobalError> {
    let header = verify_finalized(fh, chain, shard, validators)?;
    let block_hash = b256_from_slice(&entry.block_hash).unwrap_or_default();
    let state_root = b256_from_slice(&entry.state_root).unwrap_or_default();
    if entry.block_hash.len() != 32
        || entry.state_root.len() != 32
        || header.hash != block_hash
        || header.header.height != entry.height
        || header.state_root() != state_root
    {
        return Err(GlobalError::HeaderMismatch(format!(
            "header {} at height {} with root {}, entry commits to {} at height {} with root {}",
            header.hash,
            header.header.height,
            header.state_root(),
            block_hash,
            entry.height,
            state_root
        )));
    }
    Ok(header)
}

/// Everything one [`verify_account_global`] call established.
#[derive(Debug, Clone, PartialEq)]
pub struct GloballyVerifiedAccount {
    /// The epoch, checked against the trusted coordinator key.
    pub epoch: VerifiedEpoch,
    /// The shard's entry, proven under the epoch's global root.
    pub entry: coordpb::ShardEntry,
    /// The committed header's hash.
    pub block_hash: B256,
    /// The committed header's state root.
    pub state_root: B256,
    /// The account record proven under that state root (None: no record at that height).
    pub record: Option<pb::AccountRecord>,
}

/// Verifies an account record all the way up to a coordinator-signed epoch, in one call: the steps of
/// [`verify_inclusion`], then `account_resp` proves `account`'s record under the committed state root, at
/// the committed height.
pub fn verify_account_global(
    inclusion: &coordpb::ShardInclusion,
    coordinator: &AccountId,
    chain: ChainId,
    shard: ShardId,
    validators: &ValidatorSet,
    account: &AccountId,
    account_resp: &pb::GetAccountResponse,
) -> Result<GloballyVerifiedAccount, GlobalError> {
    let VerifiedInclusion { epoch, entry, block_hash, state_root } =
        verify_inclusion(inclusion, coordinator, chain, shard, validators)?;
    let proven = verify_account_response(account_resp, account, chain, shard, None)?;
    if proven.state_root != state_root || proven.height != entry.height {
        return Err(GlobalError::Account(ProofError::RootMismatch(format!(
            "account proven at height {} root {}, entry is height {} root {}",
            proven.height, proven.state_root, entry.height, state_root
        ))));
    }
    Ok(GloballyVerifiedAccount { epoch, entry, block_hash, state_root, record: proven.record })
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::{
        block::encode_header,
        global::{build_global_trie, entry_from_header, sign_epoch},
        keys::Keypair,
        state_key,
        vote::sign_precommit,
    };

    const CHAIN: ChainId = ChainId(5);
    const SHARD: ShardId = ShardId(2);

    struct Fixture {
        coordinator: Keypair,
        sequencer: Keypair,
        account: AccountId,
        inclusion: coordpb::ShardInclusion,
        resp: pb::GetAccountResponse,
    }

    /// A shard state with one account, its signed header at height 9, a global trie over three shards and
    /// a signed epoch: everything a client receives for one global account check.
    fn fixture() -> Fixture {
        let sequencer = Keypair::from_seed([3; 32]);
        let coordinator = Keypair::from_seed([4; 32]);
        let account = Keypair::from_seed([5; 32]).account();
        let record = pb::AccountRecord {
            collateral_micros: 1_500_000,
            nonces: vec![1, 2],
            escrow_micros: 0,
            portfolio_margin: false,
        };
        let key = state_key::account_key(&account);
        let mut leaves: Vec<(B256, Vec<u8>)> =
            (0u8..10).map(|i| (alloy_primitives::keccak256([i]), vec![i; 20])).collect();
        leaves.push((key, record.encode_to_vec()));
        let (state_root, nodes) = crate::proof::trie_with_proof(&leaves, key);
        let nodes: Vec<Vec<u8>> = nodes.into_iter().map(|n| n.to_vec()).collect();

        let header = pb::BlockHeader {
            chain_id: CHAIN.0,
            shard_id: SHARD.0,
            height: 9,
            parent_hash: vec![1; 32],
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: state_root.to_vec(),
            events_root: vec![5; 32],
            ..Default::default()
        };
        let (bytes, hash) = encode_header(&header);
        let fh = pb::FinalizedHeader {
            header: bytes,
            signatures: vec![sign_precommit(&sequencer, (CHAIN, SHARD), 9, 0, &hash)],
            round: 0,
        };
        let decoded = crate::block::decode_header(&fh).expect("decodes");
        let entry = entry_from_header(&decoded);
        let others: Vec<coordpb::ShardEntry> = [1u32, 3, 4]
            .iter()
            .map(|&s| coordpb::ShardEntry {
                shard_id: s,
                height: u64::from(s) * 10,
                block_hash: vec![s as u8; 32],
                state_root: vec![0xee; 32],
            })
            .collect();
        let mut entries = others.clone();
        entries.push(entry.clone());
        let trie = build_global_trie(&entries, Some(SHARD));
        let record_e = coordpb::EpochRecord {
            chain_id: CHAIN.0,
            number: 12,
            parent_hash: vec![7; 32],
            global_root: trie.root.to_vec(),
            time_ms: 1_700_000_001_000,
            new_headers: 1,
        };
        let (signed, _) = sign_epoch(&coordinator, &record_e);
        let inclusion = coordpb::ShardInclusion {
            epoch: Some(signed),
            entry: Some(entry),
            proof: trie.proof.iter().map(|n| n.to_vec()).collect(),
            header: Some(fh),
        };
        let proof = pb::StateProof {
            height: 9,
            state_root: state_root.to_vec(),
            key: key.to_vec(),
            nodes,
            value: record.encode_to_vec(),
        };
        let resp = pb::GetAccountResponse {
            account: Some(record),
            height: 9,
            state_root: state_root.to_vec(),
            proof: Some(proof),
            header: None,
        };
        Fixture { coordinator, sequencer, account, inclusion, resp }
    }

    fn check(f: &Fixture) -> Result<GloballyVerifiedAccount, GlobalError> {
        verify_account_global(
            &f.inclusion,
            &f.coordinator.account(),
            CHAIN,
            SHARD,
            &ValidatorSet::equal(&[f.sequencer.account()]).expect("valid set"),
            &f.account,
            &f.resp,
        )
    }

    #[test]
    fn verifies_an_account_from_the_coordinator_signature_down() {
        let f = fixture();
        let v = check(&f).expect("verifies");
        assert_eq!(v.epoch.record.number, 12);
        assert_eq!(v.entry.height, 9);
        assert_eq!(v.record.map(|r| r.collateral_micros), Some(1_500_000));
    }

    #[test]
    fn rejects_every_tampered_link() {
        let mut f = fixture();
        let entry = f.inclusion.entry.clone().expect("entry");
        // Entry with another height: not under the global root.
        f.inclusion.entry = Some(coordpb::ShardEntry { height: 10, ..entry.clone() });
        assert!(matches!(check(&f), Err(GlobalError::Inclusion(_))), "{:?}", check(&f));
        // Proof with a flipped byte.
        let mut f = fixture();
        let last = f.inclusion.proof.len() - 1;
        f.inclusion.proof[last][5] ^= 1;
        assert!(matches!(check(&f), Err(GlobalError::Inclusion(_))));
        // Epoch signature.
        let mut f = fixture();
        if let Some(e) = f.inclusion.epoch.as_mut() {
            e.signature[0] ^= 1;
        }
        assert!(matches!(check(&f), Err(GlobalError::Signature(_))));
        // Header signed by a key outside the validator set.
        let mut f = fixture();
        let outsider = Keypair::from_seed([6; 32]);
        if let Some(h) = f.inclusion.header.as_mut() {
            let hash = crate::hash::block_hash(&h.header);
            h.signatures = vec![sign_precommit(&outsider, (CHAIN, SHARD), 9, 0, &hash)];
        }
        assert!(matches!(check(&f), Err(GlobalError::Header(HeaderError::UnknownSigner { .. }))));
        // Another validly signed header than the committed one.
        let mut f = fixture();
        let other = pb::BlockHeader {
            chain_id: CHAIN.0,
            shard_id: SHARD.0,
            height: 9,
            parent_hash: vec![9; 32],
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: entry.state_root.clone(),
            events_root: vec![5; 32],
            ..Default::default()
        };
        let (bytes, hash) = encode_header(&other);
        f.inclusion.header = Some(pb::FinalizedHeader {
            header: bytes,
            signatures: vec![sign_precommit(&f.sequencer, (CHAIN, SHARD), 9, 0, &hash)],
            round: 0,
        });
        assert!(matches!(check(&f), Err(GlobalError::HeaderMismatch(_))));
        // Account record changed after proving.
        let mut f = fixture();
        if let Some(a) = f.resp.account.as_mut() {
            a.collateral_micros += 1;
        }
        assert!(matches!(check(&f), Err(GlobalError::Account(ProofError::RecordMismatch(_)))));
        // Proof value changed together with the record.
        let mut f = fixture();
        let forged = pb::AccountRecord {
            collateral_micros: 9_999_999_999,
            nonces: vec![1, 2],
            escrow_micros: 0,
            portfolio_margin: false,
        };
        f.resp.account = Some(forged.clone());
        if let Some(p) = f.resp.proof.as_mut() {
            p.value = forged.encode_to_vec();
        }
        assert!(matches!(check(&f), Err(GlobalError::Account(ProofError::Invalid(_)))));
        // Asking about another shard.
        let f = fixture();
        let r = verify_account_global(
            &f.inclusion,
            &f.coordinator.account(),
            CHAIN,
            ShardId(3),
            &ValidatorSet::equal(&[f.sequencer.account()]).expect("valid set"),
            &f.account,
            &f.resp,
        );
        assert!(matches!(r, Err(GlobalError::WrongShard { .. })));
    }

    #[test]
    fn global_root_is_order_independent_and_proofs_verify_for_each_shard() {
        let entries: Vec<coordpb::ShardEntry> = (1u32..=40)
            .map(|s| coordpb::ShardEntry {
                shard_id: s,
                height: u64::from(s),
                block_hash: vec![s as u8; 32],
                state_root: vec![!(s as u8); 32],
            })
            .collect();
        let mut reversed = entries.clone();
        reversed.reverse();
        let root = crate::global::global_root(&entries);
        assert_eq!(root, crate::global::global_root(&reversed));
        let key = Keypair::from_seed([1; 32]);
        let record = coordpb::EpochRecord {
            chain_id: 1,
            number: 1,
            parent_hash: vec![0; 32],
            global_root: root.to_vec(),
            time_ms: 1,
            new_headers: 40,
        };
        let (signed, _) = sign_epoch(&key, &record);
        let epoch = crate::global::verify_epoch(&signed, &key.account(), ChainId(1)).expect("epoch");
        for e in &entries {
            let t = build_global_trie(&entries, Some(ShardId(e.shard_id)));
            assert_eq!(verify_shard_inclusion(&epoch, e, &t.proof), Ok(()));
            let wrong = coordpb::ShardEntry { state_root: vec![0; 32], ..e.clone() };
            assert!(verify_shard_inclusion(&epoch, &wrong, &t.proof).is_err());
        }
    }
}
