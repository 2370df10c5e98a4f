//! Finding and loading plugin libraries.
//!
//! Every file with the platform's library extension in each plugin directory is loaded with
//! abi_stable's `lib_header_from_path` (not the per-type singleton loader, which would return
//! the first library for every path). Each library that fails is refused with a one-line
//! reason; the full abi_stable report goes to the debug log. Libraries are never unloaded.

use std::{
    collections::{BTreeSet, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use invhost_plugin_api::{
    API_VERSION, ErrorKind, Manifest,
    abi::PluginModV1_Ref,
    abi_stable::{
        library::{LibraryError, RootModuleError, lib_header_from_path},
        std_types::RStr,
    },
    manifest::is_valid_identifier,
    protocol::InitRequest,
};
use serde::Serialize;

use super::{
    super::paths::PluginDir,
    callbacks::{Callbacks, NoInteraction, PluginLabel},
    library::LoadedPlugin,
    version::check_api_version,
};

/// Why a library was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// It could not be opened as a shared library.
    Unreadable,
    /// It is a shared library but not an invhost plugin.
    NotAPlugin,
    /// It was built against a plugin-api this host does not support.
    IncompatibleApi,
    /// Its initialisation answered an error.
    InitFailed,
    /// It panicked while loading or initialising.
    Panicked,
    /// Its manifest is unreadable or breaks the rules.
    InvalidManifest,
    /// It offers a source type another loaded plugin already offers.
    DuplicateSourceType,
}

/// A library that was not loaded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// The library.
    pub path: PathBuf,
    /// The category.
    pub kind: RefusalKind,
    /// One line for the operator: what is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// A plugin directory that could not be searched, and why.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableDir {
    /// The directory.
    pub path: PathBuf,
    /// One line for the operator: what is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for UnreadableDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// What loading the plugin directories gave.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Plugins loaded, in directory order then file-name order.
    pub plugins: Vec<LoadedPlugin>,
    /// Libraries refused.
    pub refused: Vec<Refusal>,
    /// Plugin directories that could not be searched: an explicitly named one that is missing or
    /// unreadable, or a default one that exists but cannot be read.
    pub unreadable_dirs: Vec<UnreadableDir>,
}

/// The file extension of shared libraries on this platform.
pub const LIBRARY_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// Loads every library in `dirs`; a source type offered twice is kept from the first library
/// that offers it.
///
/// A directory that cannot be searched is skipped. When the operator named it, or when it exists
/// but cannot be read, it is logged as a warning and listed in
/// [`LoadReport::unreadable_dirs`]; a default directory that does not exist is normal.
pub fn load_dirs(dirs: &[PluginDir], host_version: &str) -> LoadReport {
    let mut report = LoadReport::default();
    let mut seen = BTreeSet::new();
    let mut offered: HashMap<String, (String, PathBuf)> = HashMap::new();
    let mut paths = Vec::new();
    for dir in dirs {
        match library_files(&dir.path) {
            Ok(files) => paths.extend(files),
            Err(error) if !dir.explicit && error.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(dir = %dir.path.display(), "Default plugin directory absent; skipped.");
            }
            Err(error) => {
                let unreadable = UnreadableDir {
                    path: dir.path.clone(),
                    reason: unreadable_reason(&error, dir.explicit),
                };
                tracing::warn!(dir = %unreadable.path.display(), reason = %unreadable.reason, "Plugin directory skipped.");
                report.unreadable_dirs.push(unreadable);
            }
        }
    }
    for path in paths {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
        if !seen.insert(canonical) {
            continue;
        }
        match load_library(&path, host_version) {
            Ok(plugin) => match duplicate(&plugin, &offered) {
                Some(reason) => report.refused.push(Refusal {
                    path,
                    kind: RefusalKind::DuplicateSourceType,
                    reason,
                }),
                None => {
                    for source_type in &plugin.manifest.source_types {
                        let owner = (plugin.id().to_owned(), plugin.path.clone());
                        offered.insert(source_type.id.clone(), owner);
                    }
                    report.plugins.push(plugin);
                }
            },
            Err(refusal) => {
                tracing::info!(path = %refusal.path.display(), reason = %refusal.reason, "Refused a plugin library.");
                report.refused.push(refusal);
            }
        }
    }
    report
}

