//! Settings building blocks that every plugin embeds, and the validation that reports every
//! problem of a document at once.
//!
//! * [`SecretSource`]: one secret, typed in (stored encrypted by the host) or read from CyberArk.
//! * [`VaultQuery`] and [`VaultField`]: the parts of a CyberArk reference, for plugins whose
//!   credentials hold several secrets from one vault account (Salesforce does).
//! * [`ProxySettings`]: an optional HTTP proxy with optional credentials.
//! * [`Settings`] and [`parse_settings`]: turn a JSON document into a plugin's settings struct,
//!   with one message that names every missing field.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

use crate::{
    error::Error,
    protocol::{Problem, Purpose, ValidationDetails},
    schema,
    secret::Secret,
};

/// The start of the message for missing required values; UIs and scripts may match on it.
pub const MISSING_PREFIX: &str = "Mandatory parameter(s) missing: ";

/// A CyberArk account query: `Key=Value` pairs separated by `;`
/// (`Safe=Salesforce;Folder=Root;Object=acme-prod`).
///
/// Its schema carries `x-vault-query: true`, so [`parse_settings`] checks every query of a
/// document with [`VaultQuery::check`] in its first round, naming the field
/// (`credentials.query`): a plugin that embeds the building blocks needs no check of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(
    title = "CyberArk query",
    description = "The vault account as Key=Value pairs separated by semicolons, e.g. Safe=Salesforce;Folder=Root;Object=acme-prod.",
    extend("examples" = ["Safe=Salesforce;Folder=Root;Object=acme-prod"], "x-vault-query" = true)
)]
pub struct VaultQuery(#[schemars(length(min = 1))] pub String);

impl VaultQuery {
    /// The `Key=Value` pairs, or a message saying what is wrong with the text.
    ///
    /// Spaces around keys and values, empty parts (`;;`) and a trailing `;` are tolerated. A
    /// part without `=`, an empty key or value (`Safe=`), a key given twice (regardless of
    /// case: `Safe=a;safe=b`) and a query without any pair are refused.
    pub fn pairs(&self) -> Result<Vec<(&str, &str)>, String> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for part in self.0.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "`{part}` is not Key=Value; write the query as Safe=...;Object=..."
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(format!(
                    "`{part}` has no key; write the query as Safe=...;Object=..."
                ));
            }
            if value.is_empty() {
                return Err(format!(
                    "`{key}` has no value; give it one ({key}=...) or remove it"
                ));
            }
            if let Some((first, _)) = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(if *first == key {
                    format!("`{key}` is given twice; give each key once")
                } else {
                    format!("`{first}` and `{key}` are the same key; give each key once")
                });
            }
            pairs.push((key, value));
        }
        if pairs.is_empty() {
            return Err("the query is empty; write it as Safe=...;Object=...".to_owned());
        }
        Ok(pairs)
    }

    /// The pairs a lookup may send: the rules of [`VaultQuery::pairs`], and no `AppID` key
    /// (the host sends the application ID from its own configuration). The host's CyberArk
    /// client and the settings check both apply it. Since plugin-api 1.2.
    pub fn lookup_pairs(&self) -> Result<Vec<(&str, &str)>, String> {
        let pairs = self.pairs()?;
        if let Some((key, _)) = pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case("AppID")) {
            return Err(format!(
                "`{key}` cannot be part of the query; invhost sends cyberark.app_id from its \
                 configuration (invhost.toml), so remove it"
            ));
        }
        Ok(pairs)
    }

    /// Checks the query as a settings value ([`VaultQuery::lookup_pairs`]). Records a problem
    /// on `field` (a dotted path such as `credentials.query`) in `validator`. Since plugin-api
    /// 1.2; the document check applies it to every query (see [`crate::schema::VAULT_QUERY_KEYWORD`]).
    pub fn check(&self, field: &str, validator: &mut Validator) {
        if let Err(message) = self.lookup_pairs() {
            validator.problem(field, message);
        }
    }
}

/// The name of a vault account property; empty means the account's password (`Content`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(
    title = "Account property",
    description = "The property of the vault account that holds the value; leave empty for the account's password."
)]
pub struct VaultField(pub String);

/// Where one secret comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// Typed in; the host stores it encrypted.
    #[schemars(title = "Stored by invhost")]
    Local {
        /// The secret.
        #[schemars(title = "Secret", length(min = 1))]
        value: Secret,
    },
    /// Read from CyberArk at each run.
    #[schemars(title = "CyberArk")]
    Cyberark {
        /// The vault account.
        query: VaultQuery,
        /// The property holding the secret; empty means the password.
        #[serde(default)]
        field: VaultField,
    },
}

