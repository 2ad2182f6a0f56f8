//! Opening the node's sled database.
//!
//! sled takes an advisory `flock` on its directory. Dropping a `sled::Db` does not release that
//! lock synchronously: sled's background flusher shares the database context and lets go of it on
//! its next tick. A database closed and reopened in one process (a restart in a test, a shard
//! reopened after a failed start) can therefore see its own, already dropped, handle still holding
//! the lock. [`open_db`] waits a bounded time for such a lock before it reports the directory as
//! held by someone else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`open_db`] waits for a lock that is still held.
pub const LOCK_WAIT: Duration = Duration::from_secs(3);
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenDbError {
    /// The lock stayed held for the whole wait: another live handle owns the directory.
    #[error(
        "database {path} is locked by another process (is another shard-node using this data dir?); waited {waited:?}"
    )]
    Locked {
        /// The database directory.
        path: PathBuf,
        /// How long the open waited for the lock.
        waited: Duration,
    },
    /// Any other failure to open: permissions, corruption, a full disk.
    #[error("opening database {path}: {source}")]
    Sled {
        /// The database directory.
        path: PathBuf,
        /// What sled reported.
        source: sled::Error,
    },
}

/// Opens (creating if absent) the sled database at `path`, waiting up to [`LOCK_WAIT`] for a lock
/// held by a handle that is being dropped.
pub fn open_db(path: &Path) -> Result<sled::Db, OpenDbError> {
    open_db_with(sled::Config::new().path(path), LOCK_WAIT)
}

/// [`open_db`] with a caller-made configuration (cache size, say) and lock wait.
pub fn open_db_with(config: sled::Config, wait: Duration) -> Result<sled::Db, OpenDbError> {
    let path = config.path.clone();
    let start = Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(&e) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(OpenDbError::Locked { path, waited });
                }
                std::thread::sleep(LOCK_RETRY);
            }
            Err(source) => return Err(OpenDbError::Sled { path, source }),
        }
    }
}

/// sled reports a held lock only as an `Other` I/O error with this message.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_handle_is_reported_as_locked_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = open_db(dir.path()).expect("first open");
        // A second, live handle in the same process: sled refuses the lock until `held` is dropped.
        let err = open_db_with(sled::Config::new().path(dir.path()), Duration::from_millis(100))
            .expect_err("a held database is refused");
        assert!(matches!(err, OpenDbError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("locked by another process"), "{err}");
        drop(held);
    }

    #[test]
    fn reopening_right_after_a_drop_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        for round in 0..20u8 {
            let db = open_db(dir.path()).expect("open");
            db.insert([round], &[round]).expect("insert");
            db.flush().expect("flush");
            drop(db);
        }
        let db = open_db(dir.path()).expect("final open");
        assert_eq!(db.len(), 20);
    }
}
