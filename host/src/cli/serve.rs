//! `invhost serve`: the scheduler and the read-only HTTP API (see [`crate::serve`]).

use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Duration};

use clap::Args;

use super::Context;
use crate::{runner::RunSettings, serve::ServeOptions};

/// The longest retry delay accepted.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// The most retries accepted.
const MAX_RETRIES: usize = 10;

/// `invhost serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The HTTP API's address (IP:PORT). It has no authentication yet: keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDRESS", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Waits before retrying a scheduled import that failed with a transient error (network,
    /// rate limit, service unavailable), comma-separated; one retry per delay, each before the
    /// schedule's next slot. `none`: no retries.
    #[arg(long, default_value = "10s,30s", value_name = "DELAYS", value_parser = parse_retry_delays)]
    retry_delays: RetryDelays,
}

/// The parsed `--retry-delays`.
#[derive(Debug, Clone)]
struct RetryDelays(Vec<Duration>);

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("`{text}` is not an address; write IP:PORT, e.g. 127.0.0.1:8787 or [::1]:8787")
    })
}

fn parse_retry_delays(text: &str) -> Result<RetryDelays, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text.is_empty() {
        return Ok(RetryDelays(Vec::new()));
    }
    let delays = text
        .split(',')
        .map(|part| {
            let delay = humantime::parse_duration(part.trim()).map_err(|error| {
                format!(
                    "`{}` is not a duration ({error}); write e.g. 10s,30s,2m",
                    part.trim()
                )
            })?;
            if delay > MAX_RETRY_DELAY {
                return Err(format!("retry delay `{}` is longer than 1h", part.trim()));
            }
            Ok(delay)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > MAX_RETRIES {
        return Err(format!("at most {MAX_RETRIES} retry delays"));
    }
    Ok(RetryDelays(delays))
}

pub(super) fn run(context: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // The loader logs each refused library (at info, which serve shows by default).
    let registry = context.registry();
    crate::serve::run(ServeOptions {
        data_dir: context.paths.data_dir.clone(),
        listen: args.listen,
        registry: Arc::new(registry),
        vault: context.vault()?,
        run_settings: RunSettings {
            keep_snapshots: context.config.runs.keep_snapshots,
        },
        max_parallel: context.config.runs.max_parallel as usize,
        retry_delays: args.retry_delays.0,
        tick: Duration::from_secs(1),
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_and_listen_addresses() {
        assert_eq!(
            parse_retry_delays("10s,30s").expect("valid").0,
            [Duration::from_secs(10), Duration::from_secs(30)]
        );
        assert!(parse_retry_delays("none").expect("none").0.is_empty());
        assert!(
            parse_retry_delays("10s,soon")
                .expect_err("bad")
                .contains("`soon` is not a duration")
        );
        assert!(
            parse_retry_delays("2h")
                .expect_err("long")
                .contains("longer than 1h")
        );
        assert!(parse_listen("127.0.0.1:8787").is_ok());
        assert!(parse_listen("[::1]:8787").is_ok());
        assert!(
            parse_listen("localhost")
                .expect_err("no port")
                .contains("write IP:PORT")
        );
    }
}
