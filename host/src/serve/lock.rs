//! The serve lock: `serve.lock` in the data directory, held with an exclusive advisory lock
//! (`flock`) for as long as `invhost serve` runs, so that two schedulers never run the same
//! connections' imports. The file holds the holder's process id, for the refusal message. The
//! operating system releases the lock when the process dies, however it dies.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{self, Read as _, Seek as _, Write as _},
    path::{Path, PathBuf},
};

/// The lock file's name in the data directory.
pub const SERVE_LOCK_FILE: &str = "serve.lock";

/// A held serve lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
}

/// Why the serve lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ServeLockError {
    /// Another `invhost serve` holds it.
    #[error(
        "another `invhost serve` ({}) is already running on the data directory {}; stop it first (as a service: `systemctl stop invhost`), or give this one another --data-dir",
        .pid.map_or_else(|| "process id unknown".to_owned(), |pid| format!("process {pid}")),
        .data_dir.display()
    )]
    Held {
        /// The data directory.
        data_dir: PathBuf,
        /// The other process, when its id could be read.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or written.
    #[error("cannot use the lock file {}: {source}; check that the data directory is writable", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl ServeLock {
    /// Takes the data directory's serve lock without waiting, and writes this process's id.
    pub fn acquire(data_dir: &Path) -> Result<ServeLock, ServeLockError> {
        let path = data_dir.join(SERVE_LOCK_FILE);
        let io_error = |source| ServeLockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(ServeLockError::Held {
                    data_dir: data_dir.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_error(source)),
        }
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(ServeLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_named_by_its_process_id() {
        let dir = tempfile::tempdir().expect("dir");
        let held = ServeLock::acquire(dir.path()).expect("free");
        let error = ServeLock::acquire(dir.path()).expect_err("held");
        let message = error.to_string();
        assert!(
            message.contains(&format!("(process {})", std::process::id()))
                && message.contains("is already running on the data directory"),
            "{message}"
        );
        drop(held);
        ServeLock::acquire(dir.path()).expect("free after drop");
    }
}
