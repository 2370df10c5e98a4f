//! Named schedules, which connection uses which (`connections.schedule` holds the schedule's
//! name as stored), and the scheduler's progress per connection (`schedule_state`: every slot
//! at or before `handled_through` is handled).
//!
//! The definitions are stored as text (kind, expression, time zone); [`crate::schedules`]
//! parses and evaluates them. Names are unique regardless of case, like connection names.

use std::collections::HashMap;

use rusqlite::{OptionalExtension as _, Row, TransactionBehavior, params};

use super::{Store, StoreError, now};

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// The name, as written when it was added.
    pub name: String,
    /// `cron`, `every`, `daily` or `weekly`.
    pub kind: String,
    /// The definition's text (`*/15 * * * *`, `15m`, `02:30`, `mon 02:30`).
    pub expression: String,
    /// The IANA time zone.
    pub time_zone: String,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// What the scheduler remembers about one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The schedule's definition when this was written; another one means "start afresh".
    pub fingerprint: String,
    /// Every slot at or before this instant is handled (RFC 3339, UTC).
    pub handled_through: String,
    /// The latest slot that led to a run (RFC 3339, UTC), if any.
    pub last_slot: Option<String>,
}

/// Why a schedule operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleStoreError {
    /// The name is taken.
    #[error(
        "a schedule named `{}` already exists; choose another name, or remove it first with `invhost schedules remove`", crate::names::Shown(.0)
    )]
    NameTaken(String),
    /// No such schedule.
    #[error(
        "no schedule named `{}`; see `invhost schedules list`, or add it with `invhost schedules add`", crate::names::Shown(.0)
    )]
    NotFound(String),
    /// Connections use the schedule.
    #[error(
        "schedule `{name}` is used by {}; assign them another schedule (`invhost connections schedule NAME SCHEDULE|--none`) or pass --force to unassign them",
        connection_list(.connections)
    )]
    InUse {
        /// The schedule.
        name: String,
        /// The connections that use it.
        connections: Vec<String>,
    },
    /// The store failed (or the connection does not exist).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ScheduleStoreError {
    fn from(error: rusqlite::Error) -> Self {
        ScheduleStoreError::Store(error.into())
    }
}

fn connection_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        1 => format!("connection {}", quoted[0]),
        _ => format!("connections {}", quoted.join(", ")),
    }
}

fn key(name: &str) -> String {
    name.to_lowercase()
}

const COLUMNS: &str = "name, kind, expression, time_zone, created_at";

fn schedule_row(r: &Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        name: r.get(0)?,
        kind: r.get(1)?,
        expression: r.get(2)?,
        time_zone: r.get(3)?,
        created_at: r.get(4)?,
    })
}

