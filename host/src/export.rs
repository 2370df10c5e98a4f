//! `invhost export`: the current snapshots as files, one per record kind (`tenants`,
//! `accounts`, `applications`, `licenses`, `assignments`, `usage`), each row carrying its
//! connection's name. JSON is written as JSON Lines (`KIND.jsonl`, one object per line), CSV
//! as `KIND.csv` (RFC 4180, a header row). The columns are documented in `docs/reports.md`.
//!
//! Rows are streamed from the database to the files (never a whole table in memory).
//! Supersession is applied: the `status` of a retired connection's licenses reads `retired`
//! (`imported_status` keeps what was imported). Existing files are never overwritten without
//! `force`.
//!
//! Durability, per export: every file is first written into a staging directory inside the
//! target (`.invhost-export-XXXXXX`) and `fsync`ed; only when all of them are complete are
//! they renamed into place, one after the other, and the target directory `fsync`ed. So an
//! export that fails while reading or writing leaves the previous files as they were; a
//! rename that fails puts back what it already replaced; a file in place is always whole.
//! Only a crash (power loss, SIGKILL) during the renames themselves, a few system calls, can
//! leave some files of the new export beside some of the previous one.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use rusqlite::types::ValueRef;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    reports::{RETIRED, ReportError, ScopeConnection, Supersession, read_transaction, scope},
    store::Store,
};

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines: one JSON object per line, `KIND.jsonl`.
    Json,
    /// CSV with a header row, `KIND.csv`.
    Csv,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Json => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The format.
    pub format: ExportFormat,
    /// The directory (created when missing).
    pub out: PathBuf,
    /// Only this connection.
    pub connection: Option<String>,
    /// Replace existing files.
    pub force: bool,
}

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportedFile {
    /// The record kind's table (`accounts`).
    pub kind: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Rows written.
    pub rows: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// The directory.
    pub dir: PathBuf,
    /// The connections exported.
    pub connections: Vec<String>,
    /// The files, in kind order.
    pub files: Vec<ExportedFile>,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

/// An export that failed (the previous files are left as they were, and nothing of this one).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// What to export could not be read.
    #[error(transparent)]
    Read(#[from] ReportError),
    /// A file exists and `force` was not given.
    #[error("{} already exists; choose another --out directory, or pass --force to replace the files", .0.display())]
    Exists(PathBuf),
    /// A directory is where one of the files goes.
    #[error("{} is a directory; move it away, or choose another --out directory", .0.display())]
    InTheWay(PathBuf),
    /// The directory could not be created.
    #[error("cannot create the directory {}: {error}; check the path and its permissions", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why (in the message, not chained, so that it shows once).
        error: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {error}; check that the disk has room and the directory is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not chained, so that it shows once).
        error: std::io::Error,
    },
}

impl From<rusqlite::Error> for ExportError {
    fn from(error: rusqlite::Error) -> Self {
        ExportError::Read(error.into())
    }
}

/// How a column's stored value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text (or NULL).
    Text,
    /// An integer (or NULL).
    Int,
    /// A stored 0/1 written as `false`/`true` (or NULL).
    Bool,
    /// JSON text written as a JSON value (in CSV: the JSON text).
    Json,
    /// Text where the empty string means none (usage without an application).
    TextOrNone,
    /// The license status, `retired` while the connection is superseded.
    Status,
}

/// One exported file: the table and its columns (the connection name comes first).
struct FileSpec {
    table: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
}

