//! `invhost cyberark test --query Q [--field F]`: checks a vault lookup and shows which
//! properties the account has, never a value.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{Context, print_json};
use crate::cyberark::{BlockingCcpClient, CONTENT};

#[derive(Debug, Subcommand)]
pub(super) enum CyberArkCommand {
    /// Look an account up and list its property names (never a value).
    Test {
        /// The account query, e.g. `Safe=Salesforce;Object=acme-prod`.
        #[arg(long)]
        query: String,
        /// A property that must exist and hold a value (empty: the password).
        #[arg(long)]
        field: Option<String>,
        /// Print JSON: one object on stdout whatever the outcome (`ok`, `properties` when
        /// the account was read, `field`, `error` and `reason` when it failed).
        #[arg(long)]
        json: bool,
    },
}

/// What the `--field` property looks like in the account (never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldState {
    Present,
    Empty,
    Missing,
}

/// The outcome of one test: the property names when the account was read, the field's
/// state when one was asked for, and the one-line reason when the test fails.
#[derive(Debug, Default)]
struct Outcome {
    properties: Option<Vec<String>>,
    field: Option<FieldState>,
    error: Option<(String, &'static str)>,
}

pub(super) fn run(context: &Context, command: CyberArkCommand) -> anyhow::Result<ExitCode> {
    let CyberArkCommand::Test { query, field, json } = command;
    let outcome = test(context, &query, field.as_deref());
    if json {
        print_json(&outcome_json(&query, field.as_deref(), &outcome))?;
    } else if let Some(names) = &outcome.properties {
        println!("The lookup works: one account matches `{query}`.");
        println!("Properties: {}", names.join(", "));
        if let (Some(f), Some(state)) = (&field, outcome.field) {
            let state = match state {
                FieldState::Present => "present",
                FieldState::Empty => "present but empty",
                FieldState::Missing => "missing",
            };
            println!("{}: {state}.", capitalised(&shown(f)));
        }
    }
    match outcome.error {
        Some((message, _)) => Err(anyhow!(message)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// With `--json`, prints the outcome of a test that could not start because the host
/// configuration does not load (every command stops then; this one still answers its object).
pub(super) fn config_failed(command: &CyberArkCommand, error: &anyhow::Error) {
    let CyberArkCommand::Test { query, field, json } = command;
    if *json {
        let outcome = Outcome {
            error: Some((format!("{error:#}"), "config")),
            ..Outcome::default()
        };
        // Printing JSON to stdout fails only when stdout is gone; the stderr line follows.
        let _ = print_json(&outcome_json(query, field.as_deref(), &outcome));
    }
}

/// Looks the account up and checks the field; every failure becomes the outcome's error.
fn test(context: &Context, query: &str, field: Option<&str>) -> Outcome {
    let mut outcome = Outcome::default();
    let Some(config) = context.config.cyberark.as_ref() else {
        outcome.error = Some((
            "CyberArk is not configured: add a [cyberark] section to invhost.toml in the data \
             directory (or pass --config FILE)"
                .to_owned(),
            "not_configured",
        ));
        return outcome;
    };
    let client = match BlockingCcpClient::new(config) {
        Ok(client) => client,
        Err(error) => {
            outcome.error = Some((error.to_string(), "config"));
            return outcome;
        }
    };
    let account = match client.account(query) {
        Ok(account) => account,
        Err(error) => {
            outcome.error = Some((error.to_string(), error.reason()));
            return outcome;
        }
    };
    outcome.properties = Some(
        account
            .property_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    );
    if let Some(f) = field {
        match account.get(f) {
            Ok(value) if value.expose().is_empty() => {
                outcome.field = Some(FieldState::Empty);
                outcome.error = Some((
                    format!(
                        "{} of the CyberArk account matching `{query}` is empty; store the \
                         value there in CyberArk, or name another property",
                        shown(f)
                    ),
                    "empty_property",
                ));
            }
            Ok(_) => outcome.field = Some(FieldState::Present),
            Err(error) => {
                outcome.field = Some(FieldState::Missing);
                outcome.error = Some((error.to_string(), error.reason()));
            }
        }
    }
    outcome
}

/// `--json`: one object, whatever happened.
fn outcome_json(query: &str, field: Option<&str>, outcome: &Outcome) -> Value {
    let mut object = Map::new();
    object.insert("ok".to_owned(), json!(outcome.error.is_none()));
    object.insert("query".to_owned(), json!(query));
    if let Some(names) = &outcome.properties {
        object.insert("properties".to_owned(), json!(names));
    }
    if let Some(f) = field {
        let mut about = Map::new();
        about.insert("name".to_owned(), json!(f));
        if let Some(state) = outcome.field {
            about.insert("present".to_owned(), json!(state != FieldState::Missing));
            about.insert("empty".to_owned(), json!(state == FieldState::Empty));
        }
        object.insert("field".to_owned(), Value::Object(about));
    }
    if let Some((message, reason)) = &outcome.error {
        object.insert("error".to_owned(), json!(message));
        object.insert("reason".to_owned(), json!(reason));
    }
    Value::Object(object)
}

/// `text` with its first letter in upper case.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// How a field is named in messages: the property, or the password.
fn shown(field: &str) -> String {
    if field.trim().is_empty() {
        format!("the password ({CONTENT})")
    } else {
        format!("property `{}`", field.trim())
    }
}
