//! Sends a plugin's `tracing` events to the host's log, and its panic messages too.
//!
//! A plugin library carries its own copy of `tracing` and of std, so its events and panics
//! would otherwise go nowhere (or straight to stderr). The SDK installs, once per library, a
//! global subscriber whose only layer forwards each event through the host callbacks: those of
//! the call in progress on this task when there is one, else those given at `init`.

use std::{fmt::Write as _, sync::OnceLock};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
    level_filters::LevelFilter,
};
use tracing_subscriber::{Layer, layer::Context, prelude::*};

use crate::{abi::LogLevel, sdk::Host};

static INIT_HOST: OnceLock<Host> = OnceLock::new();

/// The plugin crate's name (set by `export_plugin!`): its own events are forwarded at the
/// host's level; its dependencies' (HTTP clients, TLS) at `info` at most, so that a verbose host
/// log never carries a library's request details.
static PLUGIN_CRATE: OnceLock<String> = OnceLock::new();

/// Records the plugin crate's name from `module_path!()` at the export site.
pub fn set_plugin_crate(module_path: &str) {
    let name = module_path.split("::").next().unwrap_or(module_path);
    let _ = PLUGIN_CRATE.set(name.to_owned());
}

/// Whether an event of `target` at `level` is forwarded (besides the host's level filter).
fn forwarded(target: &str, level: Level) -> bool {
    if level <= Level::INFO {
        return true; // INFO, WARN, ERROR (tracing orders by verbosity)
    }
    match PLUGIN_CRATE.get() {
        Some(name) => target == name || target.starts_with(&format!("{name}::")),
        None => true,
    }
}

tokio::task_local! {
    /// The host of the call being run by the current task.
    pub(crate) static CALL_HOST: Host;
}

/// Installs the forwarding subscriber and the panic hook. Idempotent.
pub(crate) fn install(host: Host, max_level: LevelFilter) {
    if INIT_HOST.set(host).is_err() {
        return;
    }
    let subscriber = tracing_subscriber::registry().with(Forward.with_filter(max_level));
    // Installed before `Plugin::new`, so a plugin cannot install its own global subscriber;
    // its events reach the host through this one.
    let _ = tracing::subscriber::set_global_default(subscriber);
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!(
            "Plugin panicked{location}: {}.",
            panic_message(info.payload())
        );
        forward(LogLevel::ERROR, "panic", &message, "{}");
    }));
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn forward(level: LogLevel, target: &str, message: &str, fields: &str) {
    let sent = CALL_HOST
        .try_with(|host| host.log(level, target, message, fields))
        .is_ok();
    if !sent && let Some(host) = INIT_HOST.get() {
        host.log(level, target, message, fields);
    }
}

/// Parses the level name the host sends in `InitRequest::log_level`.
pub(crate) fn parse_level(name: &str) -> LevelFilter {
    name.parse().unwrap_or(LevelFilter::INFO)
}

struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !forwarded(metadata.target(), *metadata.level()) {
            return;
        }
        let level = match *metadata.level() {
            Level::TRACE => LogLevel::TRACE,
            Level::DEBUG => LogLevel::DEBUG,
            Level::INFO => LogLevel::INFO,
            Level::WARN => LogLevel::WARN,
            Level::ERROR => LogLevel::ERROR,
        };
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let fields = serde_json::Value::Object(visitor.fields).to_string();
        forward(level, metadata.target(), &visitor.message, &fields);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.insert(field, text.into());
    }
}

impl Fields {
    fn insert(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_capped_at_info_and_the_plugin_is_not() {
        set_plugin_crate("acme_plugin::sub");
        assert!(forwarded("acme_plugin", Level::TRACE));
        assert!(forwarded("acme_plugin::auth", Level::DEBUG));
        assert!(!forwarded("hyper_util::client", Level::DEBUG));
        assert!(!forwarded("acme_plugin_extra", Level::TRACE));
        assert!(forwarded("hyper_util::client", Level::INFO));
        assert!(forwarded("rustls", Level::WARN));
    }
}
