//! The host services a plugin gets while it works on one connection: prompts shown on the
//! terminal (and a browser opened when there is a display), secrets the plugin rotates stored at
//! once, Ctrl-C as cancellation, and vault lookups.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use invhost_plugin_api::{
    Error, ErrorKind, Secret,
    protocol::{Progress, Prompt, UpdateSecretRequest, VaultRequest, VaultResponse},
    schema::secret_pointers,
};
use serde_json::Value;

use crate::{
    plugins::CallHandler,
    secrets::{self, MasterKey},
    store::Store,
};

/// Looks up vault secrets for plugins (the CyberArk client, when configured).
pub trait Vault: Send + Sync {
    /// One value per field, in order; an empty field means the password.
    fn lookup(&self, query: &str, fields: &[String]) -> Result<Vec<Secret>, Error>;
}

/// The process-wide cancellation flag, set by Ctrl-C.
pub fn interrupted() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        if let Err(error) = ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                // A second Ctrl-C: the person means it.
                std::process::exit(130);
            }
            eprintln!("Cancelling… (press Ctrl-C again to quit at once)");
        }) {
            tracing::debug!(%error, "Could not install the Ctrl-C handler.");
        }
        flag
    })
    .clone()
}

/// What a session prints and whether it may open a browser.
#[derive(Debug, Clone, Copy)]
pub struct Interaction {
    /// Open a browser on prompt links when a display is available.
    pub open_browser: bool,
}

/// The services for one call on one connection.
pub struct Session {
    connection: String,
    store: Mutex<Store>,
    schema: Value,
    key: MasterKey,
    cancelled: Arc<AtomicBool>,
    interaction: Interaction,
    vault: Option<Arc<dyn Vault>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `connection`, with its own database handle (the plugin calls back from its
    /// own threads); `cancelled` stops the call (the CLI passes [`interrupted`]).
    pub fn new(
        data_dir: &Path,
        connection: &str,
        schema: Value,
        key: MasterKey,
        interaction: Interaction,
        vault: Option<Arc<dyn Vault>>,
        cancelled: Arc<AtomicBool>,
    ) -> Result<Self, crate::store::StoreError> {
        Ok(Session {
            connection: connection.to_owned(),
            store: Mutex::new(Store::open(data_dir)?),
            schema,
            key,
            cancelled,
            interaction,
            vault,
        })
    }
}

fn display_available() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

impl CallHandler for Session {
    fn progress(&self, progress: Progress) {
        tracing::debug!(stage = %progress.stage, done = progress.done, "Progress.");
    }

    fn prompt(&self, prompt: Prompt) -> Result<(), Error> {
        println!("{}", prompt.message);
        if let Some(code) = &prompt.user_code {
            println!("  Code: {code}");
        }
        if let Some(url) = &prompt.url {
            println!("  Link: {url}");
            if self.interaction.open_browser && display_available() {
                match webbrowser::open(url) {
                    Ok(()) => println!("  (opened in your browser)"),
                    Err(error) => tracing::debug!(%error, "Could not open a browser."),
                }
            }
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        Ok(())
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn vault(&self, request: VaultRequest) -> Result<VaultResponse, Error> {
        let vault = self.vault.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::VAULT,
                "this connection reads secrets from CyberArk, but CyberArk is not configured: add a [cyberark] section to invhost.toml in the data directory (or pass --config FILE)",
            )
        })?;
        Ok(VaultResponse {
            values: vault.lookup(&request.query, &request.fields)?,
        })
    }

    fn update_secret(&self, request: UpdateSecretRequest) -> Result<(), Error> {
        let pointer = secrets::pointer(&request.field);
        let mut store = self
            .store
            .lock()
            .map_err(|_| Error::internal("the store lock was poisoned"))?;
        let row = store
            .connection(&self.connection)
            .map_err(|e| Error::internal(e.to_string()))?;
        if !secret_pointers(&self.schema, &row.settings).contains(&pointer) {
            return Err(Error::config(format!(
                "`{}` is not a secret stored by invhost for connection `{}`; report it to the plugin's authors",
                request.field, self.connection
            )));
        }
        let sealed = crate::secrets::envelope::seal(&self.key, &pointer, request.value.expose());
        store
            .update_setting_value(&self.connection, &pointer, Value::String(sealed))
            .map_err(|e| {
                Error::internal(format!("could not store the new {}: {e}", request.field))
            })?;
        tracing::info!(connection = %self.connection, field = %request.field, "Stored a rotated secret.");
        Ok(())
    }
}
