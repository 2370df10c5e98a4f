//! The simulated org's state and its rules: device codes, tokens, counters, API usage.
//!
//! Everything lives in one [`State`] behind one mutex ([`Shared`]). The methods here
//! decide *what* happens (approve, refuse, rotate, count); `oauth.rs` and `rest.rs`
//! turn the outcome into Salesforce's wire format. Methods that depend on time take
//! `now`, so the unit tests below can move the clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;

use crate::bulk::Job;
use crate::config::{SimConfig, scope_includes};
use crate::control::ServedPage;
use crate::data::SyntheticOrg;
use crate::faults::Faults;
use crate::query::Plan;

/// How long a device code can be polled after it was issued.
pub(crate) const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
/// How much each `slow_down` raises a device code's polling interval (RFC 8628, section 3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Letters of a user code: Salesforce shows 8 uppercase letters and digits (`6VL44ZGC`).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const USER_CODE_LEN: usize = 8;
/// Letters of device codes and tokens.
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Salesforce refresh tokens start with this (`5Aep861…`).
const REFRESH_TOKEN_PREFIX: &str = "5Aep861";
/// The query pages served that the log keeps, the most recent ones
/// ([`crate::Control::served_page_log`]).
pub(crate) const SERVED_PAGES_KEPT: usize = 10_000;
/// The query chains and Bulk API 2.0 jobs whose requests are counted and timed at once (the
/// ones served most recently); the longest one so far is remembered apart.
const SERVED_CHAINS_KEPT: usize = 1_000;

/// The state shared by the HTTP handlers and [`crate::Control`].
///
/// Deliberately not `Debug`: it holds live tokens, which must never reach a log.
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT`: `instance_url`, and the host of `verification_uri` and `id`.
    pub(crate) base_url: String,
    /// The synthetic org of [`SimConfig::org`], immutable, read outside the lock.
    pub(crate) org: Option<Arc<SyntheticOrg>>,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig, base_url: String) -> Self {
        let org = config
            .org
            .as_ref()
            .map(|spec| Arc::new(SyntheticOrg::new(spec, chrono::Utc::now())));
        Shared {
            base_url,
            org,
            state: Mutex::new(State::new(config)),
        }
    }

    /// Locks the state. A handler that panicked left no half-made change that matters
    /// to a simulator, so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the token endpoint refuses a request. `Display` is the `error_description`,
/// [`Refusal::code`] the `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// `client_id` missing or not the consumer key.
    #[error("client identifier invalid")]
    UnknownClient,
    /// `client_secret` wrong, or missing while the app requires it.
    #[error("invalid client credentials")]
    BadSecret,
    /// The app lacks "Enable for Device Flow".
    #[error("device flow is not enabled for the app")]
    DeviceFlowDisabled,
    /// No admin installed or pre-authorised the app (Salesforce's September 2025 change).
    #[error("app must be installed into org")]
    AppNotInstalled,
    /// The user has not approved or denied yet.
    #[error("authorization pending")]
    Pending,
    /// Polled sooner than `interval` seconds after the previous poll of the same code.
    #[error("polling too frequently; wait the interval between polls")]
    SlowDown,
    /// The user clicked Deny.
    #[error("end-user denied authorization")]
    Denied,
    /// A device code that was never issued or was already exchanged for tokens.
    #[error("invalid authorization code")]
    UnknownCode,
    /// A device code older than [`DEVICE_CODE_LIFETIME`].
    #[error("expired authorization code")]
    ExpiredCode,
    /// A refresh token that was never issued, was revoked or was rotated away.
    #[error("expired access/refresh token")]
    BadRefreshToken,
    /// A required form parameter is absent.
    #[error("missing required parameter: {0}")]
    Missing(&'static str),
    /// Neither a device-code request nor a grant type the simulator knows.
    #[error("grant type not supported")]
    UnsupportedGrant,
}

impl Refusal {
    /// The OAuth `error` code Salesforce sends for this refusal.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Refusal::UnknownClient => "invalid_client_id",
            Refusal::BadSecret | Refusal::AppNotInstalled => "invalid_client",
            Refusal::DeviceFlowDisabled
            | Refusal::UnknownCode
            | Refusal::ExpiredCode
            | Refusal::BadRefreshToken => "invalid_grant",
            Refusal::Pending => "authorization_pending",
            Refusal::SlowDown => "slow_down",
            Refusal::Denied => "access_denied",
            Refusal::Missing(_) => "invalid_request",
            Refusal::UnsupportedGrant => "unsupported_grant_type",
        }
    }
}

