//! The Salesforce connection settings, exactly as the operator writes them.
//!
//! ```json
//! {
//!   "login_url": "https://login.salesforce.com",
//!   "consumer_key": "3MVG9...",
//!   "credentials": { "source": "local", "consumer_secret": "...", "refresh_token": "..." },
//!   "proxy": { "server": "http://proxy.corp:3128",
//!              "credentials": { "source": "local", "username": "u", "password": "..." } },
//!   "import": { "login_history_days": 90, "api_budget_percent": 10, "max_concurrent_queries": 4 }
//! }
//! ```
//!
//! `proxy` and `import` are optional; every key of `import` has a default.

use invhost_plugin_api::{
    Error, Host, Secret,
    protocol::Purpose,
    settings::{ProxySettings, Settings, Validator, VaultField, VaultQuery, check_https_url},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The default login host (production and Developer Edition orgs).
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// Settings of one Salesforce connection (one org).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Salesforce connection",
    description = "One Salesforce org, reached through a connected app (or External Client App) with OAuth and device flow enabled."
)]
pub struct SalesforceSettings {
    /// The address used to obtain tokens: https://login.salesforce.com for production,
    /// https://test.salesforce.com for sandboxes, or the org's My Domain URL.
    #[schemars(
        title = "Login URL",
        length(min = 1),
        extend("default" = DEFAULT_LOGIN_URL, "format" = "uri", "examples" = ["https://login.salesforce.com", "https://test.salesforce.com", "https://acme.my.salesforce.com"])
    )]
    pub login_url: String,

    /// The Consumer Key of the connected app (Setup → App Manager → the app → View →
    /// Manage Consumer Details).
    #[schemars(title = "Consumer key", length(min = 1))]
    pub consumer_key: String,

    /// Where the consumer secret and the refresh token come from.
    #[schemars(title = "Credentials")]
    pub credentials: Credentials,

    /// An HTTP proxy for every call to Salesforce; leave out (or null) for a direct connection.
    #[serde(default)]
    #[schemars(title = "Proxy")]
    pub proxy: Option<ProxySettings>,

    /// How imports read the org: the login history window and which API reads it, the share
    /// of the daily API allowance one run may spend, and how many queries run at once. Every
    /// key has a default.
    #[serde(default)]
    #[schemars(title = "Import")]
    pub import: ImportSettings,
}

/// The default of [`ImportSettings::login_history_days`].
pub const DEFAULT_LOGIN_HISTORY_DAYS: u32 = 90;
/// The longest login history window: Salesforce keeps `LoginHistory` for about six months.
pub const MAX_LOGIN_HISTORY_DAYS: u32 = 180;
/// The default of [`ImportSettings::api_budget_percent`].
pub const DEFAULT_API_BUDGET_PERCENT: u32 = 10;
/// The default of [`ImportSettings::max_concurrent_queries`].
pub const DEFAULT_MAX_CONCURRENT_QUERIES: u32 = 4;
/// The most requests an import may have in flight at once.
pub const MAX_CONCURRENT_QUERIES: u32 = 8;
/// The default of [`ImportSettings::login_history_windows`].
pub const DEFAULT_LOGIN_HISTORY_WINDOWS: u32 = 4;
/// The most time windows `LoginHistory` may be split into.
pub const MAX_LOGIN_HISTORY_WINDOWS: u32 = 8;

/// How imports read the org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Import")]
pub struct ImportSettings {
    /// How many days of login history (LoginHistory) to read for usage: 1 to 180 (Salesforce
    /// keeps about six months).
    #[serde(default = "default_login_history_days")]
    #[schemars(title = "Login history days", range(min = 1, max = 180))]
    pub login_history_days: u32,

    /// The share of the org's daily API allowance one import may spend, in percent (1 to 100).
    /// An import that would spend more stops with an error before the call that would cross
    /// the line.
    #[serde(default = "default_api_budget_percent")]
    #[schemars(title = "API budget (%)", range(min = 1, max = 100))]
    pub api_budget_percent: u32,