impl Store {
    /// Adds a schedule; names are unique regardless of case. The caller has checked the
    /// definition.
    pub fn add_schedule(
        &mut self,
        name: &str,
        kind: &str,
        expression: &str,
        time_zone: &str,
    ) -> Result<(), ScheduleStoreError> {
        let now = now();
        let result = self.db().execute(
            "INSERT INTO schedules (name, name_key, kind, expression, time_zone, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![name, key(name), kind, expression, time_zone, now],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(ScheduleStoreError::NameTaken(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every schedule, by name.
    pub fn schedules(&mut self) -> Result<Vec<ScheduleRow>, StoreError> {
        let mut statement = self.db().prepare(&format!(
            "SELECT {COLUMNS} FROM schedules ORDER BY name_key"
        ))?;
        let rows = statement
            .query_map([], schedule_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One schedule.
    pub fn schedule(&mut self, name: &str) -> Result<ScheduleRow, ScheduleStoreError> {
        self.db()
            .query_row(
                &format!("SELECT {COLUMNS} FROM schedules WHERE name_key = ?1"),
                [key(name)],
                schedule_row,
            )
            .optional()?
            .ok_or_else(|| ScheduleStoreError::NotFound(name.to_owned()))
    }

    /// The connections that use each schedule, by schedule name, names sorted.
    pub fn schedule_assignments(&mut self) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut statement = self.db().prepare(
            "SELECT schedule, name FROM connections WHERE schedule IS NOT NULL ORDER BY name_key",
        )?;
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (schedule, connection) = row?;
            map.entry(schedule).or_default().push(connection);
        }
        Ok(map)
    }

    /// Removes a schedule. Refused while connections use it, unless `force`, which unassigns
    /// them in the same transaction. Returns the schedule's name and the connections unassigned.
    pub fn remove_schedule(
        &mut self,
        name: &str,
        force: bool,
    ) -> Result<(String, Vec<String>), ScheduleStoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT name FROM schedules WHERE name_key = ?1",
                [key(name)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(stored) = stored else {
            return Err(ScheduleStoreError::NotFound(name.to_owned()));
        };
        let users: Vec<(i64, String)> = {
            let mut statement = tx.prepare(
                "SELECT id, name FROM connections WHERE schedule = ?1 ORDER BY name_key",
            )?;
            statement
                .query_map([&stored], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        if !users.is_empty() && !force {
            return Err(ScheduleStoreError::InUse {
                name: stored,
                connections: users.into_iter().map(|(_, n)| n).collect(),
            });
        }
        let now = now();
        for (id, _) in &users {
            tx.execute(
                "UPDATE connections SET schedule = NULL, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            tx.execute("DELETE FROM schedule_state WHERE connection_id = ?1", [id])?;
        }
        tx.execute("DELETE FROM schedules WHERE name_key = ?1", [key(name)])?;
        tx.commit()?;
        Ok((stored, users.into_iter().map(|(_, n)| n).collect()))
    }

    /// Assigns a schedule to a connection (`None` unassigns). The scheduler's progress for the
    /// connection is forgotten, so a newly assigned schedule first runs at its next slot.
    /// Returns the connection's and the schedule's names as stored.
    pub fn assign_schedule(
        &mut self,
        connection: &str,
        schedule: Option<&str>,
    ) -> Result<(String, Option<ScheduleRow>), ScheduleStoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, name FROM connections WHERE name_key = ?1",
                [key(connection)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, connection_name)) = found else {
            return Err(StoreError::NotFound(connection.to_owned()).into());
        };
        let row = match schedule {
            Some(schedule) => Some(
                tx.query_row(
                    &format!("SELECT {COLUMNS} FROM schedules WHERE name_key = ?1"),
                    [key(schedule)],
                    schedule_row,
                )
                .optional()?
                .ok_or_else(|| ScheduleStoreError::NotFound(schedule.to_owned()))?,
            ),
            None => None,
        };
        tx.execute(
            "UPDATE connections SET schedule = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, row.as_ref().map(|r| r.name.as_str()), now()],
        )?;
        tx.execute("DELETE FROM schedule_state WHERE connection_id = ?1", [id])?;
        tx.commit()?;
        Ok((connection_name, row))
    }

    /// The scheduler's progress, by connection id.
    pub fn schedule_states(&mut self) -> Result<HashMap<i64, ScheduleState>, StoreError> {
        let mut statement = self.db().prepare(
            "SELECT connection_id, fingerprint, handled_through, last_slot FROM schedule_state",
        )?;
        let rows = statement.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ScheduleState {
                    fingerprint: r.get(1)?,
                    handled_through: r.get(2)?,
                    last_slot: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
    }

    /// Records the scheduler's progress for a connection (insert or replace).
    pub fn set_schedule_state(
        &mut self,
        connection_id: i64,
        state: &ScheduleState,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "INSERT INTO schedule_state (connection_id, fingerprint, handled_through, last_slot, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (connection_id) DO UPDATE SET fingerprint = excluded.fingerprint,
                 handled_through = excluded.handled_through, last_slot = excluded.last_slot,
                 updated_at = excluded.updated_at",
            params![
                connection_id,
                state.fingerprint,
                state.handled_through,
                state.last_slot,
                now()
            ],
        )?;
        Ok(())
    }

    /// Forgets the progress of connections that are gone or have no schedule.
    pub fn prune_schedule_states(&mut self) -> Result<usize, StoreError> {
        Ok(self.db().execute(
            "DELETE FROM schedule_state WHERE connection_id NOT IN
                 (SELECT id FROM connections WHERE schedule IS NOT NULL)",
            [],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        (dir, store)
    }

    fn state(handled: &str) -> ScheduleState {
        ScheduleState {
            fingerprint: "every|5s|UTC".into(),
            handled_through: handled.into(),
            last_slot: None,
        }
    }

    #[test]
    fn add_list_and_names_unique_regardless_of_case() {
        let (_dir, mut store) = store();
        store
            .add_schedule("Nightly", "daily", "02:30", "Europe/Berlin")
            .expect("added");
        store
            .add_schedule("fast", "every", "5s", "UTC")
            .expect("added");
        assert!(matches!(
            store.add_schedule("NIGHTLY", "every", "1h", "UTC"),
            Err(ScheduleStoreError::NameTaken(_))
        ));
        let names: Vec<String> = store
            .schedules()
            .expect("list")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["fast", "Nightly"]);
        let nightly = store.schedule("nightly").expect("found");
        assert_eq!(
            (
                nightly.kind.as_str(),
                nightly.expression.as_str(),
                nightly.time_zone.as_str()
            ),
            ("daily", "02:30", "Europe/Berlin")
        );
        assert!(matches!(
            store.schedule("weekly"),
            Err(ScheduleStoreError::NotFound(_))
        ));
    }

    #[test]
    fn assigning_forgets_progress_and_removal_is_refused_while_in_use() {
        let (_dir, mut store) = store();
        store
            .add_connection("alpha", "fixture", &json!({}))
            .expect("alpha");
        store
            .add_connection("beta", "fixture", &json!({}))
            .expect("beta");
        store
            .add_schedule("Nightly", "daily", "02:30", "UTC")
            .expect("added");
        let (connection, schedule) = store
            .assign_schedule("ALPHA", Some("nightly"))
            .expect("assigned");
        assert_eq!(connection, "alpha");
        assert_eq!(schedule.expect("row").name, "Nightly");
        assert_eq!(
            store
                .connection("alpha")
                .expect("alpha")
                .schedule
                .as_deref(),
            Some("Nightly")
        );
        store
            .assign_schedule("beta", Some("Nightly"))
            .expect("beta");
        let id = store.connection("alpha").expect("alpha").id;
        store
            .set_schedule_state(id, &state("2026-05-04T10:00:00.000Z"))
            .expect("state");
        assert_eq!(store.schedule_states().expect("states").len(), 1);
        // Reassigning (even to the same schedule) forgets the progress.
        store
            .assign_schedule("alpha", Some("Nightly"))
            .expect("again");
        assert!(store.schedule_states().expect("states").is_empty());
        assert!(matches!(
            store.assign_schedule("alpha", Some("weekly")),
            Err(ScheduleStoreError::NotFound(_))
        ));
        assert!(matches!(
            store.assign_schedule("gamma", Some("Nightly")),
            Err(ScheduleStoreError::Store(StoreError::NotFound(_)))
        ));
        assert_eq!(
            store.schedule_assignments().expect("assignments")["Nightly"],
            ["alpha", "beta"]
        );
        let error = store.remove_schedule("nightly", false).expect_err("in use");
        assert_eq!(
            error.to_string(),
            "schedule `Nightly` is used by connections `alpha`, `beta`; assign them another schedule (`invhost connections schedule NAME SCHEDULE|--none`) or pass --force to unassign them"
        );
        store.schedule("Nightly").expect("still there");
        store
            .set_schedule_state(id, &state("2026-05-04T10:00:00.000Z"))
            .expect("state");
        let (name, unassigned) = store.remove_schedule("nightly", true).expect("forced");
        assert_eq!(name, "Nightly");
        assert_eq!(unassigned, ["alpha", "beta"]);
        assert_eq!(store.connection("alpha").expect("alpha").schedule, None);
        assert!(store.schedule_states().expect("states").is_empty());
        assert!(matches!(
            store.remove_schedule("nightly", false),
            Err(ScheduleStoreError::NotFound(_))
        ));
    }

    #[test]
    fn progress_is_replaced_and_pruned_with_its_connection() {
        let (_dir, mut store) = store();
        store
            .add_connection("alpha", "fixture", &json!({}))
            .expect("alpha");
        store
            .add_schedule("fast", "every", "5s", "UTC")
            .expect("fast");
        store
            .assign_schedule("alpha", Some("fast"))
            .expect("assigned");
        let id = store.connection("alpha").expect("alpha").id;
        store
            .set_schedule_state(id, &state("2026-05-04T10:00:00.000Z"))
            .expect("first");
        let mut later = state("2026-05-04T10:00:05.000Z");
        later.last_slot = Some("2026-05-04T10:00:05.000Z".into());
        store.set_schedule_state(id, &later).expect("second");
        assert_eq!(store.schedule_states().expect("states")[&id], later);
        assert_eq!(store.prune_schedule_states().expect("prune"), 0);
        store.remove_connection("alpha").expect("removed");
        assert_eq!(store.prune_schedule_states().expect("prune"), 1);
        assert!(store.schedule_states().expect("states").is_empty());
    }
}