const FILES: [FileSpec; 6] = [
    FileSpec {
        table: "tenants",
        columns: &[
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("edition", Kind::Text),
            ("instance", Kind::Text),
            ("sandbox", Kind::Bool),
            ("attributes", Kind::Json),
        ],
        order: "id",
    },
    FileSpec {
        table: "accounts",
        columns: &[
            ("id", Kind::Text),
            ("username", Kind::Text),
            ("display_name", Kind::Text),
            ("email", Kind::Text),
            ("active", Kind::Bool),
            ("frozen", Kind::Bool),
            ("account_type", Kind::Text),
            ("created_at", Kind::Text),
            ("last_login_at", Kind::Text),
            ("attributes", Kind::Json),
        ],
        order: "id",
    },
    FileSpec {
        table: "applications",
        columns: &[
            ("id", Kind::Text),
            ("name", Kind::Text),
            ("vendor", Kind::Text),
            ("attributes", Kind::Json),
        ],
        order: "id",
    },
    FileSpec {
        table: "licenses",
        columns: &[
            ("id", Kind::Text),
            ("application_id", Kind::Text),
            ("name", Kind::Text),
            ("family", Kind::Text),
            ("unit", Kind::Text),
            ("purchased", Kind::Int),
            ("consumed", Kind::Int),
            ("unlimited", Kind::Bool),
            ("expires_on", Kind::Text),
            ("status", Kind::Status),
            ("imported_status", Kind::Text),
            ("attributes", Kind::Json),
        ],
        order: "id",
    },
    FileSpec {
        table: "assignments",
        columns: &[
            ("license_id", Kind::Text),
            ("account_id", Kind::Text),
            ("source", Kind::Text),
            ("assigned_at", Kind::Text),
        ],
        order: "license_id, account_id, source",
    },
    FileSpec {
        table: "usage",
        columns: &[
            ("account_id", Kind::Text),
            ("application_id", Kind::TextOrNone),
            ("window_days", Kind::Int),
            ("logins", Kind::Int),
            ("last_interactive_at", Kind::Text),
            ("last_api_at", Kind::Text),
        ],
        order: "account_id, application_id",
    },
];

/// The column list of a file, `connection` first (its documented header).
pub fn columns(table: &str) -> Option<Vec<&'static str>> {
    let spec = FILES.iter().find(|f| f.table == table)?;
    let mut columns = vec!["connection"];
    columns.extend(spec.columns.iter().map(|(name, _)| *name));
    Some(columns)
}

/// The record kinds' tables, in export order.
pub fn kinds() -> Vec<&'static str> {
    FILES.iter().map(|f| f.table).collect()
}

/// Exports the current snapshots (supersession decided by `rules`).
pub fn export(
    store: &mut Store,
    rules: &Supersession,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let tx = read_transaction(store)?;
    let scope = scope(&tx, rules, options.connection.as_deref())?;
    let dir = &options.out;
    let paths: Vec<PathBuf> = FILES
        .iter()
        .map(|f| dir.join(format!("{}.{}", f.table, options.format.extension())))
        .collect();
    if !options.force
        && let Some(existing) = paths.iter().find(|p| p.exists())
    {
        return Err(ExportError::Exists(existing.clone()));
    }
    // A directory where a file goes can never be replaced: say so before writing anything.
    if let Some(taken) = paths.iter().find(|p| p.is_dir()) {
        return Err(ExportError::InTheWay(taken.clone()));
    }
    let create_error = |error| ExportError::CreateDir {
        path: dir.clone(),
        error,
    };
    let created = !dir.exists();
    std::fs::create_dir_all(dir).map_err(create_error)?;
    if created && let Some(parent) = dir.parent() {
        sync_dir(parent).map_err(create_error)?;
    }
    // Removed (with whatever is left in it) when the export ends, however it ends.
    let staging = tempfile::Builder::new()
        .prefix(".invhost-export-")
        .tempdir_in(dir)
        .map_err(create_error)?;
    let mut staged = Vec::new();
    let mut files = Vec::new();
    for (spec, path) in FILES.iter().zip(&paths) {
        let file = staging.path().join(path.file_name().unwrap_or_default());
        let rows = write_file(&tx, spec, &scope.connections, options.format, &file)?;
        staged.push(file);
        files.push(ExportedFile {
            kind: spec.table,
            path: path.clone(),
            rows,
        });
    }
    // Every file is complete and on disk: put them in place.
    publish(&staged, &paths, staging.path())?;
    sync_dir(dir).map_err(|error| ExportError::Write {
        path: dir.clone(),
        error,
    })?;
    Ok(ExportSummary {
        dir: dir.clone(),
        connections: scope.connections.iter().map(|c| c.name.clone()).collect(),
        files,
        warnings: scope.warnings,
    })
}

