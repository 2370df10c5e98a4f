//! The database schema, as an ordered list of migrations. `PRAGMA user_version` holds how many
//! have run. The pending ones run in one transaction that holds the write lock from its start.
//! Never edit a released migration: add one.

use rusqlite::{Connection, TransactionBehavior};

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
    // 4: ids that are never reused. Without AUTOINCREMENT SQLite hands out a deleted row's id
    // again, so records left behind under a deleted snapshot (or runs and lock files of a
    // removed connection) would attach to a newer one. Records whose snapshot is gone (left by
    // builds before this migration) are deleted first.
    "DELETE FROM tenants WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    DELETE FROM accounts WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    DELETE FROM applications WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    DELETE FROM licenses WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    DELETE FROM assignments WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    DELETE FROM usage WHERE snapshot_id NOT IN (SELECT id FROM snapshots);
    CREATE TABLE connections_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    );
    INSERT INTO connections_v4 (id, name, name_key, source_type, settings, enabled, schedule,
        auth_state, auth_reason, created_at, updated_at)
      SELECT id, name, name_key, source_type, settings, enabled, schedule, auth_state,
        auth_reason, created_at, updated_at FROM connections;
    DROP TABLE connections;
    ALTER TABLE connections_v4 RENAME TO connections;
    CREATE TABLE snapshots_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        connection_id INTEGER NOT NULL,
        run_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        published_at TEXT
    );
    INSERT INTO snapshots_v4 (id, connection_id, run_id, state, created_at, published_at)
      SELECT id, connection_id, run_id, state, created_at, published_at FROM snapshots;
    DROP TABLE snapshots;
    ALTER TABLE snapshots_v4 RENAME TO snapshots;
    CREATE INDEX snapshots_by_connection ON snapshots (connection_id, id);
    CREATE UNIQUE INDEX snapshots_one_current ON snapshots (connection_id) WHERE state = 'current';
    -- Ids used before, even by rows deleted since, are not handed out again.
    INSERT INTO sqlite_sequence (name, seq) SELECT 'connections', 0
      WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'connections');
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(id), 0) FROM connections),
        (SELECT coalesce(max(connection_id), 0) FROM runs),
        (SELECT coalesce(max(connection_id), 0) FROM schedule_state))
      WHERE name = 'connections';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'snapshots', 0
      WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'snapshots');
    UPDATE sqlite_sequence SET seq = max(seq,
        (SELECT coalesce(max(id), 0) FROM snapshots),
        (SELECT coalesce(max(snapshot_id), 0) FROM runs))
      WHERE name = 'snapshots';",
];

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Runs the migrations the database has not seen.
pub fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version = |db: &Connection| -> Result<i64, StoreError> {
        let current: i64 = db.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if current > latest() {
            return Err(StoreError::TooNew {
                found: current,
                known: latest(),
            });
        }
        Ok(current)
    };
    if version(db)? == latest() {
        return Ok(());
    }
    // Two processes may start on an old database at once: the write lock is taken first and
    // the version read again under it, so each migration runs exactly once.
    let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tracing::info!(version, "Migrated the database.");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a build that knew `version` migrations left it.
    fn database_at(version: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("dir");
        let db = Connection::open(dir.path().join("test.db")).expect("opens");
        // As `Store::open` leaves a database.
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        db.pragma_update(None, "foreign_keys", "ON").expect("fk");
        for sql in &MIGRATIONS[..version] {
            db.execute_batch(sql).expect("migration");
        }
        db.pragma_update(None, "user_version", version as i64)
            .expect("version");
        (dir, db)
    }

    fn count(db: &Connection, sql: &str) -> i64 {
        db.query_row(sql, [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn version_4_keeps_data_drops_orphans_and_never_reuses_ids() {
        let (_dir, mut db) = database_at(3);
        db.execute_batch(
            "INSERT INTO connections (id, name, name_key, source_type, settings, created_at, updated_at)
               VALUES (1, 'a', 'a', 't', '{}', 'x', 'x'), (2, 'b', 'b', 't', '{}', 'x', 'x');
             -- connection 3 was removed; its runs stay in the history
             INSERT INTO runs (id, connection_id, connection_name, source_type, trigger, state, started_at, snapshot_id)
               VALUES (1, 1, 'a', 't', 'manual', 'succeeded', 'x', 5), (2, 3, 'c', 't', 'manual', 'failed', 'x', NULL);
             INSERT INTO snapshots (id, connection_id, run_id, state, created_at)
               VALUES (5, 1, 1, 'current', 'x');
             INSERT INTO accounts (snapshot_id, id, username, active, attributes)
               VALUES (5, 'u1', 'one', 1, '{}'), (9, 'u2', 'orphan', 1, '{}');
             INSERT INTO usage (snapshot_id, account_id, application_id, window_days, logins)
               VALUES (9, 'u2', 'app', 90, 3);",
        )
        .expect("rows");
        migrate(&mut db).expect("migrates");
        assert_eq!(
            db.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .expect("version"),
            latest()
        );
        // Data kept, orphans (snapshot 9 no longer exists) gone.
        assert_eq!(count(&db, "SELECT COUNT(*) FROM connections"), 2);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM accounts"), 1);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM usage"), 0);
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM snapshots WHERE state = 'current'"
            ),
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'
                 AND name IN ('snapshots_by_connection', 'snapshots_one_current')"
            ),
            2
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM sqlite_sequence WHERE name LIKE '%_v4'"
            ),
            0
        );
        // New ids are above every id used before, including those of removed rows.
        db.execute(
            "INSERT INTO connections (name, name_key, source_type, settings, created_at, updated_at)
             VALUES ('d', 'd', 't', '{}', 'x', 'x')",
            [],
        )
        .expect("insert");
        assert_eq!(db.last_insert_rowid(), 4, "connection 3 ran once");
        db.execute("DELETE FROM snapshots", []).expect("delete");
        db.execute(
            "INSERT INTO snapshots (connection_id, run_id, state, created_at) VALUES (1, 3, 'building', 'x')",
            [],
        )
        .expect("insert");
        assert_eq!(db.last_insert_rowid(), 6, "snapshot 5 existed");
        // Still unique: one current snapshot per connection, one connection per name.
        db.execute(
            "INSERT INTO snapshots (connection_id, run_id, state, created_at) VALUES (1, 4, 'current', 'x')",
            [],
        )
        .expect("first current");
        assert!(
            db.execute(
                "INSERT INTO snapshots (connection_id, run_id, state, created_at) VALUES (1, 5, 'current', 'x')",
                [],
            )
            .is_err()
        );
        assert!(
            db.execute(
                "INSERT INTO connections (name, name_key, source_type, settings, created_at, updated_at)
                 VALUES ('A', 'a', 't', '{}', 'x', 'x')",
                [],
            )
            .is_err()
        );
    }

    #[test]
    fn processes_migrating_at_once_each_run_a_migration_once() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("test.db");
        // Create the file in WAL mode first, as `Store::open` does.
        Connection::open(&path)
            .and_then(|db| db.pragma_update(None, "journal_mode", "WAL"))
            .expect("creates");
        // All four read the old version before any migrates (the barrier), as processes
        // started together would.
        let ready = std::sync::Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                let ready = ready.clone();
                std::thread::spawn(move || {
                    let mut db = Connection::open(&path).expect("opens");
                    db.busy_timeout(std::time::Duration::from_secs(10))
                        .expect("timeout");
                    let _: i64 = db
                        .pragma_query_value(None, "user_version", |r| r.get(0))
                        .expect("version");
                    ready.wait();
                    migrate(&mut db)
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("joins").expect("migrates");
        }
        let db = Connection::open(&path).expect("opens");
        assert_eq!(
            db.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .expect("version"),
            latest()
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM connections"), 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let (_dir, mut db) = database_at(MIGRATIONS.len());
        db.pragma_update(None, "user_version", latest() + 1)
            .expect("version");
        assert!(matches!(
            migrate(&mut db),
            Err(StoreError::TooNew { found, known }) if found == latest() + 1 && known == latest()
        ));
    }
}