fn duplicate(
    plugin: &LoadedPlugin,
    offered: &HashMap<String, (String, PathBuf)>,
) -> Option<String> {
    plugin.manifest.source_types.iter().find_map(|t| {
        offered.get(&t.id).map(|(owner, path)| {
            format!(
                "offers source type `{}`, which plugin `{owner}` ({}) already offers; remove one of the two libraries",
                t.id,
                path.display()
            )
        })
    })
}

/// Why a plugin directory could not be searched, in one line that says what to do.
fn unreadable_reason(error: &std::io::Error, explicit: bool) -> String {
    let fix = if explicit {
        "fix the path given with --plugins-dir or INVHOST_PLUGINS_DIR"
    } else {
        "make it a directory of plugin libraries, or remove it"
    };
    match error.kind() {
        std::io::ErrorKind::NotFound => format!("does not exist; {fix}"),
        std::io::ErrorKind::NotADirectory => format!("is not a directory; {fix}"),
        std::io::ErrorKind::PermissionDenied => {
            "cannot be read (permission denied); let the user running invhost read it".to_owned()
        }
        _ => format!("cannot be read ({error}); {fix}"),
    }
}

/// The library files in `dir`, sorted by name, or why the directory cannot be read.
///
/// A symbolic link whose target is missing is listed too, so that it is refused with a reason
/// rather than passed over.
pub fn library_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == LIBRARY_EXTENSION))
        .filter(|p| p.is_file() || is_dangling_link(p))
        .collect();
    files.sort();
    Ok(files)
}

fn is_dangling_link(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && path.metadata().is_err()
}

/// Loads and initialises one library.
pub fn load_library(path: &Path, host_version: &str) -> Result<LoadedPlugin, Refusal> {
    let refuse = |kind, reason: String| Refusal {
        path: path.to_owned(),
        kind,
        reason,
    };
    if is_dangling_link(path) {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        return Err(refuse(
            RefusalKind::Unreadable,
            format!(
                "is a symbolic link to `{target}`, which does not exist; fix or remove the link"
            ),
        ));
    }
    let module = open(path).map_err(|(kind, reason)| refuse(kind, reason))?;
    let request = InitRequest {
        host_version: host_version.to_owned(),
        api_version: API_VERSION.to_owned(),
        log_level: tracing::level_filters::LevelFilter::current()
            .to_string()
            .to_lowercase(),
    };
    let request = serde_json::to_string(&request).expect("an InitRequest always serialises");
    // Until the manifest names it, the plugin is known by its file name in logs. These
    // callbacks stay with the plugin (its own tasks log through them), so the label changes to
    // the plugin id once the manifest is checked.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = PluginLabel::new(Arc::from(file_name));
    let callbacks = Callbacks::boxed(label.clone(), Arc::new(NoInteraction));
    let manifest_json = (module.init())(RStr::from_str(&request), callbacks)
        .into_result()
        .map_err(|e| {
            let error = invhost_plugin_api::Error::from(e);
            if error.kind == ErrorKind::PANIC {
                refuse(
                    RefusalKind::Panicked,
                    format!("panicked while initialising: {}", error.message),
                )
            } else {
                refuse(
                    RefusalKind::InitFailed,
                    format!("init failed: {}", error.message),
                )
            }
        })?;
    let manifest: Manifest = serde_json::from_str(manifest_json.as_str()).map_err(|e| {
        refuse(
            RefusalKind::InvalidManifest,
            format!("returned an unreadable manifest ({e}); report it to the plugin's authors"),
        )
    })?;
    check_api_version(&manifest.api_version)
        .map_err(|reason| refuse(RefusalKind::IncompatibleApi, reason))?;
    check_manifest(&manifest).map_err(|reason| refuse(RefusalKind::InvalidManifest, reason))?;
    label.name(&manifest.plugin_id);
    tracing::debug!(path = %path.display(), plugin = %manifest.plugin_id, version = %manifest.plugin_version, "Loaded a plugin.");
    Ok(LoadedPlugin::new(path.to_owned(), manifest, module))
}