/// An HTTP proxy for a plugin's outbound calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Proxy")]
pub struct ProxySettings {
    /// The proxy address: http://host:port, https://host:port (TLS to the proxy itself) or
    /// IP:port (taken as http://).
    #[schemars(
        title = "Proxy server",
        length(min = 1),
        extend("examples" = ["http://proxy.corp:3128"])
    )]
    pub server: String,
    /// How to authenticate to the proxy.
    #[serde(default)]
    #[schemars(title = "Proxy credentials")]
    pub credentials: ProxyCredentials,
}

/// Proxy authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProxyCredentials {
    /// The proxy needs no credentials.
    #[default]
    #[serde(rename = "none")]
    #[schemars(title = "None")]
    NoCredentials,
    /// Basic authentication with a stored user name and password.
    #[schemars(title = "Stored by invhost")]
    Local {
        /// Proxy user name.
        #[schemars(title = "User name", length(min = 1))]
        username: String,
        /// Proxy password.
        #[schemars(title = "Password", length(min = 1))]
        password: Secret,
    },
    /// Basic authentication with the user name (`UserName`) and password (`Content`) of a
    /// CyberArk account.
    #[schemars(title = "CyberArk")]
    Cyberark {
        /// The vault account.
        query: VaultQuery,
    },
}

/// The forms a proxy address may take, for messages.
pub const PROXY_FORMS: &str = "http://host:port, https://host:port or IP:port";

/// A checked proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddress {
    /// The URL to give the HTTP client (`http://10.0.0.1:3128/`).
    pub url: Url,
    /// Whether the connection to the proxy itself uses TLS.
    pub tls_to_proxy: bool,
}

impl ProxySettings {
    /// Parses [`ProxySettings::server`] into a URL, or says which forms are accepted.
    pub fn address(&self) -> Result<ProxyAddress, String> {
        parse_proxy_server(&self.server)
    }
}

/// Parses a proxy address in one of the [`PROXY_FORMS`].
pub fn parse_proxy_server(server: &str) -> Result<ProxyAddress, String> {
    let server = server.trim();
    // No proxy address holds an `@` but one with a user name and password in it; refuse it
    // before any other reason could quote a part of the password (`http://u:pa/ss@h:1`). Not
    // even a masked address is shown: where the password ends is anyone's guess. Past this
    // check the address holds no user name or password and may be quoted as typed.
    if server.contains('@') {
        return Err(format!(
            "the address holds an `@`, so it is not repeated here: put the user name and \
             password under proxy credentials, not in the address; use {PROXY_FORMS}"
        ));
    }
    let refuse = |why: &str| {
        Err(format!(
            "`{server}` is not a proxy address ({why}); use {PROXY_FORMS}"
        ))
    };
    let text = if server.contains("://") {
        server.to_owned()
    } else if bare_ip_and_port(server) {
        format!("http://{server}")
    } else if let Some(why) = bare_ip_port_problem(server) {
        return refuse(&why);
    } else {
        return refuse("a host name needs http:// in front");
    };
    let url = match Url::parse(&text) {
        Ok(url) => url,
        Err(url::ParseError::InvalidPort) => return refuse(&port_problem(port_text(&text))),
        Err(_) => return refuse("it does not parse as a URL"),
    };
    let tls_to_proxy = match url.scheme() {
        "http" => false,
        "https" => true,
        other => return refuse(&format!("scheme {other}:// is not supported")),
    };
    if url.host_str().is_none_or(str::is_empty) {
        return refuse("the host is missing");
    }
    // `url` leaves out a scheme's default port (`http://proxy:80`), so look at the text too.
    match url.port() {
        None if port_text(&text).is_empty() => return refuse("the port is missing"),
        Some(0) => return refuse(&port_problem("0")),
        _ => {}
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return refuse("a proxy address ends with the port: no path, `?` or `#` after it");
    }
    Ok(ProxyAddress { url, tls_to_proxy })
}

/// The address with any `user:password@` part replaced by `***@`. Everything up to the last
/// `@` is masked, so that a password with `/`, `?` or `#` in it is not shown either.
fn without_userinfo(server: &str) -> String {
    let (scheme, rest) = match server.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), server),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}"),
        None => server.to_owned(),
    }
}

