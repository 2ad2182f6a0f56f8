//! The pure acceptance rule for one shard's headers: a candidate is accepted only if it decodes, is for
//! the shard's chain and shard, is exactly one above the last accepted header, names that header as its
//! parent, and carries a commit certificate of the shard's genesis validator set.

use shardex_core::{
    block::{decode_header, verify_finalized, HeaderError},
    hash::b256_from_slice,
    pb,
    validators::ValidatorSet,
    ChainId, ShardId, B256,
};

/// What the coordinator knows of one shard from its genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Chain of the shard.
    pub chain: ChainId,
    /// The shard.
    pub shard: ShardId,
    /// The validators whose precommits finalize its blocks.
    pub validators: ValidatorSet,
    /// Timestamp of its genesis block, ms.
    pub genesis_time_ms: u64,
}

/// The last accepted header of a shard (height 0: the genesis anchor).
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: B256,
    /// Post-state root.
    pub state_root: B256,
    /// Block timestamp, ms.
    pub timestamp_ms: u64,
    /// The finalized header as received (exact bytes).
    pub header: pb::FinalizedHeader,
}

/// Why a header was refused. Each kind has a stable machine-readable name ([`Rejection::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The header bytes do not decode or a hash field has the wrong size.
    #[error("undecodable header: {0}")]
    Undecodable(String),
    /// The header names another chain or shard.
    #[error("header is for chain {chain} shard {shard}, expected chain {expected_chain} shard {expected_shard}")]
    WrongDomain {
        /// Chain in the header.
        chain: u64,
        /// Shard in the header.
        shard: u32,
        /// The shard's chain.
        expected_chain: ChainId,
        /// The shard.
        expected_shard: ShardId,
    },
    /// A height at or below the last accepted one.
    #[error("replayed height {height}: already accepted up to {accepted}")]
    Replayed {
        /// Header height.
        height: u64,
        /// Last accepted height.
        accepted: u64,
    },
    /// A height beyond the next one: headers in between are missing.
    #[error("non-consecutive height {height}: next expected is {expected}")]
    NonConsecutive {
        /// Header height.
        height: u64,
        /// Next height expected.
        expected: u64,
    },
    /// The parent hash is not the last accepted header's hash.
    #[error("wrong parent at height {height}: parent {got}, last accepted is {expected}")]
    WrongParent {
        /// Header height.
        height: u64,
        /// Parent named by the header.
        got: B256,
        /// Hash of the last accepted header.
        expected: B256,
    },
    /// A validly certified header that conflicts with the one accepted at its height: the shard's validators
    /// equivocated. The pair is kept as evidence and the shard is held.
    #[error("equivocation at height {height}: a certified header {conflicting} conflicts with accepted {accepted}")]
    Equivocation {
        /// The height.
        height: u64,
        /// Hash of the header accepted there.
        accepted: B256,
        /// Hash of the conflicting one.
        conflicting: B256,
    },
    /// The shard is held after an equivocation: nothing more is accepted until an operator releases it.
    #[error("shard held since an equivocation at height {at}: header {height} not accepted")]
    Held {
        /// Header height.
        height: u64,
        /// The height of the equivocation.
        at: u64,
    },
    /// The commit certificate does not finalize the header (see [`HeaderError::kind`] for the reasons: an
    /// unknown, duplicated or bad signer, too little voting power, too many signatures).
    #[error("{0}")]
    Certificate(HeaderError),
}

impl Rejection {
    /// Stable machine-readable name, as logged and reported in status.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Undecodable(_) => "UNDECODABLE",
            Self::WrongDomain { .. } => "WRONG_CHAIN_OR_SHARD",
            Self::Replayed { .. } => "REPLAYED_HEIGHT",
            Self::NonConsecutive { .. } => "NON_CONSECUTIVE_HEIGHT",
            Self::WrongParent { .. } => "WRONG_PARENT",
            Self::Equivocation { .. } => "EQUIVOCATION",
            Self::Held { .. } => "SHARD_HELD",
            Self::Certificate(e) => e.kind(),
        }
    }
}