/// Why a data call (`/services/data/vNN.N/...`) is refused before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiRefusal {
    /// No bearer token, or one the simulator did not issue or has expired.
    InvalidSession,
    /// A valid token whose scopes include neither `api` nor `full`.
    MissingApiScope,
    /// The daily allowance is spent.
    LimitExceeded(ApiUsage),
}

/// API calls spent and allowed in the rolling day (`Sforce-Limit-Info: api-usage=USED/MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiUsage {
    pub(crate) used: u64,
    pub(crate) max: u64,
}

/// The step-1 answer of the device flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceCodes {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) interval: u64,
}

/// Tokens issued by a successful poll or refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    /// Present after the device flow when `refresh_token` was granted, and after a
    /// refresh only when rotation is on.
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
}

/// `client_id` and `client_secret` as sent in a token request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Client<'a> {
    pub(crate) id: Option<&'a str>,
    pub(crate) secret: Option<&'a str>,
}

/// Where the user is with one device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approval {
    Pending,
    Approved,
    Denied,
    /// Exchanged for tokens; the code cannot be used again.
    Redeemed,
}

/// One issued device code.
#[derive(Debug)]
struct DeviceGrant {
    user_code: String,
    issued: Instant,
    last_poll: Option<Instant>,
    /// Polls that were not answered `slow_down`.
    polls: u32,
    /// Added to the interval by each `slow_down` sent on request (`device_slow_downs`).
    slowed_by: Duration,
    /// `slow_down` answers sent on request so far.
    slow_downs_sent: u32,
    approval: Approval,
}

impl DeviceGrant {
    fn is_expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.issued) >= DEVICE_CODE_LIFETIME
    }

    fn is_live(&self, now: Instant) -> bool {
        self.approval != Approval::Redeemed && !self.is_expired(now)
    }

    /// One poll: `Ok` when the code is approved (it is redeemed by this poll).
    fn poll(
        &mut self,
        now: Instant,
        interval: Duration,
        auto_approve: Option<u32>,
        slow_downs: u32,
    ) -> Result<(), Refusal> {
        if self.approval == Approval::Redeemed {
            return Err(Refusal::UnknownCode);
        }
        if self.is_expired(now) {
            return Err(Refusal::ExpiredCode);
        }
        // Every poll, including one answered slow_down, is "the previous poll" of the next.
        let previous = self.last_poll.replace(now);
        let interval = interval + self.slowed_by;
        if previous.is_some_and(|previous| now.saturating_duration_since(previous) < interval) {
            return Err(Refusal::SlowDown);
        }
        if self.slow_downs_sent < slow_downs {
            self.slow_downs_sent += 1;
            self.slowed_by += SLOW_DOWN_STEP;
            return Err(Refusal::SlowDown);
        }
        self.polls = self.polls.saturating_add(1);
        if self.approval == Approval::Pending && auto_approve.is_some_and(|n| self.polls >= n) {
            self.approval = Approval::Approved;
        }
        match self.approval {
            Approval::Approved => {
                self.approval = Approval::Redeemed;
                Ok(())
            }
            Approval::Denied => Err(Refusal::Denied),
            // Redeemed was answered above.
            Approval::Pending | Approval::Redeemed => Err(Refusal::Pending),
        }
    }
}

/// Everything the simulator remembers. Not `Debug`, like [`Shared`].
pub(crate) struct State {
    config: SimConfig,
    /// Keyed by device code.
    device_grants: HashMap<String, DeviceGrant>,
    /// Valid refresh tokens and the scopes granted with each.
    refresh_tokens: HashMap<String, String>,
    /// Valid access tokens and their scopes.
    access_tokens: HashMap<String, String>,
    requests: u64,
    /// Device-flow polls answered `slow_down`, whether asked for or earned by polling early.
    slow_down_answers: u64,
    api_calls: u64,
    /// `query`/`queryAll` requests and their `nextRecordsUrl` pages.
    queries: u64,
    /// Query pages and describes answered gzipped (the client sent `Accept-Encoding: gzip`).
    gzip_answers: u64,
    /// The query pages served, in the order served: the last [`SERVED_PAGES_KEPT`].
    served_pages: VecDeque<ServedPage>,
    /// Per query chain (locator id) and Bulk API 2.0 job (job id) served recently (at most
    /// [`SERVED_CHAINS_KEPT`]; the least recently served one goes first): its requests
    /// answered 2xx and their time in the simulator ([`State::add_served`]).
    served_chains: HashMap<String, Served>,
    /// Numbers the requests counted in `served_chains`, so the least recent is known.
    served_seq: u64,
    /// The most requests any chain or job had answered, and their time (the longer time
    /// among equals); kept when its chain leaves `served_chains`.
    longest_served: (u64, Duration),
    /// Faults armed for the next calls.
    pub(crate) faults: Faults,
    /// Open query chains by locator id.
    pub(crate) chains: HashMap<String, Chain>,
    next_chain: u64,
    /// Bulk API 2.0 query jobs by id (deleted ones removed).
    pub(crate) jobs: HashMap<String, Job>,
    /// Bulk API 2.0 query jobs created.
    jobs_created: u64,
    /// The most requests one job took (creation, polls, result sets, deletion).
    longest_job: u64,
}

