//! What a simulator serves: the allowed applications, the vault's accounts, TLS, and the
//! faults to inject.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The CCP's default web service path (`AIMWebService` is IIS's default application name).
pub const DEFAULT_PATH: &str = "/AIMWebService/api/Accounts";

/// The application ID allowed by default.
pub const DEFAULT_APP_ID: &str = "InventoryHost";

/// A simulator's configuration. `Default` gives one allowed application
/// ([`DEFAULT_APP_ID`]), no accounts, plain HTTP, [`DEFAULT_PATH`] and no faults.
///
/// It also reads from JSON (the binary's `--accounts FILE`), every key optional:
/// `{"app_ids": [..], "accounts": [..], "path": "..", "faults": {..}}`. TLS is not read
/// from JSON (the binary has `--tls-dir`).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Application IDs the provider knows (compared case-insensitively); any other
    /// `AppID` fails authentication (`APPAP306E`).
    pub app_ids: Vec<String>,
    /// The vault's accounts.
    pub accounts: Vec<Account>,
    /// HTTPS instead of HTTP, optionally with required client certificates.
    #[serde(skip)]
    pub tls: Option<TlsSetup>,
    /// The web service path; [`DEFAULT_PATH`] by default.
    pub path: String,
    /// Faults to inject; they can also be changed while running through
    /// [`Control`](crate::Control).
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            app_ids: vec![DEFAULT_APP_ID.to_owned()],
            accounts: Vec::new(),
            tls: None,
            path: DEFAULT_PATH.to_owned(),
            faults: Faults::default(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("app_ids", &self.app_ids)
            .field("accounts", &self.accounts)
            .field("tls", &self.tls)
            .field("path", &self.path)
            .field("faults", &self.faults)
            .finish()
    }
}

/// One password object in the vault.
///
/// In JSON: `{"safe", "folder" (default "Root"), "object", "user_name", "address",
/// "content", "properties": {..}, "apps": [..]}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The safe holding the account.
    pub safe: String,
    /// The folder in the safe; `Root` by default.
    #[serde(default = "root_folder")]
    pub folder: String,
    /// The object (account) name, answered as `Name`.
    pub object: String,
    /// `UserName`; left out of the answer when empty.
    #[serde(default)]
    pub user_name: String,
    /// `Address`; left out of the answer when empty.
    #[serde(default)]
    pub address: String,
    /// The password, answered as `Content`.
    #[serde(default)]
    pub content: String,
    /// Further properties (`ConsumerSecret`, `RefreshToken`, `Database`, `PolicyID`...),
    /// answered as top-level string keys beside `Content`.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Applications that are members of the account's safe; empty means every known
    /// application. Any other application gets `APPAP004E`, as for a missing account.
    #[serde(default)]
    pub apps: Vec<String>,
}

fn root_folder() -> String {
    "Root".to_owned()
}

impl Account {
    /// An account in folder `Root` with the given safe, object and password.
    pub fn new(safe: &str, object: &str, content: &str) -> Account {
        Account {
            safe: safe.to_owned(),
            folder: root_folder(),
            object: object.to_owned(),
            user_name: String::new(),
            address: String::new(),
            content: content.to_owned(),
            properties: BTreeMap::new(),
            apps: Vec::new(),
        }
    }

    /// Sets `UserName`.
    pub fn user_name(mut self, user_name: &str) -> Account {
        self.user_name = user_name.to_owned();
        self
    }

    /// Sets `Address`.
    pub fn address(mut self, address: &str) -> Account {
        self.address = address.to_owned();
        self
    }

    /// Sets the folder.
    pub fn folder(mut self, folder: &str) -> Account {
        self.folder = folder.to_owned();
        self
    }

    /// Adds a property.
    pub fn property(mut self, name: &str, value: &str) -> Account {
        self.properties.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Restricts the safe's members to these applications.
    pub fn apps(mut self, apps: &[&str]) -> Account {
        self.apps = apps.iter().map(|app| (*app).to_owned()).collect();
        self
    }
}

impl std::fmt::Debug for Account {
    /// Names only: the password and property values are left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("safe", &self.safe)
            .field("folder", &self.folder)
            .field("object", &self.object)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

/// TLS for the simulator: a server certificate, and optionally a CA whose client
/// certificates are required.
#[derive(Clone)]
pub struct TlsSetup {
    /// The server certificate chain, PEM (leaf first).
    pub cert_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
    /// When set, every connection must present a client certificate signed by this CA
    /// (PEM); without one the TLS handshake fails.
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("requires_client_cert", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Objects (names, case-insensitive) whose password the CPM is changing: their answer
    /// says `"PasswordChangeInProcess": "True"`, and a request with
    /// `FailRequestOnPasswordChange=true` gets 500 `APPAP282E`.
    pub password_change_in_progress: Vec<String>,
    /// The provider cannot reach the vault: every valid request gets 400 `APPAP007E`.
    pub vault_unreachable: bool,
    /// Milliseconds to wait before answering each request to the web service path.
    pub latency_ms: u64,
    /// When set, every request to the web service path gets this answer instead of the
    /// vault's: an error code the client does not know, an IIS error page, an odd account.
    pub raw_answer: Option<RawAnswer>,
}

/// A fixed answer of the web service path ([`Faults::raw_answer`]).
///
/// In JSON: `{"status": 500, "content_type": "text/html", "body": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: String,
    /// The body, sent as is.
    pub body: String,
}

impl RawAnswer {
    /// A CCP error answer, `{"ErrorCode": code, "ErrorMsg": message}`, with any status and
    /// code (`ZZZZ999E`, `APPAP008E`).
    pub fn ccp_error(status: u16, code: &str, message: &str) -> RawAnswer {
        RawAnswer::json(
            status,
            &serde_json::json!({ "ErrorCode": code, "ErrorMsg": message }),
        )
    }

    /// A JSON answer (an account shaped differently from the vault's, for example).
    pub fn json(status: u16, body: &serde_json::Value) -> RawAnswer {
        RawAnswer {
            status,
            content_type: "application/json; charset=utf-8".to_owned(),
            body: body.to_string(),
        }
    }

    /// IIS's HTML page for HTTP 500, as a failing application pool answers.
    pub fn iis_server_error() -> RawAnswer {
        RawAnswer {
            status: 500,
            content_type: "text/html".to_owned(),
            body: "<!DOCTYPE html>\n<html><head><title>500 - Internal server error.</title>\
                   </head><body><h2>500 - Internal server error.</h2><h3>There is a problem \
                   with the resource you are looking for, and it cannot be displayed.</h3>\
                   </body></html>\n"
                .to_owned(),
        }
    }
}

impl Faults {
    /// The latency as a duration.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}