    /// How many API requests an import may have in flight at once (1 to 8).
    #[serde(default = "default_max_concurrent_queries")]
    #[schemars(title = "Concurrent queries", range(min = 1, max = 8))]
    pub max_concurrent_queries: u32,

    /// Into how many time windows of equal length the login history is split (1 to 8). The
    /// windows are read at once, so a big org's login history takes about this many times
    /// less waiting; each window costs at most one more API call.
    #[serde(default = "default_login_history_windows")]
    #[schemars(title = "Login history windows", range(min = 1, max = 8))]
    pub login_history_windows: u32,

    /// Which API reads the login history: `auto` (the default) reads a login history of more
    /// than 20,000 rows as a Bulk API 2.0 query job (CSV result sets of 25,000 rows: a few
    /// API calls instead of one per 2,000 rows) and a smaller one through the REST API;
    /// `bulk` always uses a Bulk API 2.0 job; `rest` always pages through the REST API, in
    /// `login_history_windows` windows.
    #[serde(default)]
    #[schemars(title = "Login history API")]
    pub login_history_api: LoginHistoryApi,
}

/// Which API reads the login history (`LoginHistory`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginHistoryApi {
    /// Bulk API 2.0 for more than 20,000 rows, the REST API for fewer.
    #[default]
    #[schemars(title = "Automatic")]
    Auto,
    /// Always a Bulk API 2.0 query job.
    #[schemars(title = "Bulk API 2.0")]
    Bulk,
    /// Always the REST API's query pages.
    #[schemars(title = "REST API")]
    Rest,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            login_history_days: DEFAULT_LOGIN_HISTORY_DAYS,
            api_budget_percent: DEFAULT_API_BUDGET_PERCENT,
            max_concurrent_queries: DEFAULT_MAX_CONCURRENT_QUERIES,
            login_history_windows: DEFAULT_LOGIN_HISTORY_WINDOWS,
            login_history_api: LoginHistoryApi::Auto,
        }
    }
}

fn default_login_history_days() -> u32 {
    DEFAULT_LOGIN_HISTORY_DAYS
}

fn default_api_budget_percent() -> u32 {
    DEFAULT_API_BUDGET_PERCENT
}

fn default_max_concurrent_queries() -> u32 {
    DEFAULT_MAX_CONCURRENT_QUERIES
}

fn default_login_history_windows() -> u32 {
    DEFAULT_LOGIN_HISTORY_WINDOWS
}

impl ImportSettings {
    /// Records a problem for every value out of its range, naming the field.
    fn check(&self, v: &mut Validator) {
        let ranges = [
            (
                "import.login_history_days",
                self.login_history_days,
                1,
                MAX_LOGIN_HISTORY_DAYS,
                " (Salesforce keeps login history for about six months)",
            ),
            (
                "import.api_budget_percent",
                self.api_budget_percent,
                1,
                100,
                "",
            ),
            (
                "import.max_concurrent_queries",
                self.max_concurrent_queries,
                1,
                MAX_CONCURRENT_QUERIES,
                "",
            ),
            (
                "import.login_history_windows",
                self.login_history_windows,
                1,
                MAX_LOGIN_HISTORY_WINDOWS,
                "",
            ),
        ];
        for (field, value, min, max, why) in ranges {
            if !(min..=max).contains(&value) {
                v.problem(
                    field,
                    format!("must be between {min} and {max}{why}; it is {value}"),
                );
            }
        }
    }
}

