//! [`VaultAccount`]: the properties of one vault account as the provider returned them,
//! every value kept as a [`Secret`].

use std::collections::BTreeMap;
use std::fmt;

use invhost_plugin_api::Secret;
use serde_json::{Map, Value};

use crate::cyberark::error::CyberArkError;

/// The property that holds the password; an empty field name means this one.
pub const CONTENT: &str = "Content";

/// One vault account: its properties (`Content`, `UserName`, `Address`, `Safe`, `Folder`,
/// `Name`, custom ones such as `RefreshToken`), each value a [`Secret`].
///
/// `Debug` shows the property names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VaultAccount {
    properties: BTreeMap<String, Secret>,
}

impl VaultAccount {
    /// An account from property names and values.
    pub fn new(properties: BTreeMap<String, Secret>) -> VaultAccount {
        VaultAccount { properties }
    }

    /// The account from the provider's JSON object: every string property, plus booleans
    /// and numbers written as text (some CCP versions send `PasswordChangeInProcess` as a
    /// boolean). Nulls, arrays and objects are left out.
    pub(crate) fn from_json(object: Map<String, Value>) -> VaultAccount {
        let properties = object
            .into_iter()
            .filter_map(|(name, value)| {
                let text = match value {
                    Value::String(text) => text,
                    Value::Bool(flag) => flag.to_string(),
                    Value::Number(number) => number.to_string(),
                    Value::Null | Value::Array(_) | Value::Object(_) => return None,
                };
                Some((name, Secret::new(text)))
            })
            .collect();
        VaultAccount { properties }
    }

    /// The property names, sorted.
    pub fn property_names(&self) -> Vec<&str> {
        self.properties.keys().map(String::as_str).collect()
    }

    /// A property's value. An empty (or blank) `field` means the password, [`CONTENT`].
    /// Names match exactly first, then ignoring ASCII case (`username` finds `UserName`).
    /// A missing property is an error that lists the names the account has.
    pub fn get(&self, field: &str) -> Result<&Secret, CyberArkError> {
        let field = field.trim();
        let field = if field.is_empty() { CONTENT } else { field };
        self.properties
            .get(field)
            .or_else(|| {
                self.properties
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(field))
                    .map(|(_, value)| value)
            })
            .ok_or_else(|| CyberArkError::MissingProperty {
                field: field.to_owned(),
                available: self.properties.keys().cloned().collect(),
            })
    }

    /// The password (`Content`).
    pub fn content(&self) -> Result<&Secret, CyberArkError> {
        self.get(CONTENT)
    }

    /// Whether the provider says the CPM is changing the password
    /// (`PasswordChangeInProcess` is `true`, any case).
    pub fn password_change_in_process(&self) -> bool {
        self.get("PasswordChangeInProcess")
            .is_ok_and(|flag| flag.expose().trim().eq_ignore_ascii_case("true"))
    }
}

impl fmt::Debug for VaultAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultAccount")
            .field("properties", &self.property_names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn account() -> VaultAccount {
        let Value::Object(object) = json!({
            "Content": "pw",
            "UserName": "svc",
            "RefreshToken": "rt",
            "PasswordChangeInProcess": false,
            "RetriesCount": -1,
            "Tags": null,
        }) else {
            unreachable!("a JSON object literal")
        };
        VaultAccount::from_json(object)
    }

    /// The value for `field`, or the error text.
    fn check(field: &str) -> String {
        match account().get(field) {
            Ok(secret) => secret.expose().to_owned(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn fields_resolve_like_the_operator_expects() {
        for (field, expected) in [
            ("", "pw"),
            ("  ", "pw"),
            ("Content", "pw"),
            ("content", "pw"),
            ("USERNAME", "svc"),
            ("refreshtoken", "rt"),
            ("PasswordChangeInProcess", "false"),
            ("RetriesCount", "-1"),
        ] {
            assert_eq!(check(field), expected, "{field}");
        }
        let missing = check("ConsumerSecret");
        assert!(
            missing.contains(
                "no property `ConsumerSecret`; its properties are Content, \
                 PasswordChangeInProcess, RefreshToken, RetriesCount, UserName"
            ),
            "{missing}"
        );
        assert!(!missing.contains("pw") && !missing.contains("rt;"));
    }

    #[test]
    fn debug_shows_names_only() {
        let text = format!("{:?}", account());
        assert_eq!(
            text,
            "VaultAccount { properties: [\"Content\", \"PasswordChangeInProcess\", \
             \"RefreshToken\", \"RetriesCount\", \"UserName\"] }"
        );
        assert!(!account().password_change_in_process());
    }
}
