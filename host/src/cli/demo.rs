//! `invhost demo`: the whole pipeline against a plugin's built-in simulator, in one command.
//!
//! The host does not know which plugin has a demo: it asks each loaded source type in turn
//! (`start_demo`) and takes the first that does not answer `unsupported`. It then adds the
//! connection the plugin describes, runs the actions it names (the device flow, approved by the
//! simulator itself), imports through the same runner as `invhost run`, prints the reports, and
//! stops the simulator.

use std::{process::ExitCode, sync::Arc};

use anyhow::{Context as _, bail};
use clap::Args;
use invhost_plugin_api::{
    ErrorKind,
    protocol::{DemoEnvironment, DemoRequest, StopDemoRequest, op},
};

use super::{Context, run::Bars};
use crate::reports::{
    self, Format, ReportParams, Supersession,
    format::write_report,
    unused::{Reason, UnusedReport},
};
use crate::{
    connections::GENERATE_TOKEN_ACTION,
    connections::{Connections, session::interrupted},
    plugins::{CallError, LoadedPlugin, NoInteraction},
    runner::{RunSettings, Runner},
    store::{RunState, Trigger},
};

/// `invhost demo`.
#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Users of the simulated tenant.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    users: u64,
    /// The source type to demonstrate (default: the first loaded one that has a demo).
    #[arg(long = "type", value_name = "SOURCE_TYPE")]
    source_type: Option<String>,
    /// Seed of the simulated data (the same seed gives the same tenant).
    #[arg(long)]
    seed: Option<u64>,
}

/// Stops the demo environment when dropped.
struct Running<'a> {
    plugin: &'a LoadedPlugin,
    environment: DemoEnvironment,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let request = StopDemoRequest {
            id: self.environment.id.clone(),
        };
        let stopped: Result<serde_json::Value, CallError> =
            self.plugin
                .call(op::STOP_DEMO, &request, Arc::new(NoInteraction));
        if let Err(error) = stopped {
            tracing::warn!(%error, "Could not stop the demo environment.");
        }
    }
}

/// Asks each loaded source type (or the one named) for a demo environment.
fn start<'r>(
    registry: &'r crate::plugins::Registry,
    args: &DemoArgs,
) -> anyhow::Result<(Running<'r>, String)> {
    for plugin in registry.plugins() {
        for source_type in &plugin.manifest.source_types {
            if args
                .source_type
                .as_ref()
                .is_some_and(|wanted| *wanted != source_type.id)
            {
                continue;
            }
            let request = DemoRequest {
                source_type: source_type.id.clone(),
                users: Some(args.users),
                seed: args.seed,
            };
            match plugin.call::<_, DemoEnvironment>(
                op::START_DEMO,
                &request,
                Arc::new(NoInteraction),
            ) {
                Ok(environment) => {
                    return Ok((
                        Running {
                            plugin,
                            environment,
                        },
                        source_type.id.clone(),
                    ));
                }
                Err(error)
                    if error
                        .plugin_error()
                        .is_some_and(|e| e.kind == ErrorKind::UNSUPPORTED) => {}
                // Asked by name: its failure is the answer. Otherwise try the next one.
                Err(error) if args.source_type.is_some() => {
                    return Err(error).with_context(|| {
                        format!("starting the demo of source type `{}`", source_type.id)
                    });
                }
                Err(error) => {
                    eprintln!(
                        "warning: the demo of source type `{}` did not start: {error}",
                        source_type.id
                    );
                }
            }
        }
    }
    match &args.source_type {
        Some(wanted) => {
            bail!("no loaded plugin offers a demo of source type `{wanted}`; see `invhost plugins`")
        }
        None => bail!(
            "no loaded plugin offers a demo; build the plugins (`cargo build --release`) and check `invhost plugins`"
        ),
    }
}

