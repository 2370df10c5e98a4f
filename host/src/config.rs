//! The host configuration file: `invhost.toml` in the data directory, or `--config FILE`.
//!
//! Sections: `[cyberark]` (see [`crate::cyberark`]) and `[runs]` (see [`RunsConfig`]). Unknown sections are refused by name, so a
//! typo never silently disables a setting. A missing default file means "no configuration"; a
//! missing `--config FILE` is an error.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cyberark::{self, CyberArkConfig};

/// The configuration file's name in the data directory.
pub const CONFIG_FILE: &str = "invhost.toml";

/// The sections this build knows.
const SECTIONS: &[&str] = &["cyberark", "runs"];

/// The host configuration.
#[derive(Debug, Default, Clone)]
pub struct HostConfig {
    /// Where it was read from, if a file existed.
    pub path: Option<PathBuf>,
    /// The CyberArk Central Credential Provider, when configured.
    pub cyberark: Option<CyberArkConfig>,
    /// How imports run.
    pub runs: RunsConfig,
}

/// `[runs]`: how imports run.
///
/// ```toml
/// [runs]
/// keep_snapshots = 3   # snapshots kept per connection, the current one included (1..=100)
/// max_parallel = 2     # connections imported at the same time (1..=16)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunsConfig {
    /// Snapshots kept per connection, the current one included.
    pub keep_snapshots: u32,
    /// Connections imported at the same time by `invhost run --all` and the scheduler.
    pub max_parallel: u32,
}

impl Default for RunsConfig {
    fn default() -> Self {
        RunsConfig {
            keep_snapshots: 3,
            max_parallel: 2,
        }
    }
}

impl RunsConfig {
    /// Reads `[runs]` from the file's text; absent means the defaults.
    fn parse(text: &str) -> anyhow::Result<RunsConfig> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            runs: Option<RunsConfig>,
        }
        let table: toml::Table = text.parse().context("the file is not valid TOML")?;
        let Some(section) = table.get("runs") else {
            return Ok(RunsConfig::default());
        };
        let file: File = toml::Table::from_iter([("runs".to_owned(), section.clone())])
            .try_into()
            .map_err(|e: toml::de::Error| {
                anyhow::anyhow!("[runs]: {}", e.message().trim().replace('\n', " "))
            })?;
        let runs = file.runs.unwrap_or_default();
        if !(1..=100).contains(&runs.keep_snapshots) {
            bail!(
                "runs.keep_snapshots must be between 1 and 100 (found {})",
                runs.keep_snapshots
            );
        }
        if !(1..=16).contains(&runs.max_parallel) {
            bail!(
                "runs.max_parallel must be between 1 and 16 (found {})",
                runs.max_parallel
            );
        }
        Ok(runs)
    }
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
    let runs = RunsConfig::parse(&text).with_context(|| format!("in {}", path.display()))?;
    Ok(HostConfig {
        path: Some(path),
        cyberark,
        runs,
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
    fn the_runs_section_has_defaults_and_named_limits() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, "[runs]\nkeep_snapshots = 5\n").expect("write");
        let config = load(None, dir.path()).expect("valid");
        assert_eq!(
            config.runs,
            RunsConfig {
                keep_snapshots: 5,
                max_parallel: 2
            }
        );
        for (text, expected) in [
            (
                "[runs]\nkeep_snapshots = 0\n",
                "runs.keep_snapshots must be between 1 and 100",
            ),
            (
                "[runs]\nmax_parallel = 99\n",
                "runs.max_parallel must be between 1 and 16",
            ),
            ("[runs]\nkeep = 2\n", "[runs]: unknown field `keep`"),
        ] {
            std::fs::write(&path, text).expect("write");
            let error = load(None, dir.path()).expect_err(text);
            assert!(format!("{error:#}").contains(expected), "{error:#}");
        }
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
