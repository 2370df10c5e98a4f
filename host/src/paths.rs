//! Where the host keeps its data and looks for plugins.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

/// The environment variable with extra plugin directories (`:`-separated on Unix).
pub const PLUGINS_DIR_ENV: &str = "INVHOST_PLUGINS_DIR";

/// The host's directories.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The data directory (database, key file, `invhost.toml`, `plugins/`).
    pub data_dir: PathBuf,
    /// Plugin directories in search order; a source type found twice is kept from the first.
    pub plugin_dirs: Vec<PluginDir>,
}

/// A directory the host looks for plugin libraries in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginDir {
    /// The directory.
    pub path: PathBuf,
    /// Whether the operator named it (`--plugins-dir`, `INVHOST_PLUGINS_DIR`): then a directory
    /// that is missing or cannot be read is reported. The default directories (`<data-dir>/plugins`,
    /// the binary's directory) may well not exist.
    pub explicit: bool,
}

impl PluginDir {
    /// A directory the operator named.
    pub fn explicit(path: impl Into<PathBuf>) -> Self {
        PluginDir {
            path: path.into(),
            explicit: true,
        }
    }

    /// One of the default directories.
    pub fn default_dir(path: impl Into<PathBuf>) -> Self {
        PluginDir {
            path: path.into(),
            explicit: false,
        }
    }
}

impl Paths {
    /// Resolves the directories: `--data-dir` (or `INVHOST_DATA_DIR`, applied by the CLI) else
    /// the platform's data directory; plugin directories are the `--plugins-dir` values, then
    /// `INVHOST_PLUGINS_DIR`, then `<data-dir>/plugins`, then the directory of the binary.
    pub fn resolve(
        data_dir: Option<PathBuf>,
        plugins_dirs: &[PathBuf],
        plugins_env: Option<OsString>,
    ) -> anyhow::Result<Paths> {
        let data_dir = match data_dir {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        let mut plugin_dirs: Vec<PluginDir> =
            plugins_dirs.iter().map(PluginDir::explicit).collect();
        if let Some(env) = plugins_env {
            plugin_dirs.extend(
                std::env::split_paths(&env)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(PluginDir::explicit),
            );
        }
        plugin_dirs.push(PluginDir::default_dir(data_dir.join("plugins")));
        if let Some(dir) = binary_dir() {
            plugin_dirs.push(PluginDir::default_dir(dir));
        }
        Ok(Paths {
            data_dir,
            plugin_dirs,
        })
    }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "invhost")
        .map(|dirs| dirs.data_dir().to_owned())
        .context("no home directory to put the data directory in; pass --data-dir DIR or set INVHOST_DATA_DIR")
}

fn binary_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent().map(Path::to_owned)
}
