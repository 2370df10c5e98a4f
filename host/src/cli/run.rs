//! `invhost run NAME... | --all` ("Execute Now") and `invhost runs` (the run history).

use std::{
    collections::HashMap,
    process::ExitCode,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use anyhow::bail;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use invhost_plugin_api::protocol::Progress;

use super::{Context, print_json};
use crate::{
    connections::{Connections, session::interrupted},
    runner::{RunObserver, RunSettings, Runner},
    store::{RunRow, RunState, Store, Trigger},
};

/// `invhost run`.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The connections to import.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    names: Vec<String>,
    /// Import every enabled connection.
    #[arg(long)]
    all: bool,
    /// Print the finished runs as JSON (no progress bars).
    #[arg(long)]
    json: bool,
}

/// `invhost runs`.
#[derive(Debug, Args)]
pub(super) struct RunsArgs {
    /// Only this connection's runs (a removed connection's too: its history is kept).
    name: Option<String>,
    /// Only this connection's runs (the same as NAME, as the reports spell it).
    #[arg(long = "connection", value_name = "NAME", conflicts_with = "name")]
    connection: Option<String>,
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(context: &Context, args: RunArgs) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    let names = if args.all {
        let mut connections = Connections::open(&context.paths.data_dir, &registry)?;
        let names: Vec<String> = connections
            .list()?
            .into_iter()
            .filter(|c| c.enabled)
            .map(|c| c.name)
            .collect();
        if names.is_empty() {
            bail!(
                "there is no enabled connection to import; add one with `invhost connections add`"
            );
        }
        names
    } else {
        args.names.clone()
    };
    let runner = Runner::new(
        &context.paths.data_dir,
        &registry,
        context.vault()?,
        RunSettings {
            keep_snapshots: context.config.runs.keep_snapshots,
        },
    );
    runner.sweep()?;
    let observer = Arc::new(Bars::new(args.json));
    let cancel = interrupted();
    let parallel = (context.config.runs.max_parallel as usize).clamp(1, names.len());
    // Connections are imported `parallel` at a time, each on its own thread.
    let queue = Mutex::new(names.iter().collect::<std::collections::VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| {
                // After Ctrl-C no further connection starts.
                while !cancel.load(Ordering::SeqCst)
                    && let Some(name) = queue.lock().ok().and_then(|mut q| q.pop_front())
                {
                    let result =
                        runner.run(name, Trigger::Manual, cancel.clone(), observer.clone());
                    if let Ok(mut results) = results.lock() {
                        results.push((name.clone(), result));
                    }
                }
            });
        }
    });
    observer.clear();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
    let mut code = ExitCode::SUCCESS;
    let mut finished = Vec::new();
    for (name, result) in results {
        match result {
            Ok(run) => {
                if run.state == RunState::Cancelled {
                    code = ExitCode::from(130);
                } else if run.state != RunState::Succeeded && code == ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
                if !args.json {
                    print_outcome(&run);
                }
                finished.push(run);
            }
            Err(error) => {
                eprintln!("invhost: {name}: {error}");
                if code == ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
            }
        }
    }
    // Connections Ctrl-C kept from starting: named on standard error (with `--json` too, whose
    // list holds only runs that started).
    let not_started: Vec<&String> = queue.into_inner().unwrap_or_default().into();
    if !not_started.is_empty() {
        code = ExitCode::from(130);
        for name in not_started {
            eprintln!(
                "invhost: {name}: not started (cancelled with Ctrl-C); import it with `invhost run \"{name}\"`"
            );
        }
    }
    if args.json {
        print_json(&finished)?;
    }
    Ok(code)
}

