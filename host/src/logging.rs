//! The host's log: `tracing` to stderr, filtered by `INVHOST_LOG` (default `warn`), for
//! example `INVHOST_LOG=debug` or `INVHOST_LOG=invhost::plugin=trace`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// The environment variable that sets the log filter.
pub const LOG_ENV: &str = "INVHOST_LOG";

/// Installs the log subscriber. A bad filter falls back to `warn` with a warning.
pub fn init() {
    let (filter, bad) = match EnvFilter::try_from_env(LOG_ENV) {
        Ok(filter) => (filter, None),
        Err(error) => (
            EnvFilter::new("warn"),
            std::env::var(LOG_ENV).ok().map(|value| (value, error)),
        ),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    if let Some((value, error)) = bad {
        tracing::warn!(%error, value, "Ignored a bad {LOG_ENV}; logging warnings only.");
    }
}