/// Renames each of `staged` to the path at the same place in `targets`. When a rename fails,
/// the targets already replaced get their previous file back (kept as a hard link in
/// `staging` beforehand; a target that did not exist is removed) and the error is returned.
fn publish(staged: &[PathBuf], targets: &[PathBuf], staging: &Path) -> Result<(), ExportError> {
    // (target, its previous file kept in `staging`, whether it existed)
    let mut done: Vec<(&PathBuf, Option<PathBuf>, bool)> = Vec::new();
    for (index, (file, target)) in staged.iter().zip(targets).enumerate() {
        let existed = target.exists();
        let previous = staging.join(format!("previous-{index}"));
        // Without hard links (some file systems) the previous file cannot be put back.
        let kept = (existed && std::fs::hard_link(target, &previous).is_ok()).then_some(previous);
        if let Err(error) = std::fs::rename(file, target) {
            for (target, kept, existed) in done.into_iter().rev() {
                match kept {
                    Some(previous) => {
                        let _ = std::fs::rename(previous, target);
                    }
                    None if !existed => {
                        let _ = std::fs::remove_file(target);
                    }
                    None => {}
                }
            }
            if let Some(parent) = target.parent() {
                let _ = sync_dir(parent);
            }
            return Err(ExportError::Write {
                path: target.clone(),
                error,
            });
        }
        done.push((target, kept, existed));
    }
    Ok(())
}

/// Makes a directory's entries (files created, renamed or removed in it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes one kind's rows of every connection into `path`; returns the row count.
fn write_file(
    tx: &rusqlite::Transaction<'_>,
    spec: &FileSpec,
    connections: &[ScopeConnection],
    format: ExportFormat,
    path: &Path,
) -> Result<u64, ExportError> {
    let io = |error: std::io::Error| ExportError::Write {
        path: path.to_owned(),
        error,
    };
    let csv_error = |error: csv::Error| ExportError::Write {
        path: path.to_owned(),
        error: std::io::Error::other(error.to_string()),
    };
    let file = BufWriter::new(File::create(path).map_err(io)?);
    let header = columns(spec.table).unwrap_or_default();
    let mut sink = match format {
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(file);
            writer.write_record(&header).map_err(csv_error)?;
            Sink::Csv(Box::new(writer))
        }
        ExportFormat::Json => Sink::Json(file, Vec::new()),
    };
    // `imported_status` is the stored status; `status` is computed.
    let select: Vec<&str> = spec
        .columns
        .iter()
        .map(|(name, _)| match *name {
            "imported_status" => "status",
            other => other,
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE snapshot_id = ?1 ORDER BY {}",
        select.join(", "),
        spec.table,
        spec.order
    );
    let mut statement = tx.prepare(&sql).map_err(ExportError::from)?;
    let mut rows = 0u64;
    for connection in connections {
        let mut query = statement
            .query([connection.snapshot_id])
            .map_err(ExportError::from)?;
        while let Some(row) = query.next().map_err(ExportError::from)? {
            let mut values = Vec::with_capacity(header.len());
            values.push(Value::String(connection.name.clone()));
            for (index, (_, kind)) in spec.columns.iter().enumerate() {
                let value = row.get_ref(index).map_err(ExportError::from)?;
                values.push(convert(value, *kind, connection.retired()));
            }
            match &mut sink {
                Sink::Csv(writer) => {
                    let cells: Vec<String> = values.iter().map(csv_cell).collect();
                    writer.write_record(&cells).map_err(csv_error)?;
                }
                Sink::Json(out, line) => {
                    let object: Map<String, Value> = header
                        .iter()
                        .map(|name| (*name).to_owned())
                        .zip(values)
                        .collect();
                    line.clear();
                    serde_json::to_writer(&mut *line, &object)
                        .map_err(|e| io(std::io::Error::other(e)))?;
                    line.push(b'\n');
                    out.write_all(line).map_err(io)?;
                }
            }
            rows += 1;
        }
    }
    let mut out = match sink {
        Sink::Csv(writer) => (*writer)
            .into_inner()
            .map_err(|e| io(std::io::Error::other(e.to_string())))?,
        Sink::Json(out, _) => out,
    };
    out.flush().map_err(io)?;
    out.get_ref().sync_all().map_err(io)?;
    Ok(rows)
}

/// Where one file's rows go.
enum Sink {
    /// CSV records.
    Csv(Box<csv::Writer<BufWriter<File>>>),
    /// JSON lines, with a reused line buffer.
    Json(BufWriter<File>, Vec<u8>),
}

