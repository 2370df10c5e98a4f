//! [`SimError`]: why a simulator could not start.

use std::net::SocketAddr;

/// Why a simulator could not start or a test PKI could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding or spawning failed.
    #[error("starting the CCP simulator: {0}")]
    Io(#[from] std::io::Error),
    /// The address is not a loopback address.
    #[error("refusing to listen on {0}: the simulator serves loopback addresses only")]
    NotLoopback(SocketAddr),
    /// The TLS setup is unusable (bad PEM, key not matching the certificate...).
    #[error("the simulator's TLS setup is unusable: {0}")]
    Tls(String),
    /// rcgen could not make a certificate.
    #[error("generating test certificates: {0}")]
    Pki(#[from] rcgen::Error),
}
