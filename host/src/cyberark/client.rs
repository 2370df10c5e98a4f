//! [`CcpClient`]: asks the Central Credential Provider for one account over HTTPS
//! (`GET {url}{path}?AppID=..&Safe=..&Object=..`).

use std::error::Error as StdError;
use std::time::Duration;

use invhost_plugin_api::Secret;
use invhost_plugin_api::settings::VaultQuery;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use tracing::debug;
use url::Url;

use crate::cyberark::account::VaultAccount;
use crate::cyberark::config::{
    ConfigError, ConfigProblem, CyberArkConfig, read_certificates, read_identity,
};
use crate::cyberark::error::CyberArkError;

/// Properties of a vault account as the CCP answers them; every account answer carries some
/// (`Content`, its password, almost always). Matched regardless of case.
const ACCOUNT_KEYS: &[&str] = &[
    "Content",
    "UserName",
    "Address",
    "Database",
    "Name",
    "ObjectName",
    "Safe",
    "Folder",
    "PolicyID",
    "DeviceType",
    "PasswordChangeInProcess",
];

/// TLS alerts a server sends when it does not accept the client certificate offered.
const CLIENT_CERT_ALERTS: [&str; 9] = [
    "CertificateRequired",
    "BadCertificate",
    "UnsupportedCertificate",
    "CertificateRevoked",
    "CertificateExpired",
    "CertificateUnknown",
    "UnknownCA",
    "AccessDenied",
    "DecryptError",
];

/// A client of one Central Credential Provider, for one application ID.
///
/// Built once from the host's `[cyberark]` settings; cheap to share (`&self` methods,
/// the connection pool inside). TLS is rustls with TLS 1.2 at least, trusting the
/// system's and Mozilla's roots plus `ca_cert`; the client certificate is presented when
/// configured; no proxy is ever used (the provider checks the caller's address) and
/// redirects are not followed.
#[derive(Debug, Clone)]
pub struct CcpClient {
    http: reqwest::Client,
    endpoint: Url,
    app_id: String,
    timeout_secs: u64,
    has_identity: bool,
}

