//! `invhost schedules add|list|remove` and `invhost connections schedule`.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};

use super::{Context, print_json};
use crate::schedules::{Definition, ScheduleView, Schedules, spec};

#[derive(Debug, Subcommand)]
pub(super) enum SchedulesCommand {
    /// Add a named schedule; assign it with `invhost connections schedule NAME SCHEDULE`.
    Add(AddArgs),
    /// List schedules with their connections and next run time.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a schedule (refused while connections use it, unless --force).
    Remove {
        /// The schedule.
        name: String,
        /// Unassign the connections that use it, then remove it.
        #[arg(long)]
        force: bool,
    },
}

/// `invhost schedules add`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).multiple(false)
    .args(["cron", "every", "daily", "weekly"])))]
pub(super) struct AddArgs {
    /// Name: letters, digits, underscores and spaces, starting with a letter or digit.
    name: String,
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with
    /// seconds first, e.g. "30 2 * * mon-fri"; @daily, @hourly and friends work too.
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    cron: Option<String>,
    /// A fixed interval counted in UTC from midnight: 30s, 15m, 2h, 1d ...
    #[arg(long, value_name = "DURATION")]
    every: Option<String>,
    /// Every day at this time (24-hour clock) in the schedule's time zone.
    #[arg(long, value_name = "HH:MM")]
    daily: Option<String>,
    /// Every week on DAY (mon ... sun) at HH:MM in the schedule's time zone.
    #[arg(long, num_args = 2, value_names = ["DAY", "HH:MM"])]
    weekly: Option<Vec<String>>,
    /// The IANA time zone of --cron, --daily and --weekly (default: UTC), e.g. Europe/Berlin.
    #[arg(long, value_name = "ZONE", conflicts_with = "every")]
    tz: Option<String>,
}

pub(super) fn run(context: &Context, command: SchedulesCommand) -> anyhow::Result<ExitCode> {
    let mut schedules = Schedules::open(&context.paths.data_dir)?;
    match command {
        SchedulesCommand::Add(args) => {
            let definition = definition(&args)?;
            let view = schedules.add(&args.name, definition, args.tz.as_deref())?;
            println!(
                "Added schedule `{}`: {} ({}); next run {}.",
                view.name,
                view.description,
                view.time_zone,
                view.next_run_text()
            );
            println!(
                "Assign it with `invhost connections schedule CONNECTION {}`; `invhost serve` runs it.",
                view.name
            );
        }
        SchedulesCommand::List { json } => {
            let views = schedules.list()?;
            if json {
                print_json(&views)?;
            } else {
                print_list(&views);
            }
        }
        SchedulesCommand::Remove { name, force } => {
            let (name, unassigned) = schedules.remove(&name, force)?;
            if !unassigned.is_empty() {
                println!(
                    "Unassigned {} from schedule `{name}`.",
                    unassigned
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            println!("Removed schedule `{name}`.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn definition(args: &AddArgs) -> anyhow::Result<Definition> {
    Ok(if let Some(cron) = &args.cron {
        Definition::Cron(cron.trim().to_owned())
    } else if let Some(every) = &args.every {
        Definition::Every(spec::parse_every(every)?)
    } else if let Some(daily) = &args.daily {
        Definition::Daily(spec::TimeOfDay::parse(daily)?)
    } else if let Some([day, time]) = args.weekly.as_deref() {
        Definition::Weekly(spec::parse_day(day)?, spec::TimeOfDay::parse(time)?)
    } else {
        anyhow::bail!("give one of --cron, --every, --daily or --weekly")
    })
}

fn print_list(views: &[ScheduleView]) {
    if views.is_empty() {
        println!(
            "No schedules. Add one with `invhost schedules add NAME --daily 02:30 [--tz ZONE]`."
        );
        return;
    }
    let rows: Vec<[String; 5]> = views
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                match &v.problem {
                    Some(problem) => format!("{} ({problem})", v.description),
                    None => v.description.clone(),
                },
                v.time_zone.clone(),
                v.next_run_text(),
                if v.connections.is_empty() {
                    "-".to_owned()
                } else {
                    v.connections.join(", ")
                },
            ]
        })
        .collect();
    let headers = ["NAME", "DEFINITION", "TIME ZONE", "NEXT RUN", "CONNECTIONS"];
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", text.trim_end());
    };
    line(headers);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
}

/// `invhost connections schedule NAME SCHEDULE|--none`.
pub(super) fn assign(
    context: &Context,
    connection: &str,
    schedule: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut schedules = Schedules::open(&context.paths.data_dir)?;
    let (connection, view) = schedules.assign(connection, schedule)?;
    match view {
        Some(view) => println!(
            "Connection `{connection}` runs on schedule `{}` ({}, {}); next run {}.",
            view.name,
            view.description,
            view.time_zone,
            view.next_run_text()
        ),
        None => println!("Connection `{connection}` has no schedule now."),
    }
    Ok(ExitCode::SUCCESS)
}
