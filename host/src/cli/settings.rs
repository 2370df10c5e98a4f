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
    let mut reader = serde_json::Deserializer::from_str(&text);
    serde::Deserialize::deserialize(&mut reader)
        .and_then(|Strict(document)| reader.end().map(|()| document))
        .map_err(|error| match error.classify() {
            // Valid JSON that says a key twice (the one data error `Strict` raises).
            serde_json::error::Category::Data => anyhow::anyhow!("{source}: {error}"),
            _ => anyhow::Error::new(error).context(format!("{source} is not valid JSON")),
        })
}

/// A JSON document in which no object names a key twice. serde_json keeps the last of two
/// equal keys; a settings document that says `login_url` twice is a mistake to point out, not
/// a choice to make for the operator.
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{}` is given twice in one object (keep one); the second is",
                    key.escape_debug()
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}
