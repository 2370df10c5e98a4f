//! [`TestPki`]: a throw-away certificate authority, a server certificate for loopback and
//! a client certificate, generated in memory with rcgen.

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::config::TlsSetup;
use crate::error::SimError;

/// A test PKI: a CA (`CA:TRUE`), a server leaf (`CA:FALSE`, SAN `IP:127.0.0.1`,
/// `IP:::1` and `DNS:localhost`, serverAuth) and a client leaf (`CA:FALSE`,
/// clientAuth, CN `InventoryHost`), both signed by the CA. Keys are ECDSA P-256 in
/// PKCS#8 PEM. Each call makes a new, unrelated CA, so a second `TestPki` is a handy
/// "wrong" CA.
#[derive(Clone)]
pub struct TestPki {
    /// The CA certificate, PEM: what clients trust (`ca_cert`) and what the server checks
    /// client certificates against.
    pub ca_cert_pem: String,
    /// The server certificate, PEM.
    pub server_cert_pem: String,
    /// The server's private key, PEM.
    pub server_key_pem: String,
    /// The client certificate, PEM.
    pub client_cert_pem: String,
    /// The client's private key, PEM.
    pub client_key_pem: String,
}

/// Where [`TestPki::write_to`] put the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiFiles {
    /// `ca.pem`.
    pub ca_cert: PathBuf,
    /// `server.pem`.
    pub server_cert: PathBuf,
    /// `server.key`.
    pub server_key: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client.key`.
    pub client_key: PathBuf,
}

impl PkiFiles {
    /// The file names `write_to` uses, inside `dir`.
    pub fn in_dir(dir: &Path) -> PkiFiles {
        PkiFiles {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

impl TestPki {
    /// Generates a new CA and its two leaves.
    pub fn generate() -> Result<TestPki, SimError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        // A name of its own, so that another TestPki's CA is really a different issuer.
        let id: String = ca_key
            .public_key_raw()
            .iter()
            .skip(1)
            .take(6)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        ca_params.distinguished_name = name(&format!("invhost test CA {id}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
        ])?;
        server.distinguished_name = name("localhost");
        server.is_ca = IsCa::ExplicitNoCa;
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name = name("InventoryHost");
        client.is_ca = IsCa::ExplicitNoCa;
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer)?;

        Ok(TestPki {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        })
    }

    /// The simulator's TLS setup: this server certificate, and this CA's client
    /// certificates required when `require_client_cert`.
    pub fn server_tls(&self, require_client_cert: bool) -> TlsSetup {
        TlsSetup {
            cert_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: require_client_cert.then(|| self.ca_cert_pem.clone()),
        }
    }

    /// Writes `ca.pem`, `server.pem`, `server.key`, `client.pem` and `client.key` into
    /// `dir` (which must exist), keys readable by the owner only on Unix.
    pub fn write_to(&self, dir: &Path) -> io::Result<PkiFiles> {
        let files = PkiFiles::in_dir(dir);
        write_file(&files.ca_cert, &self.ca_cert_pem, false)?;
        write_file(&files.server_cert, &self.server_cert_pem, false)?;
        write_file(&files.server_key, &self.server_key_pem, true)?;
        write_file(&files.client_cert, &self.client_cert_pem, false)?;
        write_file(&files.client_key, &self.client_key_pem, true)?;
        Ok(files)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "invhost tests");
    name
}

fn write_file(path: &Path, text: &str, private: bool) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

impl fmt::Debug for TestPki {
    /// Certificates are public, keys are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki")
            .field("ca_cert_pem", &self.ca_cert_pem.len())
            .finish_non_exhaustive()
    }
}
