//! [`Secret`]: a string that never shows itself.

use std::{borrow::Cow, fmt};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// What is printed instead of a secret, and what a settings update sends to keep the stored
/// value (see `docs/schema-conventions.md`).
pub const REDACTED: &str = "********";

/// A secret string: a password, a consumer secret, a token.
///
/// `Debug` and `Display` print [`REDACTED`]; only [`Secret::expose`] gives the value. It
/// serialises as the plain string, because settings cross the ABI and the host encrypts them;
/// the host never prints them. In a settings schema it is a string with `writeOnly: true` and
/// `x-secret: true`.
///
/// ```
/// use invhost_plugin_api::Secret;
/// let secret = Secret::new("hunter2");
/// assert_eq!(format!("{secret:?} {secret}"), "******** ********");
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value. Call it only where the value is used (a request body), never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (not yet generated, say).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "writeOnly": true,
            "x-secret": true
        })
    }
}
