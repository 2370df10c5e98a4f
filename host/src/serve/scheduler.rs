//! The scheduler of `invhost serve`.
//!
//! Every tick (a second) it re-reads the schedules, the connections and its own progress from
//! the database, so that changes made with the CLI count at once, and decides for each
//! scheduled connection with [`catchup::decide`]:
//!
//! * a connection it has no progress for (newly assigned, or its schedule changed) starts
//!   counting: its first run is the schedule's next slot;
//! * a due connection has its progress moved to *now* before anything runs (so missed slots
//!   lead to one run, and a process killed outright mid-run does not run that slot again after
//!   a restart: the next slot does), then, unless it is disabled or needs re-authorization
//!   (skipped with a log line), gets a job.
//!
//! A job imports the connection through the [`Runner`] on a thread of its own (plugin calls
//! block), with at most `max_parallel` imports at a time (a semaphore) and one per connection
//! (the job's connection is not planned again while the job lasts; the run lock guards against
//! other processes). A run that failed with a transient error (`retryable`) is tried again after
//! each of the retry delays, as long as the retry starts before the schedule's next slot; every
//! attempt is a run in the history (trigger `schedule`). When the job ends its progress moves
//! to the time it ended: slots that passed while it ran are covered by it. A job that shutdown
//! stopped (not started, cancelled, a retry not made, or still going when the stop grace ran
//! out) moves it back to just before its slot instead, so the next start runs that slot.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::{sync::Semaphore, task::JoinSet};

use super::{STOP_GRACE, ServeOptions, Shutdown};
use crate::{
    connections::session::Vault,
    plugins::Registry,
    runner::{Quiet, RunError, RunSettings, Runner},
    schedules::{
        catchup::{self, Decision},
        compile_all,
    },
    store::{AuthState, RunRow, RunState, Store, StoreError, Trigger, schedules::ScheduleState},
};

/// How often runs of dead processes (`invhost run` killed while `serve` runs) are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// A due import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The connection's id.
    pub connection_id: i64,
    /// The connection's name.
    pub connection: String,
    /// The schedule's fingerprint when planned.
    pub fingerprint: String,
    /// The earliest slot the job covers.
    pub slot: DateTime<Utc>,
    /// The schedule's next slot after the job was planned: retries start before it.
    pub next_slot: Option<DateTime<Utc>>,
}

fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the scheduler remembers between ticks besides the database: problems already logged.
#[derive(Debug, Default)]
pub struct Planner {
    warned: HashSet<String>,
}

impl Planner {
    /// Decides every scheduled connection at `now`, records the progress, and returns the
    /// jobs to start. Connections in `busy` (a job of this process is running) are left alone.
    pub fn plan(
        &mut self,
        store: &mut Store,
        now: DateTime<Utc>,
        busy: &HashSet<i64>,
    ) -> Result<Vec<Job>, StoreError> {
        let specs = compile_all(store.schedules()?);
        for (name, spec) in &specs {
            if let Err(error) = spec
                && self.warned.insert(format!("{name}: {error}"))
            {
                tracing::error!(schedule = %name, %error, "A stored schedule cannot be evaluated; its connections are not imported.");
            }
        }
        store.prune_schedule_states()?;
        let states = store.schedule_states()?;
        let mut jobs = Vec::new();
        for connection in store.connections()? {
            let Some(schedule) = &connection.schedule else {
                continue;
            };
            if busy.contains(&connection.id) {
                continue;
            }
            let Some(Ok(spec)) = specs.get(schedule) else {
                continue;
            };
            let fingerprint = spec.fingerprint();
            let state = states
                .get(&connection.id)
                .filter(|state| state.fingerprint == fingerprint);
            let handled = state.and_then(|s| parse_timestamp(&s.handled_through));
            let last_slot = state.and_then(|s| s.last_slot.clone());
            match catchup::decide(spec, handled, now) {
                Decision::Wait { .. } => {}
                Decision::Start => {
                    store.set_schedule_state(
                        connection.id,
                        &ScheduleState {
                            fingerprint,
                            handled_through: timestamp(now),
                            last_slot,
                        },
                    )?;
                    tracing::info!(
                        connection = %connection.name,
                        schedule = %schedule,
                        next_run = %spec.next_after(now).map_or_else(|| "never".to_owned(), timestamp),
                        "Scheduled: the first run is the schedule's next slot."
                    );
                }
                Decision::Due { slot, slots } => {
                    store.set_schedule_state(
                        connection.id,
                        &ScheduleState {
                            fingerprint: fingerprint.clone(),
                            handled_through: timestamp(now),
                            last_slot: Some(timestamp(slot)),
                        },
                    )?;
                    if !connection.enabled {
                        tracing::info!(connection = %connection.name, schedule = %schedule, "Skipped a scheduled import: the connection is disabled.");
                        continue;
                    }
                    if connection.auth_state == AuthState::ReauthorizationRequired {
                        tracing::warn!(connection = %connection.name, schedule = %schedule, "Skipped a scheduled import: the connection needs re-authorization; run `invhost connections generate-token {}`.", crate::names::shell_word(&connection.name));
                        continue;
                    }
                    if slots > 1 {
                        let counted = if slots >= catchup::MISSED_COUNT_LIMIT {
                            format!("{slots} or more")
                        } else {
                            slots.to_string()
                        };
                        tracing::info!(connection = %connection.name, schedule = %schedule, missed = %counted, since = %timestamp(slot), "Catching up missed scheduled runs with one import.");
                    }
                    jobs.push(Job {
                        connection_id: connection.id,
                        connection: connection.name.clone(),
                        fingerprint,
                        slot,
                        next_slot: spec.next_after(now),
                    });
                }
            }
        }
        Ok(jobs)
    }
}

