//! The run history, and the transactions that start and end a run with its snapshot.
//!
//! A run row is `running` from [`Store::begin_run`] to [`Store::finish_run`]; at most one per
//! connection (a unique index). A process killed mid-run leaves its row `running`:
//! [`Store::interrupt_run`] (called by whoever next holds that connection's run lock) marks it
//! `interrupted` and deletes its unfinished snapshot.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension as _, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{
    ConnectionRow, Store, StoreError,
    snapshots::{count_records, delete_snapshots_where},
};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// In progress.
    Running,
    /// Finished; its snapshot is the connection's current one (or was, until a newer run).
    Succeeded,
    /// Stopped by an error; the previous snapshot stayed current.
    Failed,
    /// Stopped on request (Ctrl-C, shutdown); the previous snapshot stayed current.
    Cancelled,
    /// The process running it died (killed, power cut); found and marked later.
    Interrupted,
}

impl RunState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "running" => RunState::Running,
            "succeeded" => RunState::Succeeded,
            "failed" => RunState::Failed,
            "cancelled" => RunState::Cancelled,
            "interrupted" => RunState::Interrupted,
            other => {
                return Err(StoreError::Corrupt {
                    what: "run state".into(),
                    detail: format!("unknown value `{other}`"),
                });
            }
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `invhost run` ("Execute Now").
    Manual,
    /// The scheduler of `invhost serve`.
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
        }
    }
}

/// One run as stored and shown (`invhost runs --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run's number (increasing).
    pub id: i64,
    /// The connection's name at the time.
    pub connection: String,
    /// The source type.
    pub source_type: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Where it stands.
    pub state: RunState,
    /// Start (RFC 3339, UTC, milliseconds).
    pub started_at: String,
    /// End, once ended.
    pub ended_at: Option<String>,
    /// Records in the snapshot, per kind (when succeeded).
    pub counts: BTreeMap<String, u64>,
    /// API calls the run spent, when the source counts them.
    pub api_calls: Option<u64>,
    /// Things the operator should know that did not fail the run.
    pub warnings: Vec<String>,
    /// The error kind (`auth`, `network`, ...), when it failed.
    pub error_kind: Option<String>,
    /// The error message, when it failed, was cancelled or interrupted.
    pub error: Option<String>,
    /// Whether the failure is transient (network, rate limit, service unavailable): trying
    /// again later may succeed.
    pub retryable: bool,
}

/// How a run ended, for [`Store::finish_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// Succeeded, failed or cancelled.
    pub state: RunState,
    /// API calls spent.
    pub api_calls: Option<u64>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Error kind and message for a failed or cancelled run.
    pub error: Option<(String, String)>,
    /// Whether the failure is transient.
    pub retryable: bool,
}

const RUN_COLUMNS: &str = "id, connection_name, source_type, trigger, state, started_at, ended_at, counts, api_calls, warnings, error_kind, error, retryable";

fn run_row(r: &Row<'_>) -> rusqlite::Result<(RunRow, String, String, String)> {
    Ok((
        RunRow {
            id: r.get(0)?,
            connection: r.get(1)?,
            source_type: r.get(2)?,
            trigger: r.get(3)?,
            state: RunState::Running,
            started_at: r.get(5)?,
            ended_at: r.get(6)?,
            counts: BTreeMap::new(),
            api_calls: r.get::<_, Option<i64>>(8)?.map(|n| n.max(0) as u64),
            warnings: Vec::new(),
            error_kind: r.get(10)?,
            error: r.get(11)?,
            retryable: r.get(12)?,
        },
        r.get(4)?,
        r.get(7)?,
        r.get(9)?,
    ))
}

fn finish_row(
    (mut row, state, counts, warnings): (RunRow, String, String, String),
) -> Result<RunRow, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt {
        what: format!("{what} of run {}", row.id),
        detail: e.to_string(),
    };
    row.state = RunState::parse(&state)?;
    row.counts = serde_json::from_str(&counts).map_err(|e| corrupt("counts", e))?;
    row.warnings = serde_json::from_str(&warnings).map_err(|e| corrupt("warnings", e))?;
    Ok(row)
}

/// The current time for run rows: RFC 3339, UTC, milliseconds.
pub(crate) fn now_millis() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The message stored on a run found `running` after its process died.
pub const INTERRUPTED_MESSAGE: &str = "the invhost process running this import stopped (killed, crashed or powered off) before it finished; the previous snapshot stayed current";

