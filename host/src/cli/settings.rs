//! `invhost settings validate SOURCE_TYPE FILE|-`.

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use invhost_plugin_api::protocol::Purpose;
use serde_json::json;

use super::{Context, print_json};
use crate::plugins::CallError;

#[derive(Debug, Subcommand)]
pub(super) enum SettingsCommand {
    /// Validate a settings document without saving it; exit 0 when valid.
    Validate {
        /// The source type (see `invhost plugins`).
        source_type: String,
        /// The settings file, or `-` for standard input.
        file: PathBuf,
        /// Validate for saving (a refresh token may still be empty) or for an import.
        #[arg(long, value_enum, default_value_t = PurposeArg::Save)]
        purpose: PurposeArg,
        /// Print JSON ({"valid", "warnings", "error"}) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum PurposeArg {
    Save,
    Import,
}

pub(super) fn run(context: &Context, command: SettingsCommand) -> anyhow::Result<ExitCode> {
    let SettingsCommand::Validate {
        source_type,
        file,
        purpose,
        json,
    } = command;
    let document = read_document(&file)?;
    let registry = context.registry();
    let (plugin, _) = registry.source_type(&source_type)?;
    let purpose = match purpose {
        PurposeArg::Save => Purpose::Save,
        PurposeArg::Import => Purpose::Import,
    };
    match plugin.validate(&source_type, &document, purpose) {
        Ok(response) => {
            if json {
                print_json(&json!({"valid": true, "warnings": response.warnings, "error": null}))?;
            } else {
                for warning in &response.warnings {
                    eprintln!("warning: {warning}");
                }
                println!("valid");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Plugin(error)) if json => {
            print_json(&json!({"valid": false, "warnings": [], "error": error}))?;
            Ok(ExitCode::FAILURE)
        }
        Err(error) => bail!("{error}"),
    }
}

/// Reads a JSON document from a file or, for `-`, standard input.
pub(super) fn read_document(file: &Path) -> anyhow::Result<serde_json::Value> {
    let (text, source) = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading settings from standard input")?;
        (text, "standard input".to_owned())
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading settings file {}", file.display()))?;
        (text, file.display().to_string())
    };
    serde_json::from_str(&text).with_context(|| format!("{source} is not valid JSON"))
}
