//! [`Host`]: the plugin's handle on the services the host offers during a call.

use std::{fmt, sync::Arc};

use abi_stable::std_types::{RResult, RStr};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    abi::{HostBox, HostCallbacks_TO, LogLevel},
    error::{Error, ErrorKind},
    model::Record,
    protocol::{Progress, Prompt, UpdateSecretRequest, VaultRequest, VaultResponse, host_op},
    sdk::RecordBatch,
    secret::Secret,
};

/// The host's services during one call: emit records, report progress, prompt the person,
/// check for cancellation, read the vault, store a rotated secret.
///
/// Cheap to clone and safe to share between tasks. Each method is a blocking call into the host;
/// all are quick (a database write at most) except [`Host::vault_lookup`], a round trip to the
/// vault (CyberArk) of up to its configured timeout: call that one once per run.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostBox>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Host")
    }
}

impl Host {
    /// Wraps the callback object the host passed in.
    pub fn new(callbacks: HostBox) -> Self {
        Host {
            inner: Arc::new(callbacks),
        }
    }

    /// Wraps a Rust implementation of the callbacks (tests, and the host itself).
    pub fn from_callbacks<C>(callbacks: C) -> Self
    where
        C: crate::abi::HostCallbacks + Send + Sync + 'static,
    {
        Host::new(HostCallbacks_TO::from_value(
            callbacks,
            abi_stable::sabi_trait::TD_Opaque,
        ))
    }

    /// Sends records to the host. An error means stop: the host could not store them or the
    /// run was cancelled. For pages of a large object, [`Host::emit_batch`] keeps memory lower.
    pub fn emit(&self, records: &[Record]) -> Result<(), Error> {
        self.emit_batch(&records.iter().collect())
    }

    /// Sends a batch of records encoded as they were made (see [`RecordBatch`]). An error means
    /// stop, as for [`Host::emit`].
    pub fn emit_batch(&self, batch: &RecordBatch) -> Result<(), Error> {
        let text = batch.text()?;
        if text.is_empty() {
            return Ok(());
        }
        into_result(self.inner.emit(RStr::from_str(text)))
    }

    /// Reports progress of the current stage.
    pub fn progress(&self, progress: &Progress) {
        if let Ok(json) = serde_json::to_string(progress) {
            self.inner.progress(RStr::from_str(&json));
        }
    }

    /// Shows a message, code or link to the person at the keyboard.
    pub fn prompt(&self, prompt: &Prompt) -> Result<(), Error> {
        let json = to_json(prompt)?;
        into_result(self.inner.prompt(RStr::from_str(&json)))
    }

    /// Whether the call should stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// `Err(cancelled)` when the call should stop, for use with `?` between steps.
    pub fn check_cancelled(&self) -> Result<(), Error> {
        if self.is_cancelled() {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    /// Reads secrets from the host's vault: one value per field, in order; an empty field name
    /// means the account's password.
    pub fn vault_lookup(&self, query: &str, fields: &[&str]) -> Result<Vec<Secret>, Error> {
        let request = VaultRequest {
            query: query.to_owned(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        };
        let json = to_json(&request)?;
        let answer = into_result(self.inner.vault(RStr::from_str(&json)))?;
        let response: VaultResponse = from_json(answer.as_str())?;
        if response.values.len() != fields.len() {
            return Err(Error::new(
                ErrorKind::VAULT,
                format!(
                    "the vault answered {} values for {} fields",
                    response.values.len(),
                    fields.len()
                ),
            ));
        }
        Ok(response.values)
    }

    /// Asks the host to store a new value for a secret setting now (a rotated refresh token).
    /// Call it before using anything issued together with the new value.
    pub fn update_secret(&self, field: &str, value: &Secret) -> Result<(), Error> {
        let request = UpdateSecretRequest {
            field: field.to_owned(),
            value: value.clone(),
        };
        let _: serde_json::Value = self.call(host_op::UPDATE_SECRET, &request)?;
        Ok(())
    }

    /// Calls a named host operation (see [`crate::protocol::host_op`]).
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &str,
        request: &Req,
    ) -> Result<Resp, Error> {
        let json = to_json(request)?;
        let answer = into_result(self.inner.call(RStr::from_str(op), RStr::from_str(&json)))?;
        from_json(answer.as_str())
    }

    /// Forwards a log line (the SDK's tracing layer calls this; plugins use `tracing`).
    pub(crate) fn log(&self, level: LogLevel, target: &str, message: &str, fields: &str) {
        self.inner.log(
            level,
            RStr::from_str(target),
            RStr::from_str(message),
            RStr::from_str(fields),
        );
    }
}

fn into_result<T>(result: RResult<T, crate::abi::FfiError>) -> Result<T, Error> {
    result.into_result().map_err(Error::from)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("could not encode JSON: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json)
        .map_err(|e| Error::internal(format!("could not read the JSON from the other side: {e}")))
}
