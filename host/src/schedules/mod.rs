//! Named schedules: what `invhost schedules` and `invhost connections schedule` do, and what
//! the scheduler of `invhost serve` evaluates.
//!
//! * [`spec`]: definitions (cron, every, daily, weekly), time zones, next run times and the
//!   daylight-saving rules.
//! * [`catchup`]: the scheduler's decision for one connection (due, wait, start counting), as
//!   a pure function; a run missed during downtime is caught up once.
//!
//! A connection has at most one schedule; a schedule may serve many connections. Schedules
//! live in the database (`schedules`, migration 3), so changes made with the CLI reach a
//! running `invhost serve` at its next tick, without a restart.

pub mod catchup;
pub mod spec;

use std::{collections::HashMap, path::Path};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub use spec::{Definition, Spec, SpecError, TimeOfDay};

use crate::store::{
    Store, StoreError,
    schedules::{ScheduleRow, ScheduleStoreError},
};

/// A failure of a schedule operation; each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The definition, zone or name is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] ScheduleStoreError),
}

impl From<StoreError> for ScheduleError {
    fn from(error: StoreError) -> Self {
        ScheduleError::Store(error.into())
    }
}

/// A schedule as shown (`invhost schedules list --json`, `GET /api/v1/schedules`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    /// The name.
    pub name: String,
    /// `cron`, `every`, `daily` or `weekly`.
    pub kind: String,
    /// The definition as stored (`*/15 * * * *`, `15m`, `02:30`, `mon 02:30`).
    pub expression: String,
    /// The definition for people (`daily at 02:30`).
    pub description: String,
    /// The cron expression it is evaluated as (daily and weekly become one), if any.
    pub cron: Option<String>,
    /// The IANA time zone (`UTC` unless given).
    pub time_zone: String,
    /// The connections that use it, by name.
    pub connections: Vec<String>,
    /// Its next run time (RFC 3339, UTC); `null` when it never runs again or is damaged.
    pub next_run: Option<String>,
    /// The same instant in the schedule's time zone (RFC 3339 with the zone's offset).
    pub next_run_local: Option<String>,
    /// When it was added.
    pub created_at: String,
    /// Why a stored schedule cannot be evaluated (written by a newer invhost, or damaged).
    pub problem: Option<String>,
}

impl ScheduleView {
    fn new(row: ScheduleRow, connections: Vec<String>, now: DateTime<Utc>) -> ScheduleView {
        let (spec, problem) = match Spec::from_stored(&row.kind, &row.expression, &row.time_zone) {
            Ok(spec) => (Some(spec), None),
            Err(error) => (None, Some(error.to_string())),
        };
        let next = spec.as_ref().and_then(|s| s.next_after(now));
        ScheduleView {
            description: spec
                .as_ref()
                .map_or_else(|| row.expression.clone(), |s| s.definition().to_string()),
            cron: spec.as_ref().and_then(|s| s.definition().cron_expression()),
            next_run: next.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            next_run_local: next.zip(spec.as_ref()).map(|(t, s)| {
                t.with_timezone(&s.zone())
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            }),
            name: row.name,
            kind: row.kind,
            expression: row.expression,
            time_zone: row.time_zone,
            connections,
            created_at: row.created_at,
            problem,
        }
    }

    /// The next run in the schedule's zone for people (`2026-03-29 03:00:00 CEST`).
    pub fn next_run_text(&self) -> String {
        let zone = spec::parse_zone(&self.time_zone).unwrap_or(Tz::UTC);
        match self
            .next_run
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            Some(next) => next
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            None if self.problem.is_some() => "unknown".to_owned(),
            None => "never".to_owned(),
        }
    }
}

/// Schedule operations over one store.
#[derive(Debug)]
pub struct Schedules {
    store: Store,
}

