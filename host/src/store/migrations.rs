//! The database schema, as an ordered list of migrations. `PRAGMA user_version` holds how many
//! have run; each runs in its own transaction. Never edit a released migration: add one.

use rusqlite::Connection;

use super::StoreError;

/// The migrations, oldest first.
const MIGRATIONS: &[&str] = &[
    // 1: connections.
    "CREATE TABLE connections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        source_type TEXT NOT NULL,
        settings TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        schedule TEXT,
        auth_state TEXT NOT NULL DEFAULT 'ok',
        auth_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
];

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Runs the migrations the database has not seen.
pub fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > latest() {
        return Err(StoreError::TooNew {
            found: current,
            known: latest(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let tx = db.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "Migrated the database.");
    }
    Ok(())
}
