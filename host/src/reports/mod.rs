//! Reports over the current snapshots (BRIEF section 8): `licenses` (consumption per license
//! and reconciliation totals), `unused` (the reclaimable seats, each with its reason) and
//! `users` (each account with its licenses and last activity).
//!
//! Everything is read with SQL over the snapshots in state `current`, inside one read
//! transaction, so a report sees one consistent state even while imports publish. The SQL is
//! portable (no SQLite-only functions): a PostgreSQL store is planned. Supersession is applied
//! at read time ([`supersession`]); snapshots are never rewritten.
//!
//! Time: "now" for the N-day windows is [`ReportParams::as_of`], which the caller takes from
//! the clock (tests and `--as-of` pass their own).
//!
//! The definitions of every figure are in `docs/reports.md`; keep them in step.

pub mod format;
pub mod licenses;
pub mod supersession;
pub mod unused;
pub mod users;

use chrono::{DateTime, Utc};
use rusqlite::Transaction;
use serde::Serialize;

pub use format::{Format, Report};
pub use licenses::{LicenseRow, LicenseTotals, LicensesReport};
pub use supersession::{ConnectionFacts, Retirement, Supersession};
pub use unused::{Reason, UnusedReport, UnusedRow, UnusedTotals};
pub use users::{UserRow, UserTotals, UsersReport};

use crate::names::shell_word;
use crate::store::{StoreError, snapshots::time_text};

/// The default N of the N-day windows (`--active-days`, `--inactive-days`).
pub const DEFAULT_DAYS: u32 = 90;

/// The status a superseded license reads as.
pub const RETIRED: &str = "retired";

/// The assignment sources whose seat the source frees when the account is deactivated, as an
/// SQL list. A deactivated account that holds a license only through these no longer takes a
/// seat of it; through any other source it still does.
///
/// What Salesforce documents (details and sources in docs/reports.md, "Deactivated accounts
/// and seats"):
/// * `profile` (a user license): freed. "A deactivated user doesn't count against your
///   organization's available user licenses" (Salesforce Help, deactivating users);
///   `UserLicense.UsedLicenses` counts active users only.
/// * `feature_flag` (a feature license, a `User.UserPermissions*` checkbox): taken as freed,
///   like the user license it extends; no Salesforce page found states it either way.
/// * `package` (a managed package seat, `UserPackageLicense`): **not** freed; Salesforce
///   knowledge article 000386472 says a deactivated user keeps counting against the package's
///   licenses until the seat is removed.
/// * `permission_set_license`: freed for the Revenue Cloud licenses named in knowledge
///   article 000394412 (CPQ, Billing, Advanced Approvals; before that change it was not);
///   unconfirmed for the others, so counted as held: the seat is then reported as held by a
///   deactivated account (reclaimable) rather than as spare, which never overstates spare
///   seats.
/// * `direct`, `group`, `other` (other sources): held.
pub const FREED_BY_DEACTIVATION: &str = "'profile', 'feature_flag'";

/// The shape every report has: what was asked and read, the rows, the totals, the warnings.
/// Serialised as the JSON documented in docs/reports.md, keys in this order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope<R, T> {
    /// The report's name (`licenses`, `unused`, `users`).
    pub report: &'static str,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// What was asked.
    pub parameters: ShownParams,
    /// The connections read.
    pub connections: Vec<ScopeConnection>,
    /// The rows, in the report's order.
    pub rows: Vec<R>,
    /// The totals.
    pub totals: T,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

impl<R, T> Envelope<R, T> {
    /// A report named `report`, made now, over `scope`.
    pub(crate) fn new(
        report: &'static str,
        params: &ReportParams,
        scope: Scope,
        rows: Vec<R>,
        totals: T,
    ) -> Self {
        Envelope {
            report,
            generated_at: time_text(&chrono::Utc::now()),
            parameters: params.into(),
            connections: scope.connections,
            rows,
            totals,
            warnings: scope.warnings,
        }
    }
}

/// A report or export that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// There is no connection at all.
    #[error(
        "there are no connections yet; add one with `invhost connections add NAME --type TYPE --settings FILE`, then import it with `invhost run NAME`"
    )]
    NoConnections,
    /// `--connection` names no connection.
    #[error("no connection named `{}`; see `invhost connections list`", crate::names::Shown(.0))]
    UnknownConnection(String),
    /// The connection asked for was never imported successfully.
    #[error("connection `{name}` has no imported snapshot yet; run `invhost run {}` first", shell_word(.name))]
    NoSnapshot {
        /// The connection.
        name: String,
    },
    /// No connection was ever imported successfully.
    #[error(
        "no connection has been imported yet; run `invhost run NAME` (or `invhost run --all`) first"
    )]
    NothingImported,
    /// Writing the output failed (the cause is in the message, not chained, so that it shows
    /// once).
    #[error("cannot write the report: {0}")]
    Io(std::io::Error),
    /// Writing CSV failed.
    #[error("cannot write the report as CSV: {0}")]
    Csv(csv::Error),
    /// Writing JSON failed.
    #[error("cannot write the report as JSON: {0}")]
    Json(serde_json::Error),
}

