//! The error a plugin returns and the host shows.

use std::fmt;

use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

/// What kind of failure an [`Error`] is. A newtype over an integer, so that new kinds can be
/// added without changing the ABI; a kind this build does not know displays as `kind N`.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorKind(pub u32);

impl ErrorKind {
    /// The settings are wrong or incomplete; the operator must change them.
    pub const CONFIG: ErrorKind = ErrorKind(1);
    /// The SaaS service refused the credentials; re-authorise or fix them.
    pub const AUTH: ErrorKind = ErrorKind(2);
    /// The service could not be reached (DNS, connect, TLS, proxy, timeout).
    pub const NETWORK: ErrorKind = ErrorKind(3);
    /// The service answered with an error or something unreadable.
    pub const UPSTREAM: ErrorKind = ErrorKind(4);
    /// The service asked us to slow down, or the API budget is spent.
    pub const RATE_LIMITED: ErrorKind = ErrorKind(5);
    /// The call was cancelled by the operator or the scheduler.
    pub const CANCELLED: ErrorKind = ErrorKind(6);
    /// A bug or an unexpected state in the plugin or the host.
    pub const INTERNAL: ErrorKind = ErrorKind(7);
    /// The operation, action or source type is not offered.
    pub const UNSUPPORTED: ErrorKind = ErrorKind(8);
    /// The plugin panicked; the SDK caught it.
    pub const PANIC: ErrorKind = ErrorKind(9);
    /// A secret could not be read from the vault (CyberArk).
    pub const VAULT: ErrorKind = ErrorKind(10);
    /// The operation timed out on our own deadline.
    pub const TIMEOUT: ErrorKind = ErrorKind(11);

    /// A short lowercase name, stable for scripts (`config`, `auth`, ...).
    pub fn name(self) -> String {
        let known = match self {
            ErrorKind::CONFIG => "config",
            ErrorKind::AUTH => "auth",
            ErrorKind::NETWORK => "network",
            ErrorKind::UPSTREAM => "upstream",
            ErrorKind::RATE_LIMITED => "rate_limited",
            ErrorKind::CANCELLED => "cancelled",
            ErrorKind::INTERNAL => "internal",
            ErrorKind::UNSUPPORTED => "unsupported",
            ErrorKind::PANIC => "panic",
            ErrorKind::VAULT => "vault",
            ErrorKind::TIMEOUT => "timeout",
            ErrorKind(other) => return format!("kind {other}"),
        };
        known.to_owned()
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorKind({})", self.name())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An error for people and programs: a kind, a message that says what happened and what to do
/// next, whether trying again may help, and JSON details.
///
/// ```
/// use invhost_plugin_api::{Error, ErrorKind};
/// let error = Error::config("login_url must use https");
/// assert_eq!(error.kind, ErrorKind::CONFIG);
/// assert_eq!(error.to_string(), "login_url must use https");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// What happened and what to do next.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// Details for programs (`null` when there are none).
    #[serde(default)]
    pub details: serde_json::Value,
}

impl Error {
    /// An error of the given kind; retryable for network and rate-limit kinds.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retryable: matches!(kind, ErrorKind::NETWORK | ErrorKind::RATE_LIMITED),
            details: serde_json::Value::Null,
        }
    }

    /// Settings are wrong or incomplete.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::CONFIG, message)
    }

    /// Credentials were refused.
    pub fn auth(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::AUTH, message)
    }

    /// The service could not be reached.
    pub fn network(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NETWORK, message)
    }

    /// The service answered with an error.
    pub fn upstream(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::UPSTREAM, message)
    }

    /// A bug or unexpected state.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::INTERNAL, message)
    }

    /// The call was cancelled.
    pub fn cancelled() -> Self {
        Error::new(ErrorKind::CANCELLED, "cancelled")
    }

    /// Something not offered by this plugin or host.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::UNSUPPORTED, message)
    }

    /// Replaces the details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Marks the error as "the stored credential no longer works: the operator must sign in
    /// again" (`details.reauthorize = true`); the host then flags the connection.
    pub fn reauthorize(mut self) -> Self {
        if !self.details.is_object() {
            self.details = serde_json::json!({});
        }
        self.details["reauthorize"] = serde_json::Value::Bool(true);
        self
    }

    /// Whether the error says the operator must sign in again (see [`Error::reauthorize`]).
    pub fn needs_reauthorization(&self) -> bool {
        self.details.get("reauthorize") == Some(&serde_json::Value::Bool(true))
    }

    /// Sets whether trying again may help.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        for (kind, name) in [
            (ErrorKind::CONFIG, "config"),
            (ErrorKind::AUTH, "auth"),
            (ErrorKind::RATE_LIMITED, "rate_limited"),
            (ErrorKind::PANIC, "panic"),
            (ErrorKind(4242), "kind 4242"),
        ] {
            assert_eq!(kind.name(), name);
        }
    }

    #[test]
    fn only_transient_kinds_default_to_retryable() {
        assert!(Error::network("x").retryable);
        assert!(Error::new(ErrorKind::RATE_LIMITED, "x").retryable);
        assert!(!Error::config("x").retryable);
        assert!(!Error::auth("x").retryable);
    }

    #[test]
    fn reauthorization_flag_survives_other_details() {
        let error = Error::auth("revoked")
            .with_details(serde_json::json!({"code": "x"}))
            .reauthorize();
        assert!(error.needs_reauthorization());
        assert_eq!(error.details["code"], "x");
        assert!(!Error::auth("no").needs_reauthorization());
    }

    #[test]
    fn error_serialises_with_numeric_kind() {
        let json = serde_json::to_value(Error::auth("no")).expect("serialises");
        assert_eq!(json["kind"], 2);
        assert_eq!(json["message"], "no");
    }
}
