//! An in-process host for testing a plugin without loading it: it records what the plugin
//! emits, prompts and reports, answers vault lookups from a table, and can cancel. (It records
//! log lines sent through the callbacks; `tracing` events are forwarded only in a loaded
//! library, whose exported `init` installs the forwarder.)
//!
//! ```
//! use invhost_plugin_api::sdk::testing::RecordingHost;
//! let recording = RecordingHost::new().with_vault_account("Safe=S;Object=o", &[("Content", "pw")]);
//! let host = recording.host();
//! let values = host.vault_lookup("Safe=S;Object=o", &[""]).expect("found");
//! assert_eq!(values[0].expose(), "pw");
//! ```

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
};

use abi_stable::std_types::{RResult, RStr, RString};

use crate::{
    abi::{FfiError, HostCallbacks, LogLevel},
    error::{Error, ErrorKind},
    model::Record,
    protocol::{Progress, Prompt, UpdateSecretRequest, VaultRequest, VaultResponse, host_op},
    sdk::Host,
    secret::Secret,
};

/// Everything a plugin sent to a [`RecordingHost`].
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Emitted records, in order.
    pub records: Vec<Record>,
    /// Prompts shown.
    pub prompts: Vec<Prompt>,
    /// Progress reports.
    pub progress: Vec<Progress>,
    /// Log lines: level and message.
    pub logs: Vec<(LogLevel, String)>,
    /// Secrets the plugin asked to store, by field.
    pub secret_updates: Vec<(String, Secret)>,
}

/// A host for tests; clones share their state.
#[derive(Debug, Clone, Default)]
pub struct RecordingHost {
    recorded: Arc<Mutex<Recorded>>,
    vault: Arc<BTreeMap<String, BTreeMap<String, String>>>,
    cancelled: Arc<AtomicBool>,
}

impl RecordingHost {
    /// An empty host with an empty vault.
    pub fn new() -> Self {
        RecordingHost::default()
    }

    /// Adds a vault account: its query and its properties (`Content` is the password).
    pub fn with_vault_account(mut self, query: &str, properties: &[(&str, &str)]) -> Self {
        let mut vault = (*self.vault).clone();
        vault.insert(
            query.to_owned(),
            properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self.vault = Arc::new(vault);
        self
    }

    /// A [`Host`] handle backed by this recorder.
    pub fn host(&self) -> Host {
        Host::from_callbacks(self.clone())
    }

    /// Asks the plugin's current and later calls to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// What was recorded so far.
    pub fn recorded(&self) -> Recorded {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A test that panicked while holding the lock has failed already; keep the data.
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lookup(&self, request: &VaultRequest) -> Result<VaultResponse, Error> {
        let account = self.vault.get(&request.query).ok_or_else(|| {
            Error::new(
                ErrorKind::VAULT,
                format!("no vault account matches `{}`", request.query),
            )
        })?;
        let values = request
            .fields
            .iter()
            .map(|field| {
                let name = if field.is_empty() { "Content" } else { field };
                account
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| Secret::new(v.clone()))
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::VAULT,
                            format!("the account has no property {name}"),
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(VaultResponse { values })
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: RStr<'_>) -> Result<T, Error> {
    serde_json::from_str(json.as_str()).map_err(|e| Error::internal(e.to_string()))
}

fn answer(result: Result<String, Error>) -> RResult<RString, FfiError> {
    match result {
        Ok(json) => RResult::ROk(json.into()),
        Err(error) => RResult::RErr(error.into()),
    }
}

impl HostCallbacks for RecordingHost {
    fn emit(&self, batch: RStr<'_>) -> RResult<(), FfiError> {
        if self.cancelled.load(Ordering::SeqCst) {
            return RResult::RErr(Error::cancelled().into());
        }
        let mut parsed = Vec::new();
        for line in batch.as_str().lines().filter(|l| !l.is_empty()) {
            match serde_json::from_str::<Record>(line) {
                Ok(record) => parsed.push(record),
                Err(e) => {
                    let error = Error::internal(format!("bad record line: {e}"));
                    return RResult::RErr(error.into());
                }
            }
        }
        self.lock().records.extend(parsed);
        RResult::ROk(())
    }

    fn progress(&self, update: RStr<'_>) {
        if let Ok(progress) = parse(update) {
            self.lock().progress.push(progress);
        }
    }

    fn log(&self, level: LogLevel, _target: RStr<'_>, message: RStr<'_>, _fields: RStr<'_>) {
        self.lock().logs.push((level, message.to_string()));
    }

    fn prompt(&self, prompt: RStr<'_>) -> RResult<(), FfiError> {
        match parse(prompt) {
            Ok(prompt) => {
                self.lock().prompts.push(prompt);
                RResult::ROk(())
            }
            Err(error) => RResult::RErr(error.into()),
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn vault(&self, request: RStr<'_>) -> RResult<RString, FfiError> {
        answer(
            parse(request).and_then(|r| self.lookup(&r)).and_then(|r| {
                serde_json::to_string(&r).map_err(|e| Error::internal(e.to_string()))
            }),
        )
    }

    fn call(&self, op: RStr<'_>, request: RStr<'_>) -> RResult<RString, FfiError> {
        answer(match op.as_str() {
            host_op::UPDATE_SECRET => parse::<UpdateSecretRequest>(request).map(|r| {
                self.lock().secret_updates.push((r.field, r.value));
                "{}".to_owned()
            }),
            other => Err(Error::unsupported(format!(
                "host operation `{other}` is not offered"
            ))),
        })
    }
}
