//! A Salesforce simulator on loopback, for invhost's tests and `invhost demo`.
//!
//! It speaks Salesforce's own wire format, so the real Salesforce client talks to it
//! unchanged: give the client `login_url = http://127.0.0.1:PORT`
//! ([`Simulator::base_url`]); the token response's `instance_url` points back at the
//! same simulator.
//!
//! ```
//! use invhost_sim_salesforce::{SimConfig, Simulator};
//!
//! let sim = Simulator::spawn(SimConfig { device_interval_secs: 1, ..Default::default() })?;
//! println!("login_url = {}", sim.base_url());
//! let control = sim.control();
//! // ... the client asks for a device code; the test plays the user:
//! for user_code in control.pending_user_codes() {
//!     control.approve(&user_code);
//! }
//! assert_eq!(control.api_calls(), 0);
//! sim.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Endpoints
//!
//! Salesforce's, in its own wire format:
//!
//! - `POST /services/oauth2/token`, form-urlencoded:
//!   - `response_type=device_code&client_id=K[&scope=S]`: 200
//!     `{"device_code","user_code","verification_uri","interval"}`; `verification_uri` is
//!     `{base}/setup/connect`, the user code 8 uppercase letters and digits; a code lives
//!     10 minutes.
//!   - `grant_type=device&client_id=K&code=DEVICE_CODE[&client_secret=S]`: the tokens
//!     once approved, otherwise an error (below).
//!   - `grant_type=refresh_token&refresh_token=R&client_id=K[&client_secret=S]`: the
//!     tokens, with a new `refresh_token` only when rotation is on (the old one is then
//!     invalid at once).
//!   - The token JSON: `access_token` (`{org_id}!…`), `refresh_token`, `signature`
//!     (base64 HMAC-SHA256 of `id` + `issued_at` keyed with the consumer secret),
//!     `scope`, `instance_url` (= base URL), `id` (`{base}/id/{org_id}/{user_id}`),
//!     `token_type` `Bearer`, `issued_at` (milliseconds, a string). No `expires_in`.
//! - `GET /setup/connect[?user_code=C]`: the page a browser shows (not a working form).
//! - `GET /services/data` and `/services/data/`: the versions list
//!   `[{"label":"Winter '25","url":"/services/data/v62.0","version":"62.0"}, …]`; no
//!   session needed, not counted against the allowance.
//! - `GET /services/data/vNN.N/limits`: `DailyApiRequests` `{"Max","Remaining"}` plus
//!   `DailyBulkV2QueryJobs`, `DailyBulkV2QueryFileStorageMB`, `DataStorageMB`,
//!   `FileStorageMB`.
//! - Every request under `/services/data/vNN.N/` needs `Authorization: Bearer TOKEN`
//!   (or `OAuth TOKEN`) and counts against the daily allowance; its answer carries
//!   `Sforce-Limit-Info: api-usage=USED/MAX`. An unknown version or resource answers
//!   404 `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`.
//!
//! - With a synthetic org ([`SimConfig::org`], an [`OrgSpec`]):
//!   `GET /services/data/vNN.N/query?q=SOQL` and `/queryAll?q=SOQL`, paged through
//!   `nextRecordsUrl` (`GET /services/data/vNN.N/query/01g…-OFFSET`), and
//!   `GET /services/data/vNN.N/sobjects/OBJECT/describe`; `Accept-Encoding: gzip` is
//!   honoured. The objects: Organization, UserLicense, Profile, PermissionSetLicense,
//!   PermissionSetLicenseAssign, PackageLicense, UserPackageLicense, User (with nine
//!   `UserPermissions*` flags), UserLogin, LoginHistory, ActiveFeatureLicenseMetric,
//!   ActivePermSetLicenseMetric. The SOQL subset is documented in `query.rs`: `SELECT`
//!   fields and relationship paths (`Profile.UserLicense.Name`) or `COUNT()`, `FROM`,
//!   `WHERE` comparisons joined by `AND` (dateTime, date, `LAST_N_DAYS:n` literals),
//!   `ORDER BY` one field, `LIMIT`. An unknown object answers 400 `INVALID_TYPE`
//!   ("sObject type 'X' is not supported…"), an unknown field 400 `INVALID_FIELD`
//!   ("No such column 'X' on entity 'Y'…"), anything else unparsable 400
//!   `MALFORMED_QUERY`. [`Control::ground_truth`] says what an import should find.
//!
//! The simulator's own control endpoints live under `/__sim/`; [`Control`] lists them
//! and offers the same operations in process, including fault injection ([`Faults`]).
//!
//! # Errors, and choices where Salesforce's behaviour is unconfirmed
//!
//! Token endpoint errors are HTTP 400 `{"error": CODE, "error_description": TEXT}`:
//!
//! | condition | `error` | `error_description` |
//! |---|---|---|
//! | `client_id` missing or unknown (any request) | `invalid_client_id` | `client identifier invalid` |
//! | `client_secret` sent and wrong, or missing when `require_secret_for_refresh` | `invalid_client` | `invalid client credentials` |
//! | device flow disabled for the app (step 1) | `invalid_grant` | `device flow is not enabled for the app` |
//! | app not installed / pre-authorised by an admin (step 1) | `invalid_client` | `app must be installed into org` |
//! | user has not decided yet | `authorization_pending` | `authorization pending` |
//! | polled sooner than `interval` s after the previous poll of that code | `slow_down` | `polling too frequently; wait the interval between polls` |
//! | user clicked Deny | `access_denied` | `end-user denied authorization` |
//! | device code unknown or already exchanged | `invalid_grant` | `invalid authorization code` |
//! | device code older than 10 minutes | `invalid_grant` | `expired authorization code` |
//! | refresh token unknown, revoked or rotated away | `invalid_grant` | `expired access/refresh token` |
//! | `code` or `refresh_token` missing | `invalid_request` | `missing required parameter: …` |
//! | body not form-urlencoded | `invalid_request` | |
//! | any other grant | `unsupported_grant_type` | `grant type not supported` |
//!
//! The reference marks several of these UNCONFIRMED for the device flow; the simulator
//! picks one answer each and the client must key off `error` only, as it would anyway:
//!
//! - Every OAuth error is HTTP 400, including `invalid_client_id`/`invalid_client`
//!   (some real deployments answer 401).
//! - `slow_down` (an RFC 8628 code) is sent only when a code is polled sooner than
//!   `interval` seconds after its previous poll; every poll, including one answered
//!   `slow_down`, counts as "the previous poll". The first poll may come at once.
//!   With `device_slow_downs: n` the first n timely polls of a code are answered `slow_down`
//!   too, each raising that code's interval by 5 s, as RFC 8628 asks of the client.
//! - `access_denied` on Deny, and `invalid_grant` for expired and used codes.
//! - Not pre-authorised: Salesforce's September 2025 restriction on uninstalled
//!   connected apps shows up in public reports as
//!   `error=invalid_client&error_description=app must be installed into org` on the
//!   browser side; the simulator answers that pair as JSON at step 1. Which step of the
//!   device flow really refuses, and with which status, is unconfirmed.
//! - No `expires_in` in the step-1 or token answers.
//! - The device code's scope request is ignored: the token grants
//!   [`SimConfig::scopes`]; a refresh token is issued only if those include
//!   `refresh_token` (or `offline_access`).
//!
//! Data call errors are Salesforce's JSON array `[{"message","errorCode"}]`: 401
//! `INVALID_SESSION_ID` "Session expired or invalid" for a missing, unknown or expired
//! token; 401 `INVALID_SESSION_ID` "This session is not valid for use with the specified
//! REST API endpoint. One of the following scopes is required: api, full" for a token
//! without `api` (or `full`); 403 `REQUEST_LIMIT_EXCEEDED` "TotalRequests Limit
//! exceeded." once the daily allowance is spent (a call refused so is counted, the others
//! refused are not).