/// A stored value as the export writes it.
fn convert(value: ValueRef<'_>, kind: Kind, retired: bool) -> Value {
    let text = |v: ValueRef<'_>| match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Blob(_) | ValueRef::Null => None,
    };
    match kind {
        Kind::Status if retired => Value::String(RETIRED.to_owned()),
        Kind::Text | Kind::Status => text(value).map_or(Value::Null, Value::String),
        Kind::TextOrNone => text(value)
            .filter(|t| !t.is_empty())
            .map_or(Value::Null, Value::String),
        Kind::Int => match value {
            ValueRef::Integer(n) => Value::from(n),
            _ => Value::Null,
        },
        Kind::Bool => match value {
            ValueRef::Integer(n) => Value::Bool(n != 0),
            _ => Value::Null,
        },
        Kind::Json => text(value)
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| Value::Object(Map::new())),
    }
}

/// A JSON value as a CSV cell: nothing for null, text as is, objects as JSON text.
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reports::testing::*;

    fn options(dir: &Path, format: ExportFormat) -> ExportOptions {
        ExportOptions {
            format,
            out: dir.join("out"),
            connection: None,
            force: false,
        }
    }

    fn fill(store: &mut Store, dir: &Path) {
        let mut tenant =
            json!({"kind": "tenant", "id": "org1", "name": "Acme, Inc.", "sandbox": true});
        tenant["attributes"] = json!({"region": "eu"});
        import(
            store,
            dir,
            "acme",
            "direct",
            &[
                tenant,
                application("crm", "CRM"),
                license("user", "crm", "user", Some(5)),
                account("a1", true, Some(false), Some(3)),
                account("a2", false, None, None),
                assign("a1", "user", "profile"),
                usage("a1", 4, Some(3), None),
            ],
        );
    }

    #[test]
    fn csv_files_with_headers_and_typed_cells() {
        let (dir, mut store) = store();
        fill(&mut store, dir.path());
        let summary = export(
            &mut store,
            &Supersession::new(),
            &options(dir.path(), ExportFormat::Csv),
        )
        .expect("exported");
        let counts: Vec<(&str, u64)> = summary.files.iter().map(|f| (f.kind, f.rows)).collect();
        assert_eq!(
            counts,
            [
                ("tenants", 1),
                ("accounts", 2),
                ("applications", 1),
                ("licenses", 1),
                ("assignments", 1),
                ("usage", 1)
            ]
        );
        for kind in kinds() {
            let path = dir.path().join("out").join(format!("{kind}.csv"));
            let mut reader = csv::Reader::from_path(&path).expect("file");
            let header: Vec<String> = reader
                .headers()
                .expect("header")
                .iter()
                .map(str::to_owned)
                .collect();
            assert_eq!(header, columns(kind).expect("known"), "{kind}");
        }
        let tenants = std::fs::read_to_string(dir.path().join("out/tenants.csv")).expect("read");
        assert_eq!(
            tenants.lines().nth(1),
            Some("acme,org1,\"Acme, Inc.\",,,true,\"{\"\"region\"\":\"\"eu\"\"}\""),
            "RFC 4180 quoting"
        );
        let usage = std::fs::read_to_string(dir.path().join("out/usage.csv")).expect("read");
        assert_eq!(
            usage.lines().nth(1),
            Some(format!("acme,a1,,90,4,{},", days_ago(3)).as_str())
        );
        // No partial files are left.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    /// The files of `dir`, name and content, hidden ones included.
    fn contents(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|entry| {
                let path = entry.expect("entry").path();
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read_to_string(&path).unwrap_or_default())
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_failed_export_leaves_the_previous_files_and_nothing_else() {
        let (dir, mut store) = store();
        fill(&mut store, dir.path());
        let options = ExportOptions {
            force: true,
            ..options(dir.path(), ExportFormat::Csv)
        };
        export(&mut store, &Supersession::new(), &options).expect("exported");
        let out = dir.path().join("out");
        let before = contents(&out);
        assert_eq!(before.len(), 6, "{before:?}");
        // New data for every file, then a failure while writing the last one (`usage`): the
        // first five were complete but none may replace its previous version.
        import(
            &mut store,
            dir.path(),
            "beta",
            "direct",
            &[
                application("x", "X"),
                license("x", "x", "user", Some(1)),
                account("b1", true, None, Some(1)),
            ],
        );
        store.db().execute("DROP TABLE usage", []).expect("dropped");
        let error = export(&mut store, &Supersession::new(), &options).expect_err("failed");
        assert!(matches!(error, ExportError::Read(_)), "{error}");
        assert_eq!(
            contents(&out),
            before,
            "previous files intact, no staging left"
        );

        // A directory in the way is refused before anything is written.
        std::fs::remove_file(out.join("usage.csv")).expect("removed");
        std::fs::create_dir(out.join("usage.csv")).expect("dir in the way");
        let before = contents(&out);
        let error = export(&mut store, &Supersession::new(), &options).expect_err("refused");
        assert!(matches!(error, ExportError::InTheWay(_)), "{error}");
        assert!(error.to_string().contains("is a directory"), "{error}");
        assert_eq!(contents(&out), before);
    }

    #[test]
    fn a_rename_that_fails_puts_back_what_it_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let staging = tempfile::tempdir_in(dir.path()).expect("staging");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out");
        std::fs::write(out.join("a.csv"), "old a").expect("a");
        // b.csv does not exist yet; c.csv is a non-empty directory, which no rename replaces.
        std::fs::create_dir_all(out.join("c.csv").join("inside")).expect("c");
        let mut staged = Vec::new();
        let mut targets = Vec::new();
        for name in ["a.csv", "b.csv", "c.csv"] {
            let file = staging.path().join(name);
            std::fs::write(&file, format!("new {name}")).expect("staged");
            staged.push(file);
            targets.push(out.join(name));
        }
        let error = publish(&staged, &targets, staging.path()).expect_err("c fails");
        assert!(error.to_string().contains("c.csv"), "{error}");
        assert_eq!(
            std::fs::read_to_string(out.join("a.csv")).expect("a"),
            "old a"
        );
        assert!(!out.join("b.csv").exists(), "a new file is taken back");
        assert!(out.join("c.csv").join("inside").is_dir());

        // Without a failure every file is replaced.
        std::fs::remove_dir_all(out.join("c.csv")).expect("cleared");
        for (file, name) in staged.iter().zip(["a.csv", "b.csv", "c.csv"]) {
            std::fs::write(file, format!("new {name}")).expect("staged again");
        }
        publish(&staged, &targets, staging.path()).expect("published");
        for name in ["a.csv", "b.csv", "c.csv"] {
            assert_eq!(
                std::fs::read_to_string(out.join(name)).expect("file"),
                format!("new {name}")
            );
        }
    }

    #[test]
    fn json_lines_apply_retirement_and_existing_files_need_force() {
        let (dir, mut store) = store();
        fill(&mut store, dir.path());
        store
            .add_connection("mgmt", "mgr", &json!({}))
            .expect("added");
        let mut rules = Supersession::new();
        rules.declare("direct", &[] as &[&str]);
        rules.declare("mgr", &["direct"]);
        let options = options(dir.path(), ExportFormat::Json);
        export(&mut store, &rules, &options).expect("exported");
        let licenses =
            std::fs::read_to_string(dir.path().join("out/licenses.jsonl")).expect("read");
        let line: Value =
            serde_json::from_str(licenses.lines().next().expect("a line")).expect("json");
        assert_eq!(line["connection"], "acme");
        assert_eq!(line["status"], "retired");
        assert_eq!(line["imported_status"], "active");
        assert_eq!(line["purchased"], 5);
        assert_eq!(line["unlimited"], false);
        assert_eq!(line["attributes"], json!({}));
        let accounts =
            std::fs::read_to_string(dir.path().join("out/accounts.jsonl")).expect("read");
        let second: Value =
            serde_json::from_str(accounts.lines().nth(1).expect("two lines")).expect("json");
        assert_eq!(
            (second["active"].clone(), second["frozen"].clone()),
            (json!(false), Value::Null)
        );

        let error = export(&mut store, &rules, &options).expect_err("exists");
        assert!(matches!(error, ExportError::Exists(_)), "{error}");
        assert!(error.to_string().contains("--force"), "{error}");
        store.remove_connection("mgmt").expect("removed");
        let forced = ExportOptions {
            force: true,
            ..options
        };
        export(&mut store, &rules, &forced).expect("replaced");
        let licenses =
            std::fs::read_to_string(dir.path().join("out/licenses.jsonl")).expect("read");
        assert!(licenses.contains("\"status\":\"active\""), "{licenses}");
    }
}