impl ReportError {
    /// Whether the output was closed by the reader (`invhost report ... | head`).
    pub fn is_broken_pipe(&self) -> bool {
        let kind = match self {
            ReportError::Io(error) => Some(error.kind()),
            ReportError::Csv(error) => match error.kind() {
                csv::ErrorKind::Io(error) => Some(error.kind()),
                _ => None,
            },
            ReportError::Json(error) => error.io_error_kind(),
            _ => None,
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    }
}

impl From<rusqlite::Error> for ReportError {
    fn from(error: rusqlite::Error) -> Self {
        ReportError::Store(StoreError::Sql(error))
    }
}

impl From<std::io::Error> for ReportError {
    fn from(error: std::io::Error) -> Self {
        ReportError::Io(error)
    }
}

impl From<csv::Error> for ReportError {
    fn from(error: csv::Error) -> Self {
        ReportError::Csv(error)
    }
}

impl From<serde_json::Error> for ReportError {
    fn from(error: serde_json::Error) -> Self {
        ReportError::Json(error)
    }
}

/// What every report is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams {
    /// Only this connection (by name, regardless of case); `None`: every connection.
    pub connection: Option<String>,
    /// N of the N-day window: activity at or after `as_of - N days` counts as recent.
    pub days: u32,
    /// The end of the window ("now"; injected so that reports can be reproduced and tested).
    pub as_of: DateTime<Utc>,
}

impl ReportParams {
    /// Every connection, the default window, ending now.
    pub fn now() -> Self {
        ReportParams {
            connection: None,
            days: DEFAULT_DAYS,
            as_of: Utc::now(),
        }
    }

    /// The start of the window, as stored times are written (text order is time order).
    pub(crate) fn cutoff(&self) -> String {
        time_text(&(self.as_of - chrono::Duration::days(i64::from(self.days))))
    }
}

/// The parameters as a report shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownParams {
    /// `--connection`, when given.
    pub connection: Option<String>,
    /// N of the N-day window.
    pub days: u32,
    /// The end of the window (RFC 3339, UTC).
    pub as_of: String,
    /// The start of the window (RFC 3339, UTC).
    pub since: String,
}

impl From<&ReportParams> for ShownParams {
    fn from(params: &ReportParams) -> Self {
        ShownParams {
            connection: params.connection.clone(),
            days: params.days,
            as_of: time_text(&params.as_of),
            since: params.cutoff(),
        }
    }
}

/// A connection whose current snapshot a report reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeConnection {
    /// The name.
    pub name: String,
    /// The source type.
    pub source_type: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Its current snapshot.
    #[serde(skip)]
    pub snapshot_id: i64,
    /// When that snapshot was published (RFC 3339).
    pub imported_at: Option<String>,
    /// The enabled connections that supersede it; empty when its licenses are not retired.
    pub retired_by: Vec<String>,
}

impl ScopeConnection {
    /// Whether its licenses read as retired.
    pub fn retired(&self) -> bool {
        !self.retired_by.is_empty()
    }
}

/// The connections a report reads, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Connections with a current snapshot, filtered by `--connection`.
    pub connections: Vec<ScopeConnection>,
    /// Things the operator should know (connections not imported yet, unknown source types).
    pub warnings: Vec<String>,
}

impl Scope {
    /// The connections' snapshot ids as an SQL list (`3, 7`); integers read from the database,
    /// so safe to inline.
    pub(crate) fn snapshot_list(&self) -> String {
        let ids: Vec<String> = self
            .connections
            .iter()
            .map(|c| c.snapshot_id.to_string())
            .collect();
        ids.join(", ")
    }

    /// The connection of a snapshot.
    pub(crate) fn by_snapshot(&self, snapshot_id: i64) -> Option<&ScopeConnection> {
        self.connections
            .iter()
            .find(|c| c.snapshot_id == snapshot_id)
    }
}

