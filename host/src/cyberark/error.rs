//! [`CyberArkError`]: every way a vault lookup fails, each with what the operator does
//! next. No variant ever holds a fetched value.

use super::account::CONTENT;
use invhost_plugin_api::{Error, ErrorKind};
use serde_json::{Map, Value, json};

/// The form a query takes, for messages.
const QUERY_FORM: &str = "Key=Value pairs separated by semicolons, e.g. \
    Safe=Salesforce;Folder=Root;Object=acme-prod; keys: Safe, Folder, Object, UserName, \
    Address, Database, PolicyID, Reason, Query, QueryFormat, ConnectionTimeout, \
    FailRequestOnPasswordChange";

/// Why a CyberArk lookup failed.
///
/// Messages say what happened and what to do; they carry the provider's own `ErrorMsg`
/// (which names the query, never the password) but never a fetched value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CyberArkError {
    /// The query text is not `Key=Value;Key=Value` (checked before sending).
    #[error("the CyberArk query is not valid: {reason}")]
    InvalidQuery {
        /// What is wrong.
        reason: String,
    },
    /// `APPAP004E` (HTTP 404): no account matches, or the application may not read it.
    #[error(
        "no CyberArk account matches the query `{query}`, or application `{app_id}` has no \
         permission on its safe ({code}: {message}); check Safe, Folder and Object in the \
         query, and ask the CyberArk administrator to make `{app_id}` a member of the safe"
    )]
    NotFound {
        /// The query as configured.
        query: String,
        /// The application ID sent.
        app_id: String,
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// `APPAP227E`/`APPAP228E`/`APPAP229E`: several accounts match.
    #[error(
        "the query `{query}` matches several CyberArk accounts ({code}: {message}); add \
         Object (and Folder if needed) to the query so that it names exactly one account"
    )]
    Ambiguous {
        /// The query as configured.
        query: String,
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// `APPAP306E` (HTTP 403): the application failed authentication.
    #[error(
        "CyberArk could not authenticate application `{app_id}` ({code}: {message}); check \
         cyberark.app_id, the application's allowed machines (this host's address as the \
         provider sees it) and its client certificate (cyberark.client_cert)"
    )]
    AppAuthentication {
        /// The application ID sent.
        app_id: String,
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// `APPAP007E`: the provider cannot reach the vault.
    #[error(
        "the CyberArk provider cannot reach the vault ({code}: {message}); try again later, \
         and if it persists ask the CyberArk administrator to check the provider's \
         connection to the vault"
    )]
    VaultUnreachable {
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// `AIMWS030E`, `AIMWS031E`, `APPAP081E`, `CASVL010E`: the request is malformed.
    #[error(
        "CyberArk says the request is malformed ({code}: {message}); write the query as {QUERY_FORM}"
    )]
    MalformedRequest {
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// `APPAP282E` (HTTP 500): the CPM is changing the password right now.
    #[error(
        "CyberArk is changing this account's password right now ({code}: {message}); try \
         again in a few minutes"
    )]
    PasswordChangeInProgress {
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// The provider wants a client certificate and none is configured (TLS alert
    /// `CertificateRequired`, or a plain HTTP 403 from the web server).
    #[error(
        "the CyberArk provider requires a client certificate ({detail}); set \
         cyberark.client_cert and cyberark.client_key"
    )]
    ClientCertificateRequired {
        /// What the connection reported.
        detail: String,
    },
    /// The provider refused the configured client certificate.
    #[error(
        "the CyberArk provider refused the client certificate ({detail}); check that \
         cyberark.client_cert is the certificate registered for application `{app_id}`, \
         issued by a CA the provider trusts and not expired, and that cyberark.client_key \
         is its key"
    )]
    ClientCertificateRejected {
        /// The application ID.
        app_id: String,
        /// What the connection reported.
        detail: String,
    },
    /// The provider's certificate is not trusted (or not for this host name).
    #[error(
        "the CyberArk provider's TLS certificate is not trusted ({detail}); set \
         cyberark.ca_cert to the PEM file of the CA that issued it, and check that \
         cyberark.url uses the host name in the certificate"
    )]
    ServerCertificate {
        /// What the TLS layer reported.
        detail: String,
    },
    /// Another TLS failure (protocol version, cipher suites...).
    #[error(
        "the TLS connection to the CyberArk provider failed ({detail}); the provider must \
         offer TLS 1.2 or newer"
    )]
    Tls {
        /// What the TLS layer reported.
        detail: String,
    },
    /// No answer in time.
    #[error(
        "the CyberArk provider at {endpoint} did not answer within {secs} s; try again \
         later, or raise cyberark.timeout_secs"
    )]
    Timeout {
        /// The web service URL (no query).
        endpoint: String,
        /// The configured timeout.
        secs: u64,
    },
    /// Nothing listens at the address.
    #[error(
        "the CyberArk provider at {address} refused the connection; check the host and port \
         in cyberark.url and that the provider is running"
    )]
    ConnectionRefused {
        /// `host:port`.
        address: String,
    },
    /// The host name did not resolve.
    #[error(
        "the CyberArk provider's host name `{host}` could not be resolved; check cyberark.url \
         and this host's DNS settings"
    )]
    Dns {
        /// The host name.
        host: String,
    },
    /// Another connection failure.
    #[error(
        "could not connect to the CyberArk provider at {address} ({detail}); check \
         cyberark.url and the network between this host and the provider"
    )]
    Connect {
        /// `host:port`.
        address: String,
        /// What the connection reported.
        detail: String,
    },
    /// The answer is not the CCP's JSON (an HTML page, a redirect, another API).
    #[error(
        "the provider at {endpoint} answered something that is not the CCP API (HTTP \
         {status}, {content_type}); check cyberark.url and cyberark.path"
    )]
    NotCcp {
        /// The web service URL (no query).
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The `Content-Type`, or `no content type`.
        content_type: String,
    },
    /// HTTP 5xx without a CCP error code (often an IIS error page): the provider itself
    /// failed.
    #[error(
        "the CyberArk provider at {endpoint} failed (HTTP {status}); try again later, and if \
         it persists ask the CyberArk administrator to check the provider (its web server and \
         the AIMWebService application)"
    )]
    ProviderFailed {
        /// The web service URL (no query).
        endpoint: String,
        /// The HTTP status (500 to 599).
        status: u16,
    },
    /// HTTP 401 without a CCP error: the web server wants Windows (OS user)
    /// authentication, which invhost does not speak.
    #[error(
        "the CyberArk provider asks for Windows (OS user) authentication (HTTP 401), which \
         invhost does not support; ask the CyberArk administrator to authenticate \
         application `{app_id}` by allowed machines or a client certificate"
    )]
    WindowsAuthentication {
        /// The application ID.
        app_id: String,
    },
    /// `APPAP008E` (HTTP 403): a problem with the vault user behind the application or the
    /// provider (`ITATS982E User ... is not defined`, a suspended or expired user).
    #[error(
        "CyberArk refused application `{app_id}` because of a vault user problem ({code}: \
         {message}); ask the CyberArk administrator to check that application `{app_id}` \
         and the provider's own vault user exist and are enabled, quoting {code}"
    )]
    VaultUser {
        /// The application ID sent.
        app_id: String,
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// A CCP error code this client does not know: passed through, with whom to ask.
    #[error(
        "CyberArk refused the request ({code}: {message}; HTTP {status}); ask the CyberArk \
         administrator what {code} means for application `{app_id}` and the query `{query}`, \
         quoting the code"
    )]
    Provider {
        /// The HTTP status.
        status: u16,
        /// The application ID sent.
        app_id: String,
        /// The query as configured.
        query: String,
        /// The provider's `ErrorCode`.
        code: String,
        /// The provider's `ErrorMsg`.
        message: String,
    },
    /// The account has no such property. Lists the names it has (never values).
    #[error(
        "the CyberArk account has no property `{field}`; {}",
        properties_listed(field, .available)
    )]
    MissingProperty {
        /// The property asked for.
        field: String,
        /// The names the account has, sorted.
        available: Vec<String>,
    },
    /// The request failed in another way.
    #[error("the request to the CyberArk provider failed: {detail}")]
    Request {
        /// What failed.
        detail: String,
    },
}