/// Requests of one query chain or Bulk API 2.0 job answered 2xx ([`State::add_served`]).
#[derive(Debug, Clone, Copy, Default)]
struct Served {
    requests: u64,
    took: Duration,
    /// When it was last served (`State::served_seq`).
    last: u64,
}

/// One query's result set being paged through `nextRecordsUrl`.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub(crate) plan: Arc<Plan>,
    pub(crate) total: u64,
    /// For an `ORDER BY` other than `Id`: matching positions in order.
    pub(crate) sorted: Option<Arc<Vec<u64>>>,
    /// Rows delivered before a page -> (where that page starts: a position, or an
    /// index into `sorted`; the page's number, 0 for the first).
    pub(crate) pages: HashMap<u64, (u64, u32)>,
    /// The 401 fault: answer the page with this number `INVALID_SESSION_ID`, once.
    pub(crate) expire_at_page: Option<u32>,
    /// [`Faults::truncated_json_at_page`]: the page with this number gets its JSON cut, once.
    pub(crate) cut_json_at_page: Option<u32>,
    /// [`Faults::damaged_gzip_at_page`]: the page with this number gets its gzip stream cut,
    /// once.
    pub(crate) cut_gzip_at_page: Option<u32>,
    pub(crate) page_size: usize,
}

impl State {
    pub(crate) fn new(config: SimConfig) -> Self {
        State {
            config,
            device_grants: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            requests: 0,
            slow_down_answers: 0,
            api_calls: 0,
            queries: 0,
            gzip_answers: 0,
            served_pages: VecDeque::new(),
            served_chains: HashMap::new(),
            served_seq: 0,
            longest_served: (0, Duration::ZERO),
            faults: Faults::default(),
            chains: HashMap::new(),
            next_chain: 0,
            jobs: HashMap::new(),
            jobs_created: 0,
            longest_job: 0,
        }
    }

    /// Stores a new query chain; returns its locator id (`01g…`).
    pub(crate) fn open_chain(&mut self, chain: Chain) -> String {
        self.next_chain += 1;
        let id = format!("01g{:012}AAA", self.next_chain);
        self.chains.insert(id.clone(), chain);
        id
    }

    /// Stores a new Bulk API 2.0 query job; returns its id (`750…`).
    pub(crate) fn open_job(&mut self, job: Job) -> String {
        self.jobs_created += 1;
        let id = format!("750{:012}AAA", self.jobs_created);
        self.jobs.insert(id.clone(), job);
        id
    }

    /// Deletes a job (counting the request); false if there is none.
    pub(crate) fn close_job(&mut self, id: &str) -> bool {
        match self.jobs.remove(id) {
            Some(job) => {
                self.longest_job = self.longest_job.max(job.calls + 1);
                true
            }
            None => false,
        }
    }

    /// Bulk API 2.0 query jobs created.
    pub(crate) fn jobs_created(&self) -> u64 {
        self.jobs_created
    }

    pub(crate) fn count_gzip_answer(&mut self) {
        self.gzip_answers = self.gzip_answers.saturating_add(1);
    }

    pub(crate) fn gzip_answers(&self) -> u64 {
        self.gzip_answers
    }

    /// Adds one request of the query chain or Bulk API 2.0 job `id` that was answered 2xx
    /// (a page, a job's creation, poll, result set or deletion; refusals and errors are not
    /// counted) and took `took` in the simulator, from its arrival (the latency included) to
    /// its answer built.
    pub(crate) fn add_served(&mut self, id: &str, took: Duration) {
        self.served_seq += 1;
        let seq = self.served_seq;
        let entry = self.served_chains.entry(id.to_owned()).or_default();
        entry.requests += 1;
        entry.took += took;
        entry.last = seq;
        self.longest_served = self.longest_served.max((entry.requests, entry.took));
        if self.served_chains.len() > SERVED_CHAINS_KEPT {
            let least_recent = self
                .served_chains
                .iter()
                .min_by_key(|(_, served)| served.last)
                .map(|(id, _)| id.clone());
            if let Some(id) = least_recent {
                self.served_chains.remove(&id);
            }
        }
    }

