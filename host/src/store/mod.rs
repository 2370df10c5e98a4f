//! The host's database: SQLite in the data directory (`invhost.db`), WAL mode, versioned
//! migrations.
//!
//! The SQL is kept portable (TEXT and INTEGER columns, ISO-8601 timestamps as text, no
//! SQLite-only functions in queries) so that a PostgreSQL store can follow for hosts that share
//! one database.
//!
//! * [`migrations`]: the schema, one migration per version (`PRAGMA user_version`).
//! * [`connections`]: connections and their auth state.
//! * [`runs`]: the run history, and the transactions that start and end a run.
//! * [`schedules`]: named schedules, connections' assignments, and the scheduler's progress.
//! * [`snapshots`]: the inventory records of each run, written batch by batch into a snapshot
//!   that becomes current only when its run succeeds.

mod checkpointer;
pub mod connections;
pub mod migrations;
pub mod runs;
pub mod schedules;
pub mod snapshots;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

pub use connections::{AuthState, ConnectionRow};
pub use runs::{RunEnd, RunRow, RunState, Trigger};
pub use snapshots::SnapshotWriter;

/// The database file's name in the data directory.
pub const DB_FILE: &str = "invhost.db";

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the database {}: {source}; check that the data directory is writable", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}; pass --data-dir DIR with a writable directory", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database was written by a newer invhost.
    #[error(
        "the database is at schema version {found}, newer than this invhost knows ({known}); upgrade invhost"
    )]
    TooNew {
        /// The database's version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A connection name is taken.
    #[error(
        "a connection named `{}` already exists; choose another name, or change it with `invhost connections update`", crate::names::Shown(.0)
    )]
    NameTaken(String),
    /// The connection changed between reading and writing (a rotated secret was stored).
    #[error(
        "connection `{}` changed while this command ran (a rotated token was stored); run the command again", crate::names::Shown(.0)
    )]
    Changed(String),
    /// No such connection.
    #[error("no connection named `{}`; see `invhost connections list`", crate::names::Shown(.0))]
    NotFound(String),
    /// A stored value is not what this build wrote.
    #[error(
        "the stored {what} is damaged ({detail}); restore the data directory from a backup, or remove and add the connection again"
    )]
    Corrupt {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Any other database error.
    #[error("database error: {0}; check that the data directory's disk has room and is writable")]
    Sql(#[from] rusqlite::Error),
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    db: Connection,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, and migrates it.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let db = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers never block the writer; FULL sync: a committed transaction survives power loss.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store { db };
        migrations::migrate(&mut store.db)?;
        Ok(store)
    }

    /// The raw connection, for the store's modules.
    pub(crate) fn db(&mut self) -> &mut Connection {
        &mut self.db
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    })
}

/// The current time as stored (RFC 3339, UTC, seconds).
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
