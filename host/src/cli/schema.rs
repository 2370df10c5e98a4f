//! `invhost schema SOURCE_TYPE`.

use std::process::ExitCode;

use clap::Args;

use super::{Context, print_json};

#[derive(Debug, Args)]
pub(super) struct SchemaArgs {
    /// The source type (see `invhost plugins`).
    source_type: String,
}

pub(super) fn run(context: &Context, args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let registry = context.registry();
    let (plugin, _) = registry.source_type(&args.source_type)?;
    let schema = plugin.settings_schema(&args.source_type)?;
    print_json(&schema)?;
    Ok(ExitCode::SUCCESS)
}
