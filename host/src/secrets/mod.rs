//! Secrets at rest: every settings value the plugin's schema marks `x-secret` is sealed with
//! XChaCha20-Poly1305 under the host's master key before it is stored, redacted on the way out,
//! and kept when an update sends the redaction placeholder back.
//!
//! * [`key`]: the master key: `INVHOST_MASTER_KEY`, or `master.key` (mode 0600) in the data
//!   directory, created on first use.
//! * [`envelope`]: one sealed value, `invhost:enc:v1:<key id>:<base64(nonce ‖ ciphertext)>`, bound to
//!   the JSON pointer it is stored at.
//!
//! Which values are secret is decided by the plugin's schema
//! ([`invhost_plugin_api::schema::secret_pointers`]), so the host needs no knowledge of plugins.

pub mod envelope;
pub mod key;

use invhost_plugin_api::{REDACTED, schema::secret_pointers};
use serde_json::Value;

pub use envelope::is_sealed;
pub use key::MasterKey;

/// A failure to seal, open or merge secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The master key is missing, unreadable or malformed.
    #[error("{0}")]
    Key(String),
    /// A stored value was sealed under another key.
    #[error(
        "the stored secret `{field}` was encrypted with another master key; restore the master key the data directory was created with (master.key or INVHOST_MASTER_KEY)"
    )]
    WrongKey {
        /// Dotted path of the field.
        field: String,
    },
    /// New secrets would be sealed under a key other than the one stored secrets need.
    #[error(
        "the stored connections' secrets were encrypted with another master key, and a new connection would need that key too; restore the master key the data directory was created with (master.key or INVHOST_MASTER_KEY), then add the connection"
    )]
    SecondKey,
    /// A stored value does not decrypt: it was altered or truncated.
    #[error(
        "the stored secret `{field}` cannot be decrypted (it was altered or damaged); set it again with `invhost connections update`"
    )]
    Corrupt {
        /// Dotted path of the field.
        field: String,
    },
    /// The placeholder was sent for a field that has no stored value.
    #[error(
        "{field}: the placeholder {REDACTED} keeps a stored value, but none is stored for this field; type the secret"
    )]
    NothingToKeep {
        /// Dotted path of the field.
        field: String,
    },
}

/// A JSON pointer as a dotted settings path (`/credentials/refresh_token` → `credentials.refresh_token`).
pub fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// A dotted settings path as a JSON pointer.
pub fn pointer(dotted: &str) -> String {
    format!("/{}", dotted.replace('.', "/"))
}

/// Seals every non-empty secret of `document` that is not sealed yet.
pub fn seal(schema: &Value, document: &Value, key: &MasterKey) -> Value {
    let mut sealed = document.clone();
    for p in secret_pointers(schema, document) {
        if let Some(Value::String(text)) = sealed.pointer_mut(&p)
            && !text.is_empty()
            && !is_sealed(text)
        {
            *text = envelope::seal(key, &p, text);
        }
    }
    sealed
}

/// Opens every sealed secret of a stored document.
pub fn open(schema: &Value, stored: &Value, key: &MasterKey) -> Result<Value, SecretsError> {
    let mut plain = stored.clone();
    for p in secret_pointers(schema, stored) {
        if let Some(Value::String(text)) = plain.pointer_mut(&p)
            && is_sealed(text)
        {
            *text = envelope::open(key, &p, text)?;
        }
    }
    Ok(plain)
}

/// Replaces every non-empty secret with [`REDACTED`], and the user name and password of any
/// URL (`https://user:password@host`, `https://TOKEN@host`) with `***`: plugins refuse such URLs
/// now, but a document stored before a plugin did must not show one either.
pub fn redact(schema: &Value, document: &Value) -> Value {
    let mut redacted = document.clone();
    for p in secret_pointers(schema, document) {
        if let Some(Value::String(text)) = redacted.pointer_mut(&p)
            && !text.is_empty()
        {
            *text = REDACTED.to_owned();
        }
    }
    mask_url_passwords(&mut redacted);
    redacted
}

