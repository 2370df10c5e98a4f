//! Snapshots: the inventory records one run of a connection produced.
//!
//! A snapshot is `building` while its run writes into it, `current` once the run succeeded (at
//! most one per connection, enforced by a unique index), and `previous` after a newer one became
//! current, until pruning removes it. Readers (reports, export) read only `current` snapshots, so
//! records of a run in progress, failed or killed are never seen; they are deleted when the run
//! ends, or by the sweep that marks a killed run interrupted.
//!
//! The records are written by a [`SnapshotWriter`] on its own database connection, one
//! transaction per batch the plugin emits: a long import never holds the write lock for more
//! than one batch, so the same connection's rotated token, other connections' runs and the CLI
//! can write meanwhile. The switch to `current` is one small transaction ([`super::runs`]).

use std::{collections::BTreeMap, path::Path};

use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use invhost_plugin_api::model::{
    Account, Application, Assignment, Attributes, License, Record, Tenant, Usage,
};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{DB_FILE, StoreError, checkpointer::Checkpointer};

/// The tables that hold a snapshot's records, with the record kind each holds.
pub const RECORD_TABLES: [(&str, &str); 6] = [
    ("tenant", "tenants"),
    ("account", "accounts"),
    ("application", "applications"),
    ("license", "licenses"),
    ("assignment", "assignments"),
    ("usage", "usage"),
];

/// Deletes the snapshots matching `condition` (on the `snapshots` table, with one parameter
/// `?1`) together with their records.
pub(crate) fn delete_snapshots_where(
    tx: &Transaction<'_>,
    condition: &str,
    param: i64,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = {
        let mut statement = tx.prepare(&format!("SELECT id FROM snapshots WHERE {condition}"))?;
        statement
            .query_map([param], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in ids {
        for (_, table) in RECORD_TABLES {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE snapshot_id = ?1"))?
                .execute([id])?;
        }
        tx.execute("DELETE FROM snapshots WHERE id = ?1", [id])?;
    }
    Ok(())
}

/// Counts the records of one snapshot, per kind (kinds with none are left out).
pub(crate) fn count_records(
    db: &Connection,
    snapshot_id: i64,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts = BTreeMap::new();
    for (kind, table) in RECORD_TABLES {
        let n: i64 = db.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE snapshot_id = ?1"),
            [snapshot_id],
            |r| r.get(0),
        )?;
        if n > 0 {
            counts.insert(kind.to_owned(), n as u64);
        }
    }
    Ok(counts)
}

/// A stored time: RFC 3339, UTC, whole seconds (so that text order is time order).
pub fn time_text(time: &DateTime<Utc>) -> String {
    match time.with_nanosecond(0) {
        // Written without chrono's format machinery (a record batch holds many times).
        Some(whole) if time.nanosecond() < 1_000_000_000 && (0..=9999).contains(&whole.year()) => {
            let mut text = String::with_capacity(20);
            invhost_plugin_api::time::write_utc(&whole, &mut text);
            text
        }
        _ => time.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn attributes_text(attributes: &Attributes) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".to_owned())
}

/// Saturates a count into SQLite's integer.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A serde enum value as stored (`permission_set`).
fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => "other".to_owned(),
    }
}

/// What one batch held besides the records written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records written.
    pub written: u64,
    /// Lines skipped, each with why (a record kind this host does not know).
    pub skipped: Vec<String>,
}

