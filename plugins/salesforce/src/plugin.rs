//! The [`Plugin`] implementation: manifest, schema, validation, and dispatch to the
//! Salesforce-specific modules.

use std::{collections::BTreeMap, time::Duration};

use invhost_plugin_api::{
    API_VERSION, Action, Error, Host, Manifest, Plugin, Secret, SourceType,
    protocol::{
        ActionRequest, ActionResponse, ApiUsage, Fact, ImportRequest, ImportSummary, InitRequest,
        Purpose, ShowOnce, TestReport, TestRequest, ValidateRequest, ValidateResponse,
    },
    schema::settings_schema,
    sdk::expect_source_type,
    settings::parse_settings,
};
use tracing::info;

use crate::{
    auth::{OAuth, REFRESH_TOKEN_FIELD, Rotation, Tokens},
    client::{Http, ResolvedProxy},
    config::{Credentials, SalesforceSettings, property_name},
    rest::{Session, newest},
};

/// The source type this plugin offers.
pub const SOURCE_TYPE: &str = "salesforce";

/// The action that runs the OAuth device flow and fills the refresh token.
pub const GENERATE_REFRESH_TOKEN: &str = "generate_refresh_token";

/// The Salesforce plugin. Stateless: every call carries its settings.
#[derive(Debug, Default)]
pub struct Salesforce;

impl Salesforce {
    /// The manifest (also available without loading the library, for tests).
    pub fn describe() -> Manifest {
        Manifest {
            plugin_id: "salesforce".to_owned(),
            plugin_version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: API_VERSION.to_owned(),
            source_types: vec![SourceType {
                id: SOURCE_TYPE.to_owned(),
                title: "Salesforce.com".to_owned(),
                description: "License allocations, users and usage of one Salesforce org, read \
                              through a connected app with OAuth."
                    .to_owned(),
                actions: vec![Action {
                    id: GENERATE_REFRESH_TOKEN.to_owned(),
                    title: "Generate".to_owned(),
                    description: "Sign in to Salesforce in any browser with the OAuth device \
                                  flow and store the refresh token it issues."
                        .to_owned(),
                    fills: vec!["credentials.refresh_token".to_owned()],
                }],
                supersedes: vec![],
            }],
        }
    }
}

impl Plugin for Salesforce {
    fn new(_init: &InitRequest) -> Result<Self, Error> {
        Ok(Salesforce)
    }

    fn manifest(&self) -> Manifest {
        Salesforce::describe()
    }

    fn settings_schema(&self, source_type: &str) -> Result<schemars::Schema, Error> {
        expect_source_type(&self.manifest(), source_type)?;
        Ok(settings_schema::<SalesforceSettings>())
    }

    fn validate(&self, request: ValidateRequest) -> Result<ValidateResponse, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        let (_, warnings) =
            parse_settings::<SalesforceSettings>(&request.settings, request.purpose)?;
        Ok(ValidateResponse { warnings })
    }

    async fn run_action(
        &self,
        request: ActionRequest,
        host: &Host,
    ) -> Result<ActionResponse, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        match request.action.as_str() {
            GENERATE_REFRESH_TOKEN => generate_refresh_token(&request, host).await,
            other => Err(Error::unsupported(format!(
                "action `{other}` is not offered for source type `{SOURCE_TYPE}`"
            ))),
        }
    }

    async fn test_connection(
        &self,
        request: TestRequest,
        host: &Host,
    ) -> Result<TestReport, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        test_connection(&request, host).await
    }

    async fn import(&self, request: ImportRequest, host: &Host) -> Result<ImportSummary, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        crate::import::import(&request, host).await
    }

    #[cfg(feature = "demo")]
    async fn start_demo(
        &self,
        request: invhost_plugin_api::protocol::DemoRequest,
        _host: &Host,
    ) -> Result<invhost_plugin_api::protocol::DemoEnvironment, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        crate::demo::start(&request)
    }

    #[cfg(feature = "demo")]
    async fn stop_demo(
        &self,
        request: invhost_plugin_api::protocol::StopDemoRequest,
        _host: &Host,
    ) -> Result<(), Error> {
        crate::demo::stop(&request)
    }
}

/// An OAuth client for the settings' login host, through the configured proxy.
pub(crate) fn oauth(
    settings: &SalesforceSettings,
    consumer_secret: Secret,
    host: &Host,
) -> Result<(Http, OAuth), Error> {
    let proxy = ResolvedProxy::resolve_optional(settings.proxy.as_ref(), host)?;
    let http = Http::new(proxy.as_ref())?;
    let oauth = OAuth::new(
        http.clone(),
        &settings.login_url,
        &settings.consumer_key,
        consumer_secret,
    )?;
    Ok((http, oauth))
}

