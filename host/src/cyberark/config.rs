//! The `[cyberark]` table of the host config file (`invhost.toml`): where the Central
//! Credential Provider is, which application ID to send, and the TLS files.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::{Host, Url};

/// The CCP web service's default path (`AIMWebService` is IIS's default application name).
pub const DEFAULT_PATH: &str = "/AIMWebService/api/Accounts";

/// The default for [`CyberArkConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The accepted range of [`CyberArkConfig::timeout_secs`].
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=300;

/// The `[cyberark]` table:
///
/// ```toml
/// [cyberark]
/// url = "https://ccp.corp.example"        # Central Credential Provider base URL
/// app_id = "InventoryHost"
/// # path = "/AIMWebService/api/Accounts"  # default
/// # client_cert = "ccp-client.pem"        # optional mutual TLS
/// # client_key  = "ccp-client.key"
/// # ca_cert     = "ccp-ca.pem"
/// # timeout_secs = 30
/// ```
///
/// After reading it, call [`CyberArkConfig::resolve_paths`] (relative file names are
/// relative to the config file's directory) and then [`CyberArkConfig::validate`];
/// [`load`] does all three.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CyberArkConfig {
    /// The provider's base URL: `https://host[:port]`, no path (that is [`Self::path`]).
    /// `http://` is accepted for loopback addresses only (tests, the demo).
    #[serde(deserialize_with = "deserialize_url")]
    pub url: Url,
    /// The application ID defined in CyberArk for invhost (sent as `AppID`).
    pub app_id: String,
    /// The web service path; [`DEFAULT_PATH`] by default.
    #[serde(default = "default_path")]
    pub path: String,
    /// PEM certificate (chain) presented to the provider when it requires client
    /// certificates; set together with [`Self::client_key`].
    pub client_cert: Option<PathBuf>,
    /// Unencrypted PEM private key of [`Self::client_cert`] (PKCS#8, RSA or SEC1).
    pub client_key: Option<PathBuf>,
    /// PEM file of the CA(s) that issued the provider's certificate, trusted in addition to
    /// the system's and Mozilla's roots.
    pub ca_cert: Option<PathBuf>,
    /// Seconds to wait for the connection and for each answer; 1 to 300.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_path() -> String {
    DEFAULT_PATH.to_owned()
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn deserialize_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
    let text = String::deserialize(deserializer)?;
    Url::parse(text.trim()).map_err(|error| {
        serde::de::Error::custom(format!(
            "`{text}` is not a URL ({error}); write it as https://ccp.corp.example"
        ))
    })
}

/// One thing wrong with the `[cyberark]` settings, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, without the table (`url`, `client_key`).
    pub key: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cyberark.{}: {}", self.key, self.message)
    }
}