/// A batch the writer refused as a whole (nothing of it was written).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A line is not a record.
    #[error("line {line} of a record batch is not a valid record: {reason}")]
    Invalid {
        /// 1-based line number within the batch.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The run has ended, or its snapshot is gone (the connection was removed, or another
    /// process judged the run dead): records arriving now are not kept.
    #[error("the run has ended; records sent after its end are not kept")]
    Closed,
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes records into one `building` snapshot, on its own database connection.
#[derive(Debug)]
pub struct SnapshotWriter {
    /// Declared first: dropping the writer waits for the checkpoint under way, then closes
    /// `db`.
    checkpointer: Option<Checkpointer>,
    db: Connection,
    snapshot_id: i64,
    run_id: i64,
}

const UPSERT_TENANT: &str =
    "INSERT INTO tenants (snapshot_id, id, name, edition, instance, sandbox, attributes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (snapshot_id, id) DO UPDATE SET name = excluded.name, edition = excluded.edition,
       instance = excluded.instance, sandbox = excluded.sandbox, attributes = excluded.attributes";
const UPSERT_ACCOUNT: &str =
    "INSERT INTO accounts (snapshot_id, id, username, display_name, email, active, frozen,
       account_type, created_at, last_login_at, attributes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
     ON CONFLICT (snapshot_id, id) DO UPDATE SET username = excluded.username,
       display_name = excluded.display_name, email = excluded.email, active = excluded.active,
       frozen = excluded.frozen, account_type = excluded.account_type,
       created_at = excluded.created_at, last_login_at = excluded.last_login_at,
       attributes = excluded.attributes";
const UPSERT_APPLICATION: &str =
    "INSERT INTO applications (snapshot_id, id, name, vendor, attributes)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (snapshot_id, id) DO UPDATE SET name = excluded.name, vendor = excluded.vendor,
       attributes = excluded.attributes";
const UPSERT_LICENSE: &str =
    "INSERT INTO licenses (snapshot_id, id, application_id, name, family, unit, purchased,
       consumed, unlimited, expires_on, status, attributes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
     ON CONFLICT (snapshot_id, id) DO UPDATE SET application_id = excluded.application_id,
       name = excluded.name, family = excluded.family, unit = excluded.unit,
       purchased = excluded.purchased, consumed = excluded.consumed,
       unlimited = excluded.unlimited, expires_on = excluded.expires_on,
       status = excluded.status, attributes = excluded.attributes";
const UPSERT_ASSIGNMENT: &str =
    "INSERT INTO assignments (snapshot_id, license_id, account_id, source, assigned_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (snapshot_id, license_id, account_id, source) DO UPDATE SET
       assigned_at = excluded.assigned_at";
/// Usage of one account and application merges: logins add up, the latest times win (so a
/// plugin may send partial aggregates, e.g. one per page of a login log).
const MERGE_USAGE: &str =
    "INSERT INTO usage (snapshot_id, account_id, application_id, window_days, logins,
       last_interactive_at, last_api_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (snapshot_id, account_id, application_id) DO UPDATE SET
       window_days = CASE WHEN excluded.window_days > usage.window_days
                     THEN excluded.window_days ELSE usage.window_days END,
       logins = usage.logins + excluded.logins,
       last_interactive_at = CASE
         WHEN usage.last_interactive_at IS NULL THEN excluded.last_interactive_at
         WHEN excluded.last_interactive_at IS NULL THEN usage.last_interactive_at
         WHEN excluded.last_interactive_at > usage.last_interactive_at
           THEN excluded.last_interactive_at
         ELSE usage.last_interactive_at END,
       last_api_at = CASE
         WHEN usage.last_api_at IS NULL THEN excluded.last_api_at
         WHEN excluded.last_api_at IS NULL THEN usage.last_api_at
         WHEN excluded.last_api_at > usage.last_api_at THEN excluded.last_api_at
         ELSE usage.last_api_at END";

impl SnapshotWriter {
    /// A writer for the `building` snapshot `snapshot_id` of the database in `data_dir`.
    pub fn open(data_dir: &Path, snapshot_id: i64) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        let db = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        db.busy_timeout(std::time::Duration::from_secs(30))?;
        // Records of a building snapshot need not survive a power cut on their own: the
        // snapshot only counts once the run publishes it, and that commit is synced in full
        // (which syncs the write-ahead log, these batches included).
        db.pragma_update(None, "synchronous", "NORMAL")?;
        // The run that owns the snapshot: a batch is kept only while that run still builds it.
        let run_id: i64 = db
            .query_row(
                "SELECT run_id FROM snapshots WHERE id = ?1 AND state = 'building'",
                [snapshot_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("snapshot {snapshot_id}"),
                detail: "no snapshot is being built under this id".into(),
            })?;
        // The log is copied into the database file by a thread of its own, not in this
        // connection's commits ([`Checkpointer`]).
        let checkpointer = Checkpointer::start(&path, &db);
        Ok(SnapshotWriter {
            checkpointer,
            db,
            snapshot_id,
            run_id,
        })
    }

    /// The snapshot written to.
    pub fn snapshot_id(&self) -> i64 {
        self.snapshot_id
    }

    /// Writes a batch of records (JSON lines, [`Record`]) in one transaction: all of it or,
    /// on an error, none. A line of a kind this host does not know is skipped and reported
    /// (a newer plugin); a line that is not a record at all refuses the batch.
    ///
    /// The batch is written only while the snapshot is still `building` for this run, checked
    /// under the transaction's write lock: a batch that arrives after the run ended, or after
    /// the connection was removed, is refused ([`BatchError::Closed`]) instead of leaving
    /// records that no snapshot owns.
    ///
    /// The lines are read inside the transaction, one after the other as they are written, so
    /// a batch is never held as records: a run that has ended answers [`BatchError::Closed`]
    /// before any line is looked at, and a line that is not a record rolls back the lines
    /// before it.
    pub fn write_batch(&mut self, batch: &str) -> Result<BatchOutcome, BatchError> {
        let mut outcome = BatchOutcome::default();
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.catch_up(&self.db).map_err(StoreError::from)?;
        }
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let building: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM snapshots WHERE id = ?1 AND run_id = ?2 AND state = 'building')",
                params![self.snapshot_id, self.run_id],
                |r| r.get(0),
            )
            .map_err(StoreError::from)?;
        if !building {
            return Err(BatchError::Closed);
        }
        // Each line is read and written in turn, so no batch is ever held as records; a bad
        // line returns before the commit, and dropping the transaction rolls it back.
        let mut statements = Statements::new(&tx, self.snapshot_id);
        for (index, line) in batch.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match parse_record(line) {
                Ok(record) => {
                    statements.insert(&record).map_err(StoreError::from)?;
                    outcome.written += 1;
                }
                Err(error) => match unknown_kind(line) {
                    Some(kind) => outcome.skipped.push(format!(
                        "skipped a record of kind `{kind}`, which this invhost does not know; upgrade invhost to keep it"
                    )),
                    None => {
                        return Err(BatchError::Invalid {
                            line: index + 1,
                            reason: error.to_string(),
                        });
                    }
                },
            }
        }
        drop(statements);
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committing();
        }
        tx.commit().map_err(StoreError::from)?;
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.committed();
        }
        Ok(outcome)
    }
}