/// Why a bare address without a scheme (`10.0.0.1`, `10.0.0.1:abc`) is no `IP:port`, when it
/// is an IP address at all; `None` for anything else (a host name).
fn bare_ip_port_problem(text: &str) -> Option<String> {
    let unbracketed = text.trim_start_matches('[').trim_end_matches(']');
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Some("the port is missing".to_owned());
    }
    let (ip, port) = text.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().is_ok().then(|| port_problem(port))
}

/// The port text of a URL whose port did not parse (`http://host:99999/x` gives `99999`).
fn port_text(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let after_brackets = host_port.rfind(']').map_or(host_port, |i| &host_port[i..]);
    after_brackets.rsplit_once(':').map_or("", |(_, port)| port)
}

/// Why `port` is not a usable port number.
fn port_problem(port: &str) -> String {
    if port.is_empty() {
        "the port is missing".to_owned()
    } else if port.bytes().all(|b| b.is_ascii_digit()) {
        format!("port {port} is out of range; use a port from 1 to 65535")
    } else {
        format!("port `{port}` is not a number; use a port from 1 to 65535")
    }
}

fn bare_ip_and_port(text: &str) -> bool {
    text.parse::<std::net::SocketAddr>().is_ok()
        || text
            .rsplit_once(':')
            .is_some_and(|(ip, port)| ip.parse::<IpAddr>().is_ok() && port.parse::<u16>().is_ok())
}

/// Checks that `value` is an `https://` URL, or `http://` on a loopback address (tests and the
/// demo simulator), without a user name or password, query or fragment. `field` names the
/// setting in messages; a user name and password in `value` are shown as `***@`.
///
/// A path is allowed here; a plugin whose URL must be a bare origin checks
/// [`Url::path`] itself.
pub fn check_https_url(field: &str, value: &str, validator: &mut Validator) -> Option<Url> {
    let shown = without_userinfo(value.trim());
    let url = match Url::parse(value.trim()) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => url,
        _ => {
            validator.problem(
                field,
                format!("`{shown}` is not a URL; write it as https://host"),
            );
            return None;
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        validator.problem(
            field,
            format!(
                "`{shown}` contains a user name or password; remove the part before @ \
                 (credentials belong in their own fields)"
            ),
        );
        return None;
    }
    if url.query().is_some() {
        validator.problem(
            field,
            "has a query (`?...`); remove it and everything after it".to_owned(),
        );
        return None;
    }
    if url.fragment().is_some() {
        validator.problem(
            field,
            "has a fragment (`#...`); remove it and everything after it".to_owned(),
        );
        return None;
    }
    match url.scheme() {
        "https" => Some(url),
        "http" if is_loopback(&url) => Some(url),
        "http" => {
            validator.problem(
                field,
                "must use https:// (plain http:// is only allowed for loopback addresses)",
            );
            None
        }
        other => {
            validator.problem(
                field,
                format!("scheme {other}:// is not supported; use https://"),
            );
            None
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Collects every problem of a settings document, so that the operator sees them all at once.
#[derive(Debug, Default)]
pub struct Validator {
    details: ValidationDetails,
    warnings: Vec<String>,
}

impl Validator {
    /// A required field (dotted path) is absent or empty.
    pub fn missing(&mut self, field: impl Into<String>) {
        let field = field.into();
        if !self.details.missing.contains(&field) {
            self.details.missing.push(field);
        }
    }

    /// A field has a value that is wrong; `message` says how to fix it.
    pub fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.details.problems.push(Problem {
            field: field.into(),
            message: message.into(),
        });
    }

    /// A remark that does not make the document invalid.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Whether nothing is missing or wrong so far.
    pub fn is_ok(&self) -> bool {
        self.details.missing.is_empty() && self.details.problems.is_empty()
    }

    /// The warnings when the document is valid, else one `config` error naming every problem,
    /// with [`ValidationDetails`] as its details.
    pub fn finish(self) -> Result<Vec<String>, Error> {
        if self.is_ok() {
            Ok(self.warnings)
        } else {
            Err(self.into_error())
        }
    }

    fn into_error(self) -> Error {
        let mut parts = Vec::new();
        if !self.details.missing.is_empty() {
            parts.push(format!(
                "{MISSING_PREFIX}{}",
                self.details.missing.join(", ")
            ));
        }
        for p in &self.details.problems {
            parts.push(if p.field.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.field, p.message)
            });
        }
        let details = serde_json::to_value(&self.details).unwrap_or_default();
        Error::config(parts.join("; ")).with_details(details)
    }
}