/// Runs the device flow; stores the refresh token (local credentials) or shows it once
/// (CyberArk, which invhost cannot write).
async fn generate_refresh_token(
    request: &ActionRequest,
    host: &Host,
) -> Result<ActionResponse, Error> {
    let (settings, _) = parse_settings::<SalesforceSettings>(&request.settings, Purpose::Save)?;
    let consumer_secret = settings.credentials.consumer_secret(host)?;
    let (_, oauth) = oauth(&settings, consumer_secret, host)?;
    let timeout = Duration::from_secs(request.options.timeout_secs);
    let tokens = oauth.device_flow(timeout, host).await?;
    let refresh_token = tokens.refresh_token.clone().ok_or_else(|| {
        Error::config(
            "Salesforce issued no refresh token: add the scope Perform requests at any time \
             (refresh_token, offline_access) to the connected app, then run the flow again",
        )
    })?;
    let org = tokens.org_id().unwrap_or("the org");
    Ok(deliver(&settings.credentials, refresh_token, org))
}

/// Hands a new refresh token over: as a settings update for stored credentials, or shown once
/// with where to put it for CyberArk ones.
fn deliver(credentials: &Credentials, refresh_token: Secret, org: &str) -> ActionResponse {
    match credentials {
        Credentials::Local { .. } => {
            info!(org_id = %org, "Refresh token generated; the host stores it.");
            ActionResponse {
                message: format!(
                    "Generated a refresh token for {org}; it is stored with the connection."
                ),
                settings_updates: BTreeMap::from([(
                    REFRESH_TOKEN_FIELD.to_owned(),
                    serde_json::Value::String(refresh_token.expose().to_owned()),
                )]),
                show_once: vec![],
            }
        }
        Credentials::Cyberark {
            query,
            refresh_token_field,
            ..
        } => {
            info!(org_id = %org, "Refresh token generated; the operator stores it in CyberArk.");
            ActionResponse {
                message: format!(
                    "Generated a refresh token for {org}. invhost cannot write to CyberArk: \
                     store it in the vault as shown; it is shown only once."
                ),
                settings_updates: BTreeMap::new(),
                show_once: vec![ShowOnce {
                    label: "Refresh token".to_owned(),
                    value: refresh_token,
                    instruction: format!(
                        "Store this value in the CyberArk account `{}`, in {}, then test the \
                         connection.",
                        query.0,
                        property_name(refresh_token_field)
                    ),
                }],
            }
        }
    }
}

/// Refreshes the access token, reads the API versions and the limits, and reports them.
async fn test_connection(request: &TestRequest, host: &Host) -> Result<TestReport, Error> {
    let connected = connect(&request.settings, host).await?;
    let api_usage = connected.session.api_usage(&connected.version).await?;
    Ok(report(
        &connected.tokens,
        &connected.session,
        &connected.version,
        api_usage,
    ))
}

/// A signed-in org: what the connection test and the import both start from.
pub(crate) struct Connected {
    /// The settings, parsed for importing.
    pub settings: SalesforceSettings,
    /// The HTTP client (proxy and TLS as configured).
    pub http: Http,
    /// The OAuth client of the login host.
    pub oauth: OAuth,
    /// Where a rotated refresh token goes.
    pub rotation: Rotation,
    /// The tokens of the first refresh.
    pub tokens: Tokens,
    /// The refresh token to use next (the rotated one, if Salesforce rotated it).
    pub refresh_token: Secret,
    /// The REST session on the org's instance.
    pub session: Session,
    /// The newest API version the org offers.
    pub version: String,
}

/// Parses the settings for importing, resolves the credentials (from the vault when so
/// configured), refreshes the access token (storing a rotated refresh token first), and picks
/// the newest API version.
pub(crate) async fn connect(settings: &serde_json::Value, host: &Host) -> Result<Connected, Error> {
    let (settings, _) = parse_settings::<SalesforceSettings>(settings, Purpose::Import)?;
    let credentials = settings.credentials.resolve(host)?;
    let (http, oauth) = oauth(&settings, credentials.consumer_secret, host)?;
    let rotation = if settings.credentials.read_only() {
        Rotation::ReadOnly
    } else {
        Rotation::Store
    };
    let tokens = oauth
        .refresh(&credentials.refresh_token, rotation, host)
        .await?;
    host.check_cancelled()?;
    let session = Session::new(http.clone(), &tokens)?;
    let versions = session.versions().await?;
    let version = newest(&versions)
        .map(|v| v.version.clone())
        .ok_or_else(|| Error::upstream("Salesforce listed no API versions; check login_url"))?;
    let refresh_token = tokens
        .refresh_token
        .clone()
        .unwrap_or(credentials.refresh_token);
    Ok(Connected {
        settings,
        http,
        oauth,
        rotation,
        tokens,
        refresh_token,
        session,
        version,
    })
}

/// The connection test's report: a summary, the facts, and the daily API usage.
fn report(
    tokens: &Tokens,
    session: &Session,
    version: &str,
    api_usage: Option<ApiUsage>,
) -> TestReport {
    let instance = session
        .instance_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let org = tokens.org_id().unwrap_or("unknown").to_owned();
    let fact = |label: &str, value: &str| Fact {
        label: label.to_owned(),
        value: value.to_owned(),
    };
    let usage = api_usage.map_or(String::new(), |u| {
        format!("; {} of {} daily API calls used", u.used, u.max)
    });
    TestReport {
        summary: format!("Connected to Salesforce org {org} at {instance} (API {version}){usage}."),
        facts: vec![
            fact("API version", version),
            fact("Instance", &instance),
            fact("Org ID", &org),
        ],
        api_usage,
    }
}