pub(super) fn run(context: &Context, args: DemoArgs, temporary: bool) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    let (running, source_type) = start(&registry, &args)?;
    let environment = &running.environment;
    let name = environment.connection_name.clone();
    println!("{}", environment.description);
    println!();
    let mut connections = Connections::open(&context.paths.data_dir, &registry)?;
    if connections.show(&name).is_ok() {
        connections.update(&name, &environment.settings)?;
    } else {
        connections.add(&name, &source_type, &environment.settings)?;
    }
    println!("Connection `{name}` ({source_type}) added.");
    for action in &environment.actions {
        if action != GENERATE_TOKEN_ACTION {
            bail!(
                "the demo asks for action `{action}`, which `invhost demo` cannot run; report it to the plugin's authors"
            );
        }
        let code =
            super::connections::generate_token(context, &mut connections, &name, false, 120)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    drop(connections);
    let runner = Runner::new(
        &context.paths.data_dir,
        &registry,
        context.vault()?,
        RunSettings {
            keep_snapshots: context.config.runs.keep_snapshots,
        },
    );
    let bars = Arc::new(Bars::new(false));
    let finished = runner.run(&name, Trigger::Manual, interrupted(), bars.clone())?;
    bars.clear();
    super::run::print_outcome(&finished);
    match finished.state {
        RunState::Succeeded => {}
        RunState::Cancelled => return Ok(ExitCode::from(130)),
        _ => return Ok(ExitCode::FAILURE),
    }
    println!();
    print_reports(context, &registry, &name)?;
    println!();
    if temporary {
        println!(
            "The demo ran in a temporary data directory, now removed. To keep the data for `invhost report`, run `invhost demo --data-dir DIR`."
        );
    } else {
        println!(
            "The data stays in {}: try `invhost --data-dir {} report users`.",
            context.paths.data_dir.display(),
            context.paths.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Licenses the demo's summary of the unused report shows; `invhost report unused` shows
/// every seat.
const LICENSES_SHOWN: usize = 12;

/// The licenses report, then the unused report summed up per license (biggest wins first).
fn print_reports(
    context: &Context,
    registry: &crate::plugins::Registry,
    connection: &str,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let rules = Supersession::from_registry(registry);
    let mut store = crate::store::Store::open(&context.paths.data_dir)?;
    let params = ReportParams {
        connection: Some(connection.to_owned()),
        ..ReportParams::now()
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "Licenses (invhost report licenses):")?;
    let licenses = reports::licenses::licenses(&mut store, &rules, &params)?;
    write_report(&licenses, Format::Table, None, &mut out)?;
    writeln!(out)?;
    let unused = reports::unused::unused(&mut store, &rules, &params)?;
    writeln!(
        out,
        "Reclaimable seats per license, biggest wins first (every seat with its account: invhost report unused):"
    )?;
    writeln!(out, "{}", unused_summary(&unused, params.days))?;
    let t = &unused.totals;
    writeln!(
        out,
        "In all: {} reclaimable seats held by {} accounts, plus the spare seats bought but not held by anyone.",
        t.seats
            - t.by_reason
                .get(Reason::Unassigned.id())
                .map_or(0, |r| r.seats),
        t.accounts
    )?;
    Ok(())
}

/// One row per license (in the report's order, which puts the biggest wins first): its
/// reclaimable seats per reason.
fn unused_summary(report: &UnusedReport, days: u32) -> comfy_table::Table {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut seats: std::collections::HashMap<(String, String), [u64; 5]> =
        std::collections::HashMap::new();
    for row in &report.rows {
        let key = (row.application.clone(), row.license.clone());
        let slot = Reason::ALL
            .iter()
            .position(|reason| *reason == row.reason)
            .unwrap_or(0);
        let counts = seats.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            [0; 5]
        });
        counts[slot] += row.seats;
    }
    let mut header = vec!["License".to_owned(), "Reclaimable".to_owned()];
    header.extend(Reason::ALL.iter().map(|reason| reason.text(days)));
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(header);
    for key in order.iter().take(LICENSES_SHOWN) {
        let counts = seats.get(key).copied().unwrap_or_default();
        let mut cells = vec![key.1.clone(), counts.iter().sum::<u64>().to_string()];
        cells.extend(counts.iter().map(u64::to_string));
        table.add_row(cells);
    }
    for column in 1..=Reason::ALL.len() + 1 {
        if let Some(column) = table.column_mut(column) {
            column.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    table
}