/// Takes the shard's genesis block (height 0, unsigned) as the anchor the first signed header must extend.
///
/// The genesis state root is computed by the shard's VM, not here: what is checked is the shape, chain,
/// shard, height, zero parent and genesis time. A lying anchor cannot get a forged state committed — the
/// global trie holds only signed headers, and height 1 names the genuine genesis hash as its parent, so a
/// wrong anchor only stops the shard from being followed (and is reported as `WRONG_PARENT`).
pub fn anchor(spec: &ShardSpec, genesis: &pb::FinalizedHeader) -> Result<Head, Rejection> {
    let decoded = decode_header(genesis).map_err(|e| Rejection::Undecodable(e.to_string()))?;
    let h = &decoded.header;
    if h.chain_id != spec.chain.0 || h.shard_id != spec.shard.0 {
        return Err(Rejection::WrongDomain {
            chain: h.chain_id,
            shard: h.shard_id,
            expected_chain: spec.chain,
            expected_shard: spec.shard,
        });
    }
    if h.height != 0 || h.parent_hash.iter().any(|b| *b != 0) || h.timestamp_ms != spec.genesis_time_ms {
        return Err(Rejection::Undecodable(format!(
            "genesis anchor must be height 0 with a zero parent at time {}, got height {} time {}",
            spec.genesis_time_ms, h.height, h.timestamp_ms
        )));
    }
    Ok(Head {
        height: 0,
        hash: decoded.hash,
        state_root: decoded.state_root(),
        timestamp_ms: h.timestamp_ms,
        header: genesis.clone(),
    })
}

/// Rebuilds a head from a header this coordinator stored after accepting it.
pub fn head_from_stored(fh: &pb::FinalizedHeader) -> Result<Head, Rejection> {
    let d = decode_header(fh).map_err(|e| Rejection::Undecodable(e.to_string()))?;
    Ok(Head {
        height: d.header.height,
        hash: d.hash,
        state_root: d.state_root(),
        timestamp_ms: d.header.timestamp_ms,
        header: fh.clone(),
    })
}

/// Decides whether `candidate` extends `last` for the shard of `spec`; on acceptance returns the new head.
///
/// Cheap checks (shape, domain, height, parent) run before signature checks; finality itself is
/// `shardex_core::block::verify_finalized`, whose refusal names its reason.
pub fn accept(last: &Head, spec: &ShardSpec, candidate: &pb::FinalizedHeader) -> Result<Head, Rejection> {
    let decoded = decode_header(candidate).map_err(|e| Rejection::Undecodable(e.to_string()))?;
    let h = &decoded.header;
    if h.chain_id != spec.chain.0 || h.shard_id != spec.shard.0 {
        return Err(Rejection::WrongDomain {
            chain: h.chain_id,
            shard: h.shard_id,
            expected_chain: spec.chain,
            expected_shard: spec.shard,
        });
    }
    if h.height <= last.height {
        return Err(Rejection::Replayed { height: h.height, accepted: last.height });
    }
    if h.height != last.height + 1 {
        return Err(Rejection::NonConsecutive { height: h.height, expected: last.height + 1 });
    }
    let parent = b256_from_slice(&h.parent_hash).unwrap_or_default();
    if parent != last.hash {
        return Err(Rejection::WrongParent { height: h.height, got: parent, expected: last.hash });
    }
    let d = verify_finalized(candidate, spec.chain, spec.shard, &spec.validators).map_err(Rejection::Certificate)?;
    Ok(Head {
        height: d.header.height,
        hash: d.hash,
        state_root: d.state_root(),
        timestamp_ms: d.header.timestamp_ms,
        header: candidate.clone(),
    })
}