/// Where the consumer secret and the refresh token come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// Stored by invhost, encrypted.
    #[schemars(title = "Stored by invhost")]
    Local {
        /// The Consumer Secret of the connected app.
        #[schemars(title = "Consumer secret", length(min = 1))]
        consumer_secret: Secret,
        /// The OAuth refresh token; empty until generated with the Generate button
        /// (`invhost connections generate-token`).
        #[serde(default)]
        #[schemars(title = "Refresh token")]
        refresh_token: Secret,
    },
    /// Read from CyberArk at each run; never stored by invhost.
    #[schemars(title = "CyberArk")]
    Cyberark {
        /// The vault account holding both values.
        query: VaultQuery,
        /// The account property holding the consumer secret; empty means the password.
        #[serde(default)]
        #[schemars(title = "Consumer secret property")]
        consumer_secret_field: VaultField,
        /// The account property holding the refresh token (forms suggest `RefreshToken`);
        /// empty means the password. It must differ from the consumer secret's property.
        // Left out, it is empty (the password), as it always was: a stored document keeps its
        // meaning. Forms start from the schema's default, a property of its own.
        #[serde(default)]
        #[schemars(
            title = "Refresh token property",
            extend("default" = DEFAULT_REFRESH_TOKEN_FIELD)
        )]
        refresh_token_field: VaultField,
    },
}

/// The refresh token property a form suggests: the token in its own account property, beside
/// the consumer secret in the account's password.
pub const DEFAULT_REFRESH_TOKEN_FIELD: &str = "RefreshToken";

/// The consumer secret and refresh token, read from the settings or from the vault.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCredentials {
    /// The connected app's consumer secret (may be empty: then it is not sent).
    pub consumer_secret: Secret,
    /// The refresh token.
    pub refresh_token: Secret,
}

impl Credentials {
    /// Whether the values come from a vault invhost cannot write to.
    pub fn read_only(&self) -> bool {
        matches!(self, Credentials::Cyberark { .. })
    }

    /// The consumer secret alone (the device flow needs no refresh token yet).
    pub fn consumer_secret(&self, host: &Host) -> Result<Secret, Error> {
        match self {
            Credentials::Local {
                consumer_secret, ..
            } => Ok(consumer_secret.clone()),
            Credentials::Cyberark {
                query,
                consumer_secret_field,
                ..
            } => {
                let values = host.vault_lookup(&query.0, &[consumer_secret_field.0.as_str()])?;
                values
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::internal("the vault answered no value"))
            }
        }
    }

    /// Both values: stored ones directly, CyberArk ones with one vault lookup.
    pub fn resolve(&self, host: &Host) -> Result<ResolvedCredentials, Error> {
        match self {
            Credentials::Local {
                consumer_secret,
                refresh_token,
            } => Ok(ResolvedCredentials {
                consumer_secret: consumer_secret.clone(),
                refresh_token: refresh_token.clone(),
            }),
            Credentials::Cyberark {
                query,
                consumer_secret_field,
                refresh_token_field,
            } => {
                let fields = [
                    consumer_secret_field.0.as_str(),
                    refresh_token_field.0.as_str(),
                ];
                let values = host.vault_lookup(&query.0, &fields)?;
                let [consumer_secret, refresh_token] =
                    <[Secret; 2]>::try_from(values).map_err(|values| {
                        Error::internal(format!(
                            "the vault answered {} values for 2 fields",
                            values.len()
                        ))
                    })?;
                if refresh_token.is_empty() {
                    // The field the token action fills is named in the details, so that the
                    // host adds its command for it (which prints the token to store there).
                    return Err(Error::config(format!(
                        "the refresh token in CyberArk account `{}` ({}) is empty (no token \
                         generated and stored there yet)",
                        query.0,
                        property_name(refresh_token_field)
                    ))
                    .with_details(serde_json::json!({"missing": ["credentials.refresh_token"]})));
                }
                Ok(ResolvedCredentials {
                    consumer_secret,
                    refresh_token,
                })
            }
        }
    }
}

/// How a vault property is named for people: its name, or the password.
pub fn property_name(field: &VaultField) -> String {
    if field.0.is_empty() {
        "the account password (Content)".to_owned()
    } else {
        format!("property {}", field.0)
    }
}

/// The forms a login URL takes, for messages.
pub const LOGIN_URL_FORMS: &str = "https://login.salesforce.com, https://test.salesforce.com or https://MyDomain.my.salesforce.com";

