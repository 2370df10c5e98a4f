//! Runs imports: "Execute Now" (`invhost run`) and, later, the scheduler use the same
//! [`Runner`].
//!
//! One run of one connection:
//! 1. take the connection's run lock ([`lock`]): one run per connection at a time, across
//!    processes; a run row left `running` by a dead process is marked interrupted here;
//! 2. start the run: a `running` row and an empty `building` snapshot;
//! 3. call the plugin's `import` with a `ImportHandler`: each batch of records the
//!    plugin emits is written into the snapshot in its own transaction;
//! 4. end the run: on success the snapshot becomes current in one transaction synced to disk;
//!    on failure or cancellation it is deleted and the previous one stays current;
//! 5. record the connection's auth state and prune old snapshots.
//!
//! A process killed anywhere in between loses nothing: the current snapshot is only replaced in
//! step 4's single transaction, and the next run (or [`Runner::sweep`]) marks the dead run
//! interrupted.

mod handler;
pub mod lock;

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use invhost_plugin_api::{
    ErrorKind,
    model::MODEL_VERSION,
    protocol::{ConnectionInfo, ImportRequest, ImportSummary, Progress, op},
};

use crate::{
    connections::{
        ConnectionError, Connections, Prepared, failure_line,
        session::{Interaction, Session, Vault},
    },
    plugins::{CallError, Registry},
    store::{RunEnd, RunRow, RunState, SnapshotWriter, Store, StoreError, Trigger},
};
use lock::{LockError, RunLock};

/// What a run tells whoever started it while it works.
pub trait RunObserver: Send + Sync {
    /// The run started.
    fn started(&self, connection: &str, run_id: i64) {
        let _ = (connection, run_id);
    }
    /// The plugin reported progress.
    fn progress(&self, connection: &str, progress: &Progress) {
        let _ = (connection, progress);
    }
    /// The run ended (in any state).
    fn finished(&self, run: &RunRow) {
        let _ = run;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl RunObserver for Quiet {}

/// Run settings (`[runs]` in invhost.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSettings {
    /// Snapshots kept per connection, the current one included.
    pub keep_snapshots: u32,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings { keep_snapshots: 3 }
    }
}

