//! The host services an import gets: everything a [`Session`] offers (vault, rotated secrets),
//! plus records written into the run's snapshot, progress passed to the observer, and the
//! run's own cancellation flag.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use invhost_plugin_api::{
    Error, ErrorKind,
    protocol::{Progress, Prompt, UpdateSecretRequest, VaultRequest, VaultResponse},
};

use super::RunObserver;
use crate::{
    connections::session::Session,
    plugins::CallHandler,
    store::{SnapshotWriter, snapshots::BatchError},
};

/// The call handler of one import.
pub(super) struct ImportHandler {
    pub(super) connection: String,
    pub(super) session: Session,
    /// The run's writer; `None` once the run ended ([`ImportHandler::close`]).
    pub(super) writer: Mutex<Option<SnapshotWriter>>,
    pub(super) observer: Arc<dyn RunObserver>,
    pub(super) cancel: Arc<AtomicBool>,
    /// Warnings of the host's own (skipped records), deduplicated.
    pub(super) warnings: Mutex<Vec<String>>,
}

impl ImportHandler {
    /// Ends the handler's part of the run: waits for a batch being written to finish, then
    /// refuses every later one. Called before the run ends, so that a batch a plugin sends late
    /// (from a task still winding down) can never land after the snapshot is published or
    /// deleted.
    pub(super) fn close(&self) {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *writer = None;
    }

    /// The host's warnings collected so far.
    pub(super) fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

impl CallHandler for ImportHandler {
    fn emit(&self, batch: &str) -> Result<(), Error> {
        if self.is_cancelled() {
            return Err(Error::cancelled());
        }
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| Error::internal("the snapshot writer's lock was poisoned"))?;
        let Some(writer) = guard.as_mut() else {
            return Err(Error::new(
                ErrorKind::CANCELLED,
                BatchError::Closed.to_string(),
            ));
        };
        let written = writer.write_batch(batch);
        // The batch's warnings are kept before the lock goes, so that once `close` returns,
        // every batch written has left its warnings.
        if let Ok(outcome) = &written
            && !outcome.skipped.is_empty()
            && let Ok(mut warnings) = self.warnings.lock()
        {
            for warning in &outcome.skipped {
                if !warnings.contains(warning) {
                    warnings.push(warning.clone());
                }
            }
        }
        drop(guard);
        match written {
            Ok(_) => {
                // The batch's text, and what the plugin freed making it, can go back to the
                // operating system.
                crate::memory::trim_soon();
                Ok(())
            }
            Err(error @ BatchError::Invalid { .. }) => Err(Error::internal(format!(
                "{error}; report it to the plugin's authors"
            ))),
            Err(error @ BatchError::Closed) => Err(Error::new(
                ErrorKind::CANCELLED,
                format!(
                    "{error} (the connection `{}` was removed, or the run was stopped)",
                    self.connection
                ),
            )),
            Err(BatchError::Store(error)) => Err(Error::internal(format!(
                "could not store the records of `{}`: {error}",
                self.connection
            ))
            .retryable(true)),
        }
    }

    fn progress(&self, progress: Progress) {
        self.observer.progress(&self.connection, &progress);
    }

    fn prompt(&self, prompt: Prompt) -> Result<(), Error> {
        // An import runs unattended: nobody may be there to answer.
        let _ = prompt;
        Err(Error::unsupported(
            "an import cannot ask the operator anything; run the connection's actions (such as `invhost connections generate-token`) first",
        ))
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn vault(&self, request: VaultRequest) -> Result<VaultResponse, Error> {
        self.session.vault(request)
    }

    fn update_secret(&self, request: UpdateSecretRequest) -> Result<(), Error> {
        self.session.update_secret(request)
    }
}
