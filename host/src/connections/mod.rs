//! Connections as the operator sees them: validated by their plugin, stored with secrets
//! sealed, shown redacted, tested and authorised through their plugin.
//!
//! * [`session`]: the host services a plugin gets while it works on one connection (prompts,
//!   storing a rotated secret at once, cancellation, the vault).

pub mod session;

use std::path::Path;

use invhost_plugin_api::{
    Error, ErrorKind,
    manifest::SourceType,
    protocol::{Purpose, ValidationDetails},
};
use serde_json::Value;

use crate::{
    names::check_connection_name,
    plugins::{CallError, LoadedPlugin, Registry, registry::UnknownSourceType},
    runner::lock::{LockError, RunLock},
    secrets::{self, MasterKey, SecretsError, key::MASTER_KEY_ENV},
    store::{AuthState, ConnectionRow, Store, StoreError},
};

/// The action id a source type offers for generating its refresh token (a convention plugins
/// follow; see the plugin author guide). `invhost connections generate-token` runs it.
pub const GENERATE_TOKEN_ACTION: &str = "generate_refresh_token";

/// The operator's one line for a failed plugin call on connection `name`: the plugin's message
/// and, where the cure is a host command, that command. Plugins say what happened; the host
/// says which of its commands fixes it:
/// * the plugin asks to sign in again ([`Error::needs_reauthorization`]);
/// * the settings are refused for a field that the token action fills (an empty refresh
///   token before the first `generate-token`).
pub fn failure_line(error: &CallError, source_type: Option<&SourceType>, name: &str) -> String {
    let Some(plugin_error) = error.plugin_error() else {
        return error.to_string();
    };
    let generate = format!(
        "`invhost connections generate-token {}`",
        crate::names::shell_word(name)
    );
    if plugin_error.needs_reauthorization() {
        return format!(
            "{}; generate a new token with {generate}",
            plugin_error.message
        );
    }
    if plugin_error.kind == ErrorKind::CONFIG
        && let Some(field) = refused_filled_field(plugin_error, source_type, GENERATE_TOKEN_ACTION)
    {
        return format!("{}; generate {field} with {generate}", plugin_error.message);
    }
    error.to_string()
}

/// The first field a validation error names that `action` of `source_type` fills.
fn refused_filled_field(
    error: &Error,
    source_type: Option<&SourceType>,
    action: &str,
) -> Option<String> {
    let action = source_type?.actions.iter().find(|a| a.id == action)?;
    let details = serde_json::from_value::<ValidationDetails>(error.details.clone()).ok()?;
    details
        .missing
        .iter()
        .chain(details.problems.iter().map(|p| &p.field))
        .find(|field| action.fills.contains(field))
        .cloned()
}

/// A failure of a connection operation; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The name breaks the rule.
    #[error("{0}")]
    Name(String),
    /// No plugin offers the source type.
    #[error(transparent)]
    UnknownType(#[from] UnknownSourceType),
    /// The plugin refused the settings or failed.
    #[error(transparent)]
    Plugin(#[from] CallError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Secrets could not be sealed or opened.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The connection is being imported.
    #[error(
        "connection `{}` is being imported (by this or another invhost process); wait for the run to end or stop it (Ctrl-C, or stop `invhost serve`), then try again", crate::names::Shown(.0)
    )]
    Busy(String),
    /// The connection's run lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A connection as shown: the stored row with every secret replaced by the placeholder (or,
/// when no loaded plugin offers its source type, with no settings at all).
pub type ConnectionView = ConnectionRow;

/// Connection operations over one store and the loaded plugins.
#[derive(Debug)]
pub struct Connections<'a> {
    store: Store,
    registry: &'a Registry,
    data_dir: &'a Path,
}

/// A connection ready for a plugin call: its plugin, schema and plain settings. Its `Debug`
/// shows neither the settings nor the key.
pub struct Prepared<'r> {
    /// The stored row (secrets sealed).
    pub row: ConnectionRow,
    /// The plugin that offers its source type.
    pub plugin: &'r LoadedPlugin,
    /// The settings schema.
    pub schema: Value,
    /// The settings with secrets opened.
    pub settings: Value,
    /// The master key.
    pub key: MasterKey,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("connection", &self.row.name)
            .field("plugin", &self.plugin.id())
            .finish_non_exhaustive()
    }
}