/// Why the CyberArk settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a `[cyberark]` key is unknown, missing or of the wrong
    /// type.
    #[error("{}", toml_message(.line, .column, .key, .message))]
    Toml {
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The dotted key at that line (`cyberark.timeout_secs`), when there is one.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Values that are present but wrong; every problem is listed.
    #[error("invalid CyberArk settings: {}", join(.0))]
    Invalid(Vec<ConfigProblem>),
    /// The HTTP client could not be built from valid-looking settings.
    #[error("cannot set up the CyberArk client: {0}")]
    Client(String),
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`]; empty for the other variants.
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn toml_message(
    line: &Option<usize>,
    column: &Option<usize>,
    key: &Option<String>,
    message: &str,
) -> String {
    let mut text = String::from("invalid host config");
    if let Some(line) = line {
        text.push_str(&format!(", line {line}"));
        if let Some(column) = column {
            text.push_str(&format!(", column {column}"));
        }
    }
    text.push_str(": ");
    if let Some(key) = key {
        text.push_str(key);
        text.push_str(": ");
    }
    text.push_str(message);
    text
}

/// Reads the `[cyberark]` table from the text of an `invhost.toml`; other tables are
/// ignored. `Ok(None)` when there is no `[cyberark]` table. Errors give the line and the
/// key. Paths are returned as written: call [`CyberArkConfig::resolve_paths`] next.
pub fn parse_section(toml_text: &str) -> Result<Option<CyberArkConfig>, ConfigError> {
    #[derive(Deserialize)]
    struct HostFile {
        cyberark: Option<CyberArkConfig>,
    }
    match toml::from_str::<HostFile>(toml_text) {
        Ok(file) => Ok(file.cyberark),
        Err(error) => Err(toml_error(toml_text, &error)),
    }
}

/// Reads, resolves (against the file's directory) and validates the `[cyberark]` table of
/// a host config file. `Ok(None)` when the file has no such table.
pub fn load(config_file: &Path) -> Result<Option<CyberArkConfig>, ConfigError> {
    let text = std::fs::read_to_string(config_file).map_err(|source| ConfigError::Read {
        path: config_file.to_owned(),
        source,
    })?;
    let Some(mut config) = parse_section(&text)? else {
        return Ok(None);
    };
    let base = config_file.parent().unwrap_or_else(|| Path::new("."));
    config.resolve_paths(base);
    config.validate()?;
    Ok(Some(config))
}

/// Turns a TOML error into one line with its line, column and dotted key.
fn toml_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span();
    let position = span.as_ref().map(|span| line_column(text, span.start));
    let mut key = span
        .as_ref()
        .and_then(|span| dotted_key_at(text, span.start));
    let mut message = error.message().trim().replace('\n', " ");
    if let Some(rest) = message.strip_prefix("unknown field ") {
        message = match rest.split_once(", expected ") {
            Some((_, expected)) => format!("not a setting of this table; expected {expected}"),
            None => "not a setting of this table".to_owned(),
        };
    } else if let Some(rest) = message.strip_prefix("missing field ") {
        // The span is the table (its header); the key is the missing field.
        let field = rest.trim_matches('`');
        key = Some(
            match span.as_ref().and_then(|span| table_at(text, span.start)) {
                Some(table) => format!("{table}.{field}"),
                None => field.to_owned(),
            },
        );
        message = "this required key is missing".to_owned();
    }
    ConfigError::Toml {
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        key,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The byte range of the line holding `offset`.
fn line_at(text: &str, offset: usize) -> Option<Range<usize>> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let end = text
        .get(offset..)?
        .find('\n')
        .map_or(text.len(), |i| offset + i);
    Some(start..end)
}

/// The name of the `[table]` that the line holding `offset` belongs to (that line itself
/// when it is the header).
fn table_at(text: &str, offset: usize) -> Option<String> {
    let line = line_at(text, offset)?;
    text.get(..line.end)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .and_then(|header| header.get(1..header.find(']')?))
        .map(|name| name.trim().to_owned())
}