/// What every job shares.
struct JobContext {
    data_dir: PathBuf,
    registry: Arc<Registry>,
    vault: Option<Arc<dyn Vault>>,
    run_settings: RunSettings,
    retry_delays: Vec<Duration>,
    permits: Arc<Semaphore>,
    shutdown: Shutdown,
    /// The jobs in progress, by connection id.
    busy: Mutex<HashMap<i64, Job>>,
}

/// The scheduler loop.
pub(super) struct Scheduler {
    context: Arc<JobContext>,
    planner: Arc<Mutex<Planner>>,
    tick: Duration,
}

impl Scheduler {
    pub(super) fn new(options: &ServeOptions, shutdown: Shutdown) -> Scheduler {
        Scheduler {
            context: Arc::new(JobContext {
                data_dir: options.data_dir.clone(),
                registry: options.registry.clone(),
                vault: options.vault.clone(),
                run_settings: options.run_settings,
                retry_delays: options.retry_delays.clone(),
                permits: Arc::new(Semaphore::new(options.max_parallel.max(1))),
                shutdown,
                busy: Mutex::new(HashMap::new()),
            }),
            planner: Arc::new(Mutex::new(Planner::default())),
            tick: options.tick,
        }
    }

    /// Ticks until shutdown starts, then waits (up to [`STOP_GRACE`]) for running jobs.
    pub(super) async fn run(self) {
        let mut jobs = JoinSet::new();
        let mut ticks = tokio::time::interval(self.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_sweep = Instant::now();
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = self.context.shutdown.wait() => break,
            }
            while jobs.try_join_next().is_some() {}
            let sweep = last_sweep.elapsed() >= SWEEP_EVERY;
            if sweep {
                last_sweep = Instant::now();
            }
            let context = self.context.clone();
            let planner = self.planner.clone();
            let planned = tokio::task::spawn_blocking(move || {
                let busy: HashSet<i64> = context
                    .busy
                    .lock()
                    .map(|b| b.keys().copied().collect())
                    .unwrap_or_default();
                if sweep {
                    let runner = Runner::new(
                        &context.data_dir,
                        &context.registry,
                        None,
                        context.run_settings,
                    );
                    match runner.sweep() {
                        Ok(0) => {}
                        Ok(runs) => tracing::warn!(
                            runs,
                            "Marked runs left running by a stopped process as interrupted."
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "Could not look for runs of stopped processes.")
                        }
                    }
                }
                let mut store = Store::open(&context.data_dir)?;
                let mut planner = planner
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                planner.plan(&mut store, Utc::now(), &busy)
            })
            .await;
            let planned = match planned {
                Ok(Ok(planned)) => {
                    if failing {
                        tracing::info!("The schedules can be read again.");
                        failing = false;
                    }
                    planned
                }
                Ok(Err(error)) => {
                    if !failing {
                        tracing::error!(%error, "Cannot read the schedules; trying again every tick.");
                        failing = true;
                    }
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "The scheduler's planning stopped unexpectedly; trying again.");
                    continue;
                }
            };
            // Jobs planned while shutdown began are spawned all the same: their progress
            // already moved, and a job that sees the shutdown moves it back (`finish_job`).
            for job in planned {
                if let Ok(mut busy) = self.context.busy.lock() {
                    busy.insert(job.connection_id, job.clone());
                }
                jobs.spawn(run_job(self.context.clone(), job));
            }
        }
        if !jobs.is_empty() {
            tracing::info!(
                jobs = jobs.len(),
                "Waiting for the cancelled imports to end."
            );
        }
        let ended = tokio::time::timeout(STOP_GRACE, async {
            while jobs.join_next().await.is_some() {}
        })
        .await;
        if ended.is_err() {
            tracing::warn!(
                grace_secs = STOP_GRACE.as_secs(),
                "Imports did not stop in time; exiting anyway (they will show as interrupted, and their slots run at the next start)."
            );
            // Their jobs are dropped with `jobs`: move their progress back here instead.
            let left: Vec<Job> = self
                .context
                .busy
                .lock()
                .map(|b| b.values().cloned().collect())
                .unwrap_or_default();
            let data_dir = self.context.data_dir.clone();
            let rewound = tokio::task::spawn_blocking(move || {
                left.iter()
                    .map(|job| record_progress(&data_dir, job, true))
                    .collect::<Result<Vec<()>, StoreError>>()
            })
            .await;
            if !matches!(rewound, Ok(Ok(_))) {
                tracing::warn!(
                    "Could not record that the unfinished scheduled imports must run again; their slots may be skipped."
                );
            }
        }
    }
}

