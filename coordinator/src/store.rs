//! The coordinator's sled storage: signed epochs and their entries, accepted shard headers, shard heads.
//!
//! One tree, `coord`, with key prefixes:
//! `0x01 ‖ epoch u64 BE` → `SignedEpoch`; `0x02 ‖ epoch` → `EpochEntries`;
//! `0x03 ‖ shard u32 BE ‖ height u64 BE` → accepted `FinalizedHeader`; `0x04 ‖ shard` → head height;
//! `0x05` → latest epoch number; `0x06` → oldest retained epoch number;
//! `0x07 ‖ shard ‖ height` → `Equivocation` evidence; `0x08 ‖ shard` → height at which the shard is held.
//! An epoch is one `apply_batch` followed by `flush` before anyone is told about it.

use std::path::Path;

use prost::Message;
use shardex_core::{coordpb, pb, ShardId};

use crate::{
    epoch::BuiltEpoch,
    error::{CoordinatorError, Result},
};

const EPOCH: u8 = 0x01;
const ENTRIES: u8 = 0x02;
const HEADER: u8 = 0x03;
const HEAD: u8 = 0x04;
const LATEST: &[u8] = &[0x05];
const OLDEST: &[u8] = &[0x06];
const EVIDENCE: u8 = 0x07;
const HELD: u8 = 0x08;

fn epoch_key(prefix: u8, number: u64) -> [u8; 9] {
    let mut k = [prefix; 9];
    k[1..].copy_from_slice(&number.to_be_bytes());
    k
}

fn header_key(shard: ShardId, height: u64) -> [u8; 13] {
    let mut k = [HEADER; 13];
    k[1..5].copy_from_slice(&shard.0.to_be_bytes());
    k[5..].copy_from_slice(&height.to_be_bytes());
    k
}

fn head_key(shard: ShardId) -> [u8; 5] {
    shard_key(HEAD, shard)
}

fn shard_key(prefix: u8, shard: ShardId) -> [u8; 5] {
    let mut k = [prefix; 5];
    k[1..].copy_from_slice(&shard.0.to_be_bytes());
    k
}

fn evidence_key(shard: ShardId, height: u64) -> [u8; 13] {
    let mut k = header_key(shard, height);
    k[0] = EVIDENCE;
    k
}

fn read_u64(v: &[u8]) -> Result<u64> {
    <[u8; 8]>::try_from(v).map(u64::from_be_bytes).map_err(|_| CoordinatorError::Corrupt("counter not 8 bytes".into()))
}

fn decode<M: Message + Default>(v: &[u8], what: &str) -> Result<M> {
    M::decode(v).map_err(|e| CoordinatorError::Corrupt(format!("{what}: {e}")))
}