impl CcpClient {
    /// Builds the client; validates the settings first (see [`CyberArkConfig::validate`]).
    pub fn new(config: &CyberArkConfig) -> Result<CcpClient, ConfigError> {
        config.validate()?;
        let timeout = config.timeout();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("invhost/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_cert {
            for cert in read_certificates(ca).map_err(|message| {
                ConfigError::Invalid(vec![ConfigProblem {
                    key: "ca_cert",
                    message,
                }])
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let has_identity = match (&config.client_cert, &config.client_key) {
            (Some(cert), Some(key)) => {
                let identity =
                    read_identity(cert, key).map_err(|p| ConfigError::Invalid(vec![p]))?;
                builder = builder.identity(identity);
                true
            }
            _ => false,
        };
        // The files were checked by `validate` (the key matches the certificate); what is
        // left is rare enough to report as it comes.
        let http = builder.build().map_err(|error| {
            ConfigError::Client(format!(
                "{}; check the files in cyberark.client_cert, cyberark.client_key and \
                     cyberark.ca_cert",
                innermost(&error)
            ))
        })?;
        Ok(CcpClient {
            http,
            endpoint: config.accounts_url(),
            app_id: config.app_id.clone(),
            timeout_secs: config.timeout_secs,
            has_identity,
        })
    }

    /// The web service URL, without a query.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The application ID sent as `AppID`.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The connect and answer timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The request URL for a query: `AppID` first, then each `Key=Value` pair of the query
    /// as a parameter of the same name, in order, percent-encoded (spaces as `%20`).
    pub fn request_url(&self, query: &str) -> Result<Url, CyberArkError> {
        let vault_query = VaultQuery(query.to_owned());
        let pairs = vault_query
            .lookup_pairs()
            .map_err(|reason| CyberArkError::InvalidQuery { reason })?;
        let mut text = format!("AppID={}", encode(&self.app_id));
        for (key, value) in fold_query(pairs) {
            text.push('&');
            text.push_str(&encode(key));
            text.push('=');
            text.push_str(&encode(&value));
        }
        let mut url = self.endpoint.clone();
        url.set_query(Some(&text));
        Ok(url)
    }

    /// Fetches the one account the query names (`Safe=..;Folder=..;Object=..`; any CCP
    /// parameter may appear: `UserName`, `Address`, `Database`, `PolicyID`, `Reason`,
    /// `Query`, `QueryFormat`, `ConnectionTimeout`, `FailRequestOnPasswordChange`).
    ///
    /// After a `Query=` pair, the following pairs belong to the CCP's `Query` value
    /// (`Query=Safe=X;Folder=Root;Object=Y`), except `QueryFormat`, `Reason`,
    /// `ConnectionTimeout` and `FailRequestOnPasswordChange`, which stay parameters.
    pub async fn account(&self, query: &str) -> Result<VaultAccount, CyberArkError> {
        let url = self.request_url(query)?;
        debug!(endpoint = %self.endpoint, app_id = %self.app_id, query, "Asking CyberArk for an account.");
        let response = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map_or_else(|| "no content type".to_owned(), str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(&error))?;
        let result = self.read_answer(query, status, &content_type, &body);
        match &result {
            Ok(account) => {
                debug!(status, properties = ?account.property_names(), "CyberArk answered.");
            }
            Err(error) => {
                debug!(
                    status,
                    code = error.code(),
                    reason = error.reason(),
                    "CyberArk refused."
                );
            }
        }
        result
    }

    /// Fetches the account and returns the requested properties in order; an empty field
    /// name means the password (`Content`). Property names match case-insensitively.
    pub async fn lookup(
        &self,
        query: &str,
        fields: &[String],
    ) -> Result<Vec<Secret>, CyberArkError> {
        let account = self.account(query).await?;
        fields
            .iter()
            .map(|field| account.get(field).cloned())
            .collect()
    }

    /// Turns an HTTP answer into the account or the matching error. The body is never
    /// quoted in an error: it may hold the password.
    fn read_answer(
        &self,
        query: &str,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<VaultAccount, CyberArkError> {
        // A 5xx is the provider failing (an IIS error page, a crashed application pool), not
        // a wrong URL; anything else that is not CCP JSON points at the URL or the path.
        let not_ccp = || {
            if (500..600).contains(&status) {
                CyberArkError::ProviderFailed {
                    endpoint: self.endpoint.to_string(),
                    status,
                }
            } else {
                CyberArkError::NotCcp {
                    endpoint: self.endpoint.to_string(),
                    status,
                    content_type: content_type.to_owned(),
                }
            }
        };
        let object = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(match status {
                    401 => CyberArkError::WindowsAuthentication {
                        app_id: self.app_id.clone(),
                    },
                    403 => self.certificate_refused(
                        "HTTP 403 from the web server, without a CCP error code".to_owned(),
                    ),
                    _ => not_ccp(),
                });
            }
        };
        let text = |key: &str| {
            object
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .and_then(|(_, value)| value.as_str())
                .map(str::to_owned)
        };
        if let Some(code) = text("ErrorCode") {
            let message = text("ErrorMsg").unwrap_or_default();
            return Err(CyberArkError::from_answer(
                status,
                code,
                message,
                query,
                &self.app_id,
            ));
        }
        // Any other JSON object that carries one of the properties every vault account has
        // some of is the account: the CCP returns only the properties defined on it, and a
        // missing one is reported by name when it is asked for. A JSON object without any of
        // them is another service's answer (a wrong url or path).
        let looks_like_an_account = object.keys().any(|key| {
            ACCOUNT_KEYS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(key))
        });
        if (200..300).contains(&status) && looks_like_an_account {
            return Ok(VaultAccount::from_json(object));
        }
        Err(not_ccp())
    }

    fn certificate_refused(&self, detail: String) -> CyberArkError {
        if self.has_identity {
            CyberArkError::ClientCertificateRejected {
                app_id: self.app_id.clone(),
                detail,
            }
        } else {
            CyberArkError::ClientCertificateRequired { detail }
        }
    }

    /// Classifies a failure to get an answer: timeout, TLS (whose certificate), connection.
    fn transport_error(&self, error: &reqwest::Error) -> CyberArkError {
        let detail = innermost(error);
        let chain = chain(error);
        let address = match (
            self.endpoint.host_str(),
            self.endpoint.port_or_known_default(),
        ) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => self.endpoint.to_string(),
        };
        if error.is_timeout() {
            return CyberArkError::Timeout {
                endpoint: self.endpoint.to_string(),
                secs: self.timeout_secs,
            };
        }
        if chain.contains("invalid peer certificate") {
            return CyberArkError::ServerCertificate { detail };
        }
        if chain.contains("received fatal alert") {
            let about_client_cert = CLIENT_CERT_ALERTS
                .iter()
                .any(|alert| chain.contains(&format!("alert: {alert}")));
            let no_cert_alert = chain.contains("alert: CertificateRequired")
                || chain.contains("alert: HandshakeFailure");
            if (self.has_identity && about_client_cert) || (!self.has_identity && no_cert_alert) {
                return self.certificate_refused(detail);
            }
            return CyberArkError::Tls { detail };
        }
        if io_kind(error) == Some(std::io::ErrorKind::ConnectionRefused) {
            return CyberArkError::ConnectionRefused { address };
        }
        if chain.contains("dns error") || chain.contains("failed to lookup address") {
            return CyberArkError::Dns {
                host: self.endpoint.host_str().unwrap_or_default().to_owned(),
            };
        }
        if chain.contains("tls") || chain.contains("TLS") || chain.contains("handshake") {
            return CyberArkError::Tls { detail };
        }
        if error.is_connect() {
            return CyberArkError::Connect { address, detail };
        }
        CyberArkError::Request { detail }
    }
}

/// Parameters that steer the provider rather than select the account.
const CONTROL_PARAMETERS: [&str; 4] = [
    "QueryFormat",
    "Reason",
    "ConnectionTimeout",
    "FailRequestOnPasswordChange",
];