/// One due import with its retries.
async fn run_job(context: Arc<JobContext>, job: Job) {
    let attempts = context.retry_delays.len() + 1;
    // Whether shutdown kept the slot from being served (not started, cancelled, or a retry
    // not made): then the next start of `serve` catches it up.
    let mut stopped = false;
    for attempt in 1..=attempts {
        let permit = tokio::select! {
            permit = context.permits.clone().acquire_owned() => permit,
            _ = context.shutdown.wait() => {
                stopped = true;
                break;
            }
        };
        if context.shutdown.is_triggered() {
            stopped = true;
            break;
        }
        let outcome = import(context.clone(), job.connection.clone()).await;
        drop(permit);
        let run = match outcome {
            Ok(run) => run,
            Err(JobError::Run(RunError::Busy(_))) => {
                tracing::info!(connection = %job.connection, "Skipped a scheduled import: another invhost process holds the connection (an `invhost run`, or `connections remove`).");
                break;
            }
            Err(error) => {
                tracing::error!(connection = %job.connection, %error, "Could not start a scheduled import.");
                break;
            }
        };
        if run.state == RunState::Cancelled && context.shutdown.is_triggered() {
            stopped = true;
            break;
        }
        if !matches!(run.state, RunState::Failed | RunState::Interrupted) {
            break;
        }
        let error = run.error.as_deref().unwrap_or("no reason recorded");
        let kind = run.error_kind.as_deref().unwrap_or("-");
        if !run.retryable || attempt == attempts {
            tracing::warn!(connection = %job.connection, run_id = run.id, attempt, error_kind = kind, %error, "Scheduled import failed.");
            break;
        }
        let delay = context.retry_delays[attempt - 1];
        let retry_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        if job.next_slot.is_some_and(|next| retry_at >= next) {
            tracing::warn!(connection = %job.connection, run_id = run.id, attempt, error_kind = kind, %error, "Scheduled import failed with a transient error; not retrying: the next scheduled run comes first.");
            break;
        }
        tracing::warn!(connection = %job.connection, run_id = run.id, attempt, error_kind = kind, %error, retry_in = %humantime::format_duration(delay), "Scheduled import failed with a transient error; retrying.");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = context.shutdown.wait() => {
                stopped = true;
                break;
            }
        }
    }
    finish_job(&context, &job, stopped).await;
}

