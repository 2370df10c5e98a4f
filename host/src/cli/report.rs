//! `invhost report licenses|unused|users`: the reports over the current snapshots, as a table,
//! JSON or CSV (see `crate::reports` and docs/reports.md).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::Context;
use crate::{
    reports::{
        self, DEFAULT_DAYS, Format, Report, ReportParams, Supersession, format::write_report,
    },
    store::Store,
};

#[derive(Debug, Subcommand)]
pub(super) enum ReportCommand {
    /// Per connection and license: purchased, consumed, assigned, active, seat holders, spare
    /// seats, utilisation, with totals.
    Licenses {
        #[command(flatten)]
        common: CommonArgs,
        /// Count an assigned account as active when it was last seen within this many days.
        #[arg(long = "active-days", visible_alias = "inactive-days", value_name = "N",
              default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
    /// Every reclaimable seat with its reason, biggest wins first.
    Unused {
        #[command(flatten)]
        common: CommonArgs,
        /// An account not seen within this many days holds its seats without using them.
        #[arg(long = "inactive-days", visible_alias = "active-days", value_name = "N",
              default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
    /// Each account with its licenses, last login, interactive and API use, and flags.
    Users {
        #[command(flatten)]
        common: CommonArgs,
        /// Flag an active account as inactive when not seen within this many days.
        #[arg(long = "inactive-days", visible_alias = "active-days", value_name = "N",
              default_value_t = DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
}

/// What every report takes.
#[derive(Debug, Args)]
pub(super) struct CommonArgs {
    /// Only this connection (supersession still considers every connection).
    #[arg(long, value_name = "NAME")]
    connection: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The end of the N-day window, RFC 3339 (default: now); reproduces a report as of then.
    #[arg(long, value_name = "TIME")]
    as_of: Option<DateTime<Utc>>,
}

pub(super) fn run(context: &Context, command: ReportCommand) -> anyhow::Result<ExitCode> {
    let rules = Supersession::from_registry(&context.registry());
    let mut store = Store::open(&context.paths.data_dir)?;
    let params = |common: &CommonArgs, days: u32| ReportParams {
        connection: common.connection.clone(),
        days,
        as_of: common.as_of.unwrap_or_else(Utc::now),
    };
    match command {
        ReportCommand::Licenses { common, days } => print(
            &reports::licenses::licenses(&mut store, &rules, &params(&common, days))?,
            common.format,
        ),
        ReportCommand::Unused { common, days } => print(
            &reports::unused::unused(&mut store, &rules, &params(&common, days))?,
            common.format,
        ),
        ReportCommand::Users { common, days } => print(
            &reports::users::users(&mut store, &rules, &params(&common, days))?,
            common.format,
        ),
    }
}

/// Warnings on standard error, the report on standard output.
fn print<R: Report>(report: &R, format: Format) -> anyhow::Result<ExitCode> {
    for warning in report.warnings() {
        eprintln!("warning: {warning}");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write_report(report, format, None, &mut out) {
        // The reader has all it wanted (`| head`).
        Err(error) if error.is_broken_pipe() => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error.into()),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}
