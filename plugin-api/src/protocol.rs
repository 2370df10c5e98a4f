//! The JSON that crosses the ABI: operation names and their request and answer shapes.
//!
//! Rules that keep 1.x plugins and hosts compatible in both directions:
//! * readers ignore fields they do not know, and every field added later has a default;
//! * a new capability is a new operation name; a side that does not know it answers
//!   [`crate::ErrorKind::UNSUPPORTED`] and the caller degrades gracefully.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::{model::MODEL_VERSION, secret::Secret};

/// `Debug` for requests that carry settings: every field but the settings, which hold secrets.
macro_rules! debug_without_settings {
    ($ty:ident { $($field:ident),* }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    .field("settings", &"<not shown: may hold secrets>")
                    .finish()
            }
        }
    };
}

debug_without_settings!(ValidateRequest {
    source_type,
    purpose
});
debug_without_settings!(ActionRequest {
    source_type,
    action,
    connection,
    options
});
debug_without_settings!(TestRequest {
    source_type,
    connection
});
debug_without_settings!(ImportRequest {
    source_type,
    connection,
    model_version
});

impl fmt::Debug for ActionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The updated values are secrets (a refresh token): show which fields, not the values.
        f.debug_struct("ActionResponse")
            .field("message", &self.message)
            .field(
                "settings_updates",
                &self.settings_updates.keys().collect::<Vec<_>>(),
            )
            .field("show_once", &self.show_once)
            .finish()
    }
}

/// Operations a plugin answers through `invoke`.
pub mod op {
    /// [`super::SchemaRequest`] → the settings JSON Schema of one source type.
    pub const SETTINGS_SCHEMA: &str = "settings_schema";
    /// [`super::ValidateRequest`] → [`super::ValidateResponse`], or a `config` error whose
    /// details are [`super::ValidationDetails`].
    pub const VALIDATE_SETTINGS: &str = "validate_settings";
    /// [`super::ActionRequest`] → [`super::ActionResponse`].
    pub const RUN_ACTION: &str = "run_action";
    /// [`super::TestRequest`] → [`super::TestReport`].
    pub const TEST_CONNECTION: &str = "test_connection";
    /// [`super::ImportRequest`] → [`super::ImportSummary`]; records go through `emit`.
    pub const IMPORT: &str = "import";
    /// [`super::DemoRequest`] → [`super::DemoEnvironment`]: start a built-in simulator of the
    /// source. Source types without one answer `unsupported`, which is how the host finds the
    /// ones that have one. Since plugin-api 1.1.
    pub const START_DEMO: &str = "start_demo";
    /// [`super::StopDemoRequest`] → `{}`: stop a demo environment. Since plugin-api 1.1.
    pub const STOP_DEMO: &str = "stop_demo";
}

/// Operations the host answers through [`crate::abi::HostCallbacks::call`].
pub mod host_op {
    /// [`super::UpdateSecretRequest`] → `{}`: store a new value for a secret setting now (a
    /// rotated refresh token), before the plugin goes on to use what it was issued with.
    pub const UPDATE_SECRET: &str = "update_secret";
}

/// Sent to `init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitRequest {
    /// The host's release.
    pub host_version: String,
    /// The plugin-api version the host was built with.
    pub api_version: String,
    /// The most detailed log level the host keeps (`trace` ... `error`); the SDK drops finer
    /// events before they cross the boundary.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// Asks for the settings JSON Schema of one source type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaRequest {
    /// The source type.
    pub source_type: String,
}

/// What settings are being validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Saving a connection: values an action fills later (a refresh token) may still be empty.
    #[default]
    Save,
    /// Running a test or an import: everything must be there.
    Import,
}

/// Asks a plugin to validate a settings document.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// The source type.
    pub source_type: String,
    /// The settings document, secrets included.
    pub settings: serde_json::Value,
    /// What the settings are for.
    #[serde(default)]
    pub purpose: Purpose,
}

/// A valid settings document, with remarks that are not errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// Remarks for the operator (an `https://` proxy address, say).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The details of a `config` error from validation, for forms that highlight fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationDetails {
    /// Dotted paths of required fields that are absent or empty.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Other problems, each tied to a field.
    #[serde(default)]
    pub problems: Vec<Problem>,
}

/// One problem with one settings field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Dotted path of the field (`proxy.server`); `settings` for the document as a whole.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The connection a call is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The connection's name.
    pub name: String,
}

/// Runs a manifest action (a form button) on a connection's settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// The source type.
    pub source_type: String,
    /// The action id from the manifest.
    pub action: String,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The connection's settings with secrets resolved.
    pub settings: serde_json::Value,
    /// Options of the run.
    #[serde(default)]
    pub options: ActionOptions,
}

/// Options the operator gave for an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOptions {
    /// How long the action may wait for the person (device flow), in seconds.
    #[serde(default = "default_action_timeout")]
    pub timeout_secs: u64,
}

impl Default for ActionOptions {
    fn default() -> Self {
        ActionOptions {
            timeout_secs: default_action_timeout(),
        }
    }
}

fn default_action_timeout() -> u64 {
    600
}

/// What an action produced.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionResponse {
    /// A sentence for the operator.
    pub message: String,
    /// Settings fields to store, by dotted path (`credentials.refresh_token`).
    #[serde(default)]
    pub settings_updates: BTreeMap<String, serde_json::Value>,
    /// Values the host must show once and never store (a token the operator must put into a
    /// read-only vault), each with what to do with it.
    #[serde(default)]
    pub show_once: Vec<ShowOnce>,
}

