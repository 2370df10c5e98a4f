//! The frozen binary interface between the host and a plugin library.
//!
//! Everything in this module is part of the ABI of plugin-api 1.x and **never changes** within
//! the 1.x line: abi_stable refuses every plugin built against an older layout as soon as the
//! host's view of a prefix type grows (see `docs/ARCHITECTURE.md`, "ABI evolution"). New
//! capabilities are new operation names ([`crate::protocol::op`]) or new JSON fields, never new
//! fields here.
//!
//! Plugin authors do not use this module directly: [`crate::export_plugin!`] builds the root
//! module, and [`crate::sdk::Host`] wraps the callback object.

// `PluginModV1_Ref` and `HostCallbacks_TO` are abi_stable's naming for generated types.
#![allow(non_camel_case_types)]

use abi_stable::{
    StableAbi, declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString},
};

use crate::error::{Error, ErrorKind};

/// The root module every plugin library exports: two functions, JSON in and out.
///
/// * `init` is called once, right after loading. The request is
///   [`crate::protocol::InitRequest`], the answer a [`crate::manifest::Manifest`].
/// * `invoke` runs one operation named by `op` (see [`crate::protocol::op`]) with a JSON
///   request and answers JSON. An operation the plugin does not know answers an error of kind
///   [`ErrorKind::UNSUPPORTED`].
///
/// Both receive a host callback object. Both may block for as long as the operation takes; the
/// host calls them from a thread of its own, never from an async task.
#[repr(C)]
#[derive(StableAbi, Debug)]
#[sabi(kind(Prefix(prefix_ref = PluginModV1_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModV1 {
    /// Initialises the plugin and returns its manifest as JSON.
    pub init: extern "C" fn(request: RStr<'_>, host: HostBox) -> RResult<RString, FfiError>,

    /// Runs one operation.
    #[sabi(last_prefix_field)]
    pub invoke:
        extern "C" fn(op: RStr<'_>, request: RStr<'_>, host: HostBox) -> RResult<RString, FfiError>,
}

impl RootModule for PluginModV1_Ref {
    declare_root_module_statics! {PluginModV1_Ref}
    const BASE_NAME: &'static str = "invhost_plugin";
    const NAME: &'static str = "invhost plugin";
    // The version of this crate: abi_stable refuses a library whose major differs.
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Severity of a log line sent by a plugin; a newtype so that levels can be added.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// Very detailed diagnostics.
    pub const TRACE: LogLevel = LogLevel(0);
    /// Diagnostics.
    pub const DEBUG: LogLevel = LogLevel(1);
    /// Normal progress.
    pub const INFO: LogLevel = LogLevel(2);
    /// Something the operator may want to look at.
    pub const WARN: LogLevel = LogLevel(3);
    /// A failure.
    pub const ERROR: LogLevel = LogLevel(4);
}

/// The services the host offers to a plugin during a call.
///
/// Frozen for 1.x: adding a method would make every older plugin unloadable. Extensions go
/// through [`HostCallbacks::call`] with a new operation name.
///
/// Every method may be called from any thread of the plugin.
#[sabi_trait]
pub trait HostCallbacks: Send + Sync {
    /// Sends a batch of inventory records as JSON lines ([`crate::model::Record`] per line).
    /// An error means "stop": the run was cancelled or the host could not store the batch.
    fn emit(&self, batch: RStr<'_>) -> RResult<(), FfiError>;

    /// Reports progress ([`crate::protocol::Progress`] as JSON).
    fn progress(&self, update: RStr<'_>);

    /// Forwards a log line to the host's log. `fields` is a JSON object (may be empty).
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>, fields: RStr<'_>);

    /// Shows something to the person at the keyboard ([`crate::protocol::Prompt`] as JSON),
    /// for example the device-flow code and link.
    fn prompt(&self, prompt: RStr<'_>) -> RResult<(), FfiError>;

    /// Whether the operator or the scheduler asked the current call to stop.
    fn is_cancelled(&self) -> bool;

    /// Looks up secrets in the host's vault ([`crate::protocol::VaultRequest`] in,
    /// [`crate::protocol::VaultResponse`] out).
    fn vault(&self, request: RStr<'_>) -> RResult<RString, FfiError>;

    /// Extension point: a named host operation (see [`crate::protocol::host_op`]) with a JSON
    /// request and answer. Unknown operations answer [`ErrorKind::UNSUPPORTED`].
    #[sabi(last_prefix_field)]
    fn call(&self, op: RStr<'_>, request: RStr<'_>) -> RResult<RString, FfiError>;
}

/// The owned, type-erased host callback object passed into each call.
pub type HostBox = HostCallbacks_TO<'static, RBox<()>>;

/// An error as it crosses the boundary; [`Error`] is its Rust-side twin.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// A message for people: what happened and what to do next.
    pub message: RString,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// Details for programs: a JSON value (`null` when there are none).
    pub details: RString,
}

impl From<Error> for FfiError {
    fn from(error: Error) -> Self {
        FfiError {
            kind: error.kind,
            message: error.message.into(),
            retryable: error.retryable,
            details: error.details.to_string().into(),
        }
    }
}

impl From<FfiError> for Error {
    fn from(error: FfiError) -> Self {
        let details = serde_json::from_str(error.details.as_str()).unwrap_or_else(|_| {
            // Keep what the other side sent rather than losing it.
            serde_json::Value::String(error.details.to_string())
        });
        Error {
            kind: error.kind,
            message: error.message.into_string(),
            retryable: error.retryable,
            details,
        }
    }
}

/// The name of the symbol under which a plugin library exports its [`PluginModV1`].
///
/// [`crate::export_plugin!`] writes this name literally (a `#[export_name]` needs a literal);
/// a unit test keeps it equal to abi_stable's own constant.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }

    #[test]
    fn errors_round_trip_through_the_ffi_form() {
        let error = Error::auth("the refresh token was revoked")
            .with_details(serde_json::json!({"reauthorize": true}));
        let back = Error::from(FfiError::from(error.clone()));
        assert_eq!(back, error);
    }

    #[test]
    fn non_json_details_are_kept_as_text() {
        let ffi = FfiError {
            kind: ErrorKind::UPSTREAM,
            message: "boom".into(),
            retryable: true,
            details: "not json".into(),
        };
        let error = Error::from(ffi);
        assert_eq!(error.details, serde_json::json!("not json"));
        assert!(error.retryable);
    }
}