/// Moves the connection's progress to now (slots that passed while the job ran are covered by
/// it) and lets the connection be planned again. A job that shutdown `stopped` moves the
/// progress back to just before its slot instead, so the next start runs it.
async fn finish_job(context: &Arc<JobContext>, job: &Job, stopped: bool) {
    let data_dir = context.data_dir.clone();
    let done = job.clone();
    let recorded =
        tokio::task::spawn_blocking(move || record_progress(&data_dir, &done, stopped)).await;
    match recorded {
        Ok(Ok(())) if stopped => {
            tracing::info!(connection = %job.connection, slot = %timestamp(job.slot), "The scheduled import was stopped by shutdown; it runs at the next start.");
        }
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(connection = %job.connection, %error, "Could not record the scheduled import's progress; a slot may run again.");
        }
        Err(error) => {
            tracing::warn!(connection = %job.connection, %error, "Could not record the scheduled import's progress.");
        }
    }
    if let Ok(mut busy) = context.busy.lock() {
        busy.remove(&job.connection_id);
    }
}

/// Records how far a job took its connection's schedule: to now, or (`stopped` by shutdown)
/// to just before its slot.
fn record_progress(data_dir: &Path, job: &Job, stopped: bool) -> Result<(), StoreError> {
    let mut store = Store::open(data_dir)?;
    let states = store.schedule_states()?;
    // A schedule changed or unassigned meanwhile has its own progress (or none).
    if let Some(state) = states.get(&job.connection_id)
        && state.fingerprint == job.fingerprint
    {
        let mut state = state.clone();
        state.handled_through = if stopped {
            timestamp(job.slot - chrono::Duration::milliseconds(1))
        } else {
            timestamp(Utc::now())
        };
        store.set_schedule_state(job.connection_id, &state)?;
    }
    Ok(())
}

/// Why a job's attempt did not produce a run.
#[derive(Debug, thiserror::Error)]
enum JobError {
    /// The runner refused to start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The import thread could not start.
    #[error("cannot start a thread for the import: {0}")]
    Thread(std::io::Error),
    /// The import thread stopped without an answer (a panic in the host).
    #[error("the import thread stopped unexpectedly; see the log above")]
    Lost,
}