/// Whether `candidate`, refused as a replay of a height already accepted with `accepted`, proves that the
/// shard's validators equivocated: both headers validly certified by the set, at one height, different.
pub fn equivocation(
    spec: &ShardSpec,
    accepted: &pb::FinalizedHeader,
    candidate: &pb::FinalizedHeader,
) -> Option<Rejection> {
    let a = verify_finalized(accepted, spec.chain, spec.shard, &spec.validators).ok()?;
    let c = verify_finalized(candidate, spec.chain, spec.shard, &spec.validators).ok()?;
    (a.header.height == c.header.height && a.hash != c.hash).then_some(Rejection::Equivocation {
        height: a.header.height,
        accepted: a.hash,
        conflicting: c.hash,
    })
}

#[cfg(test)]
mod tests {
    use shardex_core::{block::encode_header, vote::sign_precommit, Keypair};

    use super::*;

    const CHAIN: ChainId = ChainId(3);
    const SHARD: ShardId = ShardId(4);

    fn spec(keys: &[&Keypair]) -> ShardSpec {
        ShardSpec {
            chain: CHAIN,
            shard: SHARD,
            validators: ValidatorSet::equal(&keys.iter().map(|k| k.account()).collect::<Vec<_>>()).expect("valid"),
            genesis_time_ms: 1_000,
        }
    }

    fn header(height: u64, parent: B256) -> pb::BlockHeader {
        pb::BlockHeader {
            chain_id: CHAIN.0,
            shard_id: SHARD.0,
            height,
            parent_hash: parent.to_vec(),
            timestamp_ms: 1_000 + height,
            tx_root: vec![2; 32],
            receipts_root: vec![3; 32],
            state_root: vec![height as u8; 32],
            events_root: vec![5; 32],
            ..Default::default()
        }
    }

    fn signed(h: &pb::BlockHeader, keys: &[&Keypair]) -> pb::FinalizedHeader {
        let (bytes, hash) = encode_header(h);
        pb::FinalizedHeader {
            header: bytes,
            signatures: keys.iter().map(|k| sign_precommit(k, (CHAIN, SHARD), h.height, 0, &hash)).collect(),
            round: 0,
        }
    }

    fn genesis_head() -> Head {
        let (bytes, hash) = encode_header(&header(0, B256::ZERO));
        Head {
            height: 0,
            hash,
            state_root: B256::ZERO,
            timestamp_ms: 1_000,
            header: pb::FinalizedHeader { header: bytes, ..Default::default() },
        }
    }

    #[test]
    fn accepts_a_chain_of_signed_headers() {
        let seq = Keypair::from_seed([1; 32]);
        let s = spec(&[&seq]);
        let mut head = anchor(&s, &genesis_head().header).expect("genesis anchors");
        assert_eq!(head, genesis_head());
        let mut late = header(0, B256::ZERO);
        late.timestamp_ms += 1;
        assert!(anchor(&s, &signed(&late, &[])).is_err());
        for height in 1..=3 {
            let fh = signed(&header(height, head.hash), &[&seq]);
            head = accept(&head, &s, &fh).expect("valid header");
            assert_eq!(head.height, height);
            assert_eq!(head.state_root, B256::from([height as u8; 32]));
        }
    }