    /// The time in the simulator of the chain or job that had the most requests answered
    /// (the longer time among equals): what a client issuing them one after the other waits
    /// at least, latency and the simulator's own work on each answer included.
    pub(crate) fn longest_chain_served(&self) -> Duration {
        self.longest_served.1
    }

    /// Logs a query page served (the oldest entry goes once [`SERVED_PAGES_KEPT`] are kept).
    pub(crate) fn log_served_page(&mut self, page: ServedPage) {
        if self.served_pages.len() == SERVED_PAGES_KEPT {
            self.served_pages.pop_front();
        }
        self.served_pages.push_back(page);
    }

    pub(crate) fn served_pages(&self) -> Vec<ServedPage> {
        self.served_pages.iter().copied().collect()
    }

    /// How much later than others a page of `object` is answered ([`Faults::slow_object`]).
    pub(crate) fn slow_down(&self, object: &str) -> Option<std::time::Duration> {
        let slow = self.faults.slow_object.as_ref()?;
        (slow.object == object).then(|| std::time::Duration::from_millis(slow.delay_ms))
    }

    /// Whether queries of `object` are refused ([`Faults::refuse_queries_of`]).
    pub(crate) fn refuses_queries_of(&self, object: &str) -> bool {
        self.faults
            .refuse_queries_of
            .as_deref()
            .is_some_and(|refused| refused.eq_ignore_ascii_case(object))
    }

    pub(crate) fn count_query(&mut self) {
        self.queries = self.queries.saturating_add(1);
    }

    pub(crate) fn queries(&self) -> u64 {
        self.queries
    }

    /// The most pages one query has served: its chain's highest page number plus one (a
    /// query answered in one page opens no chain); or the most requests one Bulk API 2.0
    /// job took, if more.
    pub(crate) fn longest_chain(&self) -> u64 {
        let chained = self
            .chains
            .values()
            .filter_map(|chain| chain.pages.values().map(|(_, page)| *page).max())
            .max()
            .map(|page| u64::from(page) + 1);
        let jobs = self
            .jobs
            .values()
            .map(|job| job.calls)
            .max()
            .unwrap_or(0)
            .max(self.longest_job);
        chained.unwrap_or(u64::from(self.queries > 0)).max(jobs)
    }

    /// Takes back one counted data call (a fault that Salesforce would not bill).
    pub(crate) fn uncount_api_call(&mut self) {
        self.api_calls = self.api_calls.saturating_sub(1);
    }

    pub(crate) fn config(&self) -> &SimConfig {
        &self.config
    }

    pub(crate) fn set_rotate_refresh_tokens(&mut self, on: bool) {
        self.config.rotate_refresh_tokens = on;
    }

    /// Device flow step 1: issue a device code and a user code.
    pub(crate) fn start_device_flow(
        &mut self,
        client_id: Option<&str>,
        now: Instant,
    ) -> Result<DeviceCodes, Refusal> {
        self.check_client_id(client_id)?;
        if !self.config.device_flow_enabled {
            return Err(Refusal::DeviceFlowDisabled);
        }
        if !self.config.app_preauthorized {
            return Err(Refusal::AppNotInstalled);
        }
        let user_code = self.unused_user_code();
        let device_code = random_string(TOKEN_ALPHABET, 88);
        let grant = DeviceGrant {
            user_code: user_code.clone(),
            issued: now,
            last_poll: None,
            polls: 0,
            slowed_by: Duration::ZERO,
            slow_downs_sent: 0,
            approval: Approval::Pending,
        };
        self.device_grants.insert(device_code.clone(), grant);
        Ok(DeviceCodes {
            device_code,
            user_code,
            interval: self.config.device_interval_secs,
        })
    }

