//! The host's log: `tracing` to stderr, filtered by `INVHOST_LOG` (default `warn`; for
//! `invhost serve` [`SERVE_DEFAULT`]), for example `INVHOST_LOG=debug` or
//! `INVHOST_LOG=invhost::plugin=trace`. No colours unless stderr is a terminal; no timestamps
//! when stderr is the systemd journal (`JOURNAL_STREAM` is set), which adds its own.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log filter.
pub const LOG_ENV: &str = "INVHOST_LOG";

/// The default filter of `invhost serve`: the host's own `info` lines (each import started and
/// ended, scheduler decisions), other crates' warnings.
pub const SERVE_DEFAULT: &str = "warn,invhost=info";

/// Installs the log subscriber with the default filter `warn`.
pub fn init() {
    init_with_default("warn");
}

/// Installs the log subscriber; without `INVHOST_LOG` the filter is `default`. A bad
/// `INVHOST_LOG` falls back to `default` with a warning.
pub fn init_with_default(default: &str) {
    let (filter, bad) = match EnvFilter::try_from_env(LOG_ENV) {
        Ok(filter) => (filter, None),
        Err(error) => (
            EnvFilter::new(default),
            std::env::var(LOG_ENV).ok().map(|value| (value, error)),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    if let Some((value, error)) = bad {
        tracing::warn!(%error, value, "Ignored a bad {LOG_ENV}; using the default filter `{default}`.");
    }
}
