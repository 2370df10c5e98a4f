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
    // 2: runs, snapshots and the inventory records of each snapshot.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        connection_id INTEGER NOT NULL,
        connection_name TEXT NOT NULL,
        source_type TEXT NOT NULL,
        trigger TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        counts TEXT NOT NULL DEFAULT '{}',
        api_calls INTEGER,
        warnings TEXT NOT NULL DEFAULT '[]',
        error_kind TEXT,
        error TEXT,
        retryable INTEGER NOT NULL DEFAULT 0,
        snapshot_id INTEGER
    );
    CREATE INDEX runs_by_connection ON runs (connection_id, id);
    CREATE UNIQUE INDEX runs_one_running ON runs (connection_id) WHERE state = 'running';
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        connection_id INTEGER NOT NULL,
        run_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        published_at TEXT
    );
    CREATE INDEX snapshots_by_connection ON snapshots (connection_id, id);
    CREATE UNIQUE INDEX snapshots_one_current ON snapshots (connection_id) WHERE state = 'current';
    CREATE TABLE tenants (
        snapshot_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        edition TEXT,
        instance TEXT,
        sandbox INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, id)
    );
    CREATE TABLE accounts (
        snapshot_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        username TEXT NOT NULL,
        display_name TEXT,
        email TEXT,
        active INTEGER NOT NULL,
        frozen INTEGER,
        account_type TEXT,
        created_at TEXT,
        last_login_at TEXT,
        attributes TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, id)
    );
    CREATE TABLE applications (
        snapshot_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        vendor TEXT,
        attributes TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, id)
    );
    CREATE TABLE licenses (
        snapshot_id INTEGER NOT NULL,
        id TEXT NOT NULL,
        application_id TEXT NOT NULL,
        name TEXT NOT NULL,
        family TEXT NOT NULL,
        unit TEXT NOT NULL,
        purchased INTEGER,
        consumed INTEGER,
        unlimited INTEGER NOT NULL,
        expires_on TEXT,
        status TEXT NOT NULL,
        attributes TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, id)
    );
    CREATE TABLE assignments (
        snapshot_id INTEGER NOT NULL,
        license_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        source TEXT NOT NULL,
        assigned_at TEXT,
        PRIMARY KEY (snapshot_id, account_id, license_id, source)
    );
    CREATE TABLE usage (
        snapshot_id INTEGER NOT NULL,
        account_id TEXT NOT NULL,
        application_id TEXT NOT NULL,
        window_days INTEGER NOT NULL,
        logins INTEGER NOT NULL,
        last_interactive_at TEXT,
        last_api_at TEXT,
        PRIMARY KEY (snapshot_id, account_id, application_id)
    );",
    // 3: named schedules, and how far each scheduled connection's slots are handled (so that
    // `invhost serve` catches up a missed run once, across restarts).
    "CREATE TABLE schedules (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        expression TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE schedule_state (
        connection_id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        handled_through TEXT NOT NULL,
        last_slot TEXT,
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
