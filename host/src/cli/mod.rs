//! The command line (BRIEF section 9). Each subcommand lives in its own module; this one parses
//! arguments and dispatches.
//!
//! Exit codes: 0 success, 1 failure (one line on stderr), 2 bad arguments.

mod connections;
mod cyberark;
mod demo;
mod export;
mod plugins;
mod report;
mod run;
mod schedules;
mod schema;
mod serve;
mod settings;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{
    HOST_VERSION,
    paths::{PLUGINS_DIR_ENV, Paths},
    plugins::Registry,
};

/// Self-hosted inventory host for SaaS license management.
#[derive(Debug, Parser)]
#[command(name = "invhost", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory (database, key file, invhost.toml, plugins/).
    #[arg(long, global = true, env = "INVHOST_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The configuration file (default: invhost.toml in the data directory).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A plugin directory to search first (repeatable); INVHOST_PLUGINS_DIR adds more.
    #[arg(long = "plugins-dir", global = true, value_name = "DIR")]
    plugins_dirs: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List loaded plugins and refused libraries, or check one library.
    Plugins(plugins::PluginsArgs),
    /// Print the settings JSON Schema of a source type.
    Schema(schema::SchemaArgs),
    /// Work with settings documents.
    Settings {
        #[command(subcommand)]
        command: settings::SettingsCommand,
    },
    /// Add, show, test and authorise connections (one per SaaS tenant).
    Connections {
        #[command(subcommand)]
        command: connections::ConnectionsCommand,
    },
    /// Check the CyberArk Central Credential Provider configuration.
    Cyberark {
        #[command(subcommand)]
        command: cyberark::CyberArkCommand,
    },
    /// Import connections now ("Execute Now"): a new snapshot of each.
    Run(run::RunArgs),
    /// Show the run history, newest first.
    Runs(run::RunsArgs),
    /// Reports over the imported inventory: licenses, unused seats, users.
    Report {
        #[command(subcommand)]
        command: report::ReportCommand,
    },
    /// Write the imported inventory to files, one per record kind.
    Export(export::ExportArgs),
    /// Add, list and remove named schedules (assign them with `connections schedule`).
    Schedules {
        #[command(subcommand)]
        command: schedules::SchedulesCommand,
    },
    /// Run the scheduler and the read-only HTTP API until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// See the whole pipeline in one command: a plugin's built-in simulator, a connection,
    /// the device flow, an import and the reports (in a temporary data directory unless
    /// --data-dir is given).
    Demo(demo::DemoArgs),
}

/// Runs the command line; errors are printed by `main` on one line.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // `serve` runs as a service: its log tells what it does (runs started and ended).
    match cli.command {
        Command::Serve(_) => crate::logging::init_with_default(crate::logging::SERVE_DEFAULT),
        _ => crate::logging::init(),
    }
    // The demo works in a temporary data directory unless one is given; it is removed when
    // the command ends.
    let temporary = match (&cli.command, &cli.data_dir) {
        (Command::Demo(_), None) => Some(
            tempfile::Builder::new()
                .prefix("invhost-demo-")
                .tempdir()
                .context("creating a temporary data directory for the demo")?,
        ),
        _ => None,
    };
    let data_dir = cli
        .data_dir
        .clone()
        .or_else(|| temporary.as_ref().map(|dir| dir.path().to_owned()));
    let paths = Paths::resolve(
        data_dir,
        &cli.plugins_dirs,
        std::env::var_os(PLUGINS_DIR_ENV),
    )?;
    // Validated at start: a bad configuration stops every command with the key it names.
    let config = match crate::config::load(cli.config.as_deref(), &paths.data_dir) {
        Ok(config) => config,
        Err(error) => {
            if let Command::Cyberark { command } = &cli.command {
                cyberark::config_failed(command, &error);
            }
            return Err(error);
        }
    };
    let context = Context {
        paths,
        config,
        vault: std::sync::OnceLock::new(),
    };
    match cli.command {
        Command::Plugins(args) => plugins::run(&context, args),
        Command::Schema(args) => schema::run(&context, args),
        Command::Settings { command } => settings::run(&context, command),
        Command::Connections { command } => connections::run(&context, command),
        Command::Cyberark { command } => cyberark::run(&context, command),
        Command::Run(args) => run::run(&context, args),
        Command::Runs(args) => run::runs(&context, args),
        Command::Report { command } => report::run(&context, command),
        Command::Export(args) => export::run(&context, args),
        Command::Schedules { command } => schedules::run(&context, command),
        Command::Serve(args) => serve::run(&context, args),
        Command::Demo(args) => demo::run(&context, args, temporary.is_some()),
    }
}

/// What every command gets.
struct Context {
    paths: Paths,
    config: crate::config::HostConfig,
    vault: std::sync::OnceLock<std::sync::Arc<dyn crate::connections::session::Vault>>,
}

impl Context {
    fn registry(&self) -> Registry {
        Registry::load(&self.paths.plugin_dirs, HOST_VERSION)
    }

    /// The vault plugins may read from, when one is configured.
    fn vault(
        &self,
    ) -> anyhow::Result<Option<std::sync::Arc<dyn crate::connections::session::Vault>>> {
        let Some(config) = &self.config.cyberark else {
            return Ok(None);
        };
        if let Some(vault) = self.vault.get() {
            return Ok(Some(vault.clone()));
        }
        let client = crate::cyberark::BlockingCcpClient::new(config)?;
        Ok(Some(
            self.vault
                .get_or_init(|| std::sync::Arc::new(client))
                .clone(),
        ))
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