/// The coordinator database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = shardex_service::storage::open_db(path)?;
        Self::from_db(db)
    }

    /// The database (for its size on disk).
    pub fn db(&self) -> sled::Db {
        self.db.clone()
    }

    /// Uses an open database (tests use a temporary one).
    pub fn from_db(db: sled::Db) -> Result<Self> {
        let tree = db.open_tree("coord")?;
        Ok(Self { db, tree })
    }

    /// Records `header` as `shard`'s accepted header at `height` and moves its head there (not flushed:
    /// the next epoch's flush makes it durable before anything refers to it).
    pub fn put_header(&self, shard: ShardId, height: u64, header: &pb::FinalizedHeader) -> Result<()> {
        let mut batch = sled::Batch::default();
        batch.insert(&header_key(shard, height), header.encode_to_vec());
        batch.insert(&head_key(shard), &height.to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// `shard`'s accepted header at `height`.
    pub fn header(&self, shard: ShardId, height: u64) -> Result<Option<pb::FinalizedHeader>> {
        self.tree.get(header_key(shard, height))?.map(|v| decode(&v, "header")).transpose()
    }

    /// `shard`'s last accepted header (height 0: the genesis anchor), if any.
    pub fn head(&self, shard: ShardId) -> Result<Option<pb::FinalizedHeader>> {
        match self.tree.get(head_key(shard))? {
            None => Ok(None),
            Some(h) => {
                let height = read_u64(&h)?;
                let header = self.header(shard, height)?;
                header.map(Some).ok_or_else(|| {
                    CoordinatorError::Corrupt(format!("shard {shard} head {height} has no stored header"))
                })
            }
        }
    }

    /// Keeps `evidence` and holds its shard at its height; flushed before returning.
    pub fn put_evidence(&self, evidence: &coordpb::Equivocation) -> Result<()> {
        let shard = ShardId(evidence.shard_id);
        let mut batch = sled::Batch::default();
        batch.insert(&evidence_key(shard, evidence.height), evidence.encode_to_vec());
        if self.held(shard)?.is_none() {
            batch.insert(&shard_key(HELD, shard), &evidence.height.to_be_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Every equivocation kept for `shard` (None: for every shard), by shard and height.
    pub fn evidence(&self, shard: Option<ShardId>) -> Result<Vec<coordpb::Equivocation>> {
        let prefix = match shard {
            Some(s) => shard_key(EVIDENCE, s).to_vec(),
            None => vec![EVIDENCE],
        };
        self.tree.scan_prefix(prefix).map(|item| decode(&item?.1, "evidence")).collect()
    }

    /// The height at which `shard` is held, if it is.
    pub fn held(&self, shard: ShardId) -> Result<Option<u64>> {
        self.tree.get(shard_key(HELD, shard))?.map(|v| read_u64(&v)).transpose()
    }

    /// Lifts the hold on `shard` (the evidence stays); flushed. Returns the height it was held at.
    pub fn release(&self, shard: ShardId) -> Result<Option<u64>> {
        let was = self.held(shard)?;
        self.tree.remove(shard_key(HELD, shard))?;
        self.db.flush()?;
        Ok(was)
    }

    /// The latest epoch number, if any epoch exists.
    pub fn latest_number(&self) -> Result<Option<u64>> {
        self.tree.get(LATEST)?.map(|v| read_u64(&v)).transpose()
    }

    /// The oldest epoch still stored (1 until retention prunes).
    pub fn oldest_number(&self) -> Result<u64> {
        Ok(self.tree.get(OLDEST)?.map(|v| read_u64(&v)).transpose()?.unwrap_or(1))
    }

    /// A stored signed epoch.
    pub fn epoch(&self, number: u64) -> Result<Option<coordpb::SignedEpoch>> {
        self.tree.get(epoch_key(EPOCH, number))?.map(|v| decode(&v, "epoch")).transpose()
    }

    /// The entries a stored epoch committed to, sorted by shard id.
    pub fn entries(&self, number: u64) -> Result<Option<Vec<coordpb::ShardEntry>>> {
        let stored: Option<coordpb::EpochEntries> =
            self.tree.get(epoch_key(ENTRIES, number))?.map(|v| decode(&v, "entries")).transpose()?;
        Ok(stored.map(|s| s.entries))
    }

    /// Writes `epoch` (record, entries, latest pointer) and prunes the epoch that leaves the retention
    /// window with the headers only it referred to; one batch, then flush. Returns once durable.
    pub fn commit_epoch(&self, epoch: &BuiltEpoch, retention_epochs: u64) -> Result<()> {
        let number = epoch.record.number;
        if let Some(latest) = self.latest_number()? {
            if number != latest + 1 {
                return Err(CoordinatorError::Corrupt(format!("epoch {number} does not follow stored {latest}")));
            }
        }
        let mut batch = sled::Batch::default();
        batch.insert(&epoch_key(EPOCH, number), epoch.signed.encode_to_vec());
        let entries = coordpb::EpochEntries { entries: epoch.entries.clone() };
        batch.insert(&epoch_key(ENTRIES, number), entries.encode_to_vec());
        batch.insert(LATEST, &number.to_be_bytes());
        let oldest = self.oldest_number()?;
        if retention_epochs > 0 && number >= oldest + retention_epochs {
            self.prune_into(&mut batch, oldest, epoch)?;
            batch.insert(OLDEST, &(oldest + 1).to_be_bytes());
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Deletes epoch `drop` and the headers below the heights the next retained epoch refers to.
    fn prune_into(&self, batch: &mut sled::Batch, drop: u64, newest: &BuiltEpoch) -> Result<()> {
        let dropped = self.entries(drop)?.unwrap_or_default();
        let next = match drop + 1 == newest.record.number {
            true => newest.entries.clone(),
            false => self.entries(drop + 1)?.unwrap_or_default(),
        };
        batch.remove(&epoch_key(EPOCH, drop));
        batch.remove(&epoch_key(ENTRIES, drop));
        for e in &next {
            let shard = ShardId(e.shard_id);
            let unchanged = dropped.iter().any(|d| d.shard_id == e.shard_id && d.height == e.height);
            if unchanged {
                continue;
            }
            for item in self.tree.range(header_key(shard, 0)..header_key(shard, e.height)) {
                let (k, _) = item?;
                batch.remove(k);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shardex_core::{ChainId, Keypair};

    use super::*;
    use crate::epoch::build_epoch;

    fn temp_store() -> Store {
        let db = sled::Config::new().temporary(true).open().expect("temp db");
        Store::from_db(db).expect("store")
    }

    #[test]
    fn epochs_round_trip_chain_strictly_and_prune_outside_retention() {
        let store = temp_store();
        let key = Keypair::from_seed([1; 32]);
        let fh = |h: u64| pb::FinalizedHeader { header: vec![h as u8; 3], ..Default::default() };
        let mut prev = None;
        let mut prev_entries = BTreeMap::new();
        for n in 1..=5u64 {
            store.put_header(ShardId(1), n, &fh(n)).expect("header");
            let entries: BTreeMap<ShardId, coordpb::ShardEntry> = [(
                ShardId(1),
                coordpb::ShardEntry { shard_id: 1, height: n, block_hash: vec![1; 32], state_root: vec![2; 32] },
            )]
            .into();
            let built = build_epoch(&key, ChainId(1), prev.as_ref(), &prev_entries, &entries, n * 10);
            store.commit_epoch(&built, 3).expect("commit");
            prev = Some(built.link());
            prev_entries = entries;
        }
        assert_eq!(store.latest_number().expect("latest"), Some(5));
        assert_eq!(store.oldest_number().expect("oldest"), 3);
        assert!(store.epoch(2).expect("read").is_none());
        assert!(store.epoch(3).expect("read").is_some());
        assert_eq!(store.entries(5).expect("read").map(|e| e[0].height), Some(5));
        // Headers below the oldest retained epoch's height are gone; the head and retained ones stay.
        assert!(store.header(ShardId(1), 2).expect("read").is_none());
        assert_eq!(store.header(ShardId(1), 3).expect("read"), Some(fh(3)));
        assert_eq!(store.head(ShardId(1)).expect("head"), Some(fh(5)));

        // Replaying an existing number (or skipping one) is refused.
        let again = build_epoch(&key, ChainId(1), None, &BTreeMap::new(), &prev_entries, 1);
        assert!(matches!(store.commit_epoch(&again, 3), Err(CoordinatorError::Corrupt(_))));
    }
}
