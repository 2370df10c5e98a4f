//! The loaded plugins, found by source type.

use invhost_plugin_api::SourceType;

use super::{
    library::LoadedPlugin,
    loader::{LoadReport, Refusal, UnreadableDir, load_dirs},
};
use crate::paths::PluginDir;

/// What the host loaded from its plugin directories.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    refused: Vec<Refusal>,
    unreadable_dirs: Vec<UnreadableDir>,
}

/// A source type that no loaded plugin offers.
#[derive(Debug, thiserror::Error)]
#[error("no loaded plugin offers source type `{wanted}`; {}", available_hint(.available))]
pub struct UnknownSourceType {
    /// The source type asked for.
    pub wanted: String,
    /// The source types on offer.
    pub available: Vec<String>,
}

fn available_hint(available: &[String]) -> String {
    if available.is_empty() {
        "no plugins are loaded: check the plugin directories with `invhost plugins`".to_owned()
    } else {
        format!("available: {}", available.join(", "))
    }
}

impl Registry {
    /// Loads every library in `dirs`.
    pub fn load(dirs: &[PluginDir], host_version: &str) -> Self {
        let LoadReport {
            plugins,
            refused,
            unreadable_dirs,
        } = load_dirs(dirs, host_version);
        Registry {
            plugins,
            refused,
            unreadable_dirs,
        }
    }

    /// The loaded plugins.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The refused libraries.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// The plugin directories that could not be searched.
    pub fn unreadable_dirs(&self) -> &[UnreadableDir] {
        &self.unreadable_dirs
    }

    /// The plugin offering `source_type`, with the source type's description.
    pub fn source_type(
        &self,
        source_type: &str,
    ) -> Result<(&LoadedPlugin, &SourceType), UnknownSourceType> {
        self.plugins
            .iter()
            .find_map(|p| p.manifest.source_type(source_type).map(|t| (p, t)))
            .ok_or_else(|| UnknownSourceType {
                wanted: source_type.to_owned(),
                available: self.source_type_ids(),
            })
    }

    /// Every source type on offer.
    pub fn source_type_ids(&self) -> Vec<String> {
        self.plugins
            .iter()
            .flat_map(|p| p.manifest.source_types.iter().map(|t| t.id.clone()))
            .collect()
    }
}
