//! `invhost-sim-salesforce`: runs the Salesforce simulator until killed.
//!
//! Prints one line, `listening on http://127.0.0.1:PORT`, once it accepts requests.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use invhost_sim_salesforce::{OrgSpec, SimConfig, Simulator};

/// A Salesforce simulator on loopback (OAuth device flow, refresh, REST limits), for
/// tests and the demo. Approve device codes with
/// `POST /__sim/device/approve {"user_code":"..."}`.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The connected app's consumer key [default: SIM_CONSUMER_KEY].
    #[arg(long, value_name = "K")]
    consumer_key: Option<String>,
    /// The connected app's consumer secret [default: SIM_CONSUMER_SECRET].
    #[arg(long, value_name = "S")]
    consumer_secret: Option<String>,
    /// Rotate refresh tokens: each refresh returns a new one and retires the old one.
    #[arg(long)]
    rotate: bool,
    /// Seconds between device flow polls [default: 5].
    #[arg(long, value_name = "SECS")]
    interval: Option<u64>,
    /// Approve a pending device code by itself on its N-th poll.
    #[arg(long, value_name = "N")]
    auto_approve_after: Option<u32>,
    /// Serve a synthetic org of N users through `query` and `describe`.
    #[arg(long, value_name = "N")]
    org_users: Option<usize>,
    /// The synthetic org's seed [default: 42].
    #[arg(long, value_name = "SEED", requires = "org_users")]
    org_seed: Option<u64>,
    /// Records per query page (200 to 2000) [default: 2000].
    #[arg(long, value_name = "N", requires = "org_users",
          value_parser = clap::value_parser!(u64).range(200..=2000))]
    page_size: Option<u64>,
    /// Wait this long before answering each data call (simulated network latency).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// The org's daily API allowance [default: 15000].
    #[arg(long, value_name = "N")]
    api_daily_max: Option<u64>,
    /// Log every request to stderr.
    #[arg(short, long)]
    verbose: bool,
}

impl Args {
    fn config(&self) -> SimConfig {
        let defaults = SimConfig::default();
        SimConfig {
            consumer_key: self.consumer_key.clone().unwrap_or(defaults.consumer_key),
            consumer_secret: self.consumer_secret.clone().or(defaults.consumer_secret),
            rotate_refresh_tokens: self.rotate,
            device_interval_secs: self.interval.unwrap_or(defaults.device_interval_secs),
            auto_approve_after_polls: self.auto_approve_after,
            org: self.org_users.map(|users| {
                let spec = OrgSpec::default();
                OrgSpec {
                    users,
                    seed: self.org_seed.unwrap_or(spec.seed),
                    page_size: self
                        .page_size
                        .map_or(spec.page_size, |n| usize::try_from(n).unwrap_or(2000)),
                    ..spec
                }
            }),
            api_daily_max: self.api_daily_max.unwrap_or(defaults.api_daily_max),
            ..defaults
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("invhost-sim-salesforce: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .init();
    }
    if !args.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {}: the simulator serves loopback addresses only; \
             use 127.0.0.1 or [::1]",
            args.listen
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(&args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let simulator = Simulator::start_on(args.listen, args.config())
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if args.latency_ms > 0 {
        simulator
            .control()
            .set_faults(invhost_sim_salesforce::Faults {
                latency_ms: args.latency_ms,
                ..Default::default()
            });
    }
    announce(&simulator).context("writing to stdout")?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    simulator.shutdown();
    Ok(())
}

fn announce(simulator: &Simulator) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", simulator.base_url())?;
    stdout.flush()
}