/// A value shown once to the operator, with an instruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowOnce {
    /// What the value is (`Refresh token`).
    pub label: String,
    /// The value.
    pub value: Secret,
    /// What the operator must do with it.
    pub instruction: String,
}

/// Tests a connection: authenticate and make one cheap call.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRequest {
    /// The source type.
    pub source_type: String,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The connection's settings.
    pub settings: serde_json::Value,
}

/// The result of a successful connection test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// One sentence (`Connected to Acme (Enterprise Edition) as ada@acme.com.`).
    pub summary: String,
    /// Facts worth showing, in order (`API version` → `62.0`).
    #[serde(default)]
    pub facts: Vec<Fact>,
    /// The tenant's API allowance, when the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_usage: Option<ApiUsage>,
}

/// A labelled value for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Label.
    pub label: String,
    /// Value.
    pub value: String,
}

/// API calls used of the allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUsage {
    /// Calls used in the current period.
    pub used: u64,
    /// Calls allowed in the period.
    pub max: u64,
}

/// Runs an import.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The source type.
    pub source_type: String,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The connection's settings.
    pub settings: serde_json::Value,
    /// The record shapes the host reads ([`MODEL_VERSION`]).
    #[serde(default = "model_version")]
    pub model_version: u32,
}

fn model_version() -> u32 {
    MODEL_VERSION
}

/// What an import did. Records themselves went through `emit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Records sent, per kind (`account` → 5000).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// API calls the import spent, when the source counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_calls: Option<u64>,
    /// Things the operator should know that did not fail the run.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Starts a demo environment: a simulator of the source type that the host can connect to,
/// authorise and import like a real tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoRequest {
    /// The source type.
    pub source_type: String,
    /// How many users the simulated tenant has (the plugin's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Seed of the simulated data (the plugin's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// A running demo environment.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoEnvironment {
    /// Identifies the environment for [`StopDemoRequest`].
    pub id: String,
    /// A connection name to suggest (`Demo Salesforce`).
    pub connection_name: String,
    /// A complete settings document pointing at the simulator, secrets included (they are the
    /// simulator's own, not real ones); fields an action fills may be empty.
    pub settings: serde_json::Value,
    /// Actions to run, in order, before importing (`generate_refresh_token`); each completes
    /// without a person (the simulator approves by itself).
    #[serde(default)]
    pub actions: Vec<String>,
    /// One or two sentences on what is simulated, for the operator.
    #[serde(default)]
    pub description: String,
}

debug_without_settings!(DemoEnvironment {
    id,
    connection_name,
    actions,
    description
});

/// Stops a demo environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopDemoRequest {
    /// [`DemoEnvironment::id`].
    pub id: String,
}

/// Progress of a long call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// What is being worked on (`User`).
    pub stage: String,
    /// Items done so far in that stage.
    pub done: u64,
    /// Items expected in that stage, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// Something to show the person at the keyboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// The text to show.
    pub message: String,
    /// A code the person types elsewhere (device flow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    /// A link to open; the host may open a browser on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Asks the host's vault for secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaultRequest {
    /// The account query (`Safe=Salesforce;Folder=Root;Object=acme-prod`).
    pub query: String,
    /// Properties to read, in order; an empty name means the password (`Content`).
    pub fields: Vec<String>,
}

/// The vault's answer: one value per requested field, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaultResponse {
    /// The values.
    pub values: Vec<Secret>,
}

/// Asks the host to store a new value of a secret setting now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateSecretRequest {
    /// Dotted path of the field (`credentials.refresh_token`).
    pub field: String,
    /// The new value.
    pub value: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_with_defaults_from_minimal_json() {
        let req: ValidateRequest =
            serde_json::from_value(json!({"source_type": "x", "settings": {}})).expect("parses");
        assert_eq!(req.purpose, Purpose::Save);
        let req: ActionRequest = serde_json::from_value(json!({
            "source_type": "x", "action": "a", "connection": {"name": "n"}, "settings": {}
        }))
        .expect("parses");
        assert_eq!(req.options.timeout_secs, 600);
        let req: ImportRequest = serde_json::from_value(json!({
            "source_type": "x", "connection": {"name": "n"}, "settings": {}
        }))
        .expect("parses");
        assert_eq!(req.model_version, MODEL_VERSION);
    }

    #[test]
    fn requests_and_answers_never_print_settings_values() {
        let request = ActionRequest {
            source_type: "x".into(),
            action: "a".into(),
            connection: ConnectionInfo { name: "n".into() },
            settings: json!({"password": "hunter2"}),
            options: ActionOptions::default(),
        };
        assert!(!format!("{request:?}").contains("hunter2"));
        let mut answer = ActionResponse::default();
        answer
            .settings_updates
            .insert("credentials.refresh_token".into(), json!("5Aep-secret"));
        let shown = format!("{answer:?}");
        assert!(
            !shown.contains("5Aep-secret") && shown.contains("credentials.refresh_token"),
            "{shown}"
        );
    }

    #[test]
    fn show_once_values_are_redacted_in_debug_output() {
        let show = ShowOnce {
            label: "Refresh token".into(),
            value: Secret::new("5Aep861-very-secret"),
            instruction: "store it".into(),
        };
        assert!(!format!("{show:?}").contains("very-secret"));
    }
}
