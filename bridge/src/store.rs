//! The relayer's own sled store: one scan cursor per shard, the lowest height a restart must rescan from to
//! rediscover every open message. Only an optimisation: without it the relayer scans from genesis.

use shardex_core::ShardId;

use crate::error::{RelayerError, Result};

const CURSOR: u8 = 0x01;

/// Cursors in sled.
#[derive(Debug, Clone)]
pub struct CursorStore {
    db: sled::Db,
    tree: sled::Tree,
}

fn key(shard: ShardId) -> [u8; 5] {
    let mut k = [CURSOR; 5];
    k[1..].copy_from_slice(&shard.0.to_be_bytes());
    k
}

impl CursorStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let db = shardex_service::storage::open_db(path).map_err(|e| RelayerError::Store(e.to_string()))?;
        let tree = db.open_tree("relayer").map_err(|e| RelayerError::Store(e.to_string()))?;
        Ok(Self { db, tree })
    }

    /// The database (for its size on disk).
    pub fn db(&self) -> sled::Db {
        self.db.clone()
    }

    /// The stored cursor of `shard`.
    pub fn cursor(&self, shard: ShardId) -> Result<Option<u64>> {
        let v = self.tree.get(key(shard)).map_err(|e| RelayerError::Store(e.to_string()))?;
        Ok(v.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map(u64::from_be_bytes))
    }

    /// Stores cursors and flushes.
    pub fn save(&self, cursors: &[(ShardId, u64)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (shard, height) in cursors {
            batch.insert(&key(*shard), &height.to_be_bytes());
        }
        self.tree.apply_batch(batch).map_err(|e| RelayerError::Store(e.to_string()))?;
        self.tree.flush().map_err(|e| RelayerError::Store(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        {
            let s = CursorStore::open(&path).expect("open");
            assert_eq!(s.cursor(ShardId(1)).expect("read"), None);
            s.save(&[(ShardId(1), 42), (ShardId(2), 7)]).expect("save");
        }
        let s = CursorStore::open(&path).expect("reopen");
        assert_eq!(s.cursor(ShardId(1)).expect("read"), Some(42));
        assert_eq!(s.cursor(ShardId(2)).expect("read"), Some(7));
    }
}