/// A plugin's settings document for one source type.
///
/// Derive `Deserialize` (with `#[serde(deny_unknown_fields)]`) and `JsonSchema`, and put the
/// checks the schema cannot express in [`Settings::check`].
pub trait Settings: DeserializeOwned + JsonSchema {
    /// Checks beyond the schema (URL schemes, values needed only for an import).
    fn check(&self, purpose: Purpose, validator: &mut Validator) {
        let _ = (purpose, validator);
    }
}

/// Parses and validates a settings document.
///
/// Every absent or empty required field, unknown key and wrong discriminator is reported in one
/// error (`Mandatory parameter(s) missing: login_url, consumer_key; proxy.extra: unknown field
/// (expected one of server, credentials)`);
/// then the document is deserialised and [`Settings::check`] runs.
pub fn parse_settings<T: Settings>(
    document: &serde_json::Value,
    purpose: Purpose,
) -> Result<(T, Vec<String>), Error> {
    let mut validator = Validator::default();
    schema::check_document(&schema::settings_schema::<T>(), document, &mut validator);
    if !validator.is_ok() {
        return Err(validator.into_error());
    }
    let settings: T = match serde_json::from_value(document.clone()) {
        Ok(settings) => settings,
        Err(e) => {
            validator.problem("settings", format!("the document is not valid: {e}"));
            return Err(validator.into_error());
        }
    };
    settings.check(purpose, &mut validator);
    let warnings = validator.finish()?;
    Ok((settings, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_proxy(input: &str, expected: Result<(&str, bool), &str>) {
        let got = parse_proxy_server(input);
        match expected {
            Ok((url, tls)) => {
                let got = got.unwrap_or_else(|e| panic!("{input:?} refused: {e}"));
                assert_eq!(
                    (got.url.as_str(), got.tls_to_proxy),
                    (url, tls),
                    "{input:?}"
                );
            }
            Err(fragment) => {
                let error = got.expect_err(input);
                assert!(error.contains(fragment), "{input:?}: {error}");
                assert!(error.contains(PROXY_FORMS), "{input:?}: {error}");
            }
        }
    }

    #[test]
    fn proxy_address_forms() {
        check_proxy(
            "http://proxy.corp:3128",
            Ok(("http://proxy.corp:3128/", false)),
        );
        check_proxy(
            "https://proxy.corp:8443",
            Ok(("https://proxy.corp:8443/", true)),
        );
        check_proxy("10.1.2.3:8080", Ok(("http://10.1.2.3:8080/", false)));
        check_proxy(" 127.0.0.1:3128 ", Ok(("http://127.0.0.1:3128/", false)));
        check_proxy("[::1]:3128", Ok(("http://[::1]:3128/", false)));
        check_proxy("ftp://x:1", Err("scheme ftp://"));
        check_proxy("proxy.corp:3128", Err("host name needs http://"));
        check_proxy("http://proxy.corp", Err("port is missing"));
        check_proxy("http://u:p@proxy.corp:3128", Err("proxy credentials"));
        let error =
            parse_proxy_server("http://svc:Hunter2-pw@proxy.corp:3128").expect_err("userinfo");
        assert!(!error.contains("Hunter2-pw"), "{error}");
        assert!(
            !error.contains("proxy.corp"),
            "not even the masked address: {error}"
        );
        let error = parse_proxy_server("svc:Hunter2-pw@10.0.0.1:3128").expect_err("bare userinfo");
        assert!(!error.contains("Hunter2-pw"), "{error}");
        check_proxy("http://proxy.corp:3128/path", Err("ends with the port"));
        check_proxy(
            "http://proxy.corp:3128?q",
            Err("no path, `?` or `#` after it"),
        );
        check_proxy("http://proxy.corp:3128#f", Err("ends with the port"));
        check_proxy("", Err("host name"));
    }

    #[test]
    fn proxy_messages_never_show_a_password() {
        for (input, password) in [
            ("http://svc:Hunter2/x@proxy:3128", "Hunter2"),
            ("http://svc:Hun#ter2@proxy:3128", "Hun#ter2"),
            ("http://svc:Hun?ter2@proxy:3128", "ter2"),
            ("http://svc:SEK/RET@h:1", "SEK"),
            ("svc:Hunter2@10.0.0.1:3128", "Hunter2"),
            ("http://svc:Hunter2@proxy:99999", "Hunter2"),
        ] {
            let error = parse_proxy_server(input).expect_err(input);
            assert!(!error.contains(password), "{input}: {error}");
            assert!(
                error.contains("under proxy credentials"),
                "{input}: {error}"
            );
        }
    }

    #[test]
    fn proxy_port_problems_have_their_own_reasons() {
        check_proxy("10.0.0.1", Err("(the port is missing)"));
        check_proxy("[::1]", Err("(the port is missing)"));
        check_proxy("10.0.0.1:", Err("(the port is missing)"));
        check_proxy("10.0.0.1:abc", Err("(port `abc` is not a number;"));
        check_proxy("10.0.0.1:0", Err("(port 0 is out of range;"));
        check_proxy("10.0.0.1:70000", Err("(port 70000 is out of range;"));
        check_proxy("http://h:0", Err("(port 0 is out of range;"));
        check_proxy("http://h:99999", Err("(port 99999 is out of range;"));
        check_proxy("http://h:abc", Err("(port `abc` is not a number;"));
        check_proxy("http://u:pw@h:abc", Err("under proxy credentials"));
        check_proxy("http://[::1]:99999", Err("(port 99999 is out of range;"));
        check_proxy("http://h", Err("(the port is missing)"));
        check_proxy(
            "proxy.corp:3128",
            Err("(a host name needs http:// in front)"),
        );
        // The scheme's default port is a port all the same.
        check_proxy("http://proxy.corp:80", Ok(("http://proxy.corp/", false)));
        check_proxy("http://h:65535", Ok(("http://h:65535/", false)));
        for input in ["10.0.0.1", "10.0.0.1:abc", "http://h:0", "http://h:99999"] {
            let error = parse_proxy_server(input).expect_err(input);
            assert!(!error.contains("host name"), "{input}: {error}");
            assert!(!error.contains("does not parse"), "{input}: {error}");
        }
    }

    fn https_problem(value: &str) -> Option<String> {
        let mut v = Validator::default();
        check_https_url("login_url", value, &mut v);
        v.finish().err().map(|e| e.message)
    }

    #[test]
    fn https_rule_allows_http_only_on_loopback() {
        assert_eq!(https_problem("https://login.salesforce.com"), None);
        assert_eq!(https_problem("http://127.0.0.1:8080"), None);
        assert_eq!(https_problem("http://localhost:8080"), None);
        assert_eq!(https_problem("http://[::1]:8080"), None);
        let msg = https_problem("http://login.salesforce.com").expect("refused");
        assert!(msg.starts_with("login_url: must use https://"), "{msg}");
        assert!(https_problem("not a url").is_some());
        assert!(https_problem("ftp://x").is_some());
    }

    #[test]
    fn https_rule_refuses_userinfo_query_and_fragment() {
        for (value, expected) in [
            (
                "http://127.0.0.1:18931/?x=1",
                "login_url: has a query (`?...`); remove it",
            ),
            ("https://h/?", "login_url: has a query"),
            (
                "https://h#top",
                "login_url: has a fragment (`#...`); remove it",
            ),
            (
                "https://user@h",
                "login_url: `https://***@h` contains a user name or password",
            ),
            (
                "https://user:pw@h",
                "login_url: `https://***@h` contains a user name or password",
            ),
        ] {
            let message = https_problem(value).unwrap_or_else(|| panic!("{value} accepted"));
            assert!(message.starts_with(expected), "{value}: {message}");
        }
        // A path is the plugin's business.
        assert_eq!(https_problem("https://h/some/path"), None);
        assert_eq!(https_problem("https://h/"), None);
    }

    #[test]
    fn url_messages_never_show_a_password() {
        for value in [
            "https://user:SEKRET_Y@a b",
            "https://user:SEKRET_Y@host",
            "user:SEKRET_Y@host",
            "https://user:SEK/RET_Y@host",
            "https://user:SEKRET_Y@host:99999",
            "ftp://user:SEKRET_Y@host",
        ] {
            let message = https_problem(value).unwrap_or_else(|| panic!("{value} accepted"));
            assert!(!message.contains("SEKRET_Y"), "{value}: {message}");
            assert!(!message.contains("RET_Y"), "{value}: {message}");
            assert!(!message.contains("user:"), "{value}: {message}");
        }
        let message = https_problem("https://user:SEKRET_Y@a b").expect("refused");
        assert_eq!(
            message,
            "login_url: `https://***@a b` is not a URL; write it as https://host"
        );
    }

    #[test]
    fn vault_query_pairs() {
        let q = VaultQuery("Safe=Salesforce; Folder=Root;Object=acme-prod;".into());
        assert_eq!(
            q.pairs().expect("valid"),
            vec![
                ("Safe", "Salesforce"),
                ("Folder", "Root"),
                ("Object", "acme-prod")
            ]
        );
        assert!(VaultQuery("Safe".into()).pairs().is_err());
        assert!(VaultQuery(" ; ".into()).pairs().is_err());
        assert!(VaultQuery("=x".into()).pairs().is_err());
        assert_eq!(
            VaultQuery(" ;;Safe = S ;; Object=o ; ".into()).pairs(),
            Ok(vec![("Safe", "S"), ("Object", "o")])
        );
    }

    /// The problem `VaultQuery::check` records for `query`, if any.
    fn query_problem(query: &str) -> Option<String> {
        let mut v = Validator::default();
        VaultQuery(query.into()).check("credentials.query", &mut v);
        v.finish().err().map(|e| e.message)
    }

    #[test]
    fn vault_query_rules_apply_at_validation() {
        for (query, expected) in [
            (
                "Safe=;Object=o",
                "credentials.query: `Safe` has no value; give it one (Safe=...) or remove it",
            ),
            (
                "Safe=S;Object= ",
                "credentials.query: `Object` has no value",
            ),
            (
                "Safe=S;Object",
                "credentials.query: `Object` is not Key=Value; write the query as Safe=...;Object=...",
            ),
            (
                "Safe=a;safe=b",
                "credentials.query: `Safe` and `safe` are the same key; give each key once",
            ),
            (
                "Safe=a;Object=o;Safe=b",
                "credentials.query: `Safe` is given twice; give each key once",
            ),
            (
                "appid=Other;Safe=S",
                "credentials.query: `appid` cannot be part of the query; invhost sends \
                 cyberark.app_id from its configuration (invhost.toml), so remove it",
            ),
            (
                "Safe=S;AppID=X",
                "credentials.query: `AppID` cannot be part of the query",
            ),
            (";;", "credentials.query: the query is empty"),
        ] {
            let message = query_problem(query).unwrap_or_else(|| panic!("{query} accepted"));
            assert!(message.starts_with(expected), "{query}: {message}");
        }
        for query in [
            "Safe=S;Object=o",
            " Safe=S ;; Object=o ; ",
            "Query=Safe=X;Folder=Root;Object=Y;QueryFormat=Regexp",
        ] {
            assert_eq!(query_problem(query), None, "{query}");
        }
    }

    /// A plugin's settings made of the building blocks, with no checks of its own.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Blocks {
        #[schemars(title = "Token")]
        token: SecretSource,
        #[serde(default)]
        #[schemars(title = "Proxy")]
        proxy: Option<ProxySettings>,
    }

    impl Settings for Blocks {}

    #[test]
    fn every_vault_query_of_a_document_is_checked_without_the_plugin_asking() {
        let document = serde_json::json!({
            "token": {"source": "cyberark", "query": "Safe=;Object=o"},
            "proxy": {"server": "http://p:3128",
                      "credentials": {"source": "cyberark", "query": "Safe=a;AppID=x"}}
        });
        let error = parse_settings::<Blocks>(&document, Purpose::Save).expect_err("refused");
        assert_eq!(
            error.message,
            "token.query: `Safe` has no value; give it one (Safe=...) or remove it; \
             proxy.credentials.query: `AppID` cannot be part of the query; invhost sends \
             cyberark.app_id from its configuration (invhost.toml), so remove it"
        );
        let document = serde_json::json!({
            "token": {"source": "cyberark", "query": " Safe=S;;Object=o; "}
        });
        assert!(parse_settings::<Blocks>(&document, Purpose::Save).is_ok());
    }

    #[test]
    fn validator_puts_missing_fields_first_in_one_message() {
        let mut v = Validator::default();
        v.missing("a");
        v.problem("b", "is wrong");
        v.missing("c");
        v.missing("a");
        let error = v.finish().expect_err("invalid");
        assert_eq!(
            error.message,
            "Mandatory parameter(s) missing: a, c; b: is wrong"
        );
        let details: ValidationDetails =
            serde_json::from_value(error.details).expect("details parse");
        assert_eq!(details.missing, vec!["a", "c"]);
    }
}