/// One line per finished run, then its warnings and error.
pub(super) fn print_outcome(run: &RunRow) {
    let took = duration_text(run);
    match run.state {
        RunState::Succeeded => {
            let api = run
                .api_calls
                .map_or(String::new(), |n| format!("; {n} API calls"));
            println!(
                "{}: succeeded in {took}: {}{api}.",
                run.connection,
                counts_text(run)
            );
        }
        state => {
            eprintln!(
                "{}: {} after {took}: {}",
                run.connection,
                state.as_str(),
                run.error.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
    for warning in &run.warnings {
        eprintln!("warning: {}: {warning}", run.connection);
    }
}

/// `1 tenant, 5000 accounts, ...` in the model's order.
fn counts_text(run: &RunRow) -> String {
    let parts: Vec<String> = crate::store::snapshots::RECORD_TABLES
        .iter()
        .filter_map(|(kind, table)| {
            let n = *run.counts.get(*kind)?;
            let noun = if n == 1 { *kind } else { table };
            Some(format!("{n} {noun}"))
        })
        .collect();
    if parts.is_empty() {
        "no records".to_owned()
    } else {
        parts.join(", ")
    }
}

/// How long a run took, from its stored times (`2.4 s`, `3 min 12 s`).
fn duration_text(run: &RunRow) -> String {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let (Some(start), Some(end)) = (
        parse(&run.started_at),
        run.ended_at.as_deref().and_then(parse),
    ) else {
        return "-".to_owned();
    };
    let millis = (end - start).num_milliseconds().max(0);
    if millis < 60_000 {
        format!("{:.1} s", millis as f64 / 1000.0)
    } else {
        format!("{} min {} s", millis / 60_000, (millis % 60_000) / 1000)
    }
}

pub(super) fn runs(context: &Context, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    // Runs of processes that died show as interrupted, not as running forever.
    Runner::new(
        &context.paths.data_dir,
        &registry,
        None,
        RunSettings::default(),
    )
    .sweep()?;
    let mut store = Store::open(&context.paths.data_dir)?;
    let name = args.name.or(args.connection);
    let rows = store.runs(name.as_deref(), args.limit)?;
    // No history under this name is an error unless a connection goes by it (not imported
    // yet). A removed connection keeps its history, so its name still finds its runs.
    if rows.is_empty()
        && let Some(name) = &name
    {
        store.connection(name)?;
    }
    if args.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("No runs yet. Import a connection with `invhost run NAME`.");
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows
        .iter()
        .map(|r| r.connection.chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:>5}  {:<width$}  {:<11}  {:<24}  {:>9}  {:>9}  RESULT",
        "RUN", "CONNECTION", "STATE", "STARTED", "TOOK", "API CALLS"
    );
    for run in &rows {
        let result = match run.state {
            RunState::Succeeded => counts_text(run),
            _ => run.error.clone().unwrap_or_default(),
        };
        println!(
            "{:>5}  {:<width$}  {:<11}  {:<24}  {:>9}  {:>9}  {result}",
            run.id,
            run.connection,
            run.state.as_str(),
            run.started_at,
            duration_text(run),
            run.api_calls.map_or("-".to_owned(), |n| n.to_string()),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress bars on standard error: one per connection and stage. Hidden when standard error
/// is not a terminal (indicatif's default) or with `--json`.
pub(super) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
}

impl Bars {
    pub(super) fn new(hidden: bool) -> Self {
        let multi = MultiProgress::new();
        if hidden {
            multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Bars {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl RunObserver for Bars {
    fn started(&self, connection: &str, run_id: i64) {
        tracing::debug!(connection, run_id, "Run started.");
    }

    fn progress(&self, connection: &str, progress: &Progress) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let bar = bars
            .entry((connection.to_owned(), progress.stage.clone()))
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                let style = ProgressStyle::with_template(
                    "{prefix:.bold} {bar:30} {human_pos}/{human_len} ({per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar.set_prefix(format!("{connection} · {}", progress.stage));
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
        if let Some(total) = progress.total {
            bar.set_length(total);
        }
        bar.set_position(progress.done);
        if progress.total.is_some_and(|total| progress.done >= total) {
            bar.finish();
        }
    }

    fn finished(&self, run: &RunRow) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        bars.retain(|(connection, _), bar| {
            if *connection == run.connection {
                bar.finish_and_clear();
                false
            } else {
                true
            }
        });
    }
}
