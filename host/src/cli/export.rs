//! `invhost export`: the current snapshots as files, one per record kind (see `crate::export`).

use std::{path::PathBuf, process::ExitCode};

use clap::Args;

use super::{Context, print_json};
use crate::{
    export::{ExportFormat, ExportOptions, export},
    reports::Supersession,
    store::Store,
};

/// `invhost export`.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// File format: `json` writes JSON Lines (`KIND.jsonl`), `csv` writes `KIND.csv`.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The directory to write into (created when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only this connection.
    #[arg(long, value_name = "NAME")]
    connection: Option<String>,
    /// Replace files that already exist.
    #[arg(long)]
    force: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(context: &Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let rules = Supersession::from_registry(&context.registry());
    let mut store = Store::open(&context.paths.data_dir)?;
    let summary = export(
        &mut store,
        &rules,
        &ExportOptions {
            format: args.format,
            out: args.out,
            connection: args.connection,
            force: args.force,
        },
    )?;
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        print_json(&summary)?;
    } else {
        let files: Vec<String> = summary
            .files
            .iter()
            .map(|f| {
                let name = f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let noun = if f.rows == 1 { "row" } else { "rows" };
                format!("{name} ({} {noun})", f.rows)
            })
            .collect();
        println!(
            "Exported {} to {}: {}.",
            summary.connections.join(", "),
            summary.dir.display(),
            files.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