impl<'a> Connections<'a> {
    /// Opens the store in `data_dir`.
    pub fn open(data_dir: &'a Path, registry: &'a Registry) -> Result<Self, ConnectionError> {
        Ok(Connections {
            store: Store::open(data_dir)?,
            registry,
            data_dir,
        })
    }

    fn key(&self, create: bool) -> Result<MasterKey, SecretsError> {
        MasterKey::load(self.data_dir, std::env::var(MASTER_KEY_ENV).ok(), create)
    }

    /// The key a new connection's secrets are sealed under: the current one, created on first
    /// use. Never a second key beside secrets sealed under another: with the key file lost,
    /// adding a connection would otherwise create a new key, and restoring the old one later
    /// would make the new connection unreadable instead.
    fn key_for_new_secrets(&mut self) -> Result<MasterKey, ConnectionError> {
        let mut sealed_under = std::collections::BTreeSet::new();
        for row in self.store.connections()? {
            secrets::envelope::key_ids(&row.settings, &mut sealed_under);
        }
        // With secrets stored, a missing key file is an error (restore it), not a first use.
        let key = self.key(sealed_under.is_empty())?;
        if sealed_under.iter().any(|id| id != key.id()) {
            return Err(SecretsError::SecondKey.into());
        }
        Ok(key)
    }

    fn plugin(&self, source_type: &str) -> Result<(&'a LoadedPlugin, Value), ConnectionError> {
        let (plugin, _) = self.registry.source_type(source_type)?;
        let schema = plugin.settings_schema(source_type)?;
        Ok((plugin, schema))
    }

    /// Adds a connection after its plugin validated the settings. Returns the plugin's warnings.
    pub fn add(
        &mut self,
        name: &str,
        source_type: &str,
        settings: &Value,
    ) -> Result<Vec<String>, ConnectionError> {
        check_connection_name(name).map_err(ConnectionError::Name)?;
        let (plugin, schema) = self.plugin(source_type)?;
        let settings = secrets::keep_placeholders(&schema, settings, None)?;
        let response = plugin.validate(source_type, &settings, Purpose::Save)?;
        let key = self.key_for_new_secrets()?;
        self.store
            .add_connection(name, source_type, &secrets::seal(&schema, &settings, &key))?;
        Ok(response.warnings)
    }

    /// Replaces a connection's settings; the placeholder keeps a stored secret.
    pub fn update(&mut self, name: &str, settings: &Value) -> Result<Vec<String>, ConnectionError> {
        let prepared = self.prepare(name)?;
        let merged =
            secrets::keep_placeholders(&prepared.schema, settings, Some(&prepared.settings))?;
        let response =
            prepared
                .plugin
                .validate(&prepared.row.source_type, &merged, Purpose::Save)?;
        let changed = secrets::secrets_changed(&prepared.schema, &prepared.settings, &merged);
        let sealed = secrets::seal(&prepared.schema, &merged, &prepared.key);
        self.store.replace_settings(
            &prepared.row.name,
            &prepared.row.settings,
            &sealed,
            changed,
        )?;
        Ok(response.warnings)
    }

    /// Applies values an action produced (by dotted path), validates, and stores them. Only
    /// fields the action declares in its manifest `fills` are accepted; a field the document
    /// leaves out (an optional `refresh_token`) is added inside its existing parent object.
    pub fn apply_updates(
        &mut self,
        name: &str,
        action: &str,
        updates: &std::collections::BTreeMap<String, Value>,
    ) -> Result<(), ConnectionError> {
        if updates.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(name)?;
        let fills: Vec<String> = prepared
            .plugin
            .manifest
            .source_type(&prepared.row.source_type)
            .and_then(|t| t.actions.iter().find(|a| a.id == action))
            .map(|a| a.fills.clone())
            .unwrap_or_default();
        let mut settings = prepared.settings.clone();
        for (field, value) in updates {
            let refuse = |why: &str| {
                CallError::Plugin(Error::internal(format!(
                    "the plugin asked to fill `{field}`, {why}; report it to the plugin's authors"
                )))
            };
            if !fills.contains(field) {
                return Err(refuse("which its action does not declare in `fills`").into());
            }
            set_field(&mut settings, field, value.clone())
                .map_err(|()| refuse("which the settings have no place for"))?;
        }
        prepared
            .plugin
            .validate(&prepared.row.source_type, &settings, Purpose::Save)?;
        let sealed = secrets::seal(&prepared.schema, &settings, &prepared.key);
        self.store
            .replace_settings(&prepared.row.name, &prepared.row.settings, &sealed, true)?;
        Ok(())
    }