/// Reads which connections a report covers, with supersession decided over every
/// connection (whatever `only` says).
pub(crate) fn scope(
    tx: &Transaction<'_>,
    rules: &Supersession,
    only: Option<&str>,
) -> Result<Scope, ReportError> {
    struct Found {
        name: String,
        source_type: String,
        enabled: bool,
        snapshot: Option<(i64, Option<String>)>,
    }
    let mut statement = tx.prepare(
        "SELECT c.name, c.source_type, c.enabled, s.id, s.published_at
         FROM connections c LEFT JOIN snapshots s ON s.connection_id = c.id AND s.state = 'current'
         ORDER BY c.name_key",
    )?;
    let found = statement
        .query_map([], |r| {
            let snapshot: Option<i64> = r.get(3)?;
            Ok(Found {
                name: r.get(0)?,
                source_type: r.get(1)?,
                enabled: r.get(2)?,
                snapshot: snapshot.map(|id| (id, r.get(4).ok().flatten())),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if found.is_empty() {
        return Err(ReportError::NoConnections);
    }
    let facts: Vec<ConnectionFacts<'_>> = found
        .iter()
        .map(|f| ConnectionFacts {
            name: &f.name,
            source_type: &f.source_type,
            enabled: f.enabled,
        })
        .collect();
    let retirement = rules.retirement(&facts);
    let mut scope = Scope {
        connections: Vec::new(),
        warnings: retirement.warnings.clone(),
    };
    let wanted = only.map(str::to_lowercase);
    let mut matched = false;
    for f in &found {
        if wanted.as_ref().is_some_and(|w| *w != f.name.to_lowercase()) {
            continue;
        }
        matched = true;
        match &f.snapshot {
            Some((snapshot_id, published)) => scope.connections.push(ScopeConnection {
                name: f.name.clone(),
                source_type: f.source_type.clone(),
                enabled: f.enabled,
                snapshot_id: *snapshot_id,
                imported_at: published.clone(),
                retired_by: retirement.of(&f.name).to_vec(),
            }),
            None if only.is_some() => {
                return Err(ReportError::NoSnapshot {
                    name: f.name.clone(),
                });
            }
            None => scope.warnings.push(format!(
                "connection `{}` has no imported snapshot yet and is left out; run `invhost run {}` to include it",
                f.name,
                shell_word(&f.name)
            )),
        }
    }
    if let Some(name) = only
        && !matched
    {
        return Err(ReportError::UnknownConnection(name.to_owned()));
    }
    if scope.connections.is_empty() {
        return Err(ReportError::NothingImported);
    }
    Ok(scope)
}

/// The SQL of each account's last activity in the snapshots `list`: the latest of its last
/// login and its usage's last interactive and API times (columns `snapshot_id`, `account_id`,
/// `at`; `at` is NULL when there was none).
pub(crate) fn last_seen_sql(list: &str) -> String {
    format!(
        "SELECT snapshot_id, account_id, MAX(at) AS at FROM (
            SELECT snapshot_id, id AS account_id, last_login_at AS at
              FROM accounts WHERE snapshot_id IN ({list})
            UNION ALL
            SELECT snapshot_id, account_id, last_interactive_at
              FROM usage WHERE snapshot_id IN ({list})
            UNION ALL
            SELECT snapshot_id, account_id, last_api_at
              FROM usage WHERE snapshot_id IN ({list})
         ) seen GROUP BY snapshot_id, account_id"
    )
}

/// Opens the read transaction a report runs in.
pub(crate) fn read_transaction(
    store: &mut crate::store::Store,
) -> Result<Transaction<'_>, ReportError> {
    Ok(store.db().transaction()?)
}

/// The order families are shown in.
pub(crate) fn family_rank(family: &str) -> u8 {
    match family {
        "user" => 0,
        "permission_set" => 1,
        "package" => 2,
        "feature" => 3,
        "other" => 4,
        _ => 5,
    }
}

/// Whole days from `at` (stored text) to `as_of`; `None` when `at` is not a time.
pub(crate) fn days_since(at: &str, as_of: &DateTime<Utc>) -> Option<i64> {
    let at = DateTime::parse_from_rfc3339(at).ok()?;
    Some((*as_of - at.with_timezone(&Utc)).num_days())
}

/// The later of two optional stored times (text order is time order).
pub(crate) fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b > a { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A store filled through the real import path: `begin_run`, [`SnapshotWriter`] batches,
    //! `finish_run`.

    use std::path::Path;

    use serde_json::{Value, json};

    use crate::store::{RunEnd, RunState, SnapshotWriter, Store, Trigger};

    /// The clock of the report tests: 2026-03-01T00:00:00Z.
    pub fn as_of() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("a time")
            .with_timezone(&chrono::Utc)
    }

    /// `as_of` minus `days` days, as a record time.
    pub fn days_ago(days: i64) -> String {
        crate::store::snapshots::time_text(&(as_of() - chrono::Duration::days(days)))
    }

    /// Adds a connection (if new) and publishes `records` as its current snapshot.
    pub fn import(store: &mut Store, dir: &Path, name: &str, source_type: &str, records: &[Value]) {
        if store.connection(name).is_err() {
            store
                .add_connection(name, source_type, &json!({}))
                .expect("added");
        }
        let row = store.connection(name).expect("row");
        let (run, snapshot) = store.begin_run(&row, Trigger::Manual).expect("begun");
        let mut writer = SnapshotWriter::open(dir, snapshot).expect("writer");
        let batch: String = records.iter().map(|r| format!("{r}\n")).collect();
        writer.write_batch(&batch).expect("written");
        let end = store
            .finish_run(
                run,
                RunEnd {
                    state: RunState::Succeeded,
                    api_calls: None,
                    warnings: vec![],
                    error: None,
                    retryable: false,
                },
            )
            .expect("finished");
        assert_eq!(end.state, RunState::Succeeded);
    }

    /// An application record.
    pub fn application(id: &str, name: &str) -> Value {
        json!({"kind": "application", "id": id, "name": name})
    }

    /// A license record.
    pub fn license(id: &str, app: &str, family: &str, purchased: Option<u64>) -> Value {
        json!({"kind": "license", "id": id, "application_id": app, "name": format!("{id} license"),
               "family": family, "purchased": purchased, "consumed": purchased.map(|p| p / 2),
               "status": "active"})
    }

    /// An account record; `last` in days ago.
    pub fn account(id: &str, active: bool, frozen: Option<bool>, last: Option<i64>) -> Value {
        json!({"kind": "account", "id": id, "username": format!("{id}@example.com"),
               "active": active, "frozen": frozen, "last_login_at": last.map(days_ago)})
    }

    /// An assignment record.
    pub fn assign(account: &str, license: &str, source: &str) -> Value {
        json!({"kind": "assignment", "account_id": account, "license_id": license, "source": source})
    }

    /// A usage record; times in days ago.
    pub fn usage(account: &str, logins: u64, ui: Option<i64>, api: Option<i64>) -> Value {
        json!({"kind": "usage", "account_id": account, "window_days": 90, "logins": logins,
               "last_interactive_at": ui.map(days_ago), "last_api_at": api.map(days_ago)})
    }

    /// A fresh store in a temporary directory.
    pub fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("store");
        (dir, store)
    }

    /// Parameters: every connection, `days`, at [`as_of`].
    pub fn params(days: u32) -> super::ReportParams {
        super::ReportParams {
            connection: None,
            days,
            as_of: as_of(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{testing::*, *};

    #[test]
    fn scope_errors_say_what_to_do_next() {
        let (dir, mut store) = store();
        let mut rules = Supersession::new();
        rules.declare("t", &[] as &[&str]);
        let check = |store: &mut crate::store::Store, only: Option<&str>| {
            let tx = read_transaction(store).expect("tx");
            scope(&tx, &rules, only).map(|s| {
                (
                    s.connections
                        .iter()
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>(),
                    s.warnings,
                )
            })
        };
        let error = check(&mut store, None).expect_err("no connections");
        assert!(
            error.to_string().contains("invhost connections add"),
            "{error}"
        );
        store
            .add_connection("Acme Prod", "t", &serde_json::json!({}))
            .expect("added");
        let error = check(&mut store, None).expect_err("nothing imported");
        assert!(error.to_string().contains("invhost run NAME"), "{error}");
        let error = check(&mut store, Some("acme prod")).expect_err("no snapshot");
        assert!(
            error
                .to_string()
                .contains("run `invhost run \"Acme Prod\"` first"),
            "{error}"
        );
        let error = check(&mut store, Some("nope")).expect_err("unknown");
        assert!(
            matches!(error, ReportError::UnknownConnection(_)),
            "{error}"
        );
        import(
            &mut store,
            dir.path(),
            "beta",
            "t",
            &[application("a", "A")],
        );
        let (names, warnings) = check(&mut store, None).expect("scope");
        assert_eq!(names, ["beta"]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("`Acme Prod` has no imported snapshot"));
        let (names, _) = check(&mut store, Some("BETA")).expect("by name, any case");
        assert_eq!(names, ["beta"]);
    }
}