impl CyberArkError {
    /// The CCP `ErrorCode` behind this error, when the provider sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CyberArkError::NotFound { code, .. }
            | CyberArkError::Ambiguous { code, .. }
            | CyberArkError::AppAuthentication { code, .. }
            | CyberArkError::VaultUnreachable { code, .. }
            | CyberArkError::MalformedRequest { code, .. }
            | CyberArkError::PasswordChangeInProgress { code, .. }
            | CyberArkError::VaultUser { code, .. }
            | CyberArkError::Provider { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A stable lowercase name of the condition, for programs (`not_found`, `timeout`).
    pub fn reason(&self) -> &'static str {
        match self {
            CyberArkError::InvalidQuery { .. } => "invalid_query",
            CyberArkError::NotFound { .. } => "not_found",
            CyberArkError::Ambiguous { .. } => "ambiguous",
            CyberArkError::AppAuthentication { .. } => "app_authentication",
            CyberArkError::VaultUnreachable { .. } => "vault_unreachable",
            CyberArkError::MalformedRequest { .. } => "malformed_request",
            CyberArkError::PasswordChangeInProgress { .. } => "password_change_in_progress",
            CyberArkError::ClientCertificateRequired { .. } => "client_certificate_required",
            CyberArkError::ClientCertificateRejected { .. } => "client_certificate_rejected",
            CyberArkError::ServerCertificate { .. } => "server_certificate",
            CyberArkError::Tls { .. } => "tls",
            CyberArkError::Timeout { .. } => "timeout",
            CyberArkError::ConnectionRefused { .. } => "connection_refused",
            CyberArkError::Dns { .. } => "dns",
            CyberArkError::Connect { .. } => "connect",
            CyberArkError::NotCcp { .. } => "not_ccp",
            CyberArkError::ProviderFailed { .. } => "provider_failed",
            CyberArkError::VaultUser { .. } => "vault_user",
            CyberArkError::WindowsAuthentication { .. } => "windows_authentication",
            CyberArkError::Provider { .. } => "provider",
            CyberArkError::MissingProperty { .. } => "missing_property",
            CyberArkError::Request { .. } => "request",
        }
    }

