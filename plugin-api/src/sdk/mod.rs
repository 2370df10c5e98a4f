//! The SDK: write a plugin in plain Rust, export it with one macro.
//!
//! Implement [`Plugin`] and call [`crate::export_plugin!`] once at the root of a `cdylib`
//! crate. The SDK then:
//! * builds the frozen root module ([`crate::abi::PluginModV1`]) and exports it;
//! * owns a multi-threaded tokio runtime for the plugin (the host's cannot be shared across a
//!   library boundary) and drives your `async fn`s on it;
//! * catches every panic at the boundary and turns it into an error of kind
//!   [`crate::ErrorKind::PANIC`] (abi_stable's own guard would exit the host);
//! * stops a call when the host cancels it: the future is dropped and the call answers
//!   [`crate::ErrorKind::CANCELLED`];
//! * forwards `tracing` events and panic messages to the host's log.

mod batch;
mod export;
mod host;
mod logging;
pub mod testing;

use crate::{
    error::Error,
    manifest::Manifest,
    protocol::{
        ActionRequest, ActionResponse, DemoEnvironment, DemoRequest, ImportRequest, ImportSummary,
        InitRequest, StopDemoRequest, TestReport, TestRequest, ValidateRequest, ValidateResponse,
    },
};

pub use batch::RecordBatch;
#[doc(hidden)]
pub use export::{__private, CANCEL_GRACE};
pub use host::Host;

/// An inventory-source plugin.
///
/// One value is created per loaded library, by [`Plugin::new`], and shared by every call, from
/// several threads at once: keep per-call state in locals, not in `self`.
///
/// The async methods run on the plugin's own runtime; they need not be `Send`.
#[allow(async_fn_in_trait)] // driven by `block_on` on the plugin's runtime; `Send` is not needed
pub trait Plugin: Send + Sync + Sized + 'static {
    /// Creates the plugin. An error refuses the library with the error's message.
    fn new(init: &InitRequest) -> Result<Self, Error>;

    /// The plugin's manifest (see [`Manifest`]); [`crate::API_VERSION`] as `api_version`.
    fn manifest(&self) -> Manifest;

    /// The settings JSON Schema of one source type, usually
    /// [`crate::schema::settings_schema`] of its settings struct.
    fn settings_schema(&self, source_type: &str) -> Result<schemars::Schema, Error>;

    /// Validates a settings document, usually with [`crate::settings::parse_settings`].
    fn validate(&self, request: ValidateRequest) -> Result<ValidateResponse, Error>;

    /// Runs a manifest action (a form button), such as generating a refresh token.
    async fn run_action(
        &self,
        request: ActionRequest,
        host: &Host,
    ) -> Result<ActionResponse, Error> {
        let _ = host;
        Err(Error::unsupported(format!(
            "action `{}` is not offered for source type `{}`",
            request.action, request.source_type
        )))
    }

    /// Authenticates and makes one cheap call.
    async fn test_connection(
        &self,
        request: TestRequest,
        host: &Host,
    ) -> Result<TestReport, Error> {
        let _ = (request, host);
        Err(Error::unsupported("this plugin cannot test connections"))
    }

    /// Imports the inventory: send records with [`Host::emit`] as they arrive, then answer a
    /// summary.
    async fn import(&self, request: ImportRequest, host: &Host) -> Result<ImportSummary, Error>;

    /// Starts a demo environment (a built-in simulator of the source) of one source type, for
    /// `invhost demo`. It must keep running after this call returns, until
    /// [`Plugin::stop_demo`]; spawn it on the plugin's runtime. The default answers
    /// `unsupported` (no demo).
    async fn start_demo(
        &self,
        request: DemoRequest,
        host: &Host,
    ) -> Result<DemoEnvironment, Error> {
        let _ = host;
        Err(Error::unsupported(format!(
            "source type `{}` has no demo environment",
            request.source_type
        )))
    }

    /// Stops a demo environment started by [`Plugin::start_demo`].
    async fn stop_demo(&self, request: StopDemoRequest, host: &Host) -> Result<(), Error> {
        let _ = (request, host);
        Err(Error::unsupported("this plugin has no demo environments"))
    }
}

/// Checks that `source_type` is one the manifest offers; use it at the top of each method.
pub fn expect_source_type(manifest: &Manifest, source_type: &str) -> Result<(), Error> {
    if manifest.source_type(source_type).is_some() {
        Ok(())
    } else {
        Err(Error::unsupported(format!(
            "source type `{source_type}` is not offered by plugin `{}`",
            manifest.plugin_id
        )))
    }
}
