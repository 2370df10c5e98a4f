//! The host configuration file: `invhost.toml` in the data directory, or `--config FILE`.
//!
//! Sections: `[cyberark]` (see [`crate::cyberark`]). Unknown sections are refused by name, so a
//! typo never silently disables a setting. A missing default file means "no configuration"; a
//! missing `--config FILE` is an error.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cyberark::{self, CyberArkConfig};

/// The configuration file's name in the data directory.
pub const CONFIG_FILE: &str = "invhost.toml";

/// The sections this build knows.
const SECTIONS: &[&str] = &["cyberark"];

/// The host configuration.
#[derive(Debug, Default, Clone)]
pub struct HostConfig {
    /// Where it was read from, if a file existed.
    pub path: Option<PathBuf>,
    /// The CyberArk Central Credential Provider, when configured.
    pub cyberark: Option<CyberArkConfig>,
}

/// Loads the configuration from `explicit` or `<data_dir>/invhost.toml`.
pub fn load(explicit: Option<&Path>, data_dir: &Path) -> anyhow::Result<HostConfig> {
    let path = match explicit {
        Some(path) if !path.is_file() => {
            bail!(
                "the configuration file {} does not exist; pass an existing file, or leave out --config to use invhost.toml in the data directory",
                path.display()
            )
        }
        Some(path) => path.to_owned(),
        None => {
            let path = data_dir.join(CONFIG_FILE);
            if !path.is_file() {
                return Ok(HostConfig::default());
            }
            path
        }
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    check_sections(&text).with_context(|| format!("in {}", path.display()))?;
    let cyberark = cyberark::load(&path).with_context(|| format!("in {}", path.display()))?;
    Ok(HostConfig {
        path: Some(path),
        cyberark,
    })
}

fn check_sections(text: &str) -> anyhow::Result<()> {
    // Syntax errors are reported with line and key by the section parsers; here only names.
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    if let Some(unknown) = table.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
        bail!(
            "unknown section or key `{unknown}`; known sections: {}",
            SECTIONS.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_default_file_is_no_configuration_but_a_missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(load(None, dir.path()).expect("no file").cyberark.is_none());
        let error = load(Some(&dir.path().join("nope.toml")), dir.path()).expect_err("missing");
        assert!(error.to_string().contains("does not exist"), "{error}");
    }

    #[test]
    fn unknown_sections_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[cyberrak]\nurl = \"https://x\"\n",
        )
        .expect("write");
        let error = load(None, dir.path()).expect_err("typo");
        assert!(
            format!("{error:#}").contains("unknown section or key `cyberrak`"),
            "{error:#}"
        );
    }

    #[test]
    fn a_cyberark_section_is_read_and_validated() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[cyberark]\nurl = \"https://ccp.corp.example\"\napp_id = \"InventoryHost\"\n",
        )
        .expect("write");
        let config = load(None, dir.path()).expect("valid");
        assert_eq!(config.cyberark.expect("configured").app_id, "InventoryHost");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "[cyberark]\nurl = \"https://ccp.corp.example\"\napp_id = \"\"\n",
        )
        .expect("write");
        let error = load(None, dir.path()).expect_err("empty app id");
        assert!(
            format!("{error:#}").contains("cyberark.app_id"),
            "{error:#}"
        );
    }
}
