//! Connections: one per SaaS tenant, with the plugin's settings (secrets sealed) and the auth
//! state.

use rusqlite::{OptionalExtension as _, Row, TransactionBehavior, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError, now};

/// Whether a connection's credentials still work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthState {
    /// Nothing known to be wrong.
    Ok,
    /// The tenant refused the stored token; the operator must generate a new one.
    ReauthorizationRequired,
}

impl AuthState {
    fn as_str(self) -> &'static str {
        match self {
            AuthState::Ok => "ok",
            AuthState::ReauthorizationRequired => "reauthorization_required",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "ok" => Ok(AuthState::Ok),
            "reauthorization_required" => Ok(AuthState::ReauthorizationRequired),
            other => Err(StoreError::Corrupt {
                what: "auth state".into(),
                detail: format!("unknown value `{other}`"),
            }),
        }
    }
}

/// A stored connection. `settings` holds sealed secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRow {
    /// The database key (stable for the connection's life; runs and snapshots refer to it).
    #[serde(skip)]
    pub id: i64,
    /// The name.
    pub name: String,
    /// The source type.
    pub source_type: String,
    /// The settings document, secrets sealed.
    pub settings: Value,
    /// Whether scheduled runs and supersession consider it.
    pub enabled: bool,
    /// The schedule's name.
    pub schedule: Option<String>,
    /// Whether the credentials still work.
    pub auth_state: AuthState,
    /// Why re-authorisation is required.
    pub auth_reason: Option<String>,
    /// When it was added (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

const COLUMNS: &str = "name, source_type, settings, enabled, schedule, auth_state, auth_reason, created_at, updated_at, id";

pub(crate) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn row(r: &Row<'_>) -> rusqlite::Result<(ConnectionRow, String, String)> {
    Ok((
        ConnectionRow {
            id: r.get(9)?,
            name: r.get(0)?,
            source_type: r.get(1)?,
            settings: Value::Null,
            enabled: r.get(3)?,
            schedule: r.get(4)?,
            auth_state: AuthState::Ok,
            auth_reason: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
        },
        r.get(2)?,
        r.get(5)?,
    ))
}

fn finish(
    (mut row, settings, state): (ConnectionRow, String, String),
) -> Result<ConnectionRow, StoreError> {
    row.settings = serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt {
        what: format!("settings of connection `{}`", row.name),
        detail: e.to_string(),
    })?;
    row.auth_state = AuthState::parse(&state)?;
    Ok(row)
}