/// Checks `login_url`: plugin-api's https rule (no user name, password, query or fragment), and
/// a bare origin, since the token endpoint's path is appended to it. A trailing `/` is fine.
pub fn check_login_url(login_url: &str, v: &mut Validator) -> Option<url::Url> {
    let url = check_https_url("login_url", login_url, v)?;
    if url.path() != "/" {
        v.problem(
            "login_url",
            format!(
                "has a path (`{}`); a login URL is the address alone, such as {LOGIN_URL_FORMS}",
                url.path()
            ),
        );
        return None;
    }
    Some(url)
}

impl Settings for SalesforceSettings {
    fn check(&self, purpose: Purpose, v: &mut Validator) {
        check_login_url(&self.login_url, v);
        if self.consumer_key.trim() != self.consumer_key {
            v.problem(
                "consumer_key",
                "has spaces at the start or end; paste it again",
            );
        }
        match &self.credentials {
            Credentials::Local { refresh_token, .. } => {
                if purpose == Purpose::Import && refresh_token.is_empty() {
                    v.problem(
                        "credentials.refresh_token",
                        "is empty (no token generated yet)",
                    );
                }
            }
            // The query itself is checked with the document (plugin-api's first round).
            Credentials::Cyberark {
                consumer_secret_field,
                refresh_token_field,
                ..
            } => {
                // An empty field means the password, which the provider calls `Content`.
                let property = |field: &VaultField| match field.0.trim() {
                    "" => "Content".to_owned(),
                    name => name.to_ascii_lowercase(),
                };
                if property(consumer_secret_field)
                    .eq_ignore_ascii_case(&property(refresh_token_field))
                {
                    v.problem(
                        "credentials.refresh_token_field",
                        format!(
                            "reads the same value as consumer_secret_field, {}; the consumer \
                             secret and the refresh token are different values, so give each its \
                             own property, for example refresh_token_field `{DEFAULT_REFRESH_TOKEN_FIELD}` \
                             and consumer_secret_field empty for the account's password",
                            property_name(consumer_secret_field)
                        ),
                    );
                }
            }
        }
        if let Some(proxy) = &self.proxy {
            check_proxy(proxy, v);
        }
        self.import.check(v);
    }
}

fn check_proxy(proxy: &ProxySettings, v: &mut Validator) {
    match proxy.address() {
        Ok(address) if address.tls_to_proxy => v.warn(format!(
            "proxy.server `{}` uses https://, which means TLS to the proxy itself; most corporate \
             proxies take plain http:// even for HTTPS traffic, so use http:// unless yours \
             really speaks TLS",
            proxy.server
        )),
        Ok(_) => {}
        Err(message) => v.problem("proxy.server", message),
    }
}

#[cfg(test)]
mod tests {
    use invhost_plugin_api::settings::parse_settings;
    use serde_json::{Value, json};

    use super::*;

    fn complete() -> Value {
        json!({
            "login_url": "https://login.salesforce.com",
            "consumer_key": "3MVG9key",
            "credentials": {"source": "local", "consumer_secret": "s3cret", "refresh_token": "5Aep"},
            "proxy": {"server": "http://proxy.corp:3128",
                      "credentials": {"source": "local", "username": "u", "password": "p"}}
        })
    }

    /// Validates `document` for `purpose`; returns the warnings or the error message.
    fn check(document: Value, purpose: Purpose) -> Result<Vec<String>, String> {
        parse_settings::<SalesforceSettings>(&document, purpose)
            .map(|(_, warnings)| warnings)
            .map_err(|e| e.message)
    }

    fn with(mut document: Value, pointer: &str, value: Value) -> Value {
        *document.pointer_mut(pointer).expect("pointer exists") = value;
        document
    }

    #[test]
    fn complete_document_is_valid_for_both_purposes() {
        assert_eq!(check(complete(), Purpose::Save), Ok(vec![]));
        assert_eq!(check(complete(), Purpose::Import), Ok(vec![]));
    }

    #[test]
    fn empty_document_names_every_missing_field_in_one_message() {
        assert_eq!(
            check(json!({}), Purpose::Save),
            Err("Mandatory parameter(s) missing: login_url, consumer_key, credentials".into())
        );
    }