impl Schedules {
    /// Opens the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Schedules, ScheduleError> {
        Ok(Schedules {
            store: Store::open(data_dir)?,
        })
    }

    /// Adds a schedule after checking its name and definition. `zone` defaults to UTC.
    pub fn add(
        &mut self,
        name: &str,
        definition: Definition,
        zone: Option<&str>,
    ) -> Result<ScheduleView, ScheduleError> {
        spec::check_schedule_name(name)?;
        let zone = match zone {
            Some(zone) => spec::parse_zone(zone)?,
            None => Tz::UTC,
        };
        let spec = Spec::new(definition, zone)?;
        self.store.add_schedule(
            name,
            spec.definition().kind(),
            &spec.definition().expression(),
            zone.name(),
        )?;
        self.show(name)
    }

    /// Every schedule with its connections and next run time.
    pub fn list(&mut self) -> Result<Vec<ScheduleView>, ScheduleError> {
        let now = Utc::now();
        let mut users = self.store.schedule_assignments()?;
        Ok(self
            .store
            .schedules()?
            .into_iter()
            .map(|row| {
                let connections = users.remove(&row.name).unwrap_or_default();
                ScheduleView::new(row, connections, now)
            })
            .collect())
    }

    /// One schedule.
    pub fn show(&mut self, name: &str) -> Result<ScheduleView, ScheduleError> {
        let row = self.store.schedule(name)?;
        let connections = self
            .store
            .schedule_assignments()?
            .remove(&row.name)
            .unwrap_or_default();
        Ok(ScheduleView::new(row, connections, Utc::now()))
    }

    /// Removes a schedule; refused while connections use it unless `force`, which unassigns
    /// them. Returns the schedule's name and the connections unassigned.
    pub fn remove(
        &mut self,
        name: &str,
        force: bool,
    ) -> Result<(String, Vec<String>), ScheduleError> {
        Ok(self.store.remove_schedule(name, force)?)
    }

    /// Assigns a schedule to a connection, or unassigns it (`None`). The first scheduled run
    /// is the schedule's next slot. Returns the connection's name and the schedule.
    pub fn assign(
        &mut self,
        connection: &str,
        schedule: Option<&str>,
    ) -> Result<(String, Option<ScheduleView>), ScheduleError> {
        let (connection, row) = self.store.assign_schedule(connection, schedule)?;
        let view = match row {
            Some(row) => Some(self.show(&row.name)?),
            None => None,
        };
        Ok((connection, view))
    }
}

/// Compiles every stored schedule, by name; a damaged one maps to its problem.
pub fn compile_all(rows: Vec<ScheduleRow>) -> HashMap<String, Result<Spec, SpecError>> {
    rows.into_iter()
        .map(|row| {
            let spec = Spec::from_stored(&row.kind, &row.expression, &row.time_zone);
            (row.name, spec)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn add_list_assign_and_remove() {
        let dir = tempfile::tempdir().expect("dir");
        let mut schedules = Schedules::open(dir.path()).expect("open");
        let view = schedules
            .add(
                "nightly",
                Definition::Daily(TimeOfDay {
                    hour: 2,
                    minute: 30,
                }),
                Some("europe/berlin"),
            )
            .expect("added");
        assert_eq!(view.time_zone, "Europe/Berlin");
        assert_eq!(view.description, "daily at 02:30");
        assert_eq!(view.cron.as_deref(), Some("30 2 * * *"));
        let next = DateTime::parse_from_rfc3339(view.next_run.as_deref().expect("next"))
            .expect("rfc 3339");
        assert!(next > Utc::now());
        assert!(
            view.next_run_text().contains("02:30:00") || view.next_run_text().contains("03:00:00")
        );
        let fast = schedules
            .add(
                "fast",
                Definition::Every(std::time::Duration::from_secs(5)),
                None,
            )
            .expect("added");
        assert_eq!(fast.time_zone, "UTC", "UTC unless --tz");
        assert!(matches!(
            schedules.add("bad-name", Definition::Cron("* * * * *".into()), None),
            Err(ScheduleError::Spec(SpecError::Name(_)))
        ));
        assert!(matches!(
            schedules.add(
                "x",
                Definition::Cron("* * * * *".into()),
                Some("Nowhere/City")
            ),
            Err(ScheduleError::Spec(SpecError::Zone(_)))
        ));
        Store::open(dir.path())
            .expect("store")
            .add_connection("alpha", "fixture", &json!({}))
            .expect("alpha");
        let (connection, assigned) = schedules.assign("Alpha", Some("NIGHTLY")).expect("assign");
        assert_eq!(connection, "alpha");
        assert_eq!(assigned.expect("view").connections, ["alpha"]);
        let listed = schedules.list().expect("list");
        assert_eq!(
            listed.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["fast", "nightly"]
        );
        assert!(listed[0].connections.is_empty());
        assert!(matches!(
            schedules.remove("nightly", false),
            Err(ScheduleError::Store(ScheduleStoreError::InUse { .. }))
        ));
        schedules.assign("alpha", None).expect("unassign");
        assert_eq!(
            schedules.remove("nightly", false).expect("removed"),
            ("nightly".to_owned(), vec![])
        );
    }

    #[test]
    fn a_damaged_stored_schedule_is_listed_with_its_problem() {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = Store::open(dir.path()).expect("store");
        store
            .add_schedule("odd", "fortnightly", "x", "UTC")
            .expect("stored");
        let mut schedules = Schedules::open(dir.path()).expect("open");
        let listed = schedules.list().expect("list");
        assert_eq!(listed[0].next_run, None);
        assert!(
            listed[0]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains("unknown kind `fortnightly`"))
        );
        assert_eq!(listed[0].next_run_text(), "unknown");
    }
}