impl Store {
    /// Adds a connection; names are unique regardless of case.
    pub fn add_connection(
        &mut self,
        name: &str,
        source_type: &str,
        settings: &Value,
    ) -> Result<(), StoreError> {
        let now = now();
        let result = self.db().execute(
            "INSERT INTO connections (name, name_key, source_type, settings, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![name, name_key(name), source_type, settings.to_string(), now],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                // Name the connection that holds the name, as it is stored (`Acme Prod` when
                // `acme prod` was asked for).
                let existing: Option<String> = self
                    .db()
                    .query_row(
                        "SELECT name FROM connections WHERE name_key = ?1",
                        [name_key(name)],
                        |r| r.get(0),
                    )
                    .optional()?;
                Err(StoreError::NameTaken(
                    existing.unwrap_or_else(|| name.to_owned()),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One connection.
    pub fn connection(&mut self, name: &str) -> Result<ConnectionRow, StoreError> {
        let found = self
            .db()
            .query_row(
                &format!("SELECT {COLUMNS} FROM connections WHERE name_key = ?1"),
                [name_key(name)],
                row,
            )
            .optional()?;
        found
            .map(finish)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(name.to_owned()))
    }

    /// Every connection, by name.
    pub fn connections(&mut self) -> Result<Vec<ConnectionRow>, StoreError> {
        let mut statement = self.db().prepare(&format!(
            "SELECT {COLUMNS} FROM connections ORDER BY name_key"
        ))?;
        let rows = statement
            .query_map([], row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(finish).collect()
    }

    /// Replaces a connection's settings if they are still `expected` (what the caller read):
    /// a secret rotated meanwhile by another process is never overwritten with an older one.
    /// When `reset_auth`, marks the credentials as working.
    pub fn replace_settings(
        &mut self,
        name: &str,
        expected: &Value,
        settings: &Value,
        reset_auth: bool,
    ) -> Result<(), StoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT settings FROM connections WHERE name_key = ?1",
                [name_key(name)],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        if serde_json::from_str::<Value>(&current).ok().as_ref() != Some(expected) {
            return Err(StoreError::Changed(name.to_owned()));
        }
        let sql = if reset_auth {
            "UPDATE connections SET settings = ?2, updated_at = ?3, auth_state = 'ok', auth_reason = NULL WHERE name_key = ?1"
        } else {
            "UPDATE connections SET settings = ?2, updated_at = ?3 WHERE name_key = ?1"
        };
        tx.execute(sql, params![name_key(name), settings.to_string(), now()])?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces a connection's settings; when `reset_auth`, marks its credentials as working.
    pub fn update_settings(
        &mut self,
        name: &str,
        settings: &Value,
        reset_auth: bool,
    ) -> Result<(), StoreError> {
        let sql = if reset_auth {
            "UPDATE connections SET settings = ?2, updated_at = ?3, auth_state = 'ok', auth_reason = NULL WHERE name_key = ?1"
        } else {
            "UPDATE connections SET settings = ?2, updated_at = ?3 WHERE name_key = ?1"
        };
        let changed = self
            .db()
            .execute(sql, params![name_key(name), settings.to_string(), now()])?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Replaces one value of a connection's settings (a rotated, already sealed secret) in one
    /// transaction.
    pub fn update_setting_value(
        &mut self,
        name: &str,
        pointer: &str,
        value: Value,
    ) -> Result<(), StoreError> {
        // IMMEDIATE: take the write lock before reading, so a concurrent writer makes this wait
        // (busy timeout) instead of failing the upgrade from read to write.
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let settings: Option<String> = tx
            .query_row(
                "SELECT settings FROM connections WHERE name_key = ?1",
                [name_key(name)],
                |r| r.get(0),
            )
            .optional()?;
        let settings = settings.ok_or_else(|| StoreError::NotFound(name.to_owned()))?;
        let mut document: Value =
            serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt {
                what: format!("settings of connection `{name}`"),
                detail: e.to_string(),
            })?;
        let slot = document
            .pointer_mut(pointer)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("settings of connection `{name}`"),
                detail: format!("no value at {pointer}"),
            })?;
        *slot = value;
        tx.execute(
            "UPDATE connections SET settings = ?2, updated_at = ?3 WHERE name_key = ?1",
            params![name_key(name), document.to_string(), now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records whether the credentials still work.
    pub fn set_auth_state(
        &mut self,
        name: &str,
        state: AuthState,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let changed = self.db().execute(
            "UPDATE connections SET auth_state = ?2, auth_reason = ?3, updated_at = ?4 WHERE name_key = ?1",
            params![name_key(name), state.as_str(), reason, now()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Enables or disables a connection. A disabled connection keeps its snapshots (reports
    /// still show them) but is left out of `invhost run --all`, schedules and supersession.
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> Result<(), StoreError> {
        let changed = self.db().execute(
            "UPDATE connections SET enabled = ?2, updated_at = ?3 WHERE name_key = ?1",
            params![name_key(name), enabled, now()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Removes a connection with its snapshots (their records included). Its run history
    /// stays, under the name it had; a run it left `running` is marked interrupted, so the
    /// caller must hold the connection's run lock ([`crate::connections::Connections::remove`]
    /// does, and removes by id with [`Store::remove_connection_id`]).
    pub fn remove_connection(&mut self, name: &str) -> Result<(), StoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM connections WHERE name_key = ?1",
                [name_key(name)],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = id else {
            return Err(StoreError::NotFound(name.to_owned()));
        };
        remove_in(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes the connection with id `id` (named `name`), with its snapshots; `NotFound` when
    /// it no longer exists (removed, or removed and added again under a new id, meanwhile).
    /// The caller holds its run lock.
    pub fn remove_connection_id(&mut self, id: i64, name: &str) -> Result<(), StoreError> {
        let tx = self
            .db()
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !remove_in(&tx, id)? {
            return Err(StoreError::NotFound(name.to_owned()));
        }
        tx.commit()?;
        Ok(())
    }
}

/// Deletes a connection and its snapshots; a run it has left `running` (its process died: the
/// caller holds the run lock) is marked interrupted. Returns whether the connection existed.
fn remove_in(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<bool, StoreError> {
    tx.execute(
        "UPDATE runs SET state = 'interrupted', ended_at = ?1, error_kind = 'interrupted', error = ?2
         WHERE connection_id = ?3 AND state = 'running'",
        params![super::runs::now_millis(), super::runs::INTERRUPTED_MESSAGE, id],
    )?;
    super::snapshots::delete_snapshots_where(tx, "connection_id = ?1", id)?;
    Ok(tx.execute("DELETE FROM connections WHERE id = ?1", [id])? == 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("data")).expect("opens");
        (dir, store)
    }

    #[test]
    fn removal_by_id_removes_only_that_connection_and_ends_its_dead_run() {
        let (_dir, mut store) = store();
        store
            .add_connection("acme", "fixture", &json!({}))
            .expect("added");
        let old = store.connection("acme").expect("row");
        // A run its dead process left `running`.
        let (run, _) = store
            .begin_run(&old, crate::store::Trigger::Manual)
            .expect("begun");
        store.remove_connection("acme").expect("removed");
        assert_eq!(
            store.run(run).expect("run").state,
            crate::store::RunState::Interrupted
        );
        // The name taken again meanwhile: removing the old id touches the new connection not.
        store
            .add_connection("acme", "fixture", &json!({}))
            .expect("added again");
        let new = store.connection("acme").expect("row").id;
        assert_ne!(new, old.id, "ids are never reused");
        assert!(matches!(
            store.remove_connection_id(old.id, "acme"),
            Err(StoreError::NotFound(name)) if name == "acme"
        ));
        assert_eq!(store.connection("acme").expect("still there").id, new);
        store.remove_connection_id(new, "acme").expect("removed");
        assert!(store.connection("acme").is_err());
    }

    #[test]
    fn add_get_list_update_remove() {
        let (_dir, mut store) = store();
        store
            .add_connection("Acme Prod", "salesforce", &json!({"a": 1}))
            .expect("added");
        store
            .add_connection("beta", "salesforce", &json!({}))
            .expect("added");
        let error = store
            .add_connection("ACME PROD", "salesforce", &json!({}))
            .expect_err("taken");
        assert!(
            matches!(&error, StoreError::NameTaken(existing) if existing == "Acme Prod"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .starts_with("a connection named `Acme Prod` already exists"),
            "{error}"
        );
        let row = store
            .connection("acme prod")
            .expect("found regardless of case");
        assert_eq!(
            (row.name.as_str(), row.settings.clone(), row.auth_state),
            ("Acme Prod", json!({"a": 1}), AuthState::Ok)
        );
        let names: Vec<String> = store
            .connections()
            .expect("list")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Acme Prod", "beta"]);
        store
            .set_auth_state(
                "Acme Prod",
                AuthState::ReauthorizationRequired,
                Some("revoked"),
            )
            .expect("state");
        store
            .update_settings("Acme Prod", &json!({"a": 2}), false)
            .expect("updated");
        let row = store.connection("Acme Prod").expect("found");
        assert_eq!(
            row.auth_state,
            AuthState::ReauthorizationRequired,
            "kept without reset"
        );
        store
            .update_settings("Acme Prod", &json!({"a": 3}), true)
            .expect("updated");
        assert_eq!(
            store.connection("Acme Prod").expect("found").auth_state,
            AuthState::Ok
        );
        store
            .update_setting_value("Acme Prod", "/a", json!(4))
            .expect("one value");
        assert_eq!(
            store.connection("Acme Prod").expect("found").settings,
            json!({"a": 4})
        );
        let stale = store.replace_settings("Acme Prod", &json!({"a": 3}), &json!({"a": 5}), false);
        assert!(matches!(stale, Err(StoreError::Changed(_))), "{stale:?}");
        store
            .replace_settings("Acme Prod", &json!({"a": 4}), &json!({"a": 5}), false)
            .expect("current");
        assert_eq!(
            store.connection("Acme Prod").expect("found").settings,
            json!({"a": 5})
        );
        store.remove_connection("acme prod").expect("removed");
        assert!(matches!(
            store.connection("Acme Prod"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.remove_connection("nope"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn enable_and_disable() {
        let (_dir, mut store) = store();
        store
            .add_connection("acme", "salesforce", &json!({}))
            .expect("added");
        assert!(
            store.connection("acme").expect("found").enabled,
            "enabled when added"
        );
        store.set_enabled("ACME", false).expect("disabled");
        assert!(!store.connection("acme").expect("found").enabled);
        store.set_enabled("acme", true).expect("enabled");
        assert!(store.connection("acme").expect("found").enabled);
        assert!(matches!(
            store.set_enabled("nope", false),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn reopening_keeps_data_and_a_newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        Store::open(dir.path())
            .expect("opens")
            .add_connection("a", "t", &json!({}))
            .expect("added");
        let mut again = Store::open(dir.path()).expect("reopens");
        assert_eq!(again.connections().expect("list").len(), 1);
        again
            .db()
            .pragma_update(None, "user_version", 99)
            .expect("bump");
        let error = Store::open(dir.path()).expect_err("too new");
        assert!(error.to_string().contains("upgrade invhost"), "{error}");
    }

    #[test]
    fn the_database_runs_in_wal_mode() {
        let (_dir, mut store) = store();
        let mode: String = store
            .db()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }
}