/// Why a run could not start. (A run that started and failed is a [`RunRow`] in state failed.)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The connection or its plugin is not usable.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// Another run of the connection is in progress.
    #[error(
        "connection `{}` is already being imported (by this or another invhost process); wait for that run to end (see `invhost runs`)", crate::names::Shown(.0)
    )]
    Busy(String),
    /// The connection was removed and added again while the run started.
    #[error("connection `{}` was removed or replaced while the run started; start the run again", crate::names::Shown(.0))]
    Replaced(String),
    /// The run lock could not be taken.
    #[error(transparent)]
    Lock(LockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs imports over one data directory and the loaded plugins.
pub struct Runner<'a> {
    data_dir: &'a Path,
    registry: &'a Registry,
    vault: Option<Arc<dyn Vault>>,
    settings: RunSettings,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<'a> Runner<'a> {
    /// A runner; `vault` serves connections whose secrets live in CyberArk.
    pub fn new(
        data_dir: &'a Path,
        registry: &'a Registry,
        vault: Option<Arc<dyn Vault>>,
        settings: RunSettings,
    ) -> Self {
        Runner {
            data_dir,
            registry,
            vault,
            settings,
        }
    }

    /// Marks every run left `running` by a process that is gone as interrupted (and deletes
    /// its unfinished snapshot). Runs of live processes are left alone. Returns how many it
    /// marked.
    pub fn sweep(&self) -> Result<usize, RunError> {
        let mut store = Store::open(self.data_dir)?;
        let mut marked = 0;
        for (connection_id, _) in store.connections_with_running_runs()? {
            match RunLock::try_acquire(self.data_dir, connection_id) {
                Ok(_held) => marked += store.interrupt_run(connection_id)?,
                Err(LockError::Busy) => {}
                Err(error) => return Err(RunError::Lock(error)),
            }
        }
        Ok(marked)
    }

    /// Imports one connection now. `cancel` stops it cleanly (the previous snapshot stays).
    pub fn run(
        &self,
        name: &str,
        trigger: Trigger,
        cancel: Arc<AtomicBool>,
        observer: Arc<dyn RunObserver>,
    ) -> Result<RunRow, RunError> {
        let mut connections = Connections::open(self.data_dir, self.registry)?;
        // The lock first: nothing of the connection (its secrets included) is opened while
        // another run of it is in progress, and nobody removes it meanwhile.
        let id = connections.id(name)?;
        let _lock = match RunLock::try_acquire(self.data_dir, id) {
            Ok(lock) => lock,
            Err(LockError::Busy) => return Err(RunError::Busy(name.to_owned())),
            Err(error) => return Err(RunError::Lock(error)),
        };
        // Removed (or replaced) between the look-up and the lock: the lock file just made
        // belongs to no connection.
        let prepared = match connections.prepare(name) {
            Ok(prepared) if prepared.row.id == id => prepared,
            Ok(prepared) => {
                RunLock::remove_file(self.data_dir, id);
                return Err(RunError::Replaced(prepared.row.name));
            }
            Err(error) => {
                if matches!(error, ConnectionError::Store(StoreError::NotFound(_))) {
                    RunLock::remove_file(self.data_dir, id);
                }
                return Err(error.into());
            }
        };
        let row = prepared.row.clone();
        let mut store = Store::open(self.data_dir)?;
        let (run_id, snapshot_id) = store.begin_run(&row, trigger)?;
        tracing::info!(connection = %row.name, run_id, "Import started.");
        observer.started(&row.name, run_id);
        let handler = match self.handler(&prepared, snapshot_id, &cancel, &observer) {
            Ok(handler) => Arc::new(handler),
            Err(error) => {
                // The run started: it ends, as failed, rather than staying `running`. The
                // database busy or out of space may pass; anything else is a fault here.
                let (kind, retryable) = match &error {
                    RunError::Store(_) => ("store", true),
                    _ => ("internal", false),
                };
                let finished = store.finish_run(
                    run_id,
                    RunEnd {
                        state: RunState::Failed,
                        api_calls: None,
                        warnings: Vec::new(),
                        error: Some((kind.into(), error.to_string())),
                        retryable,
                    },
                )?;
                observer.finished(&finished);
                return Ok(finished);
            }
        };
        let request = ImportRequest {
            source_type: row.source_type.clone(),
            connection: ConnectionInfo {
                name: row.name.clone(),
            },
            settings: prepared.settings.clone(),
            model_version: MODEL_VERSION,
        };
        let outcome: Result<ImportSummary, CallError> =
            prepared.plugin.call(op::IMPORT, &request, handler.clone());
        // A batch being written finishes (with its warnings), later ones are refused.
        handler.close();
        let mut warnings = Vec::new();
        let end = match &outcome {
            Ok(summary) => {
                warnings.extend(summary.warnings.iter().cloned());
                warnings.extend(handler.take_warnings());
                RunEnd {
                    state: RunState::Succeeded,
                    api_calls: summary.api_calls,
                    warnings,
                    error: None,
                    retryable: false,
                }
            }
            Err(error) => {
                warnings.extend(handler.take_warnings());
                let plugin_error = error.plugin_error();
                let cancelled = plugin_error.is_some_and(|e| e.kind == ErrorKind::CANCELLED)
                    || cancel.load(Ordering::SeqCst);
                let kind = plugin_error.map_or_else(|| "protocol".to_owned(), |e| e.kind.name());
                let message = failure_line(
                    error,
                    prepared.plugin.manifest.source_type(&row.source_type),
                    &row.name,
                );
                RunEnd {
                    state: if cancelled {
                        RunState::Cancelled
                    } else {
                        RunState::Failed
                    },
                    // A plugin may say in its error's details what the run spent.
                    api_calls: plugin_error
                        .and_then(|e| e.details.get("api_calls"))
                        .and_then(serde_json::Value::as_u64),
                    warnings,
                    retryable: !cancelled && plugin_error.is_some_and(|e| e.retryable),
                    error: Some((
                        if cancelled { "cancelled".into() } else { kind },
                        if cancelled {
                            "cancelled; the previous snapshot stayed current".into()
                        } else {
                            message
                        },
                    )),
                }
            }
        };
        drop(handler);
        let finished = store.finish_run(run_id, end)?;
        match &outcome {
            Ok(_) => connections.record_auth_outcome(&row.name, None)?,
            Err(error) => {
                if let Some(error) = error.plugin_error() {
                    connections.record_auth_outcome(&row.name, Some(error))?;
                }
            }
        }
        if finished.state == RunState::Succeeded {
            let pruned = store.prune_snapshots(row.id, self.settings.keep_snapshots)?;
            tracing::debug!(connection = %row.name, pruned, "Pruned old snapshots.");
        }
        tracing::info!(connection = %row.name, run_id, state = finished.state.as_str(), "Import ended.");
        observer.finished(&finished);
        Ok(finished)
    }

    /// The call handler of a started run.
    fn handler(
        &self,
        prepared: &Prepared<'_>,
        snapshot_id: i64,
        cancel: &Arc<AtomicBool>,
        observer: &Arc<dyn RunObserver>,
    ) -> Result<handler::ImportHandler, RunError> {
        Ok(handler::ImportHandler {
            connection: prepared.row.name.clone(),
            session: Session::new(
                self.data_dir,
                &prepared.row.name,
                prepared.schema.clone(),
                prepared.key.clone(),
                Interaction {
                    open_browser: false,
                },
                self.vault.clone(),
                cancel.clone(),
            )?,
            writer: Mutex::new(Some(SnapshotWriter::open(self.data_dir, snapshot_id)?)),
            observer: observer.clone(),
            cancel: cancel.clone(),
            warnings: Mutex::new(Vec::new()),
        })
    }
}
