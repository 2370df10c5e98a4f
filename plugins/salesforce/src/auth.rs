//! Salesforce OAuth: its own dialect of the device flow (both steps POST to
//! `/services/oauth2/token`), and the refresh-token flow with rotation.
//!
//! 1. [`OAuth::start_device_flow`]: `response_type=device_code`, `client_id`,
//!    `scope=api refresh_token` → a device code, a user code, a verification URI, an interval.
//! 2. [`device_prompt`]: the user code and `verification_uri?user_code=CODE`, for any browser.
//! 3. [`OAuth::poll`]: `grant_type=device`, `client_id`, `code` (and `client_secret` when set)
//!    every interval; only `authorization_pending` keeps polling, `slow_down` adds 5 s, and
//!    our own deadline ends the wait.
//!
//! [`OAuth::refresh`] trades a refresh token for an access token and stores a rotated refresh
//! token before anything uses the new access token.
//!
//! Tokens are [`Secret`]s; no token or secret ever reaches a log line or an error message.

use std::time::Duration;

use invhost_plugin_api::{Error, ErrorKind, Host, Secret, protocol::Prompt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{debug, info};
use url::Url;

use crate::client::Http;

/// The settings field that holds the refresh token.
pub const REFRESH_TOKEN_FIELD: &str = "credentials.refresh_token";

/// The scopes the device flow asks for: REST access and a refresh token.
pub const SCOPES: &str = "api refresh_token";

/// What `slow_down` adds to the polling interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The answer of device-flow step 1.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceCodes {
    /// The code the poll sends back; opaque.
    pub device_code: Secret,
    /// The code the person types in the browser.
    pub user_code: String,
    /// The page where the person types the code.
    pub verification_uri: String,
    /// Seconds between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

/// The token answer shared by the device flow and the refresh flow.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The session id to send as `Authorization: Bearer`.
    pub access_token: Secret,
    /// A refresh token: from the device flow, or a rotated one from a refresh.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The base URL of the org's REST API.
    pub instance_url: String,
    /// The identity URL `…/id/{org id}/{user id}`.
    #[serde(default)]
    pub id: String,
    /// The granted scopes, space separated.
    #[serde(default)]
    pub scope: String,
}

impl Tokens {
    /// The org id, read from the identity URL.
    pub fn org_id(&self) -> Option<&str> {
        identity_part(&self.id, 1)
    }

    /// The id of the user the tokens belong to, read from the identity URL.
    pub fn user_id(&self) -> Option<&str> {
        identity_part(&self.id, 2)
    }
}

/// Part `n` of `…/id/{org}/{user}` (0 is `id`).
fn identity_part(id: &str, n: usize) -> Option<&str> {
    let mut parts = id
        .trim_end_matches('/')
        .rsplit('/')
        .take(3)
        .collect::<Vec<_>>();
    parts.reverse();
    (parts.len() == 3 && parts[0] == "id")
        .then(|| parts[n])
        .filter(|part| !part.is_empty())
}

/// Where a rotated refresh token goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Into the host's store, with [`Host::update_secret`] on [`REFRESH_TOKEN_FIELD`].
    Store,
    /// Nowhere: the token comes from a read-only vault, so a rotation breaks the connection.
    ReadOnly,
}

/// Which request an OAuth error answered; the same code means different things per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    DeviceStart,
    DevicePoll,
    Refresh,
}

/// One Salesforce login host and connected app.
#[derive(Debug, Clone)]
pub struct OAuth {
    http: Http,
    token_url: Url,
    host_name: String,
    consumer_key: String,
    consumer_secret: Secret,
}

/// An answer of the token endpoint: a success body, or an OAuth error.
#[derive(Debug)]
enum Reply {
    Granted(String),
    Refused(OAuthError),
}