fn open(path: &Path) -> Result<PluginModV1_Ref, (RefusalKind, String)> {
    let header = lib_header_from_path(path).map_err(|e| classify(path, e))?;
    header
        .init_root_module::<PluginModV1_Ref>()
        .map_err(|e| classify(path, e))
}

fn classify(path: &Path, error: LibraryError) -> (RefusalKind, String) {
    tracing::debug!(path = %path.display(), error = %error, "Library failed to load.");
    let rebuild = format!("rebuild it against plugin-api {API_VERSION}");
    match error {
        LibraryError::OpenError { err, .. } => (
            RefusalKind::Unreadable,
            format!(
                "could not be opened as a shared library ({})",
                first_line(&err.to_string())
            ),
        ),
        LibraryError::GetSymbolError { .. } => (
            RefusalKind::NotAPlugin,
            "not an invhost plugin (it exports no plugin header)".to_owned(),
        ),
        LibraryError::InvalidAbiHeader(_) => (
            RefusalKind::IncompatibleApi,
            format!("built with an incompatible abi_stable; {rebuild}"),
        ),
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => (
            RefusalKind::IncompatibleApi,
            format!("built against an incompatible plugin-api {actual_version}; {rebuild}"),
        ),
        LibraryError::ParseVersionError(_) | LibraryError::AbiInstability(_) => (
            RefusalKind::IncompatibleApi,
            format!("built against an incompatible plugin API layout; {rebuild}"),
        ),
        LibraryError::InvalidCAbi { .. } => (
            RefusalKind::IncompatibleApi,
            format!("built for another C ABI (compiler or platform); {rebuild} on this platform"),
        ),
        LibraryError::RootModule { err, .. } => match err {
            RootModuleError::Unwound => (
                RefusalKind::Panicked,
                "panicked while loading; report it to the plugin's authors".to_owned(),
            ),
            other => (
                RefusalKind::InitFailed,
                format!("init failed: {}", first_line(&other.to_string())),
            ),
        },
        other => (
            RefusalKind::IncompatibleApi,
            format!(
                "could not be loaded ({}); {rebuild}",
                first_line(&other.to_string())
            ),
        ),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The rules a manifest must follow; the reason names the first broken one.
pub fn check_manifest(manifest: &Manifest) -> Result<(), String> {
    let id = &manifest.plugin_id;
    if !is_valid_identifier(id) {
        return Err(format!(
            "plugin id `{id}` is not an identifier (a lowercase letter, then lowercase letters, digits or underscores; at most 64 characters)"
        ));
    }
    semver::Version::parse(&manifest.plugin_version).map_err(|e| {
        format!(
            "plugin version `{}` is not semver ({e})",
            manifest.plugin_version
        )
    })?;
    if manifest.source_types.is_empty() {
        return Err("offers no source type".to_owned());
    }
    let mut ids = BTreeSet::new();
    for source_type in &manifest.source_types {
        let st = &source_type.id;
        if !is_valid_identifier(st) {
            return Err(format!(
                "source type `{st}` is not an identifier (a lowercase letter, then lowercase letters, digits or underscores; at most 64 characters)"
            ));
        }
        if !ids.insert(st) {
            return Err(format!("source type `{st}` is listed twice"));
        }
        if source_type.title.trim().is_empty() {
            return Err(format!("source type `{st}` has no title"));
        }
        if let Some(action) = source_type
            .actions
            .iter()
            .find(|a| !is_valid_identifier(&a.id))
        {
            return Err(format!(
                "action `{}` of `{st}` is not a valid identifier",
                action.id
            ));
        }
        if source_type.supersedes.contains(st) {
            return Err(format!("source type `{st}` supersedes itself"));
        }
    }
    Ok(())
}
