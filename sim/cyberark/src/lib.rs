//! A CyberArk Central Credential Provider (CCP) simulator on loopback, for invhost's tests
//! and demo.
//!
//! It speaks the CCP's GetPassword REST wire format, so the real client talks to it
//! unchanged: give the client `url = Simulator::base_url()` and the default path.
//!
//! ```
//! use invhost_sim_cyberark::{Account, SimConfig, Simulator};
//!
//! let sim = Simulator::spawn(SimConfig {
//!     accounts: vec![Account::new("Salesforce", "acme-prod", "s3cret")
//!         .property("RefreshToken", "5Aep861...")],
//!     ..SimConfig::default()
//! })?;
//! println!("url = {}", sim.base_url()); // http://127.0.0.1:PORT
//! assert_eq!(sim.control().requests(), 0);
//! sim.shutdown();
//! # Ok::<(), invhost_sim_cyberark::SimError>(())
//! ```
//!
//! # The web service
//!
//! `GET {path}?AppID=..&Safe=..&Folder=..&Object=..&UserName=..&Address=..&Database=..
//! &PolicyID=..&Reason=..&ConnectionTimeout=..&Query=..&QueryFormat=..
//! &FailRequestOnPasswordChange=..` (path [`DEFAULT_PATH`] unless configured).
//!
//! - 200: a flat JSON object of strings: `Content` (the password), `UserName` and
//!   `Address` (when set on the account), `Safe`, `Folder`, `Name` (the object),
//!   `PasswordChangeInProcess` (`"True"`/`"False"`), then the account's further
//!   properties as top-level keys (`ConsumerSecret`, `RefreshToken`, ...).
//! - Errors: `{"ErrorCode": "...", "ErrorMsg": "..."}`:
//!
//! | status | `ErrorCode` | when |
//! |---|---|---|
//! | 400 | `AIMWS031E` | no `AppID` |
//! | 400 | `AIMWS030E` | an unknown or repeated parameter, no search parameter at all (`AppID` alone), a `Query` part that is not `Key=Value`, a bad `QueryFormat`, `ConnectionTimeout` or `FailRequestOnPasswordChange`, an invalid regular expression |
//! | 400 | `APPAP007E` | the vault is unreachable (fault) |
//! | 403 | `APPAP306E` | the `AppID` is not one of [`SimConfig::app_ids`] |
//! | 404 | `APPAP004E` | no account matches, or the account's safe does not admit the application ([`Account::apps`]) |
//! | 400 | `APPAP227E` | more than one account matches |
//! | 500 | `APPAP282E` | the CPM is changing the password (fault) and the request says `FailRequestOnPasswordChange=true` |
//!
//! Checks run in that order: parameters, vault, application, search.
//!
//! [`Faults::raw_answer`] (or [`Control::set_raw_answer`]) replaces every answer of the web
//! service path with a fixed one: an error code outside this table, IIS's HTML 500 page, an
//! account shaped differently.
//!
//! Any other path answers an IIS-like HTML 404 page, and `/` an HTML welcome page, both
//! `text/html`: what a client pointed at the wrong path sees.
//!
//! With [`TlsSetup::client_ca_pem`] set, a client certificate signed by that CA is
//! required **in the TLS handshake**: a client without one (or with one from another CA)
//! fails the handshake and no HTTP request is made. With rustls clients and TLS 1.3 the
//! failure shows up when reading the answer, as the alert `CertificateRequired` (no
//! certificate) or `UnknownCA`/`BadCertificate` (untrusted certificate). The HTTP-level
//! 403 of an IIS site set to "accept" rather than "require" client certificates is not
//! simulated. [`Control::tls_handshake_failures`] counts those failures.
//!
//! # Choices where the reference is unconfirmed
//!
//! - Parameter names are matched case-insensitively (`AppId` works), as clients send both.
//! - Exact values are compared ASCII case-insensitively (vault names are); `Folder`
//!   defaults to `Root` when no search term names it; `QueryFormat=Regexp` treats every
//!   search value as a case-insensitive regular expression that must match the whole
//!   value (the default `Root` folder stays exact).
//! - `Query` keys may name any property (`Query=ConsumerSecret=...` works), and when
//!   `Query` is present the separate search parameters are ignored.
//! - Too many matches answer `APPAP227E` (CyberArk lists 227E, 228E and 229E for this).
//! - A password change in progress answers 200 with `PasswordChangeInProcess: "True"`
//!   unless the request sets `FailRequestOnPasswordChange=true`, which gets `APPAP282E`.
//! - Allowed machines (source address checks) are not simulated: every loopback caller is
//!   allowed.