    #[test]
    fn rejects_each_forgery_with_its_own_reason() {
        let seq = Keypair::from_seed([1; 32]);
        let intruder = Keypair::from_seed([2; 32]);
        let s = spec(&[&seq]);
        let g = genesis_head();
        let h1 = header(1, g.hash);
        let head1 = accept(&g, &s, &signed(&h1, &[&seq])).expect("valid");

        let kind = |r: Result<Head, Rejection>| r.map(|h| h.height).map_err(|e| e.kind());
        // Signed by a key outside the set.
        assert_eq!(kind(accept(&g, &s, &signed(&h1, &[&intruder]))), Err("UNKNOWN_SIGNER"));
        // A set member's key, but the signature is over other bytes.
        let mut bad = signed(&h1, &[&seq]);
        bad.signatures[0].signature[0] ^= 1;
        assert_eq!(kind(accept(&g, &s, &bad)), Err("BAD_SIGNATURE"));
        // No signatures at all.
        assert_eq!(kind(accept(&g, &s, &signed(&h1, &[]))), Err("NO_QUORUM"));
        // Correctly signed, wrong parent.
        assert_eq!(kind(accept(&head1, &s, &signed(&header(2, B256::repeat_byte(9)), &[&seq]))), Err("WRONG_PARENT"));
        // Replays of an accepted height, identical or equivocating.
        assert_eq!(kind(accept(&head1, &s, &signed(&h1, &[&seq]))), Err("REPLAYED_HEIGHT"));
        let mut equivocation = h1.clone();
        equivocation.timestamp_ms += 1;
        assert_eq!(kind(accept(&head1, &s, &signed(&equivocation, &[&seq]))), Err("REPLAYED_HEIGHT"));
        // A gap.
        assert_eq!(kind(accept(&head1, &s, &signed(&header(3, head1.hash), &[&seq]))), Err("NON_CONSECUTIVE_HEIGHT"));
        // Another shard or chain.
        let mut other = header(2, head1.hash);
        other.shard_id = 5;
        assert_eq!(kind(accept(&head1, &s, &signed(&other, &[&seq]))), Err("WRONG_CHAIN_OR_SHARD"));
        other.shard_id = SHARD.0;
        other.chain_id = 4;
        assert_eq!(kind(accept(&head1, &s, &signed(&other, &[&seq]))), Err("WRONG_CHAIN_OR_SHARD"));
        // Garbage bytes.
        let junk = pb::FinalizedHeader { header: vec![0xff; 7], ..Default::default() };
        assert_eq!(kind(accept(&head1, &s, &junk)), Err("UNDECODABLE"));
        // The genuine next header is still accepted after all of that.
        assert_eq!(kind(accept(&head1, &s, &signed(&header(2, head1.hash), &[&seq]))), Ok(2));
    }

    #[test]
    fn two_certified_headers_at_one_height_are_an_equivocation() {
        let keys: Vec<Keypair> = (1u8..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let refs: Vec<&Keypair> = keys.iter().collect();
        let s = spec(&refs);
        let g = genesis_head();
        let h1 = header(1, g.hash);
        let mut fork = h1.clone();
        fork.timestamp_ms += 7;
        let accepted = signed(&h1, &refs[..3]);
        // A conflicting header with a valid certificate (validators 2, 3, 4: two of them signed both).
        let conflicting = signed(&fork, &refs[1..]);
        let r = equivocation(&s, &accepted, &conflicting).expect("evidence");
        assert_eq!(r.kind(), "EQUIVOCATION");
        // The same header again, or a conflicting one without a quorum, is no evidence.
        assert!(equivocation(&s, &accepted, &signed(&h1, &refs[1..])).is_none());
        assert!(equivocation(&s, &accepted, &signed(&fork, &refs[..2])).is_none());
    }

    #[test]
    fn needs_more_than_two_thirds_of_a_larger_set() {
        let keys: Vec<Keypair> = (1u8..=4).map(|i| Keypair::from_seed([i; 32])).collect();
        let refs: Vec<&Keypair> = keys.iter().collect();
        let s = spec(&refs);
        let g = genesis_head();
        let h1 = header(1, g.hash);
        assert_eq!(accept(&g, &s, &signed(&h1, &refs[..2])).map_err(|e| e.kind()).err(), Some("NO_QUORUM"));
        // Duplicated signatures of one member do not count twice.
        assert_eq!(
            accept(&g, &s, &signed(&h1, &[refs[0], refs[0], refs[0]])).map_err(|e| e.kind()).err(),
            Some("DUPLICATE_SIGNER")
        );
        assert_eq!(accept(&g, &s, &signed(&h1, &refs[..3])).map(|h| h.height), Ok(1));
    }
}
