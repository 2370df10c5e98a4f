//! One sealed secret: `invhost:enc:v1:<key id>:<base64(nonce ‖ ciphertext)>`.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per value; the JSON pointer the value is
//! stored at is the associated data, so a sealed value copied to another field does not open.
//! The key id (a hash of the key, not the key) tells "another key" apart from "damaged".

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};

use super::{SecretsError, dotted, key::MasterKey};

const PREFIX: &str = "invhost:enc:v1:";

/// Whether a stored string is a sealed value.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Adds to `ids` the key id of every sealed value in `document`.
pub fn key_ids(document: &serde_json::Value, ids: &mut std::collections::BTreeSet<String>) {
    match document {
        serde_json::Value::String(text) => {
            if let Some((id, _)) = text.strip_prefix(PREFIX).and_then(|r| r.split_once(':')) {
                ids.insert(id.to_owned());
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| key_ids(v, ids)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| key_ids(v, ids)),
        _ => {}
    }
}

/// Seals `plain`, bound to `pointer`.
pub fn seal(key: &MasterKey, pointer: &str, plain: &str) -> String {
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plain.as_bytes(),
                aad: pointer.as_bytes(),
            },
        )
        .expect("XChaCha20-Poly1305 encryption of an in-memory value cannot fail");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ciphertext);
    format!("{PREFIX}{}:{}", key.id(), STANDARD.encode(blob))
}

/// Opens a sealed value stored at `pointer`.
pub fn open(key: &MasterKey, pointer: &str, sealed: &str) -> Result<String, SecretsError> {
    let corrupt = || SecretsError::Corrupt {
        field: dotted(pointer),
    };
    let rest = sealed.strip_prefix(PREFIX).ok_or_else(corrupt)?;
    let (key_id, blob) = rest.split_once(':').ok_or_else(corrupt)?;
    if key_id != key.id() {
        return Err(SecretsError::WrongKey {
            field: dotted(pointer),
        });
    }
    let blob = STANDARD.decode(blob).map_err(|_| corrupt())?;
    if blob.len() < 24 {
        return Err(corrupt());
    }
    let (nonce, ciphertext) = blob.split_at(24);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: pointer.as_bytes(),
            },
        )
        .map_err(|_| corrupt())?;
    String::from_utf8(plain).map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_found_at_any_depth() {
        let a = MasterKey::from_bytes([1; 32]);
        let b = MasterKey::from_bytes([2; 32]);
        let document = serde_json::json!({
            "plain": "invhost:enc:v1",
            "credentials": {"secret": seal(&a, "/credentials/secret", "x")},
            "list": [seal(&b, "/list/0", "y"), 5, null],
        });
        let mut ids = std::collections::BTreeSet::new();
        key_ids(&document, &mut ids);
        let expected: std::collections::BTreeSet<String> =
            [a.id().to_owned(), b.id().to_owned()].into();
        assert_eq!(ids, expected);
    }

    #[test]
    fn nonces_differ_and_tampering_is_detected() {
        let key = MasterKey::from_bytes([3; 32]);
        let a = seal(&key, "/p", "same");
        let b = seal(&key, "/p", "same");
        assert_ne!(a, b, "a fresh nonce per value");
        assert_eq!(open(&key, "/p", &a).expect("opens"), "same");
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            open(&key, "/p", &tampered),
            Err(SecretsError::Corrupt { .. })
        ));
        assert!(matches!(
            open(&key, "/p", "invhost:enc:v1:zz"),
            Err(SecretsError::Corrupt { .. })
        ));
    }
}