#![deny(missing_docs)]

mod bulk;
mod config;
mod control;
mod data;
mod faults;
mod field;
mod oauth;
mod query;
mod rest;
mod rest_query;
mod state;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

pub use crate::config::SimConfig;
use crate::control::CONTROL_PREFIX;
pub use crate::control::{Control, ServedPage};
pub use crate::data::{
    GroundTruth, INACTIVE_DAYS, LicenseFamily, LicenseTruth, OrgSpec, SyntheticOrg, UserLastLogin,
    UserTruth,
};
pub use crate::faults::{Faults, SlowObject};
use crate::state::Shared;

/// How long open connections may keep a stopping simulator alive.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A running simulator. It stops on [`Simulator::shutdown`] or when dropped.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// The background thread of [`Simulator::spawn`].
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Simulator {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start(config: SimConfig) -> io::Result<Simulator> {
        Self::start_on(any_loopback_port(), config).await
    }

    /// Binds `addr` and serves on the current tokio runtime. Only loopback addresses
    /// are accepted (an `InvalidInput` error otherwise); port 0 picks a free port.
    pub async fn start_on(addr: SocketAddr, config: SimConfig) -> io::Result<Simulator> {
        let listener = TcpListener::from_std(bind(addr)?)?;
        let (simulator, app, stopped) = Self::prepare(listener.local_addr()?, config);
        tokio::spawn(serve(listener, app, stopped));
        Ok(simulator)
    }

    /// Binds 127.0.0.1 on a free port and serves on a background thread with its own
    /// runtime, for callers without one (CLI tests, the demo).
    pub fn spawn(config: SimConfig) -> io::Result<Simulator> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(bind(any_loopback_port())?)?
        };
        let addr = listener.local_addr()?;
        let (mut simulator, app, stopped) = Self::prepare(addr, config);
        let thread = std::thread::Builder::new()
            .name("sim-salesforce".to_owned())
            .spawn(move || runtime.block_on(serve(listener, app, stopped)))?;
        simulator.thread = Some(thread);
        Ok(simulator)
    }

    fn prepare(addr: SocketAddr, config: SimConfig) -> (Simulator, Router, watch::Receiver<bool>) {
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let (stop, stopped) = watch::channel(false);
        let app = app(Arc::clone(&shared));
        debug!(%addr, "Salesforce simulator listening.");
        let simulator = Simulator {
            addr,
            shared,
            stop,
            thread: None,
        };
        (simulator, app, stopped)
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash: the client's `login_url`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// What an import of the synthetic org should find ([`SimConfig::org`]); None
    /// without an org.
    pub fn ground_truth(&self) -> Option<GroundTruth> {
        self.control().ground_truth()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An in-process handle on the state behind the HTTP control endpoints.
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(&self.shared))
    }

    /// Stops serving: no new connections, open ones get one second to finish.
    /// For a simulator made by [`Simulator::spawn`] this waits for its thread; one made
    /// by `start` stops on its runtime in the background. Dropping does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            warn!("Salesforce simulator thread panicked.");
        }
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .field("background_thread", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Binds a non-blocking std listener on a loopback `addr`.
fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to listen on {addr}: the simulator serves loopback addresses only \
                 (127.0.0.1 or [::1])"
            ),
        ));
    }
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Every route, behind the request counter and the request log.
fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(oauth::router())
        .merge(rest::router(Arc::clone(&shared)))
        .merge(control::router())
        .fallback(rest::not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), observe))
        .with_state(shared)
}

/// Counts the request (control requests aside) and logs it. Paths carry no secrets.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if !path.starts_with(CONTROL_PREFIX) {
        shared.lock().count_request();
    }
    let response = next.run(request).await;
    debug!(%method, %path, status = response.status().as_u16(), "Request answered.");
    response
}

/// Serves until `stopped` turns true (or its sender is gone), then gives open
/// connections [`SHUTDOWN_GRACE`] to finish.
async fn serve(listener: TcpListener, app: Router, stopped: watch::Receiver<bool>) {
    let mut graceful = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        // An error means the Simulator is gone: stop as well.
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    let mut deadline = stopped;
    let deadline = async move {
        let _ = deadline.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => match result {
            Ok(()) => debug!("Salesforce simulator stopped."),
            Err(error) => warn!(%error, "Salesforce simulator failed."),
        },
        () = deadline => debug!("Salesforce simulator stopped; open connections dropped."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_bound() {
        let refused = bind("0.0.0.0:0".parse().expect("addr")).expect_err("refused");
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        assert!(refused.to_string().contains("loopback"), "{refused}");
        let bound = bind(any_loopback_port()).expect("loopback binds");
        assert!(bound.local_addr().expect("addr").ip().is_loopback());
    }
}