    /// Device flow step 2: one poll with `code`.
    pub(crate) fn poll_device_flow(
        &mut self,
        client: Client<'_>,
        code: Option<&str>,
        now: Instant,
    ) -> Result<Issued, Refusal> {
        self.check_client(client, false)?;
        let code = code.ok_or(Refusal::Missing("code"))?;
        let interval = Duration::from_secs(self.config.device_interval_secs);
        let auto_approve = self.config.auto_approve_after_polls;
        let slow_downs = self.config.device_slow_downs;
        let grant = self
            .device_grants
            .get_mut(code)
            .ok_or(Refusal::UnknownCode)?;
        let polled = grant.poll(now, interval, auto_approve, slow_downs);
        if matches!(polled, Err(Refusal::SlowDown)) {
            self.slow_down_answers = self.slow_down_answers.saturating_add(1);
        }
        polled?;
        let scope = self.config.scopes.clone();
        let refresh_token = (scope_includes(&scope, "refresh_token")
            || scope_includes(&scope, "offline_access"))
        .then(|| self.new_refresh_token(&scope));
        Ok(Issued {
            access_token: self.new_access_token(&scope),
            refresh_token,
            scope,
        })
    }

    /// The refresh token flow.
    pub(crate) fn refresh(
        &mut self,
        client: Client<'_>,
        refresh_token: Option<&str>,
    ) -> Result<Issued, Refusal> {
        self.check_client(client, self.config.require_secret_for_refresh)?;
        let old = refresh_token.ok_or(Refusal::Missing("refresh_token"))?;
        let scope = self
            .refresh_tokens
            .get(old)
            .cloned()
            .ok_or(Refusal::BadRefreshToken)?;
        let refresh_token = self.config.rotate_refresh_tokens.then(|| {
            self.refresh_tokens.remove(old);
            self.new_refresh_token(&scope)
        });
        Ok(Issued {
            access_token: self.new_access_token(&scope),
            refresh_token,
            scope,
        })
    }

    /// Approves the live device code shown as `user_code`. False if there is none or
    /// the user already denied it.
    pub(crate) fn approve(&mut self, user_code: &str, now: Instant) -> bool {
        self.decide(user_code, Approval::Approved, now)
    }

    /// Denies the live device code shown as `user_code`. False if there is none or the
    /// user already approved it.
    pub(crate) fn deny(&mut self, user_code: &str, now: Instant) -> bool {
        self.decide(user_code, Approval::Denied, now)
    }

    fn decide(&mut self, user_code: &str, decision: Approval, now: Instant) -> bool {
        let wanted = user_code.trim().to_ascii_uppercase();
        let Some(grant) = self
            .device_grants
            .values_mut()
            .find(|grant| grant.user_code == wanted && grant.is_live(now))
        else {
            return false;
        };
        if grant.approval == Approval::Pending {
            grant.approval = decision;
        }
        grant.approval == decision
    }

    /// User codes still waiting for the user, oldest first.
    pub(crate) fn pending_user_codes(&self, now: Instant) -> Vec<String> {
        let mut pending: Vec<&DeviceGrant> = self
            .device_grants
            .values()
            .filter(|grant| grant.approval == Approval::Pending && !grant.is_expired(now))
            .collect();
        pending.sort_by_key(|grant| grant.issued);
        pending
            .into_iter()
            .map(|grant| grant.user_code.clone())
            .collect()
    }

    pub(crate) fn revoke_refresh_tokens(&mut self) {
        self.refresh_tokens.clear();
    }

    pub(crate) fn expire_access_tokens(&mut self) {
        self.access_tokens.clear();
    }

