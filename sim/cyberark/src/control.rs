//! The simulator's shared state and [`Control`], the in-process handle tests use to read
//! counters and inject faults while it runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::{Account, Faults, RawAnswer, SimConfig};

/// State shared by the connection tasks and [`Control`].
pub(crate) struct Shared {
    pub(crate) app_ids: Vec<String>,
    pub(crate) accounts: Vec<Account>,
    pub(crate) path: String,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    handshake_failures: AtomicU64,
    last_params: Mutex<Vec<(String, String)>>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Shared {
        Shared {
            app_ids: config.app_ids,
            accounts: config.accounts,
            path: config.path,
            faults: Mutex::new(config.faults),
            requests: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            last_params: Mutex::new(Vec::new()),
        }
    }

    /// The faults now in force.
    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_handshake_failure(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_params(&self, params: &[(String, String)]) {
        *lock(&self.last_params) = params.to_vec();
    }
}

/// Locks a mutex, going on with the data if a panicking thread poisoned it: every update
/// here is a single assignment, so the data is never half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An in-process handle on a running simulator: counters, the last request, and faults
/// to switch on and off. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Control {
        Control { shared }
    }

    /// HTTP requests received on any path (a failed TLS handshake is not a request).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed: no client certificate when one is required, an
    /// untrusted one, or a client that does not trust the server.
    pub fn tls_handshake_failures(&self) -> u64 {
        self.shared.handshake_failures.load(Ordering::Relaxed)
    }

    /// The decoded query parameters of the last request to the web service path, in the
    /// order sent (names as sent).
    pub fn last_params(&self) -> Vec<(String, String)> {
        lock(&self.shared.last_params).clone()
    }

    /// Makes the vault reachable or not (`APPAP007E`).
    pub fn set_vault_unreachable(&self, unreachable: bool) {
        lock(&self.shared.faults).vault_unreachable = unreachable;
    }

    /// Marks a password change by the CPM as running, or finished, for an object.
    pub fn set_password_change_in_progress(&self, object: &str, in_progress: bool) {
        let mut faults = lock(&self.shared.faults);
        faults
            .password_change_in_progress
            .retain(|o| !o.eq_ignore_ascii_case(object));
        if in_progress {
            faults.password_change_in_progress.push(object.to_owned());
        }
    }

    /// Answers every request to the web service path with `answer` (`None`: the vault's
    /// answers again).
    pub fn set_raw_answer(&self, answer: Option<RawAnswer>) {
        lock(&self.shared.faults).raw_answer = answer;
    }

    /// Sets the delay before each answer of the web service path.
    pub fn set_latency(&self, latency: Duration) {
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        lock(&self.shared.faults).latency_ms = millis;
    }
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("requests", &self.requests())
            .field("tls_handshake_failures", &self.tls_handshake_failures())
            .finish_non_exhaustive()
    }
}
