//! The glue [`crate::export_plugin!`] expands to: the root module, the runtime, the panic guard
//! and the dispatch of operations to [`Plugin`] methods.

use std::{
    any::Any,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::OnceLock,
    time::Duration,
};

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RResult, RStr, RString},
};
use serde::Serialize;

use super::{
    Host, Plugin,
    host::{from_json, to_json},
    logging,
};
use crate::{
    abi::{FfiError, HostBox, PluginModV1, PluginModV1_Ref},
    error::{Error, ErrorKind},
    protocol::{InitRequest, SchemaRequest, op},
};

/// How often a running call asks the host whether it was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// How long a cancelled call may go on by itself before its future is dropped: long enough
/// for a request in flight (a token exchange whose rotated token must be stored) to finish.
/// A host that waits for cancelled calls should wait longer than this.
pub const CANCEL_GRACE: Duration = Duration::from_secs(10);

static INSTANCE: OnceLock<Box<dyn Any + Send + Sync>> = OnceLock::new();
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// Items [`crate::export_plugin!`] refers to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };

    pub use super::root_module;
    pub use crate::sdk::logging::set_plugin_crate;
}

/// Builds the root module for plugin type `P`.
#[doc(hidden)]
pub fn root_module<P: Plugin>() -> PluginModV1_Ref {
    PluginModV1 {
        init: init::<P>,
        invoke: invoke::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn init<P: Plugin>(request: RStr<'_>, host: HostBox) -> RResult<RString, FfiError> {
    guard(|| {
        let host = Host::new(host);
        let request: InitRequest = from_json(request.as_str())?;
        logging::install(host, logging::parse_level(&request.log_level));
        if INSTANCE.get().is_none() {
            runtime()?;
            let plugin = P::new(&request)?;
            let _ = INSTANCE.set(Box::new(plugin));
        }
        let manifest = instance::<P>()?.manifest();
        to_json(&manifest)
    })
}

extern "C" fn invoke<P: Plugin>(
    op: RStr<'_>,
    request: RStr<'_>,
    host: HostBox,
) -> RResult<RString, FfiError> {
    guard(|| {
        let plugin = instance::<P>()?;
        let host = Host::new(host);
        let request = request.as_str();
        // Logs and panic messages of this call go to this call's host.
        logging::CALL_HOST.sync_scope(host.clone(), || {
            dispatch(plugin, &host, op.as_str(), request)
        })
    })
}

fn dispatch<P: Plugin>(plugin: &P, host: &Host, op: &str, request: &str) -> Result<String, Error> {
    {
        match op {
            op::SETTINGS_SCHEMA => {
                let request: SchemaRequest = from_json(request)?;
                answer(&plugin.settings_schema(&request.source_type)?)
            }
            op::VALIDATE_SETTINGS => answer(&plugin.validate(from_json(request)?)?),
            op::RUN_ACTION => {
                let request = from_json(request)?;
                answer(&run(host, plugin.run_action(request, host))?)
            }
            op::TEST_CONNECTION => {
                let request = from_json(request)?;
                answer(&run(host, plugin.test_connection(request, host))?)
            }
            op::IMPORT => {
                let request = from_json(request)?;
                answer(&run(host, plugin.import(request, host))?)
            }
            op::START_DEMO => {
                let request = from_json(request)?;
                answer(&run(host, plugin.start_demo(request, host))?)
            }
            op::STOP_DEMO => {
                let request = from_json(request)?;
                run(host, plugin.stop_demo(request, host))?;
                answer(&serde_json::json!({}))
            }
            other => Err(Error::unsupported(format!(
                "operation `{other}` is not offered by this plugin; it may need a newer plugin"
            ))),
        }
    }
}

fn answer<T: Serialize>(value: &T) -> Result<String, Error> {
    to_json(value)
}

fn instance<P: Plugin>() -> Result<&'static P, Error> {
    INSTANCE
        .get()
        .and_then(|boxed| boxed.downcast_ref::<P>())
        .ok_or_else(|| Error::internal("the plugin was called before it was initialised"))
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("invhost-plugin")
        .build()
        .map_err(|e| Error::internal(format!("could not start the plugin's runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Drives a call's future on the plugin's runtime and stops it when the host cancels.
fn run<T>(host: &Host, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let cancelled = {
        let host = host.clone();
        async move {
            loop {
                if host.is_cancelled() {
                    return;
                }
                tokio::time::sleep(CANCEL_POLL).await;
            }
        }
    };
    // The root future is polled on this thread, inside the call's `sync_scope`, so its logs
    // reach the call's host; tasks it spawns log to the host given at init.
    runtime()?.block_on(async move {
        let mut call = std::pin::pin!(call);
        tokio::select! {
            result = &mut call => return result,
            () = cancelled => {}
        }
        // Cancelled: let the call end by itself (plugins check between steps), then give up.
        tokio::time::timeout(CANCEL_GRACE, call)
            .await
            .unwrap_or_else(|_| Err(Error::cancelled()))
    })
}

/// Runs an entry point, turning a panic into an error value instead of unwinding into the host.
fn guard(body: impl FnOnce() -> Result<String, Error>) -> RResult<RString, FfiError> {
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Error::new(
            ErrorKind::PANIC,
            format!(
                "the plugin panicked: {}; this is a bug in the plugin, report it to its authors",
                logging::panic_message(payload.as_ref())
            ),
        ))
    });
    match result {
        Ok(json) => RResult::ROk(json.into()),
        Err(error) => RResult::RErr(error.into()),
    }
}

/// Exports a [`Plugin`](crate::sdk::Plugin) implementation as the library's root module.
///
/// Call it once, at the root of a `cdylib` crate:
///
/// ```ignore
/// invhost_plugin_api::export_plugin!(MyPlugin);
/// ```
///
/// It expands to the static header abi_stable's loader looks for, so a plugin crate depends on
/// `invhost-plugin-api` only.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __INVHOST_PLUGIN_HEADER: $crate::sdk::__private::LibHeader = {
            extern "C" fn __invhost_root_module() -> $crate::sdk::__private::RootModuleResult {
                $crate::sdk::__private::set_plugin_crate(module_path!());
                $crate::sdk::__private::__call_root_module_loader(
                    $crate::sdk::__private::root_module::<$plugin>,
                )
            }
            // SAFETY: the constructor returns the root module of the type named here,
            // `PluginModV1_Ref`; this is what abi_stable's `#[export_root_module]` expands to.
            unsafe {
                $crate::sdk::__private::LibHeader::from_constructor::<$crate::abi::PluginModV1_Ref>(
                    __invhost_root_module,
                    $crate::sdk::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
