//! Run locks: one file per connection in `<data dir>/locks/`, held with an exclusive advisory
//! lock (`flock`) while a run of that connection is in progress.
//!
//! The lock is what makes "one run per connection at a time" hold across processes (`invhost
//! run` beside `invhost serve`), and what tells a dead run from a live one: the operating system
//! releases the lock when its process dies, however it dies, so a `running` row whose lock can
//! be taken belongs to a dead process.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io,
    path::{Path, PathBuf},
};

/// The directory of lock files in the data directory.
pub const LOCKS_DIR: &str = "locks";

/// A held run lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("held by another run")]
    Busy,
    /// The lock file could not be opened.
    #[error("cannot open the lock file {}: {source}; check that the data directory is writable", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The lock file of a connection.
fn lock_path(data_dir: &Path, connection_id: i64) -> PathBuf {
    data_dir
        .join(LOCKS_DIR)
        .join(format!("connection-{connection_id}.lock"))
}

impl RunLock {
    /// Takes the connection's run lock without waiting.
    pub fn try_acquire(data_dir: &Path, connection_id: i64) -> Result<RunLock, LockError> {
        let path = lock_path(data_dir, connection_id);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy),
            Err(TryLockError::Error(source)) => Err(io_error(source)),
        }
    }
}

impl RunLock {
    /// Deletes a connection's lock file, for its removal; the caller holds the lock. A failure
    /// only leaves an unused file behind.
    pub fn remove_file(data_dir: &Path, connection_id: i64) {
        let _ = std::fs::remove_file(lock_path(data_dir, connection_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_free_again_after_drop() {
        let dir = tempfile::tempdir().expect("dir");
        let held = RunLock::try_acquire(dir.path(), 7).expect("free");
        assert!(matches!(
            RunLock::try_acquire(dir.path(), 7),
            Err(LockError::Busy)
        ));
        // Another connection's lock is independent.
        let other = RunLock::try_acquire(dir.path(), 8).expect("other connection");
        drop(held);
        RunLock::try_acquire(dir.path(), 7).expect("free after drop");
        drop(other);
    }
}