    /// The id of a connection (stable for its lifetime, never reused).
    pub fn id(&mut self, name: &str) -> Result<i64, ConnectionError> {
        Ok(self.store.connection(name)?.id)
    }

    /// A connection with its settings opened, for a plugin call.
    pub fn prepare(&mut self, name: &str) -> Result<Prepared<'a>, ConnectionError> {
        let row = self.store.connection(name)?;
        let (plugin, schema) = self.plugin(&row.source_type)?;
        let key = self.key(false)?;
        let settings = secrets::open(&schema, &row.settings, &key)?;
        Ok(Prepared {
            row,
            plugin,
            schema,
            settings,
            key,
        })
    }

    /// One connection, redacted.
    pub fn show(&mut self, name: &str) -> Result<ConnectionView, ConnectionError> {
        let row = self.store.connection(name)?;
        Ok(self.view(row))
    }

    /// Every connection, redacted.
    pub fn list(&mut self) -> Result<Vec<ConnectionView>, ConnectionError> {
        let rows = self.store.connections()?;
        Ok(rows.into_iter().map(|row| self.view(row)).collect())
    }

    fn view(&self, mut row: ConnectionRow) -> ConnectionView {
        // Without the plugin there is no schema to say what is secret: show no settings at all.
        row.settings = match self.plugin(&row.source_type) {
            Ok((_, schema)) => secrets::redact(&schema, &row.settings),
            Err(_) => Value::Null,
        };
        row
    }

    /// Removes a connection with its snapshots. Refused while the connection is being
    /// imported (by this or another process): its run holds the connection's run lock.
    pub fn remove(&mut self, name: &str) -> Result<(), ConnectionError> {
        let id = self.id(name)?;
        let _lock = match RunLock::try_acquire(self.data_dir, id) {
            Ok(lock) => lock,
            Err(LockError::Busy) => return Err(ConnectionError::Busy(name.to_owned())),
            Err(error) => return Err(ConnectionError::Lock(error)),
        };
        // By id: the connection locked is the one removed, even if the name was taken by a
        // new connection meanwhile.
        self.store.remove_connection_id(id, name)?;
        // Ids are never reused, so the lock file would never serve again.
        RunLock::remove_file(self.data_dir, id);
        Ok(())
    }

    /// Records the outcome of a call that authenticated: success (`None`) clears a
    /// re-authorisation mark; an error that says the operator must sign in again
    /// ([`Error::needs_reauthorization`]) sets it; other errors leave the state alone.
    pub fn record_auth_outcome(
        &mut self,
        name: &str,
        error: Option<&Error>,
    ) -> Result<(), ConnectionError> {
        match error {
            None => self.store.set_auth_state(name, AuthState::Ok, None)?,
            Some(error) if error.needs_reauthorization() => self.store.set_auth_state(
                name,
                AuthState::ReauthorizationRequired,
                Some(&error.message),
            )?,
            Some(_) => {}
        }
        Ok(())
    }
}

/// Sets the field at a dotted path; the parent must exist and be an object.
fn set_field(document: &mut Value, field: &str, value: Value) -> Result<(), ()> {
    let (parent, leaf) = match field.rsplit_once('.') {
        Some((parent, leaf)) => (secrets::pointer(parent), leaf),
        None => (String::new(), field),
    };
    match document.pointer_mut(&parent) {
        Some(Value::Object(object)) => {
            object.insert(leaf.to_owned(), value);
            Ok(())
        }
        _ => Err(()),
    }
}
