//! `invhost cyberark test --query Q [--field F]`: checks a vault lookup and shows which
//! properties the account has, never a value.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Subcommand;
use serde_json::json;

use super::{Context, print_json};
use crate::cyberark::BlockingCcpClient;

#[derive(Debug, Subcommand)]
pub(super) enum CyberArkCommand {
    /// Look an account up and list its property names (never a value).
    Test {
        /// The account query, e.g. `Safe=Salesforce;Object=acme-prod`.
        #[arg(long)]
        query: String,
        /// A property that must exist (empty: the password).
        #[arg(long)]
        field: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(context: &Context, command: CyberArkCommand) -> anyhow::Result<ExitCode> {
    let CyberArkCommand::Test { query, field, json } = command;
    let config = context.config.cyberark.as_ref().ok_or_else(|| {
        anyhow!("CyberArk is not configured: add a [cyberark] section to invhost.toml in the data directory (or pass --config FILE)")
    })?;
    let client = BlockingCcpClient::new(config).context("setting up the CyberArk client")?;
    let account = client.account(&query)?;
    let names = account.property_names();
    let field_present = field.as_deref().map(|f| account.get(f).map(|_| ()));
    if json {
        print_json(&json!({
            "ok": field_present.as_ref().is_none_or(Result::is_ok),
            "properties": names,
            "field": field.as_ref().map(|f| json!({"name": f, "present": field_present.as_ref().is_some_and(Result::is_ok)})),
        }))?;
    } else {
        println!("The lookup works: one account matches `{query}`.");
        println!("Properties: {}", names.join(", "));
    }
    match (field, field_present) {
        (Some(f), Some(Ok(()))) if !json => {
            let shown = if f.is_empty() {
                "the password (Content)".to_owned()
            } else {
                format!("`{f}`")
            };
            println!("Property {shown}: present.");
            Ok(ExitCode::SUCCESS)
        }
        (_, Some(Err(error))) => Err(error.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
