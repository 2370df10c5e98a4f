//! The host services a plugin reaches during a call ([`HostCallbacks`]), routed to a
//! [`CallHandler`] that the calling subsystem provides.

use std::sync::{Arc, OnceLock};

use invhost_plugin_api::{
    Error,
    abi::{FfiError, HostBox, HostCallbacks, HostCallbacks_TO, LogLevel},
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RResult, RStr, RString},
    },
    protocol::{Progress, Prompt, UpdateSecretRequest, VaultRequest, VaultResponse, host_op},
};
use serde::de::DeserializeOwned;

/// What the calling subsystem does with a plugin's requests during one call. Every method has a
/// default that refuses or ignores, so that each caller implements only what it offers.
pub trait CallHandler: Send + Sync {
    /// Stores a batch of records (JSON lines).
    fn emit(&self, batch: &str) -> Result<(), Error> {
        let _ = batch;
        Err(Error::unsupported(
            "records can only be sent during an import",
        ))
    }

    /// Shows progress.
    fn progress(&self, progress: Progress) {
        let _ = progress;
    }

    /// Shows a prompt to the person.
    fn prompt(&self, prompt: Prompt) -> Result<(), Error> {
        let _ = prompt;
        Err(Error::unsupported("this call cannot show prompts"))
    }

    /// Whether the call should stop.
    fn is_cancelled(&self) -> bool {
        false
    }

    /// Looks up vault secrets.
    fn vault(&self, request: VaultRequest) -> Result<VaultResponse, Error> {
        let _ = request;
        Err(Error::new(
            invhost_plugin_api::ErrorKind::VAULT,
            "no vault is configured for this call",
        ))
    }

    /// Stores a new value for a secret setting.
    fn update_secret(&self, request: UpdateSecretRequest) -> Result<(), Error> {
        let _ = request;
        Err(Error::unsupported("this call cannot store settings"))
    }
}

/// A handler for calls that need no interaction (schema, validation, loading).
#[derive(Debug, Default)]
pub struct NoInteraction;

impl CallHandler for NoInteraction {}

/// How the host's log names a plugin (the `plugin` field of its events).
///
/// The callbacks given at load time outlive loading: a plugin's own background tasks log
/// through them. Their label starts as the library's file name and, once the loader has read
/// and checked the manifest, becomes the plugin id ([`PluginLabel::name`]), so that every event
/// of a loaded plugin carries the id its calls carry. Clones share the label.
#[derive(Debug, Clone)]
pub(crate) struct PluginLabel {
    /// The name until [`PluginLabel::name`] is called.
    provisional: Arc<str>,
    /// The plugin id, once known.
    id: Arc<OnceLock<Arc<str>>>,
}

impl PluginLabel {
    /// A label that reads `name` until [`PluginLabel::name`] gives the plugin id.
    pub(crate) fn new(name: Arc<str>) -> Self {
        PluginLabel {
            provisional: name,
            id: Arc::new(OnceLock::new()),
        }
    }

    /// From now on the label is `id`, in every clone. The first id given stays.
    pub(crate) fn name(&self, id: &str) {
        let _ = self.id.set(Arc::from(id));
    }

    /// The label as it is now.
    pub(crate) fn get(&self) -> &str {
        self.id.get().unwrap_or(&self.provisional)
    }
}

/// The [`HostCallbacks`] object handed to a plugin: logs go to the host's tracing, everything
/// else to the handler.
pub(crate) struct Callbacks {
    label: PluginLabel,
    handler: Arc<dyn CallHandler>,
}

impl Callbacks {
    pub(crate) fn boxed(label: PluginLabel, handler: Arc<dyn CallHandler>) -> HostBox {
        HostCallbacks_TO::from_value(Callbacks { label, handler }, TD_Opaque)
    }
}

fn parse<T: DeserializeOwned>(json: RStr<'_>) -> Result<T, Error> {
    serde_json::from_str(json.as_str())
        .map_err(|e| Error::internal(format!("the plugin sent unreadable JSON: {e}")))
}

fn ffi<T>(result: Result<T, Error>) -> RResult<T, FfiError> {
    match result {
        Ok(value) => RResult::ROk(value),
        Err(error) => RResult::RErr(error.into()),
    }
}

fn json_answer<T: serde::Serialize>(value: &T) -> Result<RString, Error> {
    serde_json::to_string(value)
        .map(RString::from)
        .map_err(|e| Error::internal(format!("could not encode the answer: {e}")))
}

impl HostCallbacks for Callbacks {
    fn emit(&self, batch: RStr<'_>) -> RResult<(), FfiError> {
        ffi(self.handler.emit(batch.as_str()))
    }

    fn progress(&self, update: RStr<'_>) {
        match parse(update) {
            Ok(progress) => self.handler.progress(progress),
            Err(error) => {
                tracing::debug!(plugin = self.label.get(), %error, "Ignored unreadable progress.")
            }
        }
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>, fields: RStr<'_>) {
        let plugin = self.label.get();
        let (target, message, fields) = (target.as_str(), message.as_str(), fields.as_str());
        let fields = if fields == "{}" { "" } else { fields };
        match level {
            LogLevel::ERROR => {
                tracing::error!(target: "invhost::plugin", plugin, source = target, fields, "{message}")
            }
            LogLevel::WARN => {
                tracing::warn!(target: "invhost::plugin", plugin, source = target, fields, "{message}")
            }
            LogLevel::INFO => {
                tracing::info!(target: "invhost::plugin", plugin, source = target, fields, "{message}")
            }
            LogLevel::DEBUG => {
                tracing::debug!(target: "invhost::plugin", plugin, source = target, fields, "{message}")
            }
            _ => {
                tracing::trace!(target: "invhost::plugin", plugin, source = target, fields, "{message}")
            }
        }
    }

    fn prompt(&self, prompt: RStr<'_>) -> RResult<(), FfiError> {
        ffi(parse(prompt).and_then(|p| self.handler.prompt(p)))
    }

    fn is_cancelled(&self) -> bool {
        self.handler.is_cancelled()
    }

    fn vault(&self, request: RStr<'_>) -> RResult<RString, FfiError> {
        ffi(parse(request)
            .and_then(|r| self.handler.vault(r))
            .and_then(|r| json_answer(&r)))
    }

    fn call(&self, op: RStr<'_>, request: RStr<'_>) -> RResult<RString, FfiError> {
        ffi(match op.as_str() {
            host_op::UPDATE_SECRET => parse::<UpdateSecretRequest>(request)
                .and_then(|r| self.handler.update_secret(r))
                .map(|()| RString::from("{}")),
            other => Err(Error::unsupported(format!(
                "host operation `{other}` is not offered by this host; upgrade invhost"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// The host's log lines of `body`, formatted as `invhost` formats them (without ANSI).
    fn logged(body: impl FnOnce()) -> String {
        let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = lines.clone();
            move || Writer(lines.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        let bytes = lines.lock().expect("not poisoned").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn load_time_callbacks_name_the_plugin_by_its_id_once_named() {
        let label = PluginLabel::new(Arc::from("libexample.so"));
        let callbacks = Callbacks::boxed(label.clone(), Arc::new(NoInteraction));
        let log = |message: &str| {
            callbacks.log(
                LogLevel::INFO,
                RStr::from_str("example"),
                RStr::from_str(message),
                RStr::from_str("{}"),
            )
        };
        let before = logged(|| log("Before the manifest."));
        assert!(before.contains(r#"plugin="libexample.so""#), "{before}");
        label.name("example");
        label.name("another");
        let after = logged(|| log("From a background task."));
        assert!(after.contains(r#"plugin="example""#), "{after}");
    }
}
