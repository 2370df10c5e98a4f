//! The [`Plugin`] implementation: manifest, schema, validation, and dispatch to the
//! Salesforce-specific modules.

use invhost_plugin_api::{
    API_VERSION, Action, Error, Host, Manifest, Plugin, SourceType,
    protocol::{ImportRequest, ImportSummary, InitRequest, ValidateRequest, ValidateResponse},
    schema::settings_schema,
    sdk::expect_source_type,
    settings::parse_settings,
};

use crate::config::SalesforceSettings;

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

    async fn import(&self, request: ImportRequest, _host: &Host) -> Result<ImportSummary, Error> {
        expect_source_type(&self.manifest(), &request.source_type)?;
        Err(Error::unsupported(
            "this build of the Salesforce plugin cannot import yet; the import comes with the \
             next plugin release",
        ))
    }
}