    /// Whether trying again later may succeed without changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CyberArkError::VaultUnreachable { .. }
                | CyberArkError::PasswordChangeInProgress { .. }
                | CyberArkError::Timeout { .. }
                | CyberArkError::ConnectionRefused { .. }
                | CyberArkError::Connect { .. }
                | CyberArkError::ProviderFailed { .. }
        )
    }

    /// The HTTP status the provider answered with, when there was an answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CyberArkError::NotCcp { status, .. }
            | CyberArkError::ProviderFailed { status, .. }
            | CyberArkError::Provider { status, .. } => Some(*status),
            CyberArkError::WindowsAuthentication { .. } => Some(401),
            _ => None,
        }
    }

    /// Maps a CCP error answer to its variant.
    pub(crate) fn from_answer(
        status: u16,
        code: String,
        message: String,
        query: &str,
        app_id: &str,
    ) -> CyberArkError {
        match code.to_ascii_uppercase().as_str() {
            "APPAP004E" => CyberArkError::NotFound {
                query: query.to_owned(),
                app_id: app_id.to_owned(),
                code,
                message,
            },
            "APPAP227E" | "APPAP228E" | "APPAP229E" => CyberArkError::Ambiguous {
                query: query.to_owned(),
                code,
                message,
            },
            "APPAP306E" => CyberArkError::AppAuthentication {
                app_id: app_id.to_owned(),
                code,
                message,
            },
            "APPAP007E" => CyberArkError::VaultUnreachable { code, message },
            "AIMWS030E" | "AIMWS031E" | "APPAP081E" | "CASVL010E" => {
                CyberArkError::MalformedRequest { code, message }
            }
            "APPAP282E" => CyberArkError::PasswordChangeInProgress { code, message },
            "APPAP008E" => CyberArkError::VaultUser {
                app_id: app_id.to_owned(),
                code,
                message,
            },
            _ => CyberArkError::Provider {
                status,
                app_id: app_id.to_owned(),
                query: query.to_owned(),
                code,
                message,
            },
        }
    }
}