/// An OAuth error body `{"error", "error_description"}`.
#[derive(Debug, Clone, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl OAuth {
    /// A client for `login_url` (`https://login.salesforce.com`, a My Domain URL, ...) and the
    /// connected app's consumer key; the consumer secret is sent only when it is not empty.
    pub fn new(
        http: Http,
        login_url: &str,
        consumer_key: &str,
        consumer_secret: Secret,
    ) -> Result<Self, Error> {
        // The settings' own check: a bare origin, so the path below cannot land in a query, a
        // fragment or after a path (settings stored before the check existed included).
        let mut validator = invhost_plugin_api::settings::Validator::default();
        let origin = crate::config::check_login_url(login_url, &mut validator);
        validator.finish()?;
        let mut token_url =
            origin.ok_or_else(|| Error::internal("login_url was refused without a reason"))?;
        token_url.set_path("/services/oauth2/token");
        let host_name = token_url.host_str().unwrap_or_default().to_owned();
        Ok(OAuth {
            http,
            token_url,
            host_name,
            consumer_key: consumer_key.to_owned(),
            consumer_secret,
        })
    }

    /// Device flow step 1: asks for a device code and a user code.
    pub async fn start_device_flow(&self) -> Result<DeviceCodes, Error> {
        let form = [
            ("response_type", "device_code"),
            ("client_id", self.consumer_key.as_str()),
            ("scope", SCOPES),
        ];
        debug!(host = %self.host_name, "Requesting a device code.");
        match self.post(&form).await? {
            Reply::Granted(body) => parse_success(&body),
            Reply::Refused(refusal) => Err(oauth_error(Step::DeviceStart, &refusal)),
        }
    }

    /// Device flow step 3: polls until the person approves, refuses, or `timeout` passes.
    pub async fn poll(
        &self,
        codes: &DeviceCodes,
        timeout: Duration,
        host: &Host,
    ) -> Result<Tokens, Error> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_secs(codes.interval.max(1));
        let mut form = vec![
            ("grant_type", "device"),
            ("client_id", self.consumer_key.as_str()),
            ("code", codes.device_code.expose()),
        ];
        if !self.consumer_secret.is_empty() {
            form.push(("client_secret", self.consumer_secret.expose()));
        }
        let mut attempt: u32 = 0;
        loop {
            wait(interval, deadline, timeout, host).await?;
            attempt = attempt.saturating_add(1);
            debug!(attempt, "Polling for the device-flow token.");
            let reply = tokio::time::timeout_at(deadline, self.post(&form))
                .await
                .map_err(|_| timed_out(timeout))??;
            match reply {
                Reply::Granted(body) => return parse_success(&body),
                Reply::Refused(refusal) => match refusal.error.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => {
                        interval += SLOW_DOWN_STEP;
                        debug!(
                            interval_secs = interval.as_secs(),
                            "Salesforce asked to poll more slowly."
                        );
                    }
                    _ => return Err(oauth_error(Step::DevicePoll, &refusal)),
                },
            }
        }
    }

    /// The whole device flow: codes, the prompt, then polling until `timeout`.
    pub async fn device_flow(&self, timeout: Duration, host: &Host) -> Result<Tokens, Error> {
        let codes = self.start_device_flow().await?;
        host.prompt(&device_prompt(&codes, timeout))?;
        info!(user_code = %codes.user_code, "Waiting for the device flow to be approved.");
        let tokens = self.poll(&codes, timeout, host).await?;
        info!(
            org_id = tokens.org_id().unwrap_or("?"),
            "Device flow approved."
        );
        Ok(tokens)
    }

    /// Trades `refresh_token` for an access token. A rotated refresh token is stored (see
    /// [`Rotation`]) before this returns, so nothing uses the access token before the new
    /// refresh token is safe.
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        rotation: Rotation,
        host: &Host,
    ) -> Result<Tokens, Error> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.consumer_key.as_str()),
        ];
        if !self.consumer_secret.is_empty() {
            form.push(("client_secret", self.consumer_secret.expose()));
        }
        debug!(host = %self.host_name, "Refreshing the access token.");
        let tokens: Tokens = match self.post(&form).await? {
            Reply::Granted(body) => parse_success(&body)?,
            Reply::Refused(refusal) => return Err(oauth_error(Step::Refresh, &refusal)),
        };
        if let Some(rotated) = tokens
            .refresh_token
            .as_ref()
            .filter(|t| *t != refresh_token)
        {
            store_rotated(rotated, rotation, host)?;
        }
        Ok(tokens)
    }

    /// POSTs a form to the token endpoint and sorts the answer.
    async fn post(&self, form: &[(&str, &str)]) -> Result<Reply, Error> {
        let request = self.http.client().post(self.token_url.clone()).form(form);
        let (status, body) = self.http.exchange(request, &self.host_name).await?;
        if status.is_success() {
            return Ok(Reply::Granted(body));
        }
        match serde_json::from_str::<OAuthError>(&body) {
            Ok(refusal) => Ok(Reply::Refused(refusal)),
            Err(_) => Err(not_oauth(status.as_u16())),
        }
    }
}

