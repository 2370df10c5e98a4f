//! Test control: [`Control`] in process, and the same operations over HTTP under
//! `/__sim/` for tests that drive another process (the real `invhost` binary).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::{GroundTruth, SyntheticOrg};
use crate::faults::Faults;
use crate::state::Shared;

/// Paths of the control endpoints start with this; they are not counted in
/// [`Control::requests`].
pub(crate) const CONTROL_PREFIX: &str = "/__sim/";

/// One query page served ([`Control::served_page_log`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedPage {
    /// The object the query reads (`User`).
    pub object: &'static str,
    /// The page's number in its chain: 0 for the first page (the query's own answer), 1 for
    /// the page its `nextRecordsUrl` names, and so on.
    pub page: u32,
    /// Whether a fault ([`Faults::truncated_json_at_page`], [`Faults::damaged_gzip_at_page`])
    /// cut it.
    pub damaged: bool,
}

/// An in-process handle on a running simulator's state: plays the user in the browser
/// and the Salesforce admin, and reads the counters. Cheap to clone.
///
/// The same operations over HTTP, for tests that drive another process (JSON bodies):
///
/// | request | body | answer |
/// |---|---|---|
/// | `POST /__sim/device/approve` | `{"user_code": "..."}` | 200 `{"ok": true}`, or 404 `{"ok": false, "error": "..."}` |
/// | `POST /__sim/device/deny` | `{"user_code": "..."}` | as approve |
/// | `GET /__sim/device/pending` | | `{"user_codes": ["..."]}` |
/// | `POST /__sim/tokens/revoke` | | `{"ok": true}` |
/// | `POST /__sim/tokens/expire` | | `{"ok": true}` |
/// | `GET /__sim/stats` | | `{"requests": N, "api_calls": N, "queries": N, "gzip_answers": N, "bulk_jobs": N}` (queries: `query`/`queryAll` requests and next pages answered; gzip_answers: pages, describes and Bulk API 2.0 result sets sent gzipped; bulk_jobs: Bulk API 2.0 query jobs created) |
/// | `GET /__sim/chains` | | `{"longest_chain": N, "longest_chain_served_ms": T}`: the most pages one query has served so far, or the most requests one Bulk API 2.0 job took (creation, polls, result sets, deletion) if more; and the time the chain or job with the most requests answered 2xx spent in the simulator (each request from arrival, latency included, to its answer built) |
/// | `POST /__sim/faults` | [`Faults`] as JSON | `{"ok": true}` |
/// | `GET /__sim/faults` | | the armed [`Faults`] |
/// | `GET /__sim/ground-truth` | | [`GroundTruth`] as JSON, or `null` without an org |
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Control { shared }
    }

    /// Approves the pending device code shown as `user_code` (case-insensitive), as a
    /// user clicking Allow. False if no live code has this user code or it was denied.
    pub fn approve(&self, user_code: &str) -> bool {
        self.shared.lock().approve(user_code, Instant::now())
    }

    /// Denies the pending device code shown as `user_code`, as a user clicking Deny.
    /// False if no live code has this user code or it was approved.
    pub fn deny(&self, user_code: &str) -> bool {
        self.shared.lock().deny(user_code, Instant::now())
    }

    /// User codes waiting for approval (not expired), oldest first.
    pub fn pending_user_codes(&self) -> Vec<String> {
        self.shared.lock().pending_user_codes(Instant::now())
    }

    /// Revokes every refresh token: each later refresh answers `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().revoke_refresh_tokens();
    }

    /// Ends every session: each later data call with an access token issued so far
    /// answers 401 `INVALID_SESSION_ID`.
    pub fn expire_access_tokens(&self) {
        self.shared.lock().expire_access_tokens();
    }

    /// Device-flow polls answered `slow_down`: those `device_slow_downs` asked for, and polls
    /// that came sooner than the code's interval (raised by 5 s for each asked-for one).
    pub fn slow_down_answers(&self) -> u64 {
        self.shared.lock().slow_down_answers()
    }

    /// HTTP requests received, except the `/__sim/` control requests themselves.
    pub fn requests(&self) -> u64 {
        self.shared.lock().requests()
    }

    /// Data calls counted against the daily API allowance (authenticated requests under
    /// `/services/data/vNN.N/`); `api_used_start` is not included.
    pub fn api_calls(&self) -> u64 {
        self.shared.lock().api_calls()
    }

    /// The refresh tokens that would be accepted now, sorted.
    pub fn valid_refresh_tokens(&self) -> Vec<String> {
        self.shared.lock().valid_refresh_tokens()
    }

    /// `query`/`queryAll` requests and `nextRecordsUrl` page fetches that reached the
    /// query handler (admitted data calls).
    pub fn queries(&self) -> u64 {
        self.shared.lock().queries()
    }

    /// The object of each query page served so far (first pages and `nextRecordsUrl`
    /// pages, a page asked for again once more), in the order they were served: the last
    /// 10,000 pages served.
    pub fn served_pages(&self) -> Vec<&'static str> {
        self.served_page_log()
            .into_iter()
            .map(|page| page.object)
            .collect()
    }

    /// [`Control::served_pages`] with each page's number in its chain, and whether a fault
    /// cut or damaged it.
    pub fn served_page_log(&self) -> Vec<ServedPage> {
        self.shared.lock().served_pages()
    }

    /// Bulk API 2.0 query jobs created.
    pub fn bulk_jobs(&self) -> u64 {
        self.shared.lock().jobs_created()
    }

    /// Query pages, describes and Bulk API 2.0 result sets answered gzipped, because the
    /// client asked for gzip.
    pub fn gzip_answers(&self) -> u64 {
        self.shared.lock().gzip_answers()
    }

    /// The most pages one query has served so far (1 once any query answered; 0 before), or
    /// the most requests one Bulk API 2.0 query job took, if that is more: its sequential
    /// chain of calls (creation, polls, result sets, deletion).
    pub fn longest_chain(&self) -> u64 {
        self.shared.lock().longest_chain()
    }

    /// The time the longest chain (the query chain or Bulk API 2.0 job with the most
    /// requests answered 2xx: pages, or a job's creation, polls, result sets and deletion;
    /// refused requests are not counted) spent in the simulator: each request from its
    /// arrival (so the latency included) to its answer built. What a client issuing those
    /// requests one after the other waits at least.
    pub fn longest_chain_served(&self) -> std::time::Duration {
        self.shared.lock().longest_chain_served()
    }

    /// Arms `faults`, replacing those armed before ([`Faults`]).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The faults still armed (fired `*_once` faults read false).
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// The synthetic org of [`crate::SimConfig::org`], if any.
    pub fn org(&self) -> Option<Arc<SyntheticOrg>> {
        self.shared.org.clone()
    }

    /// What an import of the synthetic org should find; None without an org.
    pub fn ground_truth(&self) -> Option<GroundTruth> {
        self.shared
            .org
            .as_ref()
            .map(|org| org.ground_truth().clone())
    }

    /// Turns refresh token rotation on or off from the next refresh on.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.shared.lock().set_rotate_refresh_tokens(on);
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl FromRef<Arc<Shared>> for Control {
    fn from_ref(shared: &Arc<Shared>) -> Self {
        Control::new(Arc::clone(shared))
    }
}

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sim/device/approve", post(approve))
        .route("/__sim/device/deny", post(deny))
        .route("/__sim/device/pending", get(pending))
        .route("/__sim/tokens/revoke", post(revoke))
        .route("/__sim/tokens/expire", post(expire))
        .route("/__sim/stats", get(stats))
        .route("/__sim/chains", get(chains))
        .route("/__sim/faults", post(set_faults).get(faults))
        .route("/__sim/ground-truth", get(ground_truth))
}