impl Store {
    /// Starts a run of `connection`: a `running` row and an empty `building` snapshot, in one
    /// transaction. The caller must hold the connection's run lock; a row still `running`
    /// then belongs to a dead process and is marked interrupted first.
    pub fn begin_run(
        &mut self,
        connection: &ConnectionRow,
        trigger: Trigger,
    ) -> Result<(i64, i64), StoreError> {
        self.interrupt_run(connection.id)?;
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let started = now_millis();
        tx.execute(
            "INSERT INTO runs (connection_id, connection_name, source_type, trigger, state, started_at)
             VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
            params![
                connection.id,
                connection.name,
                connection.source_type,
                trigger.as_str(),
                started
            ],
        )?;
        let run_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO snapshots (connection_id, run_id, state, created_at)
             VALUES (?1, ?2, 'building', ?3)",
            params![connection.id, run_id, started],
        )?;
        let snapshot_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE runs SET snapshot_id = ?1 WHERE id = ?2",
            params![snapshot_id, run_id],
        )?;
        tx.commit()?;
        Ok((run_id, snapshot_id))
    }

    /// Marks the connection's `running` run (if any) interrupted and deletes its unfinished
    /// snapshot. Only for a caller holding the connection's run lock. Returns how many runs it
    /// marked.
    pub fn interrupt_run(&mut self, connection_id: i64) -> Result<usize, StoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let marked = tx.execute(
            "UPDATE runs SET state = 'interrupted', ended_at = ?1, error_kind = 'interrupted', error = ?2
             WHERE connection_id = ?3 AND state = 'running'",
            params![now_millis(), INTERRUPTED_MESSAGE, connection_id],
        )?;
        // Unfinished snapshots: of the runs just marked, and of any run that ended without
        // cleaning up (a process killed between its two last transactions).
        delete_snapshots_where(
            &tx,
            "connection_id = ?1 AND state = 'building' AND run_id NOT IN (SELECT id FROM runs WHERE state = 'running')",
            connection_id,
        )?;
        tx.commit()?;
        if marked > 0 {
            tracing::warn!(connection_id, "Marked a run left running as interrupted.");
        }
        Ok(marked)
    }

    /// The connections that have a `running` run (id and name).
    pub fn connections_with_running_runs(&mut self) -> Result<Vec<(i64, String)>, StoreError> {
        let mut statement = self.db().prepare(
            "SELECT connection_id, connection_name FROM runs WHERE state = 'running' ORDER BY id",
        )?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Ends a run. A succeeded run's snapshot becomes the connection's current one and the
    /// previous current one becomes `previous`, in one transaction synced to disk; for any
    /// other end the run's snapshot is deleted and the current one stays. Returns the row.
    ///
    /// If the run is no longer `running` (another process judged it dead) or its connection
    /// was removed meanwhile, a success is recorded as a failure saying so.
    pub fn finish_run(&mut self, run_id: i64, end: RunEnd) -> Result<RunRow, StoreError> {
        // The store's connection syncs every commit in full (see `Store::open`).
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<(i64, Option<i64>, String)> = tx
            .query_row(
                "SELECT connection_id, snapshot_id, state FROM runs WHERE id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((connection_id, snapshot_id, state)) = found else {
            return Err(StoreError::Corrupt {
                what: format!("run {run_id}"),
                detail: "the run row is missing".into(),
            });
        };
        let connection_exists: bool = tx
            .query_row(
                "SELECT COUNT(*) FROM connections WHERE id = ?1",
                [connection_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        let snapshot_id = snapshot_id.unwrap_or(-1);
        let building: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM snapshots
               WHERE id = ?1 AND run_id = ?2 AND connection_id = ?3 AND state = 'building')",
            params![snapshot_id, run_id, connection_id],
            |r| r.get(0),
        )?;
        let mut end = end;
        if end.state == RunState::Succeeded
            && (state != "running" || !connection_exists || !building)
        {
            end.state = RunState::Failed;
            end.retryable = false;
            end.error = Some((
                "internal".into(),
                if !connection_exists {
                    "the connection was removed while the run was in progress; its records were not kept".into()
                } else if state != "running" {
                    "the run was marked interrupted by another invhost process while it ran; its records were not kept".into()
                } else {
                    "the run's snapshot was deleted while the run was in progress; its records were not kept".into()
                },
            ));
        }
        let mut counts = BTreeMap::new();
        if end.state == RunState::Succeeded {
            counts = count_records(&tx, snapshot_id)?;
            tx.execute(
                "UPDATE snapshots SET state = 'previous' WHERE connection_id = ?1 AND state = 'current'",
                [connection_id],
            )?;
            let published = tx.execute(
                "UPDATE snapshots SET state = 'current', published_at = ?1
                 WHERE id = ?2 AND state = 'building'",
                params![now_millis(), snapshot_id],
            )?;
            if published != 1 {
                // Checked above under the same write lock; dropping `tx` rolls back.
                return Err(StoreError::Corrupt {
                    what: format!("snapshot {snapshot_id}"),
                    detail: "it was no longer being built when its run published it".into(),
                });
            }
        } else {
            delete_snapshots_where(&tx, "id = ?1", snapshot_id)?;
        }
        let (error_kind, error) = end.error.unzip();
        let counts_text = serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into());
        let warnings_text = serde_json::to_string(&end.warnings).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "UPDATE runs SET state = ?1, ended_at = ?2, counts = ?3, api_calls = ?4, warnings = ?5,
                error_kind = ?6, error = ?7, retryable = ?9,
                snapshot_id = CASE WHEN ?1 = 'succeeded' THEN snapshot_id ELSE NULL END
             WHERE id = ?8",
            params![
                end.state.as_str(),
                now_millis(),
                counts_text,
                end.api_calls.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                warnings_text,
                error_kind,
                error,
                run_id,
                end.retryable
            ],
        )?;
        tx.commit()?;
        self.run(run_id)
    }

    /// Deletes the connection's `previous` snapshots beyond the newest `keep - 1` (the current
    /// one counts as one of `keep`). Run history is kept. Returns how many it deleted.
    pub fn prune_snapshots(&mut self, connection_id: i64, keep: u32) -> Result<usize, StoreError> {
        let keep_previous = i64::from(keep.max(1)) - 1;
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old: Vec<i64> = {
            let mut statement = tx.prepare(
                "SELECT id FROM snapshots WHERE connection_id = ?1 AND state = 'previous'
                   AND id NOT IN (SELECT id FROM snapshots
                     WHERE connection_id = ?1 AND state = 'previous' ORDER BY id DESC LIMIT ?2)",
            )?;
            statement
                .query_map(params![connection_id, keep_previous], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for id in &old {
            delete_snapshots_where(&tx, "id = ?1", *id)?;
        }
        tx.commit()?;
        Ok(old.len())
    }

    /// One run.
    pub fn run(&mut self, run_id: i64) -> Result<RunRow, StoreError> {
        let found = self
            .db()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [run_id],
                run_row,
            )
            .optional()?;
        found
            .map(finish_row)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("run {run_id}"),
                detail: "the run row is missing".into(),
            })
    }

    /// The newest runs first, of one connection (by name, as recorded) or of all; at most
    /// `limit`.
    pub fn runs(
        &mut self,
        connection: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRow>, StoreError> {
        let rows = match connection {
            None => {
                let mut statement = self.db().prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?1"
                ))?;
                statement
                    .query_map([limit], run_row)?
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(name) => {
                // Names compare as connection names do (Unicode case folding, in Rust), over
                // the few distinct names the history holds.
                let key = super::connections::name_key(name);
                let names: Vec<String> = {
                    let mut statement = self
                        .db()
                        .prepare("SELECT DISTINCT connection_name FROM runs")?;
                    statement
                        .query_map([], |r| r.get::<_, String>(0))?
                        .filter(|n| {
                            n.as_ref()
                                .map_or(true, |n| super::connections::name_key(n) == key)
                        })
                        .collect::<Result<_, _>>()?
                };
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let placeholders = vec!["?"; names.len()].join(", ");
                let mut statement = self.db().prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE connection_name IN ({placeholders})
                     ORDER BY id DESC LIMIT {limit}"
                ))?;
                statement
                    .query_map(rusqlite::params_from_iter(&names), run_row)?
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        rows.into_iter().map(finish_row).collect()
    }

    /// The id of the connection's current snapshot, if it has one.
    pub fn current_snapshot(&mut self, connection_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id FROM snapshots WHERE connection_id = ?1 AND state = 'current'",
                [connection_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn runs_of_a_connection_match_its_name_in_any_case_beyond_ascii() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("store");
        for name in ["Ärzte Süd", "other"] {
            store
                .add_connection(name, "fixture", &json!({}))
                .expect("added");
            let row = store.connection(name).expect("row");
            let (run, _) = store.begin_run(&row, Trigger::Manual).expect("begun");
            store
                .finish_run(
                    run,
                    RunEnd {
                        state: RunState::Succeeded,
                        api_calls: Some(1),
                        warnings: vec![],
                        error: None,
                        retryable: false,
                    },
                )
                .expect("finished");
        }
        let found = store.runs(Some("ÄRZTE SÜD"), 10).expect("runs");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].connection, "Ärzte Süd");
        assert!(store.runs(Some("nobody"), 10).expect("runs").is_empty());
        assert_eq!(store.runs(None, 10).expect("runs").len(), 2);
        assert_eq!(store.runs(None, 1).expect("runs")[0].connection, "other");
    }
}
