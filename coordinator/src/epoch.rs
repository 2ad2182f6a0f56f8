//! The pure epoch builder: given the previous epoch and every shard's latest accepted entry, the next
//! record, its global root and the coordinator's signature.

use std::collections::BTreeMap;

use shardex_core::{
    coordpb,
    global::{global_root, sign_epoch},
    ChainId, Keypair, ShardId, B256,
};

/// The link to the previous epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochLink {
    /// Its number.
    pub number: u64,
    /// Its hash.
    pub hash: B256,
    /// Its time, ms.
    pub time_ms: u64,
}

/// A signed epoch with what it commits to.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltEpoch {
    /// The record as signed.
    pub record: coordpb::EpochRecord,
    /// Record bytes, signature, coordinator key.
    pub signed: coordpb::SignedEpoch,
    /// keccak256 of the record bytes.
    pub hash: B256,
    /// Every entry, sorted by shard id.
    pub entries: Vec<coordpb::ShardEntry>,
}

impl BuiltEpoch {
    /// The link the next epoch points back to.
    pub fn link(&self) -> EpochLink {
        EpochLink { number: self.record.number, hash: self.hash, time_ms: self.record.time_ms }
    }
}

/// Builds and signs the epoch after `prev` (None: the first epoch).
///
/// `new_headers` counts the shards whose entry differs from `prev_entries`; time never goes below the
/// parent's, so the chain's times are monotonic even if the wall clock steps back.
pub fn build_epoch(
    key: &Keypair,
    chain: ChainId,
    prev: Option<&EpochLink>,
    prev_entries: &BTreeMap<ShardId, coordpb::ShardEntry>,
    entries: &BTreeMap<ShardId, coordpb::ShardEntry>,
    now_ms: u64,
) -> BuiltEpoch {
    let changed = entries.iter().filter(|(shard, e)| prev_entries.get(shard) != Some(*e)).count();
    let list: Vec<coordpb::ShardEntry> = entries.values().cloned().collect();
    let record = coordpb::EpochRecord {
        chain_id: chain.0,
        number: prev.map_or(1, |p| p.number + 1),
        parent_hash: prev.map_or(B256::ZERO, |p| p.hash).to_vec(),
        global_root: global_root(&list).to_vec(),
        time_ms: prev.map_or(now_ms, |p| now_ms.max(p.time_ms)),
        new_headers: u32::try_from(changed).unwrap_or(u32::MAX),
    };
    let (signed, hash) = sign_epoch(key, &record);
    BuiltEpoch { record, signed, hash, entries: list }
}

#[cfg(test)]
mod tests {
    use shardex_core::global::verify_epoch;

    use super::*;

    fn entry(shard: u32, height: u64) -> coordpb::ShardEntry {
        coordpb::ShardEntry { shard_id: shard, height, block_hash: vec![height as u8; 32], state_root: vec![7; 32] }
    }

    #[test]
    fn epochs_chain_count_new_headers_and_keep_time_monotonic() {
        let key = Keypair::from_seed([1; 32]);
        let none = BTreeMap::new();
        let mut e: BTreeMap<ShardId, coordpb::ShardEntry> = [(ShardId(1), entry(1, 1))].into();
        let first = build_epoch(&key, ChainId(2), None, &none, &e, 500);
        assert_eq!((first.record.number, first.record.new_headers), (1, 1));
        assert_eq!(first.record.parent_hash, vec![0; 32]);
        let v = verify_epoch(&first.signed, &key.account(), ChainId(2)).expect("signed");
        assert_eq!(v.hash, first.hash);

        let prev = e.clone();
        let idle = build_epoch(&key, ChainId(2), Some(&first.link()), &prev, &e, 400);
        assert_eq!((idle.record.number, idle.record.new_headers, idle.record.time_ms), (2, 0, 500));
        assert_eq!(idle.record.parent_hash, first.hash.to_vec());
        assert_eq!(idle.record.global_root, first.record.global_root);

        e.insert(ShardId(1), entry(1, 2));
        e.insert(ShardId(9), entry(9, 1));
        let moved = build_epoch(&key, ChainId(2), Some(&idle.link()), &prev, &e, 750);
        assert_eq!((moved.record.number, moved.record.new_headers, moved.record.time_ms), (3, 2, 750));
        assert_ne!(moved.record.global_root, idle.record.global_root);
        assert_eq!(moved.entries.iter().map(|e| e.shard_id).collect::<Vec<_>>(), vec![1, 9]);
    }
}
