//! `invhost plugins [--json]` and `invhost plugins check PATH`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::bail;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Context, print_json};
use crate::{
    HOST_VERSION,
    plugins::{check::check_library, loader::RefusalKind},
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct PluginsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    #[command(subcommand)]
    command: Option<PluginsCommand>,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Check one plugin library: manifest, API version, schemas, validation messages.
    Check {
        /// The library file (.so, .dylib or .dll).
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Listing<'a> {
    host_version: &'a str,
    api_version: &'a str,
    plugin_dirs: Vec<String>,
    plugins: Vec<PluginEntry<'a>>,
    refused: Vec<RefusedEntry>,
    unreadable_dirs: Vec<UnreadableDirEntry>,
}

#[derive(Serialize)]
struct UnreadableDirEntry {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct PluginEntry<'a> {
    plugin_id: &'a str,
    plugin_version: &'a str,
    api_version: &'a str,
    path: String,
    source_types: &'a [invhost_plugin_api::SourceType],
}

#[derive(Serialize)]
struct RefusedEntry {
    path: String,
    kind: RefusalKind,
    reason: String,
}

pub(super) fn run(context: &Context, args: PluginsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(PluginsCommand::Check { path, json }) => check(&path, json),
        None => list(context, args.json),
    }
}

fn list(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    let listing = Listing {
        host_version: HOST_VERSION,
        api_version: invhost_plugin_api::API_VERSION,
        plugin_dirs: context
            .paths
            .plugin_dirs
            .iter()
            .map(|d| d.path.display().to_string())
            .collect(),
        plugins: registry
            .plugins()
            .iter()
            .map(|p| PluginEntry {
                plugin_id: &p.manifest.plugin_id,
                plugin_version: &p.manifest.plugin_version,
                api_version: &p.manifest.api_version,
                path: p.path.display().to_string(),
                source_types: &p.manifest.source_types,
            })
            .collect(),
        refused: registry
            .refused()
            .iter()
            .map(|r| RefusedEntry {
                path: r.path.display().to_string(),
                kind: r.kind,
                reason: r.reason.clone(),
            })
            .collect(),
        unreadable_dirs: registry
            .unreadable_dirs()
            .iter()
            .map(|d| UnreadableDirEntry {
                path: d.path.display().to_string(),
                reason: d.reason.clone(),
            })
            .collect(),
    };
    if json {
        print_json(&listing)?;
    } else {
        print_listing(&listing);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_listing(listing: &Listing<'_>) {
    if listing.plugins.is_empty() {
        // The directories that could be read; the others are listed below with the reason.
        let searched: Vec<&str> = listing
            .plugin_dirs
            .iter()
            .map(String::as_str)
            .filter(|dir| !listing.unreadable_dirs.iter().any(|u| u.path == *dir))
            .collect();
        if searched.is_empty() {
            println!("No plugins loaded.");
        } else {
            println!("No plugins loaded. Searched: {}", searched.join(", "));
        }
    }
    for plugin in &listing.plugins {
        println!(
            "{} {} (plugin-api {}) {}",
            plugin.plugin_id, plugin.plugin_version, plugin.api_version, plugin.path
        );
        for source_type in plugin.source_types {
            println!("  {:<20} {}", source_type.id, source_type.title);
        }
    }
    if !listing.unreadable_dirs.is_empty() {
        println!("Plugin directories not searched:");
        for dir in &listing.unreadable_dirs {
            println!("  {}: {}", dir.path, dir.reason);
        }
    }
    if !listing.refused.is_empty() {
        println!("Refused:");
        for refused in &listing.refused {
            println!("  {}: {}", refused.path, refused.reason);
        }
    }
}

fn check(path: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    if !path.is_file() {
        bail!(
            "{} is not a file; give the path of a plugin library",
            path.display()
        );
    }
    let report = check_library(path, HOST_VERSION);
    if json {
        print_json(&report)?;
    } else {
        for step in &report.steps {
            println!(
                "{:<6} {}: {}",
                if step.ok { "ok" } else { "FAILED" },
                step.name,
                step.detail
            );
        }
    }
    match report.first_failure() {
        None => Ok(ExitCode::SUCCESS),
        Some(step) => bail!(
            "{} failed the check ({}): {}",
            path.display(),
            step.name,
            step.detail
        ),
    }
}
