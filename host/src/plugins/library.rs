//! A loaded plugin library and the typed calls into it.

use std::{path::PathBuf, sync::Arc};

use invhost_plugin_api::{
    Error, Manifest,
    abi::PluginModV1_Ref,
    abi_stable::std_types::RStr,
    protocol::{Purpose, SchemaRequest, ValidateRequest, ValidateResponse, op},
};
use serde::{Serialize, de::DeserializeOwned};

use super::callbacks::{CallHandler, Callbacks, NoInteraction, PluginLabel};

/// A failed call into a plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered an error; its message is for the operator.
    #[error("{0}")]
    Plugin(Error),
    /// The plugin answered something that is not the JSON the protocol defines.
    #[error(
        "plugin `{plugin}` answered `{op}` with unreadable JSON ({reason}); report it to the plugin's authors"
    )]
    Protocol {
        /// Plugin id.
        plugin: String,
        /// Operation.
        op: String,
        /// What was wrong.
        reason: String,
    },
}

impl CallError {
    /// The plugin's error, when it answered one.
    pub fn plugin_error(&self) -> Option<&Error> {
        match self {
            CallError::Plugin(error) => Some(error),
            CallError::Protocol { .. } => None,
        }
    }
}

/// A plugin library that loaded and initialised.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// What it says about itself.
    pub manifest: Manifest,
    id: Arc<str>,
    module: PluginModV1_Ref,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub(crate) fn new(path: PathBuf, manifest: Manifest, module: PluginModV1_Ref) -> Self {
        let id = Arc::from(manifest.plugin_id.as_str());
        LoadedPlugin {
            path,
            manifest,
            id,
            module,
        }
    }

    /// The plugin's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs operation `op`. Blocks for as long as the plugin works: call it from a thread that
    /// may block, never from an async task.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        op: &str,
        request: &Req,
        handler: Arc<dyn CallHandler>,
    ) -> Result<Resp, CallError> {
        let protocol = |reason: String| CallError::Protocol {
            plugin: self.id.to_string(),
            op: op.to_owned(),
            reason,
        };
        let request = serde_json::to_string(request).map_err(|e| protocol(e.to_string()))?;
        let callbacks = Callbacks::boxed(PluginLabel::new(self.id.clone()), handler);
        let answer =
            (self.module.invoke())(RStr::from_str(op), RStr::from_str(&request), callbacks)
                .into_result()
                .map_err(|e| CallError::Plugin(e.into()))?;
        serde_json::from_str(answer.as_str()).map_err(|e| protocol(e.to_string()))
    }

    /// The settings JSON Schema of one of the plugin's source types.
    pub fn settings_schema(&self, source_type: &str) -> Result<serde_json::Value, CallError> {
        let request = SchemaRequest {
            source_type: source_type.to_owned(),
        };
        self.call(op::SETTINGS_SCHEMA, &request, Arc::new(NoInteraction))
    }

    /// Validates a settings document.
    pub fn validate(
        &self,
        source_type: &str,
        settings: &serde_json::Value,
        purpose: Purpose,
    ) -> Result<ValidateResponse, CallError> {
        let request = ValidateRequest {
            source_type: source_type.to_owned(),
            settings: settings.clone(),
            purpose,
        };
        self.call(op::VALIDATE_SETTINGS, &request, Arc::new(NoInteraction))
    }
}