/// Folds the pairs after a `Query` pair back into its value, so that
/// `Query=Safe=X;Folder=Root;Object=Y;QueryFormat=Regexp` sends `Query=Safe=X;Folder=Root;Object=Y`
/// and `QueryFormat=Regexp`: `;` separates the pairs of our query text but also the terms
/// of the CCP's own `Query`. Pairs naming a [`CONTROL_PARAMETERS`] stay parameters.
fn fold_query<'a>(pairs: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&'a str, String)> = Vec::with_capacity(pairs.len());
    let mut query_at: Option<usize> = None;
    for (key, value) in pairs {
        let is_control = CONTROL_PARAMETERS
            .iter()
            .any(|control| control.eq_ignore_ascii_case(key));
        match query_at {
            Some(at) if !is_control => {
                if let Some((_, query)) = out.get_mut(at) {
                    query.push(';');
                    query.push_str(key);
                    query.push('=');
                    query.push_str(value);
                }
            }
            _ => {
                if query_at.is_none() && key.eq_ignore_ascii_case("Query") {
                    query_at = Some(out.len());
                }
                out.push((key, value.to_owned()));
            }
        }
    }
    out
}

/// Percent-encodes a query component; spaces become `%20` (never `+`).
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The error and its causes, joined by ": ".
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The deepest cause's text: the concrete reason, without reqwest's URL.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut deepest: &(dyn StdError + 'static) = error;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    deepest.to_string()
}

/// The kind of the first I/O error among the causes.
fn io_kind(error: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> CcpClient {
        let config = CyberArkConfig::new(
            Url::parse("https://ccp.corp.example:8443").expect("test URL"),
            "Inventory Host",
        );
        CcpClient::new(&config).expect("builds")
    }

    /// The request URL for a query, or the error text.
    fn check(query: &str) -> String {
        match client().request_url(query) {
            Ok(url) => url.to_string(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn queries_become_encoded_parameters_after_app_id() {
        let base =
            "https://ccp.corp.example:8443/AIMWebService/api/Accounts?AppID=Inventory%20Host";
        for (query, expected) in [
            (
                "Safe=Salesforce;Folder=Root;Object=acme-prod",
                format!("{base}&Safe=Salesforce&Folder=Root&Object=acme-prod"),
            ),
            (
                " Safe = A&B ; Reason=audit run #1+2 ;",
                format!("{base}&Safe=A%26B&Reason=audit%20run%20%231%2B2"),
            ),
            (
                "Query=Safe=X;QueryFormat=Regexp",
                format!("{base}&Query=Safe%3DX&QueryFormat=Regexp"),
            ),
            (
                "Reason=r;Query=Safe=X;Folder=Root;Object=Y;ConnectionTimeout=5;Tag=a",
                format!(
                    "{base}&Reason=r&Query=Safe%3DX%3BFolder%3DRoot%3BObject%3DY%3BTag%3Da\
                     &ConnectionTimeout=5"
                ),
            ),
        ] {
            assert_eq!(check(query), expected, "{query}");
        }
        for (query, expected) in [
            ("", "the query is empty"),
            ("Safe", "`Safe` is not Key=Value"),
            ("AppId=Other;Safe=S", "`AppId` cannot be part of the query"),
        ] {
            let text = check(query);
            assert!(text.contains(expected), "{query}: {text}");
        }
    }

    #[test]
    fn non_json_answers_say_not_ccp_and_never_quote_the_body() {
        let client = client();
        let body = b"<html>secret-looking page</html>";
        for (status, expected) in [
            (200, "not the CCP API (HTTP 200, text/html)"),
            (404, "not the CCP API (HTTP 404, text/html)"),
            (401, "Windows (OS user) authentication"),
            (403, "requires a client certificate"),
            (500, "failed (HTTP 500); try again later"),
        ] {
            let error = client
                .read_answer("Safe=S", status, "text/html", body)
                .expect_err("refused")
                .to_string();
            assert!(error.contains(expected), "{status}: {error}");
            assert!(!error.contains("secret-looking"), "{error}");
        }
        let not_an_account = client
            .read_answer("Safe=S", 404, "application/json", br#"{"value": "x"}"#)
            .expect_err("refused");
        assert_eq!(not_an_account.reason(), "not_ccp");
        // Another JSON service answering 200: none of an account's properties.
        let other_service = client
            .read_answer(
                "Safe=S",
                200,
                "application/json",
                br#"{"value": "x", "count": 1}"#,
            )
            .expect_err("refused");
        assert_eq!(other_service.reason(), "not_ccp");
        let lowercase = client
            .read_answer("Safe=S", 200, "application/json", br#"{"content": "pw"}"#)
            .expect("an account");
        assert_eq!(lowercase.property_names(), ["content"]);
        let array = client
            .read_answer("Safe=S", 200, "application/json", br#"["x"]"#)
            .expect_err("refused");
        assert_eq!(array.reason(), "not_ccp");
    }
}
