//! # invhost plugin API
//!
//! The one crate an [invhost](https://example.invalid/invhost) inventory-source plugin depends
//! on. A plugin is a Rust `cdylib` that imports users, licenses, assignments and usage from one
//! SaaS product; the host loads it at run time, draws its connection form from its settings
//! JSON Schema, and runs its imports on a schedule.
//!
//! What is here:
//! * [`sdk`]: the [`Plugin`] trait you implement and [`export_plugin!`], which exports it;
//! * [`model`]: the inventory records an import sends ([`Record`]);
//! * [`settings`]: building blocks every plugin embeds (vault-backed secrets, a proxy block)
//!   and validation that names every missing field in one message;
//! * [`schema`]: settings JSON Schemas with the conventions every form library renders;
//! * [`protocol`]: the JSON requests and answers of each operation;
//! * [`abi`]: the frozen binary interface the SDK hides (read it only to know the rules).
//!
//! ## A whole plugin
//!
//! `Cargo.toml` of the plugin: `crate-type = ["cdylib", "rlib"]` and one invhost dependency,
//! `invhost-plugin-api` 1.x (a path or git dependency until the crate is published), with
//! `serde`, `schemars` 1 and `tracing` for the settings struct and logs. Then:
//!
//! ```
//! use invhost_plugin_api::{
//!     Error, Host, Manifest, Plugin, Record, Secret, SourceType, export_plugin,
//!     model::{Account, Application, License, LicenseFamily, LicenseStatus},
//!     protocol::{ImportRequest, ImportSummary, InitRequest, Purpose, ValidateRequest,
//!                ValidateResponse},
//!     schema::settings_schema,
//!     settings::{Settings, Validator, check_https_url, parse_settings},
//! };
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! /// Settings of a connection to Acme Chat.
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct AcmeSettings {
//!     /// The workspace address, e.g. https://acme.chat.example
//!     #[schemars(title = "Workspace URL")]
//!     url: String,
//!     /// An API token with read access to users and billing.
//!     #[schemars(title = "API token")]
//!     token: Secret,
//! }
//!
//! impl Settings for AcmeSettings {
//!     fn check(&self, _purpose: Purpose, v: &mut Validator) {
//!         check_https_url("url", &self.url, v);
//!     }
//! }
//!
//! struct Acme;
//!
//! impl Plugin for Acme {
//!     fn new(_init: &InitRequest) -> Result<Self, Error> {
//!         Ok(Acme)
//!     }
//!
//!     fn manifest(&self) -> Manifest {
//!         Manifest {
//!             plugin_id: "acme_chat".into(),
//!             plugin_version: "0.1.0".into(),
//!             api_version: invhost_plugin_api::API_VERSION.into(),
//!             source_types: vec![SourceType {
//!                 id: "acme_chat".into(),
//!                 title: "Acme Chat".into(),
//!                 description: "Seats and users of an Acme Chat workspace.".into(),
//!                 actions: vec![],
//!                 supersedes: vec![],
//!             }],
//!         }
//!     }
//!
//!     fn settings_schema(&self, _source_type: &str) -> Result<schemars::Schema, Error> {
//!         Ok(settings_schema::<AcmeSettings>())
//!     }
//!
//!     fn validate(&self, request: ValidateRequest) -> Result<ValidateResponse, Error> {
//!         let (_, warnings) = parse_settings::<AcmeSettings>(&request.settings, request.purpose)?;
//!         Ok(ValidateResponse { warnings })
//!     }
//!
//!     async fn import(&self, request: ImportRequest, host: &Host) -> Result<ImportSummary, Error> {
//!         let (_settings, _) = parse_settings::<AcmeSettings>(&request.settings, Purpose::Import)?;
//!         // A real plugin calls the product's API here, page by page.
//!         host.emit(&[
//!             Record::Application(Application {
//!                 id: "chat".into(), name: "Acme Chat".into(),
//!                 vendor: Some("Acme".into()), attributes: Default::default(),
//!             }),
//!             Record::License(License {
//!                 id: "seats".into(), application_id: "chat".into(), name: "Acme Chat seat".into(),
//!                 family: LicenseFamily::User, unit: "seat".into(), purchased: Some(25),
//!                 consumed: Some(1), unlimited: false, expires_on: None,
//!                 status: LicenseStatus::Active, attributes: Default::default(),
//!             }),
//!             Record::Account(Account {
//!                 id: "u1".into(), username: "ada@acme.example".into(), display_name: None,
//!                 email: None, active: true, frozen: None, account_type: None,
//!                 created_at: None, last_login_at: None, attributes: Default::default(),
//!             }),
//!         ])?;
//!         let mut summary = ImportSummary::default();
//!         summary.counts.insert("account".into(), 1);
//!         Ok(summary)
//!     }
//! }
//!
//! export_plugin!(Acme);
//!
//! // The same plugin, tested in-process with the SDK's recording host:
//! # fn main() -> Result<(), Error> {
//! use invhost_plugin_api::{protocol::ConnectionInfo, sdk::testing::RecordingHost};
//! let plugin = Acme::new(&InitRequest {
//!     host_version: "test".into(), api_version: invhost_plugin_api::API_VERSION.into(),
//!     log_level: "info".into(),
//! })?;
//! let error = plugin
//!     .validate(ValidateRequest {
//!         source_type: "acme_chat".into(),
//!         settings: serde_json::json!({}),
//!         purpose: Purpose::Save,
//!     })
//!     .unwrap_err();
//! assert_eq!(error.message, "Mandatory parameter(s) missing: url, token");
//!
//! let recording = RecordingHost::new();
//! let request = ImportRequest {
//!     source_type: "acme_chat".into(),
//!     connection: ConnectionInfo { name: "Acme".into() },
//!     settings: serde_json::json!({"url": "https://acme.chat.example", "token": "t0k"}),
//!     model_version: invhost_plugin_api::model::MODEL_VERSION,
//! };
//! let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
//! let summary = runtime.block_on(plugin.import(request, &recording.host()))?;
//! assert_eq!(summary.counts["account"], 1);
//! assert_eq!(recording.recorded().records.len(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! Build it with `cargo build --release`, copy the `.so` (`.dylib`, `.dll`) into a plugin
//! directory of the host, and check it with `invhost plugins check PATH`. The plugin author
//! guide (`docs/plugin-author-guide.md`) covers versions, settings conventions and testing.
//!
//! ## Compatibility
//!
//! A plugin built against plugin-api 1.x loads into every host built against 1.y: the binary
//! interface is frozen for the whole major version, and everything else is JSON read
//! tolerantly. Depend on this crate only; it re-exports [`abi_stable`], which must be the same
//! version on both sides.

#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod abi;
pub mod error;
pub mod manifest;
pub mod model;
pub mod protocol;
pub mod schema;
pub mod sdk;
pub mod secret;
pub mod settings;
pub mod time;

pub use abi_stable;
pub use error::{Error, ErrorKind};
pub use manifest::{API_VERSION, Action, Manifest, SourceType};
pub use model::Record;
pub use sdk::{Host, Plugin};
pub use secret::{REDACTED, Secret};