    /// Valid refresh tokens, sorted.
    pub(crate) fn valid_refresh_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self.refresh_tokens.keys().cloned().collect();
        tokens.sort();
        tokens
    }

    pub(crate) fn count_request(&mut self) {
        self.requests = self.requests.saturating_add(1);
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests
    }

    pub(crate) fn slow_down_answers(&self) -> u64 {
        self.slow_down_answers
    }

    pub(crate) fn api_calls(&self) -> u64 {
        self.api_calls
    }

    pub(crate) fn api_usage(&self) -> ApiUsage {
        ApiUsage {
            used: self.config.api_used_start.saturating_add(self.api_calls),
            max: self.config.api_daily_max,
        }
    }

    /// Admits one data call made with `bearer` and counts it against the allowance.
    /// Returns the usage including this call.
    pub(crate) fn admit_api_call(&mut self, bearer: Option<&str>) -> Result<ApiUsage, ApiRefusal> {
        let scope = bearer
            .and_then(|token| self.access_tokens.get(token))
            .ok_or(ApiRefusal::InvalidSession)?;
        if !scope_includes(scope, "api") && !scope_includes(scope, "full") {
            return Err(ApiRefusal::MissingApiScope);
        }
        let usage = self.api_usage();
        if usage.used >= usage.max {
            return Err(ApiRefusal::LimitExceeded(self.count_refused_call()));
        }
        self.api_calls = self.api_calls.saturating_add(1);
        Ok(self.api_usage())
    }

    /// Counts a call refused with `REQUEST_LIMIT_EXCEEDED` and returns the usage its answer
    /// reports. Whether Salesforce bills such a refusal is not documented; the simulator counts
    /// it, as the import does, so that both err towards the budget.
    pub(crate) fn count_refused_call(&mut self) -> ApiUsage {
        self.api_calls = self.api_calls.saturating_add(1);
        self.api_usage()
    }

    /// Whether the org serves API version `version` (`"62.0"`).
    pub(crate) fn serves_version(&self, version: &str) -> bool {
        self.config
            .api_versions
            .iter()
            .any(|known| known == version)
    }

    fn check_client_id(&self, client_id: Option<&str>) -> Result<(), Refusal> {
        if client_id == Some(self.config.consumer_key.as_str()) {
            Ok(())
        } else {
            Err(Refusal::UnknownClient)
        }
    }

    /// The consumer key must match; a secret, when sent (or when `secret_required`),
    /// must match the consumer secret.
    fn check_client(&self, client: Client<'_>, secret_required: bool) -> Result<(), Refusal> {
        self.check_client_id(client.id)?;
        match (client.secret, self.config.consumer_secret.as_deref()) {
            (None, _) if secret_required => Err(Refusal::BadSecret),
            (Some(sent), Some(expected)) if sent != expected => Err(Refusal::BadSecret),
            _ => Ok(()),
        }
    }

    fn unused_user_code(&self) -> String {
        loop {
            let code = random_string(USER_CODE_ALPHABET, USER_CODE_LEN);
            if !self
                .device_grants
                .values()
                .any(|grant| grant.user_code == code)
            {
                return code;
            }
        }
    }

    fn new_access_token(&mut self, scope: &str) -> String {
        let token = format!(
            "{}!{}",
            self.config.org_id,
            random_string(TOKEN_ALPHABET, 96)
        );
        self.access_tokens.insert(token.clone(), scope.to_owned());
        token
    }

    fn new_refresh_token(&mut self, scope: &str) -> String {
        let token = format!(
            "{REFRESH_TOKEN_PREFIX}{}",
            random_string(TOKEN_ALPHABET, 80)
        );
        self.refresh_tokens.insert(token.clone(), scope.to_owned());
        token
    }
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let byte = alphabet
                .choose(&mut rng)
                .expect("invariant: alphabets are not empty");
            char::from(*byte)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "SIM_CONSUMER_KEY";
    const SECRET: &str = "SIM_CONSUMER_SECRET";

    fn state(config: SimConfig) -> State {
        State::new(SimConfig {
            device_interval_secs: 5,
            ..config
        })
    }

    fn client(secret: Option<&str>) -> Client<'_> {
        Client {
            id: Some(KEY),
            secret,
        }
    }

    /// Starts a device flow and polls its code once at each offset (seconds after the
    /// start), returning each answer.
    fn check(
        state: &mut State,
        decide: impl FnOnce(&mut State, &str, Instant),
        offsets: &[u64],
    ) -> Vec<Result<(), Refusal>> {
        let start = Instant::now();
        let codes = state
            .start_device_flow(Some(KEY), start)
            .expect("device flow starts");
        decide(state, &codes.user_code, start);
        offsets
            .iter()
            .map(|offset| {
                let now = start + Duration::from_secs(*offset);
                state
                    .poll_device_flow(client(None), Some(&codes.device_code), now)
                    .map(|_| ())
            })
            .collect()
    }

    #[test]
    fn the_served_logs_are_bounded_and_keep_the_longest_chain() {
        let mut state = state(SimConfig::default());
        let ms = Duration::from_millis;
        // A long chain early on, then more chains than are kept, each served once.
        for _ in 0..5 {
            state.add_served("01g-long", ms(10));
        }
        for n in 0..SERVED_CHAINS_KEPT * 2 {
            state.add_served(&format!("01g-{n}"), ms(1));
        }
        assert_eq!(state.served_chains.len(), SERVED_CHAINS_KEPT);
        assert!(
            !state.served_chains.contains_key("01g-long"),
            "the least recent went"
        );
        assert_eq!(
            state.longest_chain_served(),
            ms(50),
            "the longest is remembered"
        );
        // A chain served recently stays and may take the lead.
        for _ in 0..6 {
            state.add_served("01g-1999", ms(1));
        }
        assert_eq!(state.longest_chain_served(), ms(7));

        for n in 0..SERVED_PAGES_KEPT + 3 {
            state.log_served_page(ServedPage {
                object: "User",
                page: u32::try_from(n).expect("small"),
                damaged: false,
            });
        }
        let pages = state.served_pages();
        assert_eq!(pages.len(), SERVED_PAGES_KEPT);
        assert_eq!(pages.first().map(|p| p.page), Some(3), "the oldest went");
        assert_eq!(
            pages.last().map(|p| p.page),
            u32::try_from(SERVED_PAGES_KEPT + 2).ok()
        );
    }

    #[test]
    fn pending_then_slow_down_then_approved_once() {
        let mut state = state(SimConfig::default());
        let mut user_code = String::new();
        let answers = check(
            &mut state,
            |_, code, _| user_code = code.to_owned(),
            &[0, 1, 7],
        );
        assert_eq!(
            answers,
            [
                Err(Refusal::Pending),
                Err(Refusal::SlowDown),
                Err(Refusal::Pending)
            ]
        );
        assert_eq!(
            state.pending_user_codes(Instant::now()),
            std::slice::from_ref(&user_code)
        );
        assert!(state.approve(&user_code.to_lowercase(), Instant::now()));
        assert!(state.pending_user_codes(Instant::now()).is_empty());
        assert!(!state.deny(&user_code, Instant::now()), "already approved");
    }

    #[test]
    fn approved_code_is_redeemed_by_one_poll() {
        let mut state = state(SimConfig::default());
        let answers = check(
            &mut state,
            |state, code, now| assert!(state.approve(code, now)),
            &[0, 10],
        );
        assert_eq!(answers, [Ok(()), Err(Refusal::UnknownCode)]);
        assert_eq!(state.valid_refresh_tokens().len(), 1);
    }

    #[test]
    fn denied_code_answers_access_denied() {
        let mut state = state(SimConfig::default());
        let answers = check(
            &mut state,
            |state, code, now| assert!(state.deny(code, now)),
            &[0, 10],
        );
        assert_eq!(answers, [Err(Refusal::Denied), Err(Refusal::Denied)]);
    }

    #[test]
    fn code_expires_after_ten_minutes() {
        let mut state = state(SimConfig::default());
        let answers = check(&mut state, |_, _, _| {}, &[599, 600]);
        assert_eq!(answers, [Err(Refusal::Pending), Err(Refusal::ExpiredCode)]);
        let later = Instant::now() + DEVICE_CODE_LIFETIME;
        assert!(state.pending_user_codes(later).is_empty());
    }

    #[test]
    fn auto_approve_on_the_nth_poll_not_counting_slow_down() {
        let mut state = state(SimConfig {
            auto_approve_after_polls: Some(2),
            ..SimConfig::default()
        });
        let answers = check(&mut state, |_, _, _| {}, &[0, 1, 6]);
        assert_eq!(
            answers,
            [Err(Refusal::Pending), Err(Refusal::SlowDown), Ok(())]
        );
    }

    #[test]
    fn device_flow_refusals() {
        let now = Instant::now();
        let refused = |config: SimConfig, client_id: &str| {
            State::new(config)
                .start_device_flow(Some(client_id), now)
                .expect_err("refused")
        };
        assert_eq!(
            refused(SimConfig::default(), "OTHER"),
            Refusal::UnknownClient
        );
        let disabled = SimConfig {
            device_flow_enabled: false,
            ..SimConfig::default()
        };
        assert_eq!(refused(disabled, KEY), Refusal::DeviceFlowDisabled);
        let uninstalled = SimConfig {
            app_preauthorized: false,
            ..SimConfig::default()
        };
        assert_eq!(refused(uninstalled, KEY), Refusal::AppNotInstalled);

        let mut state = state(SimConfig::default());
        let codes = state.start_device_flow(Some(KEY), now).expect("starts");
        let poll = |state: &mut State, secret| {
            state.poll_device_flow(client(secret), Some(&codes.device_code), now)
        };
        assert_eq!(poll(&mut state, Some("wrong")), Err(Refusal::BadSecret));
        assert_eq!(poll(&mut state, Some(SECRET)), Err(Refusal::Pending));
        assert_eq!(
            state.poll_device_flow(client(None), Some("nope"), now),
            Err(Refusal::UnknownCode)
        );
        assert_eq!(
            state.poll_device_flow(client(None), None, now),
            Err(Refusal::Missing("code"))
        );
    }

    #[test]
    fn user_codes_look_like_salesforce_ones() {
        let mut state = state(SimConfig::default());
        let codes = state
            .start_device_flow(Some(KEY), Instant::now())
            .expect("starts");
        assert_eq!(codes.user_code.len(), 8);
        assert!(
            codes
                .user_code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert!(codes.device_code.len() >= 64);
        assert_eq!(codes.interval, 5);
    }

    /// Runs a device flow to its tokens.
    fn authorized(config: SimConfig) -> (State, Issued) {
        let mut state = state(config);
        let now = Instant::now();
        let codes = state.start_device_flow(Some(KEY), now).expect("starts");
        assert!(state.approve(&codes.user_code, now));
        let issued = state
            .poll_device_flow(client(None), Some(&codes.device_code), now)
            .expect("tokens");
        (state, issued)
    }

    #[test]
    fn refresh_keeps_or_rotates_the_token() {
        let (mut state, issued) = authorized(SimConfig::default());
        let token = issued.refresh_token.expect("refresh token granted");
        assert!(issued.access_token.starts_with("00D000000000001AAA!"));
        assert!(token.starts_with(REFRESH_TOKEN_PREFIX));

        let kept = state
            .refresh(client(None), Some(&token))
            .expect("refreshes");
        assert_eq!(kept.refresh_token, None);
        assert_eq!(state.valid_refresh_tokens(), std::slice::from_ref(&token));

        state.set_rotate_refresh_tokens(true);
        let rotated = state
            .refresh(client(Some(SECRET)), Some(&token))
            .expect("refreshes");
        let new = rotated.refresh_token.expect("rotation returns a new token");
        assert_ne!(new, token);
        assert_eq!(state.valid_refresh_tokens(), [new]);
        assert_eq!(
            state.refresh(client(None), Some(&token)),
            Err(Refusal::BadRefreshToken)
        );
    }

    #[test]
    fn refresh_checks_the_client_first() {
        let config = SimConfig {
            require_secret_for_refresh: true,
            ..SimConfig::default()
        };
        let (mut state, issued) = authorized(config);
        let token = issued.refresh_token.expect("refresh token granted");
        let other = Client {
            id: Some("OTHER"),
            secret: Some(SECRET),
        };
        assert_eq!(
            state.refresh(other, Some(&token)),
            Err(Refusal::UnknownClient)
        );
        assert_eq!(
            state.refresh(client(None), Some(&token)),
            Err(Refusal::BadSecret)
        );
        assert_eq!(
            state.refresh(client(Some("wrong")), Some(&token)),
            Err(Refusal::BadSecret)
        );
        assert!(state.refresh(client(Some(SECRET)), Some(&token)).is_ok());
        state.revoke_refresh_tokens();
        assert_eq!(
            state.refresh(client(Some(SECRET)), Some(&token)),
            Err(Refusal::BadRefreshToken)
        );
    }

    #[test]
    fn no_refresh_token_without_the_scope() {
        let (_, issued) = authorized(SimConfig {
            scopes: "api".to_owned(),
            ..SimConfig::default()
        });
        assert_eq!(issued.refresh_token, None);
        assert_eq!(issued.scope, "api");
    }

    #[test]
    fn api_calls_need_a_session_with_api_scope_and_allowance() {
        let (mut state, issued) = authorized(SimConfig {
            api_daily_max: 3,
            api_used_start: 1,
            ..SimConfig::default()
        });
        let bearer = Some(issued.access_token.as_str());
        assert_eq!(state.admit_api_call(None), Err(ApiRefusal::InvalidSession));
        assert_eq!(
            state.admit_api_call(Some("00D!nope")),
            Err(ApiRefusal::InvalidSession)
        );
        assert_eq!(
            state.admit_api_call(bearer),
            Ok(ApiUsage { used: 2, max: 3 })
        );
        assert_eq!(
            state.admit_api_call(bearer),
            Ok(ApiUsage { used: 3, max: 3 })
        );
        // A refusal for the allowance is counted too (as the import counts it).
        assert_eq!(
            state.admit_api_call(bearer),
            Err(ApiRefusal::LimitExceeded(ApiUsage { used: 4, max: 3 }))
        );
        assert_eq!(state.api_calls(), 3);
        state.expire_access_tokens();
        assert_eq!(
            state.admit_api_call(bearer),
            Err(ApiRefusal::InvalidSession)
        );

        let (mut state, issued) = authorized(SimConfig {
            scopes: "refresh_token web".to_owned(),
            ..SimConfig::default()
        });
        assert_eq!(
            state.admit_api_call(Some(&issued.access_token)),
            Err(ApiRefusal::MissingApiScope)
        );
        assert_eq!(state.api_calls(), 0);
    }
}