fn mask_url_passwords(value: &mut Value) {
    match value {
        Value::String(text) if text.contains('@') => {
            // A user name alone may be a token (`https://TOKEN@host`): mask both parts.
            if let Ok(mut url) = url::Url::parse(text)
                && (!url.username().is_empty() || url.password().is_some())
                && url.set_password(None).is_ok()
                && url.set_username("***").is_ok()
            {
                *text = url.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_url_passwords),
        Value::Object(fields) => fields.values_mut().for_each(mask_url_passwords),
        _ => {}
    }
}

/// Puts the stored value back wherever `incoming` sends the placeholder for a secret.
/// `stored` is the stored document, sealed or plain; its values are copied as they are.
pub fn keep_placeholders(
    schema: &Value,
    incoming: &Value,
    stored: Option<&Value>,
) -> Result<Value, SecretsError> {
    let mut merged = incoming.clone();
    for p in secret_pointers(schema, incoming) {
        if merged.pointer(&p).and_then(Value::as_str) != Some(REDACTED) {
            continue;
        }
        let kept = stored
            .and_then(|s| s.pointer(&p))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| SecretsError::NothingToKeep { field: dotted(&p) })?
            .to_owned();
        if let Some(slot) = merged.pointer_mut(&p) {
            *slot = Value::String(kept);
        }
    }
    Ok(merged)
}

/// Whether any secret differs between two plain documents (empty and absent are the same).
pub fn secrets_changed(schema: &Value, before: &Value, after: &Value) -> bool {
    let value = |doc: &Value, p: &str| {
        doc.pointer(p)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut pointers = secret_pointers(schema, before);
    pointers.extend(secret_pointers(schema, after));
    pointers.iter().any(|p| value(before, p) != value(after, p))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "user": {"type": "string"},
                "password": {"type": "string", "writeOnly": true, "x-secret": true},
                "token": {"type": "string", "writeOnly": true, "x-secret": true}
            }
        })
    }

    #[test]
    fn seal_open_round_trip_and_nothing_plain_remains() {
        let key = MasterKey::from_bytes([7; 32]);
        let doc = json!({"user": "ada", "password": "hunter2", "token": ""});
        let sealed = seal(&schema(), &doc, &key);
        let text = sealed.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("\"ada\""),
            "non-secrets stay readable: {text}"
        );
        assert_eq!(sealed["token"], "", "empty values stay empty");
        assert_eq!(
            seal(&schema(), &sealed, &key),
            sealed,
            "sealing twice changes nothing"
        );
        assert_eq!(open(&schema(), &sealed, &key).expect("opens"), doc);
    }

    #[test]
    fn a_wrong_key_or_a_moved_value_is_refused_with_a_clear_error() {
        let sealed = seal(
            &schema(),
            &json!({"password": "hunter2"}),
            &MasterKey::from_bytes([1; 32]),
        );
        let error =
            open(&schema(), &sealed, &MasterKey::from_bytes([2; 32])).expect_err("wrong key");
        assert!(error.to_string().contains("another master key"), "{error}");
        // The same ciphertext pasted into another field does not open: it is bound to its pointer.
        let moved = json!({"token": sealed["password"]});
        let error = open(&schema(), &moved, &MasterKey::from_bytes([1; 32])).expect_err("moved");
        assert!(
            matches!(error, SecretsError::Corrupt { ref field } if field == "token"),
            "{error}"
        );
    }

    #[test]
    fn passwords_inside_urls_are_masked_on_the_way_out() {
        let stored = json!({"login_url": "https://ada:hunter2@login.example.com",
                            "nested": [{"url": "http://u:p%40ss@10.0.0.1:3128"}],
                            "token": "https://TOKEN123@api.example.com",
                            "plain": "https://login.example.com", "mail": "ada@example.com"});
        let shown = redact(&schema(), &stored).to_string();
        for secret in ["hunter2", "p%40ss", "TOKEN123"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("https://***@login.example.com"), "{shown}");
        assert!(
            shown.contains("\"plain\":\"https://login.example.com\""),
            "{shown}"
        );
        assert!(shown.contains("ada@example.com"), "{shown}");
    }

    #[test]
    fn redaction_and_placeholders() {
        let stored = json!({"user": "ada", "password": "hunter2", "token": ""});
        let redacted = redact(&schema(), &stored);
        assert_eq!(
            redacted,
            json!({"user": "ada", "password": REDACTED, "token": ""})
        );
        let merged = keep_placeholders(
            &schema(),
            &json!({"user": "bob", "password": REDACTED}),
            Some(&stored),
        )
        .expect("kept");
        assert_eq!(merged, json!({"user": "bob", "password": "hunter2"}));
        let error = keep_placeholders(&schema(), &json!({"token": REDACTED}), Some(&stored))
            .expect_err("nothing stored");
        assert!(
            error.to_string().starts_with("token: the placeholder"),
            "{error}"
        );
        assert!(!secrets_changed(
            &schema(),
            &stored,
            &json!({"user": "bob", "password": "hunter2"})
        ));
        assert!(secrets_changed(
            &schema(),
            &stored,
            &json!({"password": "other"})
        ));
    }
}
