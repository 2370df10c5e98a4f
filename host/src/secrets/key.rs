//! The master key that seals secrets at rest.
//!
//! From `INVHOST_MASTER_KEY` (32 bytes, base64 or 64 hex digits) when set; otherwise from
//! `master.key` in the data directory, created with mode 0600 on first use. Back the key up with
//! the database: without it the stored secrets cannot be read.

use std::{
    fmt,
    io::Write as _,
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use sha2::{Digest, Sha256};

use super::SecretsError;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "INVHOST_MASTER_KEY";

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";

/// A 256-bit key. `Debug` shows only its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: [u8; 32],
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"invhost master key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        MasterKey { bytes, id }
    }

    /// The key's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// A short identifier derived from the key (safe to store and show).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Parses the text form: base64 of 32 bytes, or 64 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()?
        } else {
            STANDARD.decode(text).ok()?
        };
        Some(MasterKey::from_bytes(bytes.try_into().ok()?))
    }

    /// Loads the key from `env_value` (the environment variable) or the key file; creates the
    /// file when `create` is set and there is none.
    pub fn load(
        data_dir: &Path,
        env_value: Option<String>,
        create: bool,
    ) -> Result<Self, SecretsError> {
        if let Some(value) = env_value {
            return MasterKey::parse(&value).ok_or_else(|| {
                SecretsError::Key(format!(
                    "{MASTER_KEY_ENV} is not a 32-byte key; set it to 32 random bytes in base64 (for example the output of `head -c 32 /dev/urandom | base64`)"
                ))
            });
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::parse(&text).ok_or_else(|| {
                SecretsError::Key(format!(
                    "{} is not a valid key file (expected 32 bytes in base64); restore it from your backup",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => create_key_file(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretsError::Key(format!(
                "the master key {} is missing, so stored secrets cannot be read; restore it from your backup or set {MASTER_KEY_ENV}",
                path.display()
            ))),
            Err(e) => Err(SecretsError::Key(format!("cannot read the master key {}: {e}", path.display()))),
        }
    }
}

fn create_key_file(path: &PathBuf) -> Result<MasterKey, SecretsError> {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another invhost created it a moment ago: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                SecretsError::Key(format!(
                    "cannot read the master key {}: {e}",
                    path.display()
                ))
            })?;
            return MasterKey::parse(&text).ok_or_else(|| {
                SecretsError::Key(format!(
                    "{} is not a valid key file; restore it from your backup",
                    path.display()
                ))
            });
        }
        Err(e) => {
            return Err(SecretsError::Key(format!(
                "cannot create the master key {}: {e}; check that the data directory is writable",
                path.display()
            )));
        }
    };
    writeln!(file, "{}", STANDARD.encode(bytes))
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            SecretsError::Key(format!(
                "cannot write the master key {}: {e}",
                path.display()
            ))
        })?;
    tracing::info!(path = %path.display(), "Created the master key; back it up with the data directory.");
    Ok(MasterKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_with_private_permissions() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(
            MasterKey::load(dir.path(), None, false).is_err(),
            "not created when reading"
        );
        let created = MasterKey::load(dir.path(), None, true).expect("created");
        let again = MasterKey::load(dir.path(), None, true).expect("read back");
        assert_eq!(created.id(), again.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn environment_key_in_base64_or_hex() {
        let dir = tempfile::tempdir().expect("dir");
        let b64 = STANDARD.encode([9u8; 32]);
        let hex = "09".repeat(32);
        let a = MasterKey::load(dir.path(), Some(b64), false).expect("base64");
        let b = MasterKey::load(dir.path(), Some(hex), false).expect("hex");
        assert_eq!(a.id(), b.id());
        let error = MasterKey::load(dir.path(), Some("short".into()), false).expect_err("bad");
        assert!(error.to_string().contains("not a 32-byte key"), "{error}");
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "no file when the environment gives the key"
        );
    }

    #[test]
    fn debug_shows_only_the_id() {
        let key = MasterKey::from_bytes([5; 32]);
        assert_eq!(format!("{key:?}"), format!("MasterKey({})", key.id()));
    }
}