/// `table.key` for an error at `offset` on a `key = value` line.
fn dotted_key_at(text: &str, offset: usize) -> Option<String> {
    let line = text.get(line_at(text, offset)?)?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let is_bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !is_bare {
        return None;
    }
    Some(match table_at(text, offset) {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

impl CyberArkConfig {
    /// A configuration with the defaults for everything but the URL and the application.
    pub fn new(url: Url, app_id: impl Into<String>) -> CyberArkConfig {
        CyberArkConfig {
            url,
            app_id: app_id.into(),
            path: default_path(),
            client_cert: None,
            client_key: None,
            ca_cert: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }

    /// Makes the relative file names absolute against `base` (the config file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.client_cert,
            &mut self.client_key,
            &mut self.ca_cert,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The connect and answer timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The web service URL, without a query: the base URL with [`Self::path`].
    pub fn accounts_url(&self) -> Url {
        let mut url = self.url.clone();
        url.set_path(&self.path);
        url
    }

    /// Checks every value and reads the TLS files (they must exist and hold PEM); lists
    /// every problem, each naming its key (`cyberark.url: ...`). Call
    /// [`Self::resolve_paths`] first, or relative names are taken from the working
    /// directory.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &'static str, message: String| {
            problems.push(ConfigProblem { key, message });
        };
        if let Err(message) = check_url(&self.url) {
            problem("url", message);
        }
        if self.app_id.trim().is_empty() {
            problem(
                "app_id",
                "is empty; set it to the application ID defined for invhost in CyberArk \
                 (e.g. InventoryHost)"
                    .to_owned(),
            );
        } else if self.app_id.trim() != self.app_id {
            problem(
                "app_id",
                format!("`{}` has spaces around it; remove them", self.app_id),
            );
        }
        if !self.path.starts_with('/')
            || self.path.contains(['?', '#'])
            || self.path.chars().any(char::is_whitespace)
        {
            problem(
                "path",
                format!(
                    "`{}` is not a URL path; write it like {DEFAULT_PATH} (a leading /, \
                     no query, no spaces)",
                    self.path
                ),
            );
        }
        if !TIMEOUT_RANGE.contains(&self.timeout_secs) {
            problem(
                "timeout_secs",
                format!(
                    "{} is out of range; use {} to {} seconds",
                    self.timeout_secs,
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            );
        }
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => problem(
                "client_key",
                "is missing: client_cert is set, and its private key is needed too; set both \
                 or neither"
                    .to_owned(),
            ),
            (None, Some(_)) => problem(
                "client_cert",
                "is missing: client_key is set, and its certificate is needed too; set both \
                 or neither"
                    .to_owned(),
            ),
            (Some(cert), Some(key)) => {
                if let Err(p) = check_identity(cert, key) {
                    problems.push(p);
                }
            }
            (None, None) => {}
        }
        if let Some(ca) = &self.ca_cert
            && let Err(message) = read_certificates(ca).map(|_| ())
        {
            problems.push(ConfigProblem {
                key: "ca_cert",
                message,
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// https, or http for loopback; a host; no path, query, fragment or user info.
fn check_url(url: &Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => {
            return Err(format!(
                "`{url}` has no host; write it as https://ccp.corp.example"
            ));
        }
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "`{url}` uses http; the provider must be reached over https (http is accepted \
                 for loopback addresses only)"
            ));
        }
        other => {
            return Err(format!(
                "`{url}` uses `{other}`; write it as https://ccp.corp.example"
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain a user name or password; the provider authenticates \
             the application by its address or client certificate"
                .to_owned(),
        );
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{url}` has a path or query; give only the server (https://host[:port]) and put \
             the web service path in cyberark.path"
        ));
    }
    Ok(())
}

/// Reads a file for a key's message.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read `{}`: {error}", path.display()))
}

/// The certificates of a PEM file, or a message.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let bytes = read_file(path)?;
    match reqwest::Certificate::from_pem_bundle(&bytes) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        _ => Err(format!(
            "`{}` holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)",
            path.display()
        )),
    }
}

/// The client identity from a certificate file and a key file, or the problem (naming the
/// key at fault).
pub(crate) fn read_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, ConfigProblem> {
    let cert_problem = |message| ConfigProblem {
        key: "client_cert",
        message,
    };
    let key_problem = |message| ConfigProblem {
        key: "client_key",
        message,
    };
    read_certificates(cert).map_err(cert_problem)?;
    let key_pem = read_file(key).map_err(key_problem)?;
    let mut pem = read_file(cert).map_err(cert_problem)?;
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&pem).map_err(|_| {
        key_problem(format!(
            "`{}` holds no usable private key; give an unencrypted PEM key (-----BEGIN \
             PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
            key.display()
        ))
    })
}

/// Checks that the key belongs to the certificate by building a TLS client with the pair
/// (no roots, no connection: cheap), so that a mismatch stops the command at start instead of
/// at the first lookup.
fn check_identity(cert: &Path, key: &Path) -> Result<(), ConfigProblem> {
    let identity = read_identity(cert, key)?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .identity(identity)
        .build()
        .map(|_| ())
        .map_err(|error| {
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                chain.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            let message = if chain.contains("KeyMismatch") {
                format!(
                    "`{}` is not the private key of the certificate in cyberark.client_cert \
                     (`{}`); give the key file that was created with that certificate",
                    key.display(),
                    cert.display()
                )
            } else {
                format!(
                    "`{}` cannot be used with the certificate in cyberark.client_cert (`{}`); \
                     give the unencrypted PEM key created with that certificate",
                    key.display(),
                    cert.display()
                )
            };
            ConfigProblem {
                key: "client_key",
                message,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> CyberArkConfig {
        CyberArkConfig::new(Url::parse(url).expect("test URL"), "InventoryHost")
    }

    /// The problems' text, or "ok".
    fn check(config: &CyberArkConfig) -> String {
        match config.validate() {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn url_rules() {
        for (url, expected) in [
            ("https://ccp.corp.example", "ok"),
            ("https://ccp.corp.example:8443/", "ok"),
            ("http://127.0.0.1:8080", "ok"),
            ("http://localhost:8080", "ok"),
            ("http://[::1]:8080", "ok"),
            (
                "http://ccp.corp.example",
                "cyberark.url: `http://ccp.corp.example/` uses http",
            ),
            ("ftp://ccp.corp.example", "uses `ftp`"),
            (
                "https://ccp.corp.example/AIMWebService",
                "has a path or query",
            ),
            ("https://ccp.corp.example/?x=1", "has a path or query"),
            (
                "https://user:pw@ccp.corp.example",
                "must not contain a user name",
            ),
        ] {
            let text = check(&config(url));
            assert!(text.contains(expected), "{url}: {text}");
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let mut bad = config("http://ccp.corp.example");
        bad.app_id = " ".to_owned();
        bad.path = "AIMWebService/api/Accounts".to_owned();
        bad.timeout_secs = 0;
        bad.client_cert = Some(PathBuf::from("/nonexistent/cert.pem"));
        let error = bad.validate().expect_err("invalid");
        let keys: Vec<&str> = error.problems().iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            ["url", "app_id", "path", "timeout_secs", "client_key"]
        );
        assert!(
            error
                .to_string()
                .contains("cyberark.timeout_secs: 0 is out of range")
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let mut c = config("https://ccp.corp.example");
        c.ca_cert = Some(PathBuf::from("ccp-ca.pem"));
        c.client_cert = Some(PathBuf::from("/etc/invhost/client.pem"));
        c.resolve_paths(Path::new("/data"));
        assert_eq!(c.ca_cert, Some(PathBuf::from("/data/ccp-ca.pem")));
        assert_eq!(
            c.client_cert,
            Some(PathBuf::from("/etc/invhost/client.pem"))
        );
    }

    #[test]
    fn section_defaults_and_other_tables() {
        let text = "[store]\nwhatever = 1\n\n[cyberark]\nurl = \"https://ccp.corp.example\"\n\
                    app_id = \"InventoryHost\"\n";
        let parsed = parse_section(text).expect("parses").expect("has the table");
        assert_eq!(parsed, config("https://ccp.corp.example"));
        assert_eq!(parse_section("[store]\nx = 1\n").expect("parses"), None);
    }

    #[test]
    fn toml_errors_name_line_and_key() {
        for (text, expected) in [
            (
                "[cyberark]\nurl = \"https://c.example\"\napp_id = \"A\"\ncolour = \"red\"\n",
                "line 4, column 1: cyberark.colour: not a setting of this table; expected one of `url`",
            ),
            (
                "[cyberark]\nurl = \"https://c.example\"\napp_id = \"A\"\ntimeout_secs = \"soon\"\n",
                "line 4, column 16: cyberark.timeout_secs: invalid type",
            ),
            (
                "[cyberark]\nurl = \"not a url\"\napp_id = \"A\"\n",
                "line 2, column 7: cyberark.url: `not a url` is not a URL",
            ),
            (
                "[server]\nlisten = 1\n[cyberark] # CCP\nurl = \"https://c.example\"\n",
                "line 3, column 1: cyberark.app_id: this required key is missing",
            ),
            (
                "[server]\nlisten = [1,\n",
                "line 2, column 13: server.listen: unclosed array",
            ),
        ] {
            let error = parse_section(text).expect_err("refused").to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
