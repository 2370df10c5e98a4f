//! What a plugin says about itself when it is loaded.

use serde::{Deserialize, Serialize};

/// The version of the plugin API this crate implements (its own Cargo version).
///
/// A plugin's manifest carries the value it was built with; the host accepts a plugin whose
/// `api_version` has the host's major version (see `docs/plugin-author-guide.md`).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A plugin's self-description, returned by `init`.
///
/// Read tolerantly: fields a newer plugin adds are ignored by an older host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stable identifier of the plugin, lowercase (`salesforce`).
    pub plugin_id: String,
    /// The plugin's own release (semver).
    pub plugin_version: String,
    /// The plugin-api version the plugin was built against (semver); [`API_VERSION`] by default.
    pub api_version: String,
    /// The source types the plugin offers.
    pub source_types: Vec<SourceType>,
}

/// One kind of connection a plugin can import from (one SaaS product).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceType {
    /// Identifier used in connections and on the command line (`salesforce`): a lowercase
    /// letter, then lowercase letters, digits and underscores; at most 64 characters.
    pub id: String,
    /// A name for people (`Salesforce.com`).
    pub title: String,
    /// One or two sentences for the connection form.
    pub description: String,
    /// Buttons the connection form shows (`generate_refresh_token`).
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Source types whose licenses this one retires while a connection of it is enabled
    /// (a SaaS-management connector supersedes a direct connector).
    #[serde(default)]
    pub supersedes: Vec<String>,
}

/// A named operation on a connection's settings that a form shows as a button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Identifier (`generate_refresh_token`).
    pub id: String,
    /// Button label (`Generate`).
    pub title: String,
    /// What it does, for a tooltip.
    pub description: String,
    /// Settings fields the action fills, as dotted paths (`credentials.refresh_token`).
    #[serde(default)]
    pub fills: Vec<String>,
}

impl Manifest {
    /// Looks up one of the plugin's source types.
    pub fn source_type(&self, id: &str) -> Option<&SourceType> {
        self.source_types.iter().find(|t| t.id == id)
    }
}

/// Whether `id` is a valid plugin or source-type identifier: a lowercase letter, then lowercase
/// letters, digits or underscores, at most 64 characters.
pub fn is_valid_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 64
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for (id, ok) in [
            ("salesforce", true),
            ("saas_manager2", true),
            ("", false),
            ("Salesforce", false),
            ("2fa", false),
            ("sales-force", false),
            ("sales force", false),
        ] {
            assert_eq!(is_valid_identifier(id), ok, "{id:?}");
        }
    }

    #[test]
    fn manifest_from_a_newer_plugin_with_extra_fields_still_reads() {
        // JSON that crosses the ABI is read tolerantly: a 1.3 plugin may add fields.
        let json = serde_json::json!({
            "plugin_id": "x", "plugin_version": "1.0.0", "api_version": "1.3.0",
            "source_types": [{"id": "x", "title": "X", "description": "d", "icon": "x.svg"}],
            "capabilities": ["future"]
        });
        let manifest: Manifest = serde_json::from_value(json).expect("tolerant reader");
        assert_eq!(manifest.source_types[0].actions, vec![]);
    }
}