/// Sleeps one interval (or less, at the deadline), checking for cancellation; a timeout
/// error once the deadline has passed.
async fn wait(
    interval: Duration,
    deadline: Instant,
    timeout: Duration,
    host: &Host,
) -> Result<(), Error> {
    host.check_cancelled()?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out(timeout));
    }
    tokio::time::sleep(interval.min(left)).await;
    host.check_cancelled()?;
    if Instant::now() >= deadline {
        return Err(timed_out(timeout));
    }
    Ok(())
}

/// Stores a rotated refresh token, or explains why it cannot be.
fn store_rotated(rotated: &Secret, rotation: Rotation, host: &Host) -> Result<(), Error> {
    match rotation {
        Rotation::Store => {
            host.update_secret(REFRESH_TOKEN_FIELD, rotated)
                .map_err(|error| {
                    Error::auth(format!(
                        "Salesforce rotated the refresh token, but invhost could not store the \
                         new one ({error}), and the old one no longer works"
                    ))
                    .with_details(serde_json::json!({"reauthorize": true}))
                })?;
            info!("Stored the rotated refresh token.");
            Ok(())
        }
        Rotation::ReadOnly => Err(Error::config(
            "Salesforce rotated the refresh token, but the token comes from CyberArk, which \
             invhost cannot write, so the stored one no longer works; turn off refresh token \
             rotation for the connected app, and store the new token in the vault",
        )
        .with_details(serde_json::json!({"reauthorize": true}))),
    }
}

/// The prompt of device-flow step 2.
pub fn device_prompt(codes: &DeviceCodes, timeout: Duration) -> Prompt {
    let url = link_with_code(&codes.verification_uri, &codes.user_code);
    let secs = timeout.as_secs();
    let wait = if secs < 120 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", secs.div_ceil(60))
    };
    Prompt {
        message: format!(
            "Open {url} in any browser, sign in to Salesforce as the user invhost should read \
             the org as (a System Administrator), check that the code is {code}, and click \
             Allow. Waiting up to {wait}.",
            code = codes.user_code
        ),
        user_code: Some(codes.user_code.clone()),
        url: Some(url),
    }
}

/// `verification_uri?user_code=CODE`, which pre-fills the code on Salesforce's page.
fn link_with_code(verification_uri: &str, user_code: &str) -> String {
    match Url::parse(verification_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("user_code", user_code);
            url.into()
        }
        Err(_) => format!("{verification_uri}?user_code={user_code}"),
    }
}

/// Parses a success body; a body of another shape means the host is not Salesforce's.
fn parse_success<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
    // serde's message may quote the value, which may be a token: keep it out.
    serde_json::from_str(body).map_err(|_| not_oauth(200))
}