async fn set_faults(State(control): State<Control>, Json(body): Json<Faults>) -> Json<Value> {
    control.set_faults(body);
    Json(json!({"ok": true}))
}

async fn faults(State(control): State<Control>) -> Json<Faults> {
    Json(control.faults())
}

async fn ground_truth(State(control): State<Control>) -> Json<Option<GroundTruth>> {
    Json(control.ground_truth())
}

#[derive(Debug, Deserialize)]
struct UserCode {
    user_code: String,
}

async fn approve(State(control): State<Control>, Json(body): Json<UserCode>) -> Response {
    decided(control.approve(&body.user_code))
}

async fn deny(State(control): State<Control>, Json(body): Json<UserCode>) -> Response {
    decided(control.deny(&body.user_code))
}

fn decided(done: bool) -> Response {
    if done {
        Json(json!({"ok": true})).into_response()
    } else {
        let body = json!({"ok": false, "error": "no pending device code has this user code"});
        (StatusCode::NOT_FOUND, Json(body)).into_response()
    }
}

async fn pending(State(control): State<Control>) -> Json<Value> {
    Json(json!({"user_codes": control.pending_user_codes()}))
}

async fn revoke(State(control): State<Control>) -> Json<Value> {
    control.revoke_refresh_tokens();
    Json(json!({"ok": true}))
}

async fn expire(State(control): State<Control>) -> Json<Value> {
    control.expire_access_tokens();
    Json(json!({"ok": true}))
}

async fn stats(State(control): State<Control>) -> Json<Value> {
    Json(
        json!({"requests": control.requests(), "api_calls": control.api_calls(), "queries": control.queries(), "gzip_answers": control.gzip_answers(), "bulk_jobs": control.bulk_jobs()}),
    )
}

async fn chains(State(control): State<Control>) -> Json<Value> {
    Json(json!({
        "longest_chain": control.longest_chain(),
        "longest_chain_served_ms": control.longest_chain_served().as_secs_f64() * 1000.0,
    }))
}
