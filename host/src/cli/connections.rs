//! `invhost connections ...`: add, update, list, show, remove, test, generate-token (and
//! `schedule`, in `schedules.rs`).

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::{Context as _, anyhow, bail};
use clap::Subcommand;
use invhost_plugin_api::{
    ErrorKind,
    protocol::{
        ActionOptions, ActionRequest, ActionResponse, ConnectionInfo, TestReport, TestRequest, op,
    },
};

use super::{Context, print_json, settings::read_document};
use crate::{
    connections::{
        ConnectionView, Connections, GENERATE_TOKEN_ACTION, Prepared, failure_line,
        session::{Interaction, Session},
    },
    plugins::{CallError, CallHandler},
    store::AuthState,
};

#[derive(Debug, Subcommand)]
pub(super) enum ConnectionsCommand {
    /// Add a connection; its plugin validates the settings first.
    Add {
        /// Name: letters, digits, underscores and spaces, starting with a letter or digit.
        name: String,
        /// Source type (see `invhost plugins`).
        #[arg(long = "type", value_name = "SOURCE_TYPE")]
        source_type: String,
        /// The settings document, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
    },
    /// Replace a connection's settings; a secret sent as ******** keeps the stored value.
    Update {
        /// The connection.
        name: String,
        /// The settings document, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
    },
    /// List connections.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one connection (secrets are never shown).
    Show {
        /// The connection.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection.
    Remove {
        /// The connection.
        name: String,
    },
    /// Enable a connection: `run --all`, schedules and supersession consider it again.
    Enable {
        /// The connection.
        name: String,
    },
    /// Disable a connection: its data stays, but `run --all`, schedules and supersession
    /// leave it out (a disabled superseding connection retires nothing).
    Disable {
        /// The connection.
        name: String,
    },
    /// Assign a schedule to a connection (`invhost serve` imports it then), or remove it with
    /// --none. The first scheduled run is the schedule's next slot.
    Schedule {
        /// The connection.
        name: String,
        /// The schedule (see `invhost schedules list`).
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        schedule: Option<String>,
        /// Remove the connection's schedule.
        #[arg(long)]
        none: bool,
    },
    /// Authenticate and make one cheap call.
    Test {
        /// The connection.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate the connection's refresh token by signing in in a browser (device flow).
    GenerateToken {
        /// The connection.
        name: String,
        /// Only print the link; do not open a browser.
        #[arg(long)]
        no_browser: bool,
        /// Give up after this many seconds (1 to 86400).
        #[arg(long, default_value_t = 600, value_name = "SECS",
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
}

pub(super) fn run(context: &Context, command: ConnectionsCommand) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    let mut connections = Connections::open(&context.paths.data_dir, &registry)?;
    match command {
        ConnectionsCommand::Add {
            name,
            source_type,
            settings,
        } => {
            let document = read_document(&settings)?;
            let warnings = connections.add(&name, &source_type, &document)?;
            print_warnings(&warnings);
            println!("Added connection `{name}` ({source_type}).");
        }
        ConnectionsCommand::Update { name, settings } => {
            let document = read_document(&settings)?;
            let warnings = connections.update(&name, &document)?;
            print_warnings(&warnings);
            println!("Updated connection `{name}`.");
        }
        ConnectionsCommand::List { json } => {
            let views = connections.list()?;
            if json {
                print_json(&views)?;
            } else {
                print_list(&views);
            }
        }
        ConnectionsCommand::Show { name, json } => {
            let view = connections.show(&name)?;
            if json {
                print_json(&view)?;
            } else {
                print_show(&view)?;
            }
        }
        ConnectionsCommand::Remove { name } => {
            connections.remove(&name)?;
            println!("Removed connection `{name}`.");
        }
        ConnectionsCommand::Enable { name } => {
            crate::store::Store::open(&context.paths.data_dir)?.set_enabled(&name, true)?;
            println!("Enabled connection `{name}`.");
        }
        ConnectionsCommand::Disable { name } => {
            crate::store::Store::open(&context.paths.data_dir)?.set_enabled(&name, false)?;
            println!("Disabled connection `{name}`.");
        }
        ConnectionsCommand::Schedule { name, schedule, .. } => {
            return super::schedules::assign(context, &name, schedule.as_deref());
        }
        ConnectionsCommand::Test { name, json } => {
            return test(context, &mut connections, &name, json);
        }
        ConnectionsCommand::GenerateToken {
            name,
            no_browser,
            timeout,
        } => {
            return generate_token(context, &mut connections, &name, !no_browser, timeout);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_warnings(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

fn auth_text(view: &ConnectionView) -> String {
    match view.auth_state {
        AuthState::Ok => "ok".to_owned(),
        AuthState::ReauthorizationRequired => "re-authorization required".to_owned(),
    }
}

fn print_list(views: &[ConnectionView]) {
    if views.is_empty() {
        println!(
            "No connections. Add one with `invhost connections add NAME --type TYPE --settings FILE`."
        );
        return;
    }
    let width = views
        .iter()
        .map(|v| v.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<12}  {:<8}  {:<12}  AUTH",
        "NAME", "TYPE", "ENABLED", "SCHEDULE"
    );
    for view in views {
        println!(
            "{:<width$}  {:<12}  {:<8}  {:<12}  {}",
            view.name,
            view.source_type,
            if view.enabled { "yes" } else { "no" },
            view.schedule.as_deref().unwrap_or("-"),
            auth_text(view)
        );
    }
}

fn print_show(view: &ConnectionView) -> anyhow::Result<()> {
    println!("Name:        {}", view.name);
    println!("Type:        {}", view.source_type);
    println!("Enabled:     {}", if view.enabled { "yes" } else { "no" });
    println!("Schedule:    {}", view.schedule.as_deref().unwrap_or("-"));
    println!("Auth:        {}", auth_text(view));
    if let Some(reason) = &view.auth_reason {
        println!("             {reason}");
    }
    println!("Created:     {}", view.created_at);
    println!("Updated:     {}", view.updated_at);
    println!(
        "Settings:\n{}",
        serde_json::to_string_pretty(&view.settings)?
    );
    Ok(())
}

fn session(
    context: &Context,
    name: &str,
    schema: &serde_json::Value,
    key: &crate::secrets::MasterKey,
    open_browser: bool,
) -> anyhow::Result<Arc<dyn CallHandler>> {
    let session = Session::new(
        &context.paths.data_dir,
        name,
        schema.clone(),
        key.clone(),
        Interaction { open_browser },
        context.vault()?,
        crate::connections::session::interrupted(),
    )?;
    Ok(Arc::new(session))
}

/// Turns a failed plugin call into the one-line error (see [`failure_line`]).
fn call_failed(error: CallError, prepared: &Prepared<'_>) -> anyhow::Error {
    let source_type = prepared
        .plugin
        .manifest
        .source_type(&prepared.row.source_type);
    anyhow!(failure_line(&error, source_type, &prepared.row.name))
}

fn test(
    context: &Context,
    connections: &mut Connections<'_>,
    name: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let prepared = connections.prepare(name)?;
    let handler = session(
        context,
        &prepared.row.name,
        &prepared.schema,
        &prepared.key,
        false,
    )?;
    let request = TestRequest {
        source_type: prepared.row.source_type.clone(),
        connection: ConnectionInfo {
            name: prepared.row.name.clone(),
        },
        settings: prepared.settings.clone(),
    };
    let outcome: Result<TestReport, CallError> =
        prepared.plugin.call(op::TEST_CONNECTION, &request, handler);
    match &outcome {
        Ok(_) => connections.record_auth_outcome(&prepared.row.name, None)?,
        Err(error) => {
            if let Some(error) = error.plugin_error() {
                connections.record_auth_outcome(&prepared.row.name, Some(error))?;
            }
        }
    }
    if is_cancelled(&outcome) {
        eprintln!("invhost: cancelled");
        return Ok(ExitCode::from(130));
    }
    let report = outcome.map_err(|e| call_failed(e, &prepared))?;
    if json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", report.summary);
    for fact in &report.facts {
        println!("  {}: {}", fact.label, fact.value);
    }
    if let Some(usage) = report.api_usage {
        let share = if usage.max == 0 {
            0.0
        } else {
            usage.used as f64 * 100.0 / usage.max as f64
        };
        println!(
            "  API usage: {} of {} calls in the last 24 hours ({share:.1}%)",
            usage.used, usage.max
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn is_cancelled<T>(outcome: &Result<T, CallError>) -> bool {
    matches!(outcome, Err(e) if e.plugin_error().is_some_and(|e| e.kind == ErrorKind::CANCELLED))
}

pub(super) fn generate_token(
    context: &Context,
    connections: &mut Connections<'_>,
    name: &str,
    open_browser: bool,
    timeout: u64,
) -> anyhow::Result<ExitCode> {
    let prepared = connections.prepare(name)?;
    let source_type = prepared.row.source_type.clone();
    let offered = prepared
        .plugin
        .manifest
        .source_type(&source_type)
        .is_some_and(|t| t.actions.iter().any(|a| a.id == GENERATE_TOKEN_ACTION));
    if !offered {
        bail!(
            "source type `{source_type}` has no token to generate (its plugin offers no `{GENERATE_TOKEN_ACTION}` action)"
        );
    }
    let handler = session(
        context,
        &prepared.row.name,
        &prepared.schema,
        &prepared.key,
        open_browser,
    )?;
    let request = ActionRequest {
        source_type,
        action: GENERATE_TOKEN_ACTION.to_owned(),
        connection: ConnectionInfo {
            name: prepared.row.name.clone(),
        },
        settings: prepared.settings.clone(),
        options: ActionOptions {
            timeout_secs: timeout,
        },
    };
    let outcome: Result<ActionResponse, CallError> =
        prepared.plugin.call(op::RUN_ACTION, &request, handler);
    if is_cancelled(&outcome) {
        eprintln!("invhost: cancelled; no token was stored");
        return Ok(ExitCode::from(130));
    }
    let response = outcome.map_err(|e| call_failed(e, &prepared))?;
    // Storing the filled values also clears a "re-authorization required" mark.
    connections
        .apply_updates(
            &prepared.row.name,
            GENERATE_TOKEN_ACTION,
            &response.settings_updates,
        )
        .context("storing the new token")?;
    for shown in &response.show_once {
        // Deliberately printed once: the operator must store it where invhost cannot write.
        println!("{}: {}", shown.label, shown.value.expose());
        println!("  {}", shown.instruction);
    }
    println!("{}", response.message);
    Ok(ExitCode::SUCCESS)
}