    #[test]
    fn nested_missing_fields_and_empty_strings_count_as_missing() {
        let document = json!({
            "login_url": "", "consumer_key": "k",
            "credentials": {"source": "local"},
            "proxy": {"credentials": {"source": "local", "username": "u"}}
        });
        assert_eq!(
            check(document, Purpose::Save),
            Err(
                "Mandatory parameter(s) missing: login_url, credentials.consumer_secret, \
                 proxy.server, proxy.credentials.password"
                    .into()
            )
        );
    }

    #[test]
    fn refresh_token_may_be_empty_for_saving_but_not_for_importing() {
        let document = with(complete(), "/credentials/refresh_token", json!(""));
        assert_eq!(check(document.clone(), Purpose::Save), Ok(vec![]));
        let error = check(document, Purpose::Import).expect_err("needs a token");
        assert!(
            error.contains("credentials.refresh_token: is empty"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        let mut document = complete();
        document["colour"] = json!("blue");
        document["credentials"]["extra"] = json!(1);
        let error = check(document, Purpose::Save).expect_err("unknown keys");
        assert!(error.contains("colour: unknown field"), "{error}");
        assert!(
            error.contains("credentials.extra: unknown field"),
            "{error}"
        );
    }

    #[test]
    fn credential_source_must_be_known() {
        let document = with(complete(), "/credentials", json!({"source": "keychain"}));
        assert_eq!(
            check(document, Purpose::Save),
            Err("credentials.source: must be one of local, cyberark".into())
        );
        let document = with(complete(), "/credentials", json!({"consumer_secret": "x"}));
        assert_eq!(
            check(document, Purpose::Save),
            Err("Mandatory parameter(s) missing: credentials.source".into())
        );
    }

    #[test]
    fn cyberark_credentials() {
        let document = with(
            complete(),
            "/credentials",
            json!({"source": "cyberark", "query": "Safe=Salesforce;Object=acme-prod",
                   "refresh_token_field": "RefreshToken"}),
        );
        assert_eq!(check(document, Purpose::Import), Ok(vec![]));
        let document = with(
            complete(),
            "/credentials",
            json!({"source": "cyberark", "query": "Safe"}),
        );
        let error = check(document, Purpose::Save).expect_err("bad query");
        assert!(
            error.starts_with("credentials.query: `Safe` is not Key=Value"),
            "{error}"
        );
    }

    #[test]
    fn login_url_must_be_https_except_on_loopback() {
        let plain = with(
            complete(),
            "/login_url",
            json!("http://login.salesforce.com"),
        );
        let error = check(plain, Purpose::Save).expect_err("http refused");
        assert!(error.starts_with("login_url: must use https://"), "{error}");
        let loopback = with(complete(), "/login_url", json!("http://127.0.0.1:8080"));
        assert_eq!(check(loopback, Purpose::Save), Ok(vec![]));
    }

    #[test]
    fn login_url_is_a_bare_origin() {
        for value in [
            "https://login.salesforce.com",
            "https://login.salesforce.com/",
            "https://acme.my.salesforce.com",
            "http://127.0.0.1:18931/",
        ] {
            let document = with(complete(), "/login_url", json!(value));
            assert_eq!(check(document, Purpose::Save), Ok(vec![]), "{value}");
        }
        for (value, expected) in [
            ("http://127.0.0.1:18931/?x=1", "login_url: has a query"),
            (
                "https://login.salesforce.com#x",
                "login_url: has a fragment",
            ),
            (
                "https://u:pw@login.salesforce.com",
                "login_url: `https://***@login.salesforce.com` contains a user name or password",
            ),
            (
                "https://login.salesforce.com/services",
                "login_url: has a path (`/services`); a login URL is the address alone, such as \
                 https://login.salesforce.com, https://test.salesforce.com or \
                 https://MyDomain.my.salesforce.com",
            ),
            (
                "https://acme.my.salesforce.com/home/",
                "login_url: has a path (`/home/`)",
            ),
        ] {
            let document = with(complete(), "/login_url", json!(value));
            let error = check(document, Purpose::Save).expect_err(value);
            assert!(error.starts_with(expected), "{value}: {error}");
        }
        let document = with(complete(), "/login_url", json!("https://user:SEKRET_Y@a b"));
        let error = check(document, Purpose::Save).expect_err("not a URL");
        assert!(!error.contains("SEKRET_Y"), "{error}");
        assert!(error.contains("`https://***@a b` is not a URL"), "{error}");
    }

    #[test]
    fn vault_queries_are_checked_in_credentials_and_proxy() {
        let cyberark = |query: &str| {
            with(
                complete(),
                "/credentials",
                json!({"source": "cyberark", "query": query,
                       "refresh_token_field": DEFAULT_REFRESH_TOKEN_FIELD}),
            )
        };
        for (query, expected) in [
            ("Safe=", "credentials.query: `Safe` has no value"),
            (
                "Safe=S;Object",
                "credentials.query: `Object` is not Key=Value",
            ),
            (
                "Safe=a;safe=b",
                "credentials.query: `Safe` and `safe` are the same key",
            ),
            (
                "AppId=x;Safe=S",
                "credentials.query: `AppId` cannot be part of the query",
            ),
        ] {
            let error = check(cyberark(query), Purpose::Save).expect_err(query);
            assert!(error.starts_with(expected), "{query}: {error}");
        }
        assert_eq!(
            check(cyberark(" Safe=S;;Object=o; "), Purpose::Save),
            Ok(vec![])
        );
        let proxy = with(
            complete(),
            "/proxy/credentials",
            json!({"source": "cyberark", "query": "Safe=P;APPID=x"}),
        );
        let error = check(proxy, Purpose::Save).expect_err("AppID");
        assert!(
            error.starts_with("proxy.credentials.query: `APPID` cannot be part of the query"),
            "{error}"
        );
    }

    #[test]
    fn vault_fields_of_secret_and_token_must_differ() {
        let fields = |secret: Option<&str>, token: Option<&str>| {
            let mut credentials = json!({"source": "cyberark", "query": "Safe=S;Object=o"});
            if let Some(secret) = secret {
                credentials["consumer_secret_field"] = json!(secret);
            }
            if let Some(token) = token {
                credentials["refresh_token_field"] = json!(token);
            }
            with(complete(), "/credentials", credentials)
        };
        // A field left out is empty, the password, as it always was: a stored document that
        // names only the consumer secret's property keeps reading the token from the password.
        let (settings, _) = parse_settings::<SalesforceSettings>(
            &fields(Some("ConsumerSecret"), None),
            Purpose::Import,
        )
        .expect("valid");
        let Credentials::Cyberark {
            refresh_token_field,
            ..
        } = settings.credentials
        else {
            panic!("cyberark credentials");
        };
        assert_eq!(refresh_token_field.0, "");
        // A form starts from the schema's defaults, which differ.
        let schema = serde_json::to_value(invhost_plugin_api::schema::settings_schema::<
            SalesforceSettings,
        >())
        .expect("json");
        let defaults: Vec<&Value> = [
            "consumer_secret_field",
            "refresh_token_field",
        ]
        .iter()
        .map(|field| &schema["definitions"]["Credentials"]["oneOf"][1]["properties"][field]["default"])
        .collect();
        assert_eq!(defaults, [&json!(""), &json!(DEFAULT_REFRESH_TOKEN_FIELD)]);
        assert_eq!(
            check(
                fields(Some(""), Some(DEFAULT_REFRESH_TOKEN_FIELD)),
                Purpose::Save
            ),
            Ok(vec![])
        );
        for (secret, token) in [
            (Some(""), Some("")),
            (None, None),
            (None, Some("")),
            (Some("RefreshToken"), Some("refreshtoken")),
            (Some("Token"), Some("token")),
            // The password is `Content` to the provider, named or not.
            (Some("Content"), Some("")),
            (Some(""), Some("content")),
        ] {
            let error =
                check(fields(secret, token), Purpose::Save).expect_err("the same property twice");
            assert!(
                error.starts_with(
                    "credentials.refresh_token_field: reads the same value as consumer_secret_field"
                ),
                "{secret:?} {token:?}: {error}"
            );
        }
        let error = check(fields(Some(""), Some("")), Purpose::Save).expect_err("same");
        assert!(
            error.contains("consumer_secret_field, the account password (Content);"),
            "{error}"
        );
        assert_eq!(
            check(fields(Some("ConsumerSecret"), Some("")), Purpose::Save),
            Ok(vec![])
        );
    }

    #[test]
    fn proxy_forms() {
        let ftp = with(complete(), "/proxy/server", json!("ftp://x:1"));
        let error = check(ftp, Purpose::Save).expect_err("ftp refused");
        assert!(
            error.contains("http://host:port, https://host:port or IP:port"),
            "{error}"
        );
        let bare = with(complete(), "/proxy/server", json!("10.0.0.1:3128"));
        assert_eq!(check(bare, Purpose::Save), Ok(vec![]));
        let tls = with(
            complete(),
            "/proxy/server",
            json!("https://proxy.corp:3128"),
        );
        let warnings = check(tls, Purpose::Save).expect("valid with a warning");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("TLS to the proxy itself"));
        let none = with(complete(), "/proxy", Value::Null);
        assert_eq!(check(none, Purpose::Save), Ok(vec![]));
    }

    #[test]
    fn import_settings_have_defaults_and_ranges() {
        let (settings, _) =
            parse_settings::<SalesforceSettings>(&complete(), Purpose::Import).expect("valid");
        assert_eq!(settings.import, ImportSettings::default());
        assert_eq!(
            (
                settings.import.login_history_days,
                settings.import.api_budget_percent,
                settings.import.max_concurrent_queries,
                settings.import.login_history_windows
            ),
            (90, 10, 4, 4)
        );
        let mut document = complete();
        document["import"] = json!({"login_history_days": 30});
        let (settings, _) =
            parse_settings::<SalesforceSettings>(&document, Purpose::Save).expect("valid");
        assert_eq!(settings.import.login_history_days, 30);
        assert_eq!(settings.import.api_budget_percent, 10);

        let table = [
            (
                json!({"login_history_days": 181}),
                "import.login_history_days: must be between 1 and 180 (Salesforce keeps login \
                 history for about six months); it is 181",
            ),
            (
                json!({"login_history_days": 0}),
                "import.login_history_days: must be between 1 and 180",
            ),
            (
                json!({"api_budget_percent": 0}),
                "import.api_budget_percent: must be between 1 and 100; it is 0",
            ),
            (
                json!({"api_budget_percent": 101}),
                "import.api_budget_percent: must be between 1 and 100; it is 101",
            ),
            (
                json!({"max_concurrent_queries": 9}),
                "import.max_concurrent_queries: must be between 1 and 8; it is 9",
            ),
            (
                json!({"max_concurrent_queries": 0}),
                "import.max_concurrent_queries: must be between 1 and 8; it is 0",
            ),
            (
                json!({"login_history_windows": 0}),
                "import.login_history_windows: must be between 1 and 8; it is 0",
            ),
            (
                json!({"login_history_windows": 9}),
                "import.login_history_windows: must be between 1 and 8; it is 9",
            ),
            (json!({"colour": 1}), "import.colour: unknown field"),
        ];
        for (import, expected) in table {
            let mut document = complete();
            document["import"] = import.clone();
            let error = check(document, Purpose::Save).expect_err("refused");
            assert!(error.contains(expected), "{import}: {error}");
        }
        let mut document = complete();
        document["import"] = json!({"api_budget_percent": 0, "max_concurrent_queries": 9});
        let error = check(document, Purpose::Save).expect_err("refused");
        assert!(
            error.contains("import.api_budget_percent")
                && error.contains("import.max_concurrent_queries"),
            "every problem in one message: {error}"
        );
    }

    #[test]
    fn wrong_types_are_named() {
        let document = with(complete(), "/consumer_key", json!(42));
        assert_eq!(
            check(document, Purpose::Save),
            Err("consumer_key: must be a string".into())
        );
    }
}