#![deny(missing_docs)]

mod ccp;
mod config;
mod control;
mod error;
mod pki;
mod tls;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

pub use crate::config::{
    Account, DEFAULT_APP_ID, DEFAULT_PATH, Faults, RawAnswer, SimConfig, TlsSetup,
};
pub use crate::control::Control;
use crate::control::Shared;
pub use crate::error::SimError;
pub use crate::pki::{PkiFiles, TestPki};

/// A running simulator. It stops on [`Simulator::shutdown`] or when dropped; open
/// connections are closed at once.
pub struct Simulator {
    addr: SocketAddr,
    base_url: String,
    path: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// The background thread of [`Simulator::spawn`].
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        Self::start_on(any_loopback_port(), config).await
    }

    /// Binds `addr` (loopback only; port 0 picks a free port) and serves on the current
    /// tokio runtime.
    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> Result<Simulator, SimError> {
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener = TcpListener::from_std(bind(addr)?)?;
        let (simulator, app, stopped) = Self::prepare(listener.local_addr()?, config, &acceptor);
        tokio::spawn(serve(
            listener,
            app,
            acceptor,
            Arc::clone(&simulator.shared),
            stopped,
        ));
        Ok(simulator)
    }

    /// Binds 127.0.0.1 on a free port and serves on a background thread with its own
    /// runtime, for callers without one.
    pub fn spawn(config: SimConfig) -> Result<Simulator, SimError> {
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(bind(any_loopback_port())?)?
        };
        let (mut simulator, app, stopped) =
            Self::prepare(listener.local_addr()?, config, &acceptor);
        let shared = Arc::clone(&simulator.shared);
        let thread = std::thread::Builder::new()
            .name("sim-cyberark".to_owned())
            .spawn(move || runtime.block_on(serve(listener, app, acceptor, shared, stopped)))?;
        simulator.thread = Some(thread);
        Ok(simulator)
    }

    fn prepare(
        addr: SocketAddr,
        config: SimConfig,
        acceptor: &Option<TlsAcceptor>,
    ) -> (Simulator, Router, watch::Receiver<bool>) {
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        let path = config.path.clone();
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = watch::channel(false);
        let app = ccp::router(Arc::clone(&shared));
        debug!(%base_url, "CCP simulator listening.");
        let simulator = Simulator {
            addr,
            base_url,
            path,
            shared,
            stop,
            thread: None,
        };
        (simulator, app, stopped)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash: the
    /// client's `url`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The web service's full URL (base URL and path), without a query.
    pub fn accounts_url(&self) -> String {
        format!("{}{}", self.base_url, self.path)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An in-process handle on the counters and faults.
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(&self.shared))
    }

    /// Stops serving and closes open connections; waits for the background thread of
    /// [`Simulator::spawn`].
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("The CCP simulator thread panicked.");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.base_url)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, SimError> {
    if !addr.ip().is_loopback() {
        return Err(SimError::NotLoopback(addr));
    }
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Resolves once `stop` says so or its sender is gone.
async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn serve(
    listener: TcpListener,
    app: Router,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(stop.clone()) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "Accepting a connection failed.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection = connection(stream, app.clone(), acceptor.clone(), Arc::clone(&shared));
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection => {}
                () = stopped(stop) => debug!(%peer, "Closing a connection on shutdown."),
            }
        });
    }
    debug!("CCP simulator stopped.");
}

async fn connection(
    stream: TcpStream,
    app: Router,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    match acceptor {
        None => http(stream, app).await,
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => http(stream, app).await,
            Err(error) => {
                shared.count_handshake_failure();
                debug!(%error, "TLS handshake failed.");
            }
        },
    }
}

async fn http<S>(stream: S, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        debug!(%error, "Connection ended with an error.");
    }
}