fn not_oauth(status: u16) -> Error {
    if status >= 500 {
        // Salesforce's maintenance pages and overloaded gateways answer so; a wrong login_url
        // answers 404 or a page of another site.
        return Error::upstream(format!(
            "Salesforce's login service is unavailable (HTTP {status}); try again later, and \
             if it lasts check status.salesforce.com and login_url"
        ))
        .retryable(true);
    }
    Error::upstream(format!(
        "the login host answered something that is not Salesforce's OAuth endpoint (HTTP \
         {status}); check login_url"
    ))
}

fn timed_out(timeout: Duration) -> Error {
    Error::new(
        ErrorKind::TIMEOUT,
        format!(
            "timed out: the browser was closed, the login failed, or nobody approved within {} \
             seconds; run the flow again",
            timeout.as_secs()
        ),
    )
}

/// The operator message for an OAuth error, with what to do next.
fn oauth_error(step: Step, refusal: &OAuthError) -> Error {
    let description = refusal.error_description.to_lowercase();
    let reauthorize = serde_json::json!({"reauthorize": true});
    match (refusal.error.as_str(), step) {
        ("invalid_client_id", _) => Error::config(
            "the consumer key does not match the connected app; copy Consumer Key from the \
             app's settings (Setup → App Manager → the app → View → Manage Consumer Details)",
        ),
        // Which step answers these is not documented: the start or the first poll.
        ("invalid_grant", Step::DeviceStart | Step::DevicePoll)
            if description.contains("device flow") =>
        {
            Error::config(
                "device flow is not enabled for the connected app: a Salesforce admin must tick \
                 Enable for Device Flow in the app's OAuth settings (Setup → App Manager → the \
                 app → Edit), then run the flow again",
            )
        }
        ("invalid_client", Step::DeviceStart | Step::DevicePoll)
            if description.contains("install") =>
        {
            Error::config(
                "the connected app is not installed in the org: a Salesforce admin must install \
                 or pre-authorise it (Setup → Connected Apps OAuth Usage → Install, or Manage → \
                 Edit Policies → Admin approved users are pre-authorized, and add the user's \
                 profile or permission set), then run the flow again",
            )
        }
        ("invalid_client" | "invalid_client_credentials", _) => Error::config(
            "the consumer secret does not match the connected app; copy Consumer Secret from \
             the app's settings (Setup → App Manager → the app → View → Manage Consumer Details)",
        ),
        ("access_denied" | "invalid_request", Step::DevicePoll) => {
            Error::auth("access was denied in the browser; run the flow again and click Allow")
        }
        // `expired_token` is RFC 8628's code; Salesforce's own is `invalid_grant`.
        ("invalid_grant" | "expired_token", Step::DevicePoll) => Error::auth(format!(
            "the device code expired or was already used ({}); run the flow again, and only one \
             at a time",
            refusal.error_description
        )),
        // The host adds how to generate a new token (`details.reauthorize`), in its own words.
        ("invalid_grant", Step::Refresh) => {
            Error::auth("the refresh token was revoked or expired").with_details(reauthorize)
        }
        ("inactive_user", _) => Error::auth(
            "the Salesforce user the token belongs to is inactive; the new token must be \
             generated by an active user with API access",
        )
        .with_details(reauthorize),
        ("inactive_org", _) => Error::auth(
            "the Salesforce org is locked, closed or suspended; ask the org's admin or \
             Salesforce support",
        ),
        ("rate_limit_exceeded", _) => Error::new(
            ErrorKind::RATE_LIMITED,
            "Salesforce refused: too many logins or token requests; try again later",
        ),
        // OAuth's codes for a server that cannot answer now (RFC 6749, section 5.2 and 4.1.2.1).
        ("temporarily_unavailable" | "server_error", _) => Error::upstream(format!(
            "Salesforce's login service is unavailable ({}); try again later, and if it lasts \
             check status.salesforce.com",
            refusal.error
        ))
        .retryable(true),
        (code, _) => Error::upstream(format!(
            "Salesforce refused the request: {code} ({}); check login_url and the connected app",
            refusal.error_description
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_the_vault_cannot_take_asks_for_reauthorization_once() {
        let recording = invhost_plugin_api::sdk::testing::RecordingHost::new();
        let error = store_rotated(
            &Secret::new("5Aep-rotated"),
            Rotation::ReadOnly,
            &recording.host(),
        )
        .expect_err("the vault is read-only");
        assert!(error.needs_reauthorization());
        assert!(error.message.contains("turn off refresh token rotation"));
        // The host adds how to generate a new token; the plugin does not say it too.
        assert!(!error.message.contains("generate"), "{}", error.message);
        assert!(!error.message.contains("5Aep-rotated"), "{}", error.message);
    }

    /// Maps `error`/`description` at `step`; checks the kind and a fragment of the message.
    fn check(step: Step, error: &str, description: &str, kind: ErrorKind, fragment: &str) -> Error {
        let refusal = OAuthError {
            error: error.to_owned(),
            error_description: description.to_owned(),
        };
        let mapped = oauth_error(step, &refusal);
        assert_eq!(mapped.kind, kind, "{error}: {}", mapped.message);
        assert!(
            mapped.message.contains(fragment),
            "{error}: {}",
            mapped.message
        );
        mapped
    }

    #[test]
    fn oauth_errors_say_what_to_do() {
        use Step::*;
        let table = [
            (
                DeviceStart,
                "invalid_client_id",
                "client identifier invalid",
                ErrorKind::CONFIG,
                "the consumer key does not match the connected app; copy Consumer Key",
            ),
            (
                Refresh,
                "invalid_client_id",
                "",
                ErrorKind::CONFIG,
                "consumer key does not match",
            ),
            (
                DeviceStart,
                "invalid_grant",
                "device flow is not enabled for the app",
                ErrorKind::CONFIG,
                "Enable for Device Flow",
            ),
            (
                DeviceStart,
                "invalid_client",
                "app must be installed into org",
                ErrorKind::CONFIG,
                "Admin approved users are pre-authorized",
            ),
            (
                DevicePoll,
                "invalid_client",
                "invalid client credentials",
                ErrorKind::CONFIG,
                "consumer secret does not match",
            ),
            (
                Refresh,
                "invalid_client_credentials",
                "",
                ErrorKind::CONFIG,
                "Consumer Secret",
            ),
            (
                DevicePoll,
                "access_denied",
                "end-user denied authorization",
                ErrorKind::AUTH,
                "access was denied in the browser; run the flow again and click Allow",
            ),
            (
                DevicePoll,
                "invalid_request",
                "",
                ErrorKind::AUTH,
                "access was denied",
            ),
            (
                DevicePoll,
                "invalid_grant",
                "expired authorization code",
                ErrorKind::AUTH,
                "expired authorization code",
            ),
            (
                DevicePoll,
                "expired_token",
                "expired device code",
                ErrorKind::AUTH,
                "expired or was already used (expired device code); run the flow again",
            ),
            (
                DevicePoll,
                "invalid_grant",
                "device flow is not enabled for the app",
                ErrorKind::CONFIG,
                "Enable for Device Flow",
            ),
            (
                DevicePoll,
                "invalid_client",
                "app must be installed into org",
                ErrorKind::CONFIG,
                "pre-authorise",
            ),
            (Refresh, "inactive_user", "", ErrorKind::AUTH, "inactive"),
            (
                Refresh,
                "inactive_org",
                "",
                ErrorKind::AUTH,
                "locked, closed or suspended",
            ),
            (
                Refresh,
                "rate_limit_exceeded",
                "",
                ErrorKind::RATE_LIMITED,
                "try again later",
            ),
            (
                Refresh,
                "temporarily_unavailable",
                "",
                ErrorKind::UPSTREAM,
                "login service is unavailable (temporarily_unavailable); try again later",
            ),
            (
                DevicePoll,
                "server_error",
                "",
                ErrorKind::UPSTREAM,
                "login service is unavailable (server_error); try again later",
            ),
            (
                Refresh,
                "unsupported_grant_type",
                "grant type not supported",
                ErrorKind::UPSTREAM,
                "unsupported_grant_type",
            ),
        ];
        for (step, error, description, kind, fragment) in table {
            check(step, error, description, kind, fragment);
        }
    }

    #[test]
    fn revoked_refresh_token_asks_for_reauthorization() {
        let error = check(
            Step::Refresh,
            "invalid_grant",
            "expired access/refresh token",
            ErrorKind::AUTH,
            "the refresh token was revoked or expired",
        );
        assert_eq!(error.details["reauthorize"], true);
    }

    #[test]
    fn only_a_new_token_cures_what_asks_for_one() {
        let org = check(
            Step::Refresh,
            "inactive_org",
            "",
            ErrorKind::AUTH,
            "ask the org's admin",
        );
        assert!(
            !org.needs_reauthorization(),
            "a new token does not unlock an org"
        );
        let user = check(
            Step::Refresh,
            "inactive_user",
            "",
            ErrorKind::AUTH,
            "active user",
        );
        assert!(user.needs_reauthorization());
    }

    #[test]
    fn a_failing_login_service_is_told_apart_from_a_wrong_login_url() {
        let unavailable = not_oauth(503);
        assert!(
            unavailable.message.starts_with(
                "Salesforce's login service is unavailable (HTTP 503); try again later"
            ),
            "{}",
            unavailable.message
        );
        assert!(unavailable.retryable);
        let elsewhere = not_oauth(404);
        assert!(
            elsewhere
                .message
                .contains("not Salesforce's OAuth endpoint (HTTP 404); check login_url"),
            "{}",
            elsewhere.message
        );
        assert!(!elsewhere.retryable);
    }

    #[test]
    fn link_carries_the_user_code() {
        assert_eq!(
            link_with_code("https://login.salesforce.com/setup/connect", "6VL44ZGC"),
            "https://login.salesforce.com/setup/connect?user_code=6VL44ZGC"
        );
        assert_eq!(
            link_with_code("https://x.example/connect?lang=en", "AB"),
            "https://x.example/connect?lang=en&user_code=AB"
        );
    }

    #[test]
    fn identity_url_gives_org_and_user() {
        let tokens = Tokens {
            access_token: Secret::new("t"),
            refresh_token: None,
            instance_url: "https://acme.my.salesforce.com".into(),
            id: "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P".into(),
            scope: String::new(),
        };
        assert_eq!(tokens.org_id(), Some("00Dx0000000BV7z"));
        assert_eq!(tokens.user_id(), Some("005x00000012Q9P"));
        let odd = Tokens {
            id: "https://x/other/a/b".into(),
            ..tokens
        };
        assert_eq!(odd.org_id(), None);
    }

    #[test]
    fn non_oauth_bodies_are_upstream_errors_without_their_content() {
        let error = parse_success::<Tokens>("{\"access_token\": 5}").expect_err("wrong shape");
        assert_eq!(error.kind, ErrorKind::UPSTREAM);
        assert!(
            error.message.contains("not Salesforce's OAuth endpoint"),
            "{}",
            error.message
        );
        let html = parse_success::<DeviceCodes>("<html>login</html>").expect_err("html");
        assert!(html.message.contains("check login_url"), "{}", html.message);
    }

    #[test]
    fn token_debug_output_hides_tokens() {
        let tokens: Tokens = serde_json::from_str(
            r#"{"access_token":"00D!secret-access","refresh_token":"5Aep-secret-refresh",
                "instance_url":"https://x","id":"https://x/id/o/u"}"#,
        )
        .expect("parses");
        let printed = format!("{tokens:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
