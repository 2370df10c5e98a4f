//! `invhost-sim-cyberark`: runs the CCP simulator until killed.
//!
//! Prints one line, `listening on URL`, once it accepts requests.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use invhost_sim_cyberark::{Account, PkiFiles, SimConfig, Simulator, TestPki, TlsSetup};

/// A CyberArk Central Credential Provider simulator on loopback
/// (`GET /AIMWebService/api/Accounts?AppID=..&Safe=..&Object=..`), for tests and the demo.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback only. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The vault: a JSON array of accounts
    /// (`[{"safe","folder","object","user_name","address","content","properties","apps"}]`),
    /// or an object `{"app_ids","accounts","path","faults"}`.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Serve HTTPS with DIR/server.pem and DIR/server.key; when DIR has no server.pem, a
    /// new test PKI (ca.pem, server.pem, server.key, client.pem, client.key) is written
    /// there first.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// Require a client certificate signed by DIR/ca.pem (needs --tls-dir).
    #[arg(long, requires = "tls_dir")]
    require_client_cert: bool,
    /// Log every request to stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// The accounts file: the whole configuration, or just the accounts.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AccountsFile {
    Accounts(Vec<Account>),
    Config(Box<SimConfig>),
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("invhost-sim-cyberark: {error:#}");
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
    let mut config = match &args.accounts {
        Some(path) => read_accounts(path)?,
        None => SimConfig::default(),
    };
    if let Some(dir) = &args.tls_dir {
        config.tls = Some(tls_setup(dir, args.require_client_cert)?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args.listen, config))
}

fn read_accounts(path: &Path) -> anyhow::Result<SimConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: AccountsFile = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is neither a JSON array of accounts nor a simulator configuration object",
            path.display()
        )
    })?;
    Ok(match file {
        AccountsFile::Accounts(accounts) => SimConfig {
            accounts,
            ..SimConfig::default()
        },
        AccountsFile::Config(config) => *config,
    })
}

fn tls_setup(dir: &Path, require_client_cert: bool) -> anyhow::Result<TlsSetup> {
    let files = PkiFiles::in_dir(dir);
    if !files.server_cert.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        TestPki::generate()?
            .write_to(dir)
            .with_context(|| format!("writing the test PKI to {}", dir.display()))?;
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(TlsSetup {
        cert_pem: read(&files.server_cert)?,
        key_pem: read(&files.server_key)?,
        client_ca_pem: if require_client_cert {
            Some(read(&files.ca_cert)?)
        } else {
            None
        },
    })
}

async fn serve(listen: SocketAddr, config: SimConfig) -> anyhow::Result<()> {
    let simulator = Simulator::start_on(listen, config)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", simulator.base_url()).context("writing to stdout")?;
        stdout.flush().context("writing to stdout")?;
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    simulator.shutdown();
    Ok(())
}