impl From<CyberArkError> for Error {
    /// Kind [`ErrorKind::VAULT`]; retryable per [`CyberArkError::is_retryable`]; details
    /// `{"reason": ..., "code": "APPAP004E", "http_status": 404}` (the last two when known);
    /// a missing property adds `"field"` and `"properties"` (the names the account has, so
    /// that a plugin can word the next step for its own setting).
    fn from(error: CyberArkError) -> Error {
        let mut details = Map::new();
        details.insert("reason".to_owned(), json!(error.reason()));
        if let Some(code) = error.code() {
            details.insert("code".to_owned(), json!(code));
        }
        if let Some(status) = error.http_status() {
            details.insert("http_status".to_owned(), json!(status));
        }
        if let CyberArkError::MissingProperty { field, available } = &error {
            details.insert("field".to_owned(), json!(field));
            details.insert("properties".to_owned(), json!(available));
        }
        Error::new(ErrorKind::VAULT, error.to_string())
            .retryable(error.is_retryable())
            .with_details(Value::Object(details))
    }
}

/// The names an account has, for a message (an account may have none at all), and the hint
/// for the password unless the password is what was missing.
fn properties_listed(field: &str, available: &[String]) -> String {
    let names = if available.is_empty() {
        "the account has no properties at all".to_owned()
    } else {
        format!("its properties are {}", available.join(", "))
    };
    if field.is_empty() || field.eq_ignore_ascii_case(CONTENT) {
        format!(
            "{names}; the account has no password (Content) to read: store it in CyberArk, or \
             name the property that holds the value"
        )
    } else {
        format!("{names}; leave the field empty for the password (Content)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str) -> (&'static str, bool) {
        let error =
            CyberArkError::from_answer(400, code.to_owned(), "text".to_owned(), "Safe=S", "App");
        (error.reason(), error.is_retryable())
    }

    #[test]
    fn codes_map_to_conditions() {
        for (code, expected) in [
            ("APPAP004E", ("not_found", false)),
            ("APPAP227E", ("ambiguous", false)),
            ("APPAP228E", ("ambiguous", false)),
            ("APPAP229E", ("ambiguous", false)),
            ("APPAP306E", ("app_authentication", false)),
            ("APPAP007E", ("vault_unreachable", true)),
            ("AIMWS030E", ("malformed_request", false)),
            ("AIMWS031E", ("malformed_request", false)),
            ("APPAP282E", ("password_change_in_progress", true)),
            ("APPAP008E", ("vault_user", false)),
            ("APPAP999E", ("provider", false)),
        ] {
            assert_eq!(check(code), expected, "{code}");
        }
    }

    #[test]
    fn converts_to_a_vault_error_with_details() {
        let error = Error::from(CyberArkError::from_answer(
            500,
            "APPAP282E".to_owned(),
            "being changed".to_owned(),
            "Safe=S;Object=O",
            "App",
        ));
        assert_eq!(error.kind, ErrorKind::VAULT);
        assert!(error.retryable);
        assert_eq!(
            error.details,
            json!({"reason": "password_change_in_progress", "code": "APPAP282E"})
        );
        let unknown = Error::from(CyberArkError::from_answer(
            418,
            "XYZ001E".to_owned(),
            "odd".to_owned(),
            "Safe=S",
            "App",
        ));
        assert_eq!(
            unknown.message,
            "CyberArk refused the request (XYZ001E: odd; HTTP 418); ask the CyberArk \
             administrator what XYZ001E means for application `App` and the query `Safe=S`, \
             quoting the code"
        );
        assert_eq!(unknown.details["http_status"], 418);
        assert!(!unknown.retryable);
    }

    #[test]
    fn missing_property_lists_names() {
        let error = CyberArkError::MissingProperty {
            field: "Token".to_owned(),
            available: vec!["Content".to_owned(), "UserName".to_owned()],
        };
        assert_eq!(
            error.to_string(),
            "the CyberArk account has no property `Token`; its properties are Content, \
             UserName; leave the field empty for the password (Content)"
        );
        let empty = CyberArkError::MissingProperty {
            field: "Token".to_owned(),
            available: Vec::new(),
        };
        assert!(
            empty
                .to_string()
                .contains("no property `Token`; the account has no properties at all;"),
            "{empty}"
        );
        let no_password = CyberArkError::MissingProperty {
            field: "Content".to_owned(),
            available: vec!["UserName".to_owned()],
        };
        assert_eq!(
            no_password.to_string(),
            "the CyberArk account has no property `Content`; its properties are UserName; the \
             account has no password (Content) to read: store it in CyberArk, or name the \
             property that holds the value"
        );
    }
}
