//! The conformance check behind `invhost plugins check PATH`: what a plugin author runs before
//! shipping a library.
//!
//! It loads the one library the way the host does, then for each source type checks that the
//! settings schema is an object schema that compiles (with the `jsonschema` crate), that secrets
//! follow the conventions, and that validating `{}` refuses with one message naming every
//! required field.

use std::path::Path;

use invhost_plugin_api::{
    ErrorKind,
    protocol::{Purpose, ValidationDetails},
    settings::MISSING_PREFIX,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    library::{CallError, LoadedPlugin},
    loader::load_library,
};

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// All checks of one library.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The library.
    pub path: String,
    /// The checks in order.
    pub steps: Vec<Step>,
}

impl CheckReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.ok)
    }

    /// The first failure, for the one-line error.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }

    fn push(&mut self, name: impl Into<String>, outcome: Result<String, String>) {
        let (ok, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.steps.push(Step {
            name: name.into(),
            ok,
            detail,
        });
    }
}

/// Checks one plugin library.
pub fn check_library(path: &Path, host_version: &str) -> CheckReport {
    let mut report = CheckReport {
        path: path.display().to_string(),
        steps: Vec::new(),
    };
    let plugin = match load_library(path, host_version) {
        Ok(plugin) => plugin,
        Err(refusal) => {
            report.push("load", Err(refusal.reason));
            return report;
        }
    };
    let m = &plugin.manifest;
    report.push(
        "load",
        Ok(format!(
            "plugin `{}` {} built against plugin-api {}",
            m.plugin_id, m.plugin_version, m.api_version
        )),
    );
    for source_type in &m.source_types {
        let id = &source_type.id;
        let schema = check_schema(&plugin, id);
        let compiled = schema.as_ref().ok().cloned();
        report.push(format!("schema {id}"), schema.map(|s| describe_schema(&s)));
        if let Some(schema) = compiled {
            report.push(
                format!("validate {{}} for {id}"),
                check_empty_document(&plugin, id, &schema),
            );
        }
    }
    report
}

fn check_schema(plugin: &LoadedPlugin, source_type: &str) -> Result<Value, String> {
    let schema = plugin
        .settings_schema(source_type)
        .map_err(|e| format!("the schema call failed: {e}"))?;
    jsonschema::validator_for(&schema).map_err(|e| format!("the schema does not compile: {e}"))?;
    if schema.get("type") != Some(&json!("object"))
        || !schema.get("properties").is_some_and(Value::is_object)
    {
        return Err("the schema is not an object schema with properties".to_owned());
    }
    if let Some(path) = secret_without_write_only(&schema, "") {
        return Err(format!(
            "secret `{path}` has `x-secret` but not `writeOnly: true`"
        ));
    }
    Ok(schema)
}

fn describe_schema(schema: &Value) -> String {
    let properties = schema["properties"]
        .as_object()
        .map(|p| p.len())
        .unwrap_or_default();
    let mut secrets = Vec::new();
    collect_secrets(schema, "", &mut secrets);
    format!(
        "compiles; {properties} top-level properties; secrets: {}",
        if secrets.is_empty() {
            "none".to_owned()
        } else {
            secrets.join(", ")
        }
    )
}

fn collect_secrets(schema: &Value, path: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if map.get("x-secret") == Some(&Value::Bool(true)) {
                out.push(path.trim_start_matches('/').to_owned());
            }
            for (key, child) in map {
                collect_secrets(child, &format!("{path}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_secrets(child, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn secret_without_write_only(schema: &Value, path: &str) -> Option<String> {
    let mut secrets = Vec::new();
    collect_secrets(schema, path, &mut secrets);
    secrets.into_iter().find(|p| {
        let pointer = format!("/{p}");
        schema.pointer(&pointer).and_then(|s| s.get("writeOnly")) != Some(&Value::Bool(true))
    })
}

fn check_empty_document(
    plugin: &LoadedPlugin,
    source_type: &str,
    schema: &Value,
) -> Result<String, String> {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match plugin.validate(source_type, &json!({}), Purpose::Save) {
        Ok(_) if required.is_empty() => Ok("valid: the schema requires nothing".to_owned()),
        Ok(_) => Err(format!(
            "`{{}}` was accepted, but the schema requires {}",
            required.join(", ")
        )),
        Err(CallError::Plugin(error)) if error.kind == ErrorKind::CONFIG => {
            if !error.message.starts_with(MISSING_PREFIX) {
                return Err(format!(
                    "the message does not start with `{MISSING_PREFIX}`: {}",
                    error.message
                ));
            }
            let details: ValidationDetails =
                serde_json::from_value(error.details.clone()).unwrap_or_default();
            let unnamed: Vec<&String> = required
                .iter()
                .filter(|r| !details.missing.contains(r) || !error.message.contains(r.as_str()))
                .collect();
            if unnamed.is_empty() {
                Ok(format!("refused, naming {}", required.join(", ")))
            } else {
                Err(format!(
                    "the message does not name every required field; missing from it: {}",
                    unnamed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        Err(other) => Err(format!("validation did not answer a config error: {other}")),
    }
}