/// The `kind` of a line that is a JSON object with a string `kind` this host does not know.
fn unknown_kind(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let kind = value.get("kind")?.as_str()?;
    let known = RECORD_TABLES.iter().any(|(k, _)| *k == kind);
    (!known).then(|| kind.chars().take(64).collect())
}

/// One record line, as `serde_json::from_str::<Record>` reads it, faster for the lines plugins
/// write: `kind` first (as serde writes it). Such a line is read straight into the kind's struct
/// (which skips the `kind` key like any other unknown key), instead of being buffered whole and
/// read a second time, which is how serde reads a tagged enum. Any other line, or one the direct
/// read refuses, goes the usual way, so the outcome (and any error) is the same.
fn parse_record(line: &str) -> serde_json::Result<Record> {
    fn direct(line: &str) -> Option<Record> {
        let rest = line.strip_prefix(r#"{"kind":""#)?;
        let (kind, rest) = rest.split_once('"')?;
        // A line with a second `kind` key is left to the usual read.
        if rest.contains(r#""kind""#) {
            return None;
        }
        let record = match kind {
            "account" => Record::Account(serde_json::from_str(line).ok()?),
            "assignment" => Record::Assignment(serde_json::from_str(line).ok()?),
            "usage" => Record::Usage(serde_json::from_str(line).ok()?),
            "license" => Record::License(serde_json::from_str(line).ok()?),
            "application" => Record::Application(serde_json::from_str(line).ok()?),
            "tenant" => Record::Tenant(serde_json::from_str(line).ok()?),
            _ => return None,
        };
        Some(record)
    }
    match direct(line) {
        Some(record) => Ok(record),
        None => serde_json::from_str(line),
    }
}

/// The upsert of each record kind, prepared once per batch on first use.
struct Statements<'tx> {
    tx: &'tx Transaction<'tx>,
    snapshot: i64,
    prepared: [Option<rusqlite::Statement<'tx>>; 6],
}

impl<'tx> Statements<'tx> {
    fn new(tx: &'tx Transaction<'tx>, snapshot: i64) -> Self {
        Statements {
            tx,
            snapshot,
            prepared: Default::default(),
        }
    }

    /// The statement at `slot` (one per record kind), prepared on first use.
    fn get(&mut self, slot: usize, sql: &str) -> rusqlite::Result<&mut rusqlite::Statement<'tx>> {
        let statement = &mut self.prepared[slot];
        if statement.is_none() {
            *statement = Some(self.tx.prepare(sql)?);
        }
        statement.as_mut().ok_or(rusqlite::Error::InvalidQuery)
    }

    fn insert(&mut self, record: &Record) -> rusqlite::Result<usize> {
        let time = |t: &Option<DateTime<Utc>>| t.as_ref().map(time_text);
        let snapshot = self.snapshot;
        match record {
            Record::Tenant(Tenant {
                id,
                name,
                edition,
                instance,
                sandbox,
                attributes,
            }) => self.get(0, UPSERT_TENANT)?.execute(params![
                snapshot,
                id,
                name,
                edition,
                instance,
                sandbox,
                attributes_text(attributes)
            ]),
            Record::Account(Account {
                id,
                username,
                display_name,
                email,
                active,
                frozen,
                account_type,
                created_at,
                last_login_at,
                attributes,
            }) => self.get(1, UPSERT_ACCOUNT)?.execute(params![
                snapshot,
                id,
                username,
                display_name,
                email,
                active,
                frozen,
                account_type,
                time(created_at),
                time(last_login_at),
                attributes_text(attributes)
            ]),
            Record::Application(Application {
                id,
                name,
                vendor,
                attributes,
            }) => self.get(2, UPSERT_APPLICATION)?.execute(params![
                snapshot,
                id,
                name,
                vendor,
                attributes_text(attributes)
            ]),
            Record::License(License {
                id,
                application_id,
                name,
                family,
                unit,
                purchased,
                consumed,
                unlimited,
                expires_on,
                status,
                attributes,
            }) => self.get(3, UPSERT_LICENSE)?.execute(params![
                snapshot,
                id,
                application_id,
                name,
                enum_text(family),
                unit,
                purchased.map(int),
                consumed.map(int),
                unlimited,
                expires_on.map(|d| d.to_string()),
                enum_text(status),
                attributes_text(attributes)
            ]),
            Record::Assignment(Assignment {
                account_id,
                license_id,
                source,
                assigned_at,
            }) => self.get(4, UPSERT_ASSIGNMENT)?.execute(params![
                snapshot,
                license_id,
                account_id,
                source.as_str(),
                time(assigned_at)
            ]),
            Record::Usage(Usage {
                account_id,
                application_id,
                window_days,
                logins,
                last_interactive_at,
                last_api_at,
            }) => self.get(5, MERGE_USAGE)?.execute(params![
                snapshot,
                account_id,
                application_id.as_deref().unwrap_or(""),
                window_days,
                int(*logins),
                time(last_interactive_at),
                time(last_api_at)
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{RunEnd, RunState, Store, Trigger};

    /// A store with one connection and a started run; returns the run and snapshot ids.
    fn started() -> (tempfile::TempDir, Store, i64, i64) {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("store");
        store
            .add_connection("acme", "fixture", &json!({}))
            .expect("added");
        let row = store.connection("acme").expect("row");
        let (run, snapshot) = store.begin_run(&row, Trigger::Manual).expect("begun");
        (dir, store, run, snapshot)
    }

    fn line(value: serde_json::Value) -> String {
        format!("{value}\n")
    }

    #[test]
    fn stored_times_are_chrono_whole_seconds() {
        use chrono::TimeZone as _;
        let base = Utc
            .with_ymd_and_hms(2026, 1, 5, 10, 0, 7)
            .single()
            .expect("valid");
        for time in [
            base,
            base + chrono::Duration::milliseconds(999),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            // A leap second.
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
                .expect("valid")
                .and_utc(),
        ] {
            assert_eq!(
                time_text(&time),
                time.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
    }

    #[test]
    fn a_bad_line_refuses_the_whole_batch_and_unknown_kinds_are_skipped() {
        let (dir, _store, _, snapshot) = started();
        let mut writer = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        let account =
            line(json!({"kind": "account", "id": "a1", "username": "a@x", "active": true}));
        let error = writer
            .write_batch(&format!("{account}{{\"kind\": \"account\"}}\n"))
            .expect_err("the second line lacks fields");
        assert!(
            error.to_string().contains("line 2 of a record batch"),
            "{error}"
        );
        let after_refusal: i64 = writer
            .db
            .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
            .expect("count");
        assert_eq!(after_refusal, 0, "the good first line was rolled back");
        let outcome = writer
            .write_batch(&format!(
                "{account}{}",
                line(json!({"kind": "contract", "id": "c1"}))
            ))
            .expect("written");
        assert_eq!(outcome.written, 1);
        assert_eq!(outcome.skipped.len(), 1);
        assert!(outcome.skipped[0].contains("`contract`"));
        let n: i64 = writer
            .db
            .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 1, "nothing of the refused batch was written");
    }

    #[test]
    fn records_read_directly_equal_the_tagged_read() {
        let lines = [
            json!({"kind": "account", "id": "a1", "username": "a@x", "active": true,
                   "attributes": {"profile_name": "Std"}}),
            json!({"kind": "assignment", "account_id": "a1", "license_id": "l1",
                   "source": "profile"}),
            json!({"kind": "usage", "account_id": "a1", "window_days": 90, "logins": 3,
                   "last_interactive_at": "2026-01-05T10:00:00Z"}),
            json!({"kind": "license", "id": "l1", "application_id": "app", "name": "L",
                   "family": "user", "unit": "seat", "status": "active"}),
            json!({"kind": "application", "id": "app", "name": "App"}),
            json!({"kind": "tenant", "id": "t", "name": "T"}),
        ];
        for value in lines {
            let line = value.to_string();
            assert!(line.starts_with(r#"{"kind":""#), "{line}");
            let expected = serde_json::from_str::<Record>(&line).expect("a record");
            assert_eq!(parse_record(&line).expect("a record"), expected, "{line}");
        }
        // Lines the direct read does not take keep the usual outcome.
        for line in [
            r#"{"kind":"account","id":"a1"}"#,
            r#"{"kind":"account","kind":"usage","id":"a1","username":"a","active":true}"#,
            r#"{"kind":"contract","id":"c1"}"#,
            r#"{"id":"a1","kind":"account","username":"a","active":true}"#,
            r#"{"kind":"usage""#,
        ] {
            assert_eq!(
                parse_record(line).map_err(|e| e.to_string()),
                serde_json::from_str::<Record>(line).map_err(|e| e.to_string()),
                "{line}"
            );
        }
    }

    #[test]
    fn usage_merges_and_null_times_do_not_win() {
        let (dir, _store, _, snapshot) = started();
        let mut writer = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        let usage = |logins: u64, ui: Option<&str>, api: Option<&str>| {
            line(
                json!({"kind": "usage", "account_id": "a1", "window_days": 90, "logins": logins,
                        "last_interactive_at": ui, "last_api_at": api}),
            )
        };
        writer
            .write_batch(&usage(3, Some("2026-01-05T10:00:00Z"), None))
            .expect("first");
        writer
            .write_batch(&usage(2, None, Some("2026-01-02T00:00:00Z")))
            .expect("second");
        writer
            .write_batch(&usage(1, Some("2026-01-04T00:00:00Z"), None))
            .expect("third");
        let row: (i64, String, String) = writer
            .db
            .query_row(
                "SELECT logins, last_interactive_at, last_api_at FROM usage",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("one merged row");
        assert_eq!(
            row,
            (
                6,
                "2026-01-05T10:00:00Z".to_owned(),
                "2026-01-02T00:00:00Z".to_owned()
            )
        );
    }

    #[test]
    fn a_run_judged_dead_meanwhile_cannot_publish() {
        let (dir, mut store, run, snapshot) = started();
        let mut writer = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        writer
            .write_batch(&line(
                json!({"kind": "account", "id": "a1", "username": "a@x", "active": true}),
            ))
            .expect("written");
        let connection = store.connection("acme").expect("row").id;
        store.interrupt_run(connection).expect("marked");
        let row = store.finish_run(run, succeeded()).expect("finished");
        assert_eq!(row.state, RunState::Failed);
        assert!(row.error.is_some_and(|e| e.contains("marked interrupted")));
        assert_eq!(store.current_snapshot(connection).expect("query"), None);
    }
    fn succeeded() -> RunEnd {
        RunEnd {
            state: RunState::Succeeded,
            api_calls: None,
            warnings: vec![],
            error: None,
            retryable: false,
        }
    }

    fn failed() -> RunEnd {
        RunEnd {
            state: RunState::Failed,
            api_calls: None,
            warnings: vec![],
            error: Some(("network".into(), "cut".into())),
            retryable: true,
        }
    }

    fn records(writer: &SnapshotWriter) -> i64 {
        writer
            .db
            .query_row(
                "SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM usage)",
                [],
                |r| r.get(0),
            )
            .expect("count")
    }

    #[test]
    fn the_log_is_copied_by_a_thread_and_starts_over_while_batches_are_written() {
        use crate::store::checkpointer::RESTART_FRAMES;
        const BATCHES: usize = 60;
        const PER_BATCH: usize = 400;
        let (dir, _store, _run, snapshot) = started();
        let db_file = dir.path().join(DB_FILE);
        let log_file = dir.path().join(format!("{DB_FILE}-wal"));
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut writer = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        assert!(writer.checkpointer.is_some(), "the writer has its thread");
        let mut largest_log = 0;
        for b in 0..BATCHES {
            let batch: String = (0..PER_BATCH)
                .map(|i| {
                    line(json!({
                        "kind": "account", "id": format!("005{b:04}{i:05}"),
                        "username": format!("user{b}.{i}@example.com"), "active": true,
                        "attributes": {"title": "x".repeat(200)}
                    }))
                })
                .collect();
            writer.write_batch(&batch).expect("written");
            largest_log = largest_log.max(size(&log_file));
        }
        let written: i64 = writer
            .db
            .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
            .expect("count");
        assert_eq!(written, (BATCHES * PER_BATCH) as i64);
        // Every record reached the database file while the writer was still open (by the
        // thread, or by the writer catching up), and the log never held more than the
        // threshold and a few batches: without checkpoints it would hold all of them.
        let database = size(&db_file);
        assert!(
            database > 4 << 20,
            "the database file holds the records: {database} bytes"
        );
        let frame = 4096 + 24;
        let bound = (RESTART_FRAMES as u64 + 3 * 160) * frame;
        assert!(
            largest_log <= bound && largest_log * 4 < database,
            "the log grew to {largest_log} bytes (bound {bound}, database {database})"
        );
    }

    #[test]
    fn a_batch_after_the_run_ended_is_refused_and_leaves_nothing_behind() {
        let (dir, mut store, run, snapshot) = started();
        let mut late = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        let account =
            line(json!({"kind": "account", "id": "a1", "username": "a@x", "active": true}));
        late.write_batch(&account).expect("written while building");
        store.finish_run(run, failed()).expect("finished");
        assert_eq!(records(&late), 0, "the failed run's records are deleted");
        assert!(matches!(
            late.write_batch(&account),
            Err(BatchError::Closed)
        ));
        assert_eq!(records(&late), 0, "the late batch left no orphans");
        // The next run starts clean and publishes only its own records.
        let row = store.connection("acme").expect("row");
        let (next_run, next_snapshot) = store.begin_run(&row, Trigger::Manual).expect("begun");
        assert_ne!(next_snapshot, snapshot, "snapshot ids are never reused");
        assert!(matches!(
            late.write_batch(&account),
            Err(BatchError::Closed)
        ));
        let finished = store.finish_run(next_run, succeeded()).expect("finished");
        assert_eq!(finished.state, RunState::Succeeded);
        assert!(finished.counts.is_empty(), "{:?}", finished.counts);
    }

    #[test]
    fn removing_the_connection_mid_run_closes_the_writer_and_the_run_cannot_succeed() {
        let (dir, mut store, run, snapshot) = started();
        let mut writer = SnapshotWriter::open(dir.path(), snapshot).expect("writer");
        let account =
            line(json!({"kind": "account", "id": "a1", "username": "a@x", "active": true}));
        writer.write_batch(&account).expect("written");
        store.remove_connection("acme").expect("removed");
        assert!(matches!(
            writer.write_batch(&account),
            Err(BatchError::Closed)
        ));
        assert_eq!(records(&writer), 0);
        let row = store.finish_run(run, succeeded()).expect("finished");
        assert_eq!(row.state, RunState::Failed);
        assert!(row.error.is_some_and(|e| e.contains("removed")));
    }

    #[test]
    fn a_writer_opens_only_a_snapshot_being_built() {
        let (dir, mut store, run, snapshot) = started();
        store.finish_run(run, failed()).expect("finished");
        assert!(SnapshotWriter::open(dir.path(), snapshot).is_err());
    }
}
