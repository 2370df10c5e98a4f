//! The rustls server side (ring provider, TLS 1.2 and 1.3), with client certificates
//! required when a client CA is configured.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsSetup;
use crate::error::SimError;

fn tls_error(what: &str, error: impl std::fmt::Display) -> SimError {
    SimError::Tls(format!("{what}: {error}"))
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, SimError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| tls_error(what, error))?;
    if certs.is_empty() {
        return Err(SimError::Tls(format!("{what}: no CERTIFICATE in the PEM")));
    }
    Ok(certs)
}

/// Builds the acceptor for a TLS setup.
pub(crate) fn acceptor(setup: &TlsSetup) -> Result<TlsAcceptor, SimError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&setup.cert_pem, "server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(setup.key_pem.as_bytes())
        .map_err(|error| tls_error("server key", error))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|error| tls_error("protocol versions", error))?;
    let builder = match &setup.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca_pem, "client CA")? {
                roots
                    .add(cert)
                    .map_err(|error| tls_error("client CA", error))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| tls_error("client certificate verifier", error))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| tls_error("server certificate and key", error))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