/// One import attempt, on a thread of its own (plugin calls block, and must not run on the
/// runtime's threads).
async fn import(context: Arc<JobContext>, connection: String) -> Result<RunRow, JobError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let name = connection.clone();
    std::thread::Builder::new()
        .name(format!("import {connection}"))
        .spawn(move || {
            let runner = Runner::new(
                &context.data_dir,
                &context.registry,
                context.vault.clone(),
                context.run_settings,
            );
            let result = runner.run(
                &name,
                Trigger::Schedule,
                context.shutdown.cancel_flag(),
                Arc::new(Quiet),
            );
            let _ = sender.send(result);
        })
        .map_err(JobError::Thread)?;
    match receiver.await {
        Ok(result) => Ok(result?),
        Err(_) => Err(JobError::Lost),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).expect("test time")
    }

    fn setup() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("store");
        store
            .add_connection("alpha", "fixture", &json!({}))
            .expect("alpha");
        store
            .add_schedule("fast", "every", "5m", "UTC")
            .expect("schedule");
        store
            .assign_schedule("alpha", Some("fast"))
            .expect("assigned");
        let id = store.connection("alpha").expect("alpha").id;
        (dir, store, id)
    }

    fn set_enabled(store: &mut Store, enabled: bool) {
        store
            .db()
            .execute("UPDATE connections SET enabled = ?1", [enabled])
            .expect("enabled flag");
    }

    fn handled(store: &mut Store, id: i64) -> String {
        store.schedule_states().expect("states")[&id]
            .handled_through
            .clone()
    }

    #[test]
    fn first_sight_waits_for_the_next_slot_then_runs_once_per_slot() {
        let (_dir, mut store, id) = setup();
        let mut planner = Planner::default();
        let none = HashSet::new();
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:01:00Z"), &none)
                .expect("plan")
                .is_empty(),
            "nothing runs at once"
        );
        assert_eq!(handled(&mut store, id), "2026-05-04T10:01:00.000Z");
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:04:59Z"), &none)
                .expect("plan")
                .is_empty()
        );
        let jobs = planner
            .plan(&mut store, at("2026-05-04T10:05:00.300Z"), &none)
            .expect("plan");
        assert_eq!(
            jobs,
            [Job {
                connection_id: id,
                connection: "alpha".into(),
                fingerprint: "every|5m|UTC".into(),
                slot: at("2026-05-04T10:05:00Z"),
                next_slot: Some(at("2026-05-04T10:10:00Z")),
            }]
        );
        // The slot is handled before the run starts: the next tick plans nothing.
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:05:01Z"), &none)
                .expect("plan")
                .is_empty()
        );
    }

    #[test]
    fn downtime_is_caught_up_once_and_progress_survives_reopening() {
        let (dir, mut store, id) = setup();
        let mut planner = Planner::default();
        let none = HashSet::new();
        planner
            .plan(&mut store, at("2026-05-04T10:01:00Z"), &none)
            .expect("start");
        drop(store);
        // A new process, an hour later.
        let mut store = Store::open(dir.path()).expect("reopened");
        let mut planner = Planner::default();
        let jobs = planner
            .plan(&mut store, at("2026-05-04T11:02:00Z"), &none)
            .expect("plan");
        assert_eq!(jobs.len(), 1, "one run for twelve missed slots");
        assert_eq!(jobs[0].slot, at("2026-05-04T10:05:00Z"));
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T11:02:01Z"), &none)
                .expect("plan")
                .is_empty()
        );
        assert_eq!(
            planner
                .plan(&mut store, at("2026-05-04T11:05:00Z"), &none)
                .expect("plan")
                .len(),
            1
        );
        let _ = id;
    }

    #[test]
    fn busy_disabled_and_reauthorization_required_connections_do_not_get_jobs() {
        let (_dir, mut store, id) = setup();
        let mut planner = Planner::default();
        let none = HashSet::new();
        planner
            .plan(&mut store, at("2026-05-04T10:01:00Z"), &none)
            .expect("start");
        // Busy: left alone entirely (its slot stays due).
        let busy = HashSet::from([id]);
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:05:00Z"), &busy)
                .expect("plan")
                .is_empty()
        );
        assert_eq!(handled(&mut store, id), "2026-05-04T10:01:00.000Z");
        // Disabled: the slot is handled (skipped), no job.
        set_enabled(&mut store, false);
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:05:01Z"), &none)
                .expect("plan")
                .is_empty()
        );
        assert_eq!(handled(&mut store, id), "2026-05-04T10:05:01.000Z");
        set_enabled(&mut store, true);
        store
            .set_auth_state("alpha", AuthState::ReauthorizationRequired, Some("revoked"))
            .expect("auth");
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T10:10:00Z"), &none)
                .expect("plan")
                .is_empty()
        );
        assert_eq!(handled(&mut store, id), "2026-05-04T10:10:00.000Z");
        store
            .set_auth_state("alpha", AuthState::Ok, None)
            .expect("auth");
        assert_eq!(
            planner
                .plan(&mut store, at("2026-05-04T10:15:00Z"), &none)
                .expect("plan")
                .len(),
            1
        );
    }

    #[test]
    fn a_changed_schedule_starts_afresh() {
        let (_dir, mut store, id) = setup();
        let mut planner = Planner::default();
        let none = HashSet::new();
        planner
            .plan(&mut store, at("2026-05-04T10:01:00Z"), &none)
            .expect("start");
        // Replaced by a schedule of the same name with another definition, reassigned.
        store.remove_schedule("fast", true).expect("removed");
        store
            .add_schedule("fast", "every", "1h", "UTC")
            .expect("re-added");
        store
            .assign_schedule("alpha", Some("fast"))
            .expect("assigned");
        // Hours later, the new schedule starts counting instead of catching up.
        assert!(
            planner
                .plan(&mut store, at("2026-05-04T13:30:00Z"), &none)
                .expect("plan")
                .is_empty()
        );
        assert_eq!(
            store.schedule_states().expect("states")[&id].fingerprint,
            "every|1h|UTC"
        );
    }
}
