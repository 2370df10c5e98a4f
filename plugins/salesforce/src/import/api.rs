//! Every data request of an import goes through [`Api::get`]: cancellation, the API budget,
//! the concurrency limit, the access token (refreshed once, single-flight, on an expired
//! session), bounded retries with jittered exponential backoff, and errors that name the
//! object being read.
//!
//! | answer | what happens |
//! |---|---|
//! | 200 with JSON of the expected shape | returned |
//! | 200 cut short or not JSON (an HTML maintenance page) | retried |
//! | 200 with complete JSON of another shape | an error at once (asking again gives the same) |
//! | 401 `INVALID_SESSION_ID` | the access token is refreshed once, then the **same URL** is asked again (a `nextRecordsUrl` stays valid across sessions) |
//! | 401 `INVALID_SESSION_ID` saying a scope is required | an `auth` error: the connected app lacks the `api` scope |
//! | 403 `REQUEST_LIMIT_EXCEEDED`, 429, 500, 502, 503, 504, timeouts and dropped connections | retried |
//! | any other answer | an error at once, naming the object and Salesforce's error code |
//!
//! Retries: [`ATTEMPTS`] attempts in all, waiting [`FIRST_DELAY`] then twice as long each
//! time (at most [`MAX_DELAY`]), each wait stretched by a random amount of up to its own
//! length so that concurrent queries do not retry in step.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use invhost_plugin_api::{Error, ErrorKind, Host, Secret};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::Mutex;
use tracing::{debug, info};
use url::Url;

use crate::{
    auth::{OAuth, Rotation},
    client::{Answer, Encoding, Http, TRY_AGAIN, gunzip, is_gzip},
    import::{
        budget::{Budget, LimitInfo, parse_limit_info},
        limiter::{Limiter, URGENT},
    },
};

/// Attempts per request, the first included, before a transient failure becomes an error.
pub const ATTEMPTS: usize = 4;
/// The wait before the first retry.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts (before jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(4);

/// The batch size asked of every query (Salesforce's largest; it may answer with less).
pub const QUERY_OPTIONS: &str = "batchSize=2000";
/// The rows of a full query page, as [`QUERY_OPTIONS`] asks.
pub const PAGE_ROWS: u64 = 2000;

/// The access token of the run, refreshed at most once per expired session however many
/// requests notice the expiry at the same time.
#[derive(Debug)]
pub struct Tokens {
    oauth: OAuth,
    rotation: Rotation,
    host: Host,
    /// The session generation and its access token. A request remembers the generation it
    /// used; only a request whose generation is still current refreshes.
    current: RwLock<(u64, Secret)>,
    /// The refresh token (rotated ones replace it); its lock makes refreshing single-flight.
    refresh_token: Mutex<Secret>,
}

impl Tokens {
    /// Tokens as issued by the first refresh of the run.
    pub fn new(
        oauth: OAuth,
        rotation: Rotation,
        host: Host,
        access_token: Secret,
        refresh_token: Secret,
    ) -> Self {
        Tokens {
            oauth,
            rotation,
            host,
            current: RwLock::new((0, access_token)),
            refresh_token: Mutex::new(refresh_token),
        }
    }

    fn current(&self) -> (u64, Secret) {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refreshes the access token if generation `seen` is still the current one; otherwise
    /// another request refreshed meanwhile, and its token is used. A rotated refresh token
    /// is stored through the host before the new access token is used (see `auth.rs`).
    pub async fn refresh(&self, seen: u64) -> Result<(), Error> {
        let mut refresh_token = self.refresh_token.lock().await;
        if self.current().0 != seen {
            return Ok(());
        }
        debug!("The session expired; refreshing the access token.");
        // On a task of its own: a run cancelled while the exchange is in flight drops the
        // request that waits here, but the exchange goes on until a rotated refresh token is
        // stored, so the stored token is never one Salesforce has already replaced.
        let (oauth, rotation, host, token) = (
            self.oauth.clone(),
            self.rotation,
            self.host.clone(),
            refresh_token.clone(),
        );
        let tokens = tokio::spawn(async move { oauth.refresh(&token, rotation, &host).await })
            .await
            .map_err(|e| {
                Error::internal(format!("the token refresh stopped unexpectedly: {e}"))
            })??;
        if let Some(rotated) = tokens.refresh_token {
            *refresh_token = rotated;
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = (seen + 1, tokens.access_token);
        Ok(())
    }
}

/// One entry of Salesforce's REST error array.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
}

fn error_body(body: &[u8]) -> ApiErrorBody {
    serde_json::from_slice::<Vec<ApiErrorBody>>(body)
        .ok()
        .and_then(|errors| errors.into_iter().next())
        .or_else(|| serde_json::from_slice::<ApiErrorBody>(body).ok())
        .unwrap_or_default()
}

/// The `details` key of a refusal that carries Salesforce's `errorCode`, so that callers can
/// tell an object the org lacks (`INVALID_TYPE`) from other failures.
pub const ERROR_CODE_DETAIL: &str = "salesforce_error_code";

/// Salesforce's error code of an error made by [`Api::get`], if it had one.
pub fn error_code(error: &Error) -> Option<&str> {
    error.details.get(ERROR_CODE_DETAIL)?.as_str()
}

/// A failure worth another attempt: what to tell the operator if it is the last one, and
/// the error kind it would have.
#[derive(Debug)]
struct Transient {
    cause: String,
    kind: ErrorKind,
}

/// What reading a successful answer came to.
#[derive(Debug)]
pub enum Read<T> {
    /// The value.
    Done(T),
    /// The answer was incomplete or not what was asked for (cut short, an HTML page): worth
    /// asking again. The text says what was wrong, for the operator; if the retries run out,
    /// the run fails as `upstream`.
    Retry(String),
    /// The answer's gzip stream was damaged on the way: worth asking again; if the retries run
    /// out, the run fails as `network`, as an answer inflated on arrival does
    /// ([`Encoding::Inflate`]).
    Damaged(String),
}

/// Reads the body of a 2xx answer while reading `object`: JSON ([`read_json`]), CSV, nothing.
pub type Reader<T> = fn(&str, &Answer) -> Result<Read<T>, Error>;

/// Looks at a successful answer as soon as it is in, before it is read: a query page's
/// `nextRecordsUrl`, so that the next page is asked for meanwhile
/// ([`stream`](mod@crate::import::stream)).
#[derive(Clone, Copy)]
pub struct Peek<'a>(pub &'a (dyn Fn(&Answer) + Sync));

impl std::fmt::Debug for Peek<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peek")
    }
}

/// A request of an import: what [`Api::call`] sends.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// GET, POST, PATCH or DELETE.
    pub method: &'a reqwest::Method,
    /// The URL, on the org's instance.
    pub url: &'a Url,
    /// A JSON body, if any.
    pub body: Option<&'a serde_json::Value>,
    /// The `Accept` header (`application/json`, or `text/csv` for Bulk API 2.0 results).
    pub accept: &'static str,
    /// What to do with a gzip body: [`Encoding::KeepGzip`] keeps it compressed until `read`
    /// reads it, on the blocking pool (and a [`Peek`] inflates only the start it needs).
    pub encoding: Encoding,
    /// Called with each successful answer before `read` reads it.
    pub peek: Option<Peek<'a>>,
}

impl<'a> Call<'a> {
    /// A GET of `url` asking for JSON.
    pub fn get(url: &'a Url) -> Self {
        Call {
            method: &reqwest::Method::GET,
            url,
            body: None,
            accept: "application/json",
            encoding: Encoding::Inflate,
            peek: None,
        }
    }
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    Expired,
    Retry(Transient),
}

/// The REST API of one org for one import.
#[derive(Debug)]
pub struct Api {
    http: Http,
    instance_url: Url,
    host_name: String,
    version: String,
    tokens: Tokens,
    /// The run's API budget and call counter.
    pub budget: Arc<Budget>,
    in_flight: Limiter,
    host: Host,
    backoff: ExponentialBuilder,
}

impl Api {
    /// The API of the org at `instance_url`, version `version` (`62.0`), with at most
    /// `concurrency` requests in flight.
    pub fn new(
        http: Http,
        instance_url: Url,
        version: String,
        tokens: Tokens,
        budget: Budget,
        concurrency: usize,
        host: Host,
    ) -> Self {
        let host_name = instance_url.host_str().unwrap_or_default().to_owned();
        Api {
            http,
            instance_url,
            host_name,
            version,
            tokens,
            budget: Arc::new(budget),
            in_flight: Limiter::new(concurrency),
            host,
            backoff: ExponentialBuilder::default()
                .with_min_delay(FIRST_DELAY)
                .with_max_delay(MAX_DELAY)
                .with_factor(2.0)
                .with_max_times(ATTEMPTS - 1)
                .with_jitter(),
        }
    }

    /// The API version in use (`62.0`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The URL of a SOQL query.
    pub fn query_url(&self, soql: &str) -> Result<Url, Error> {
        let mut url = self.url(&format!("/services/data/v{}/query", self.version))?;
        url.query_pairs_mut().append_pair("q", soql);
        Ok(url)
    }

    /// The URL of an object's describe.
    pub fn describe_url(&self, object: &str) -> Result<Url, Error> {
        self.url(&format!(
            "/services/data/v{}/sobjects/{object}/describe",
            self.version
        ))
    }

    /// A path (a `nextRecordsUrl`) on the org's instance.
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        let url = self.instance_url.join(path).map_err(|e| {
            Error::upstream(format!(
                "Salesforce answered an unusable next page `{path}` ({e})"
            ))
        })?;
        if url.origin() != self.instance_url.origin() {
            // The access token goes only to the org's own instance.
            return Err(Error::upstream(format!(
                "Salesforce pointed at `{path}`, outside the org's instance; invhost does not \
                 send the token there"
            )));
        }
        Ok(url)
    }

    /// GETs `url` while reading `object` and parses the answer as `T`; see the module docs.
    /// Goes before requests of known size when slots are short ([`URGENT`]).
    pub async fn get<T: DeserializeOwned + Send + 'static>(
        &self,
        object: &str,
        url: &Url,
    ) -> Result<T, Error> {
        self.get_with_priority(object, url, URGENT).await
    }

    /// [`Api::get`] for a request whose query has about `priority` rows still to read: when
    /// more requests wait than there are slots, the longest query goes first
    /// ([`crate::import::limiter`]).
    pub async fn get_with_priority<T: DeserializeOwned + Send + 'static>(
        &self,
        object: &str,
        url: &Url,
        priority: u64,
    ) -> Result<T, Error> {
        self.call(object, Call::get(url), priority, read_json::<T>)
            .await
    }

    /// Sends `call` while reading `object` (the same path as [`Api::get`]: budget, slots,
    /// session refresh, retries) and reads a successful answer with `read`. A POST is retried
    /// like a GET: a Bulk API 2.0 job created twice costs one more job, nothing else.
    pub async fn call<T: Send + 'static>(
        &self,
        object: &str,
        call: Call<'_>,
        priority: u64,
        read: Reader<T>,
    ) -> Result<T, Error> {
        let mut delays = self.backoff.build();
        let mut refreshed = false;
        // Failed attempts worth retrying (a refreshed session does not count).
        let mut failures = 0;
        loop {
            let (generation, token) = self.tokens.current();
            match self.attempt(object, call, &token, priority, read).await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Expired if refreshed => {
                    return Err(Error::auth(format!(
                        "{object}: Salesforce refused the session again right after a refresh; \
                         test the connection, and generate a new refresh token if it keeps \
                         failing"
                    )));
                }
                Attempt::Expired => {
                    self.tokens.refresh(generation).await?;
                    refreshed = true;
                }
                Attempt::Retry(transient) => {
                    failures += 1;
                    self.retry_or_fail(object, transient, failures, delays.next())
                        .await?;
                }
            }
        }
    }

    /// Waits `delay` before the next attempt, or ends with the last failure when no attempt
    /// is left.
    async fn retry_or_fail(
        &self,
        object: &str,
        transient: Transient,
        failures: usize,
        delay: Option<Duration>,
    ) -> Result<(), Error> {
        let Some(delay) = delay else {
            let times = match failures {
                1 => "once".to_owned(),
                2 => "twice".to_owned(),
                3 => "three times".to_owned(),
                4 => "four times".to_owned(),
                n => format!("{n} times"),
            };
            return Err(Error::new(
                transient.kind,
                format!("{object}: {} {times}; try again later", transient.cause),
            )
            .retryable(true));
        };
        // At `info`: the default log shows an import's outcome, not each retry (a run that
        // fails names the cause it ended on).
        info!(
            object,
            attempt = failures,
            cause = %transient.cause,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "Request failed; retrying."
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// One request: cancellation, budget and concurrency first, then the answer sorted.
    async fn attempt<T: Send + 'static>(
        &self,
        object: &str,
        call: Call<'_>,
        token: &Secret,
        priority: u64,
        read: Reader<T>,
    ) -> Result<Attempt<T>, Error> {
        self.host.check_cancelled()?;
        let permit = self.in_flight.acquire(priority).await?;
        self.host.check_cancelled()?;
        let reserved = self.budget.reserve_owned(object)?;
        let mut request = self
            .http
            .client()
            .request(call.method.clone(), call.url.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, call.accept)
            .header("Sforce-Query-Options", QUERY_OPTIONS);
        if let Some(body) = call.body {
            request = request.json(body);
        }
        // The exchange runs in a task of its own, which settles the budget: a request already
        // sent is answered and counted even when this attempt is dropped (the import failed
        // elsewhere, or was cancelled), so a failed run reports the calls Salesforce billed.
        let encoding = call.encoding;
        let (http, host_name) = (self.http.clone(), self.host_name.clone());
        let exchange = tokio::spawn(async move {
            // Billed is what carries `Sforce-Limit-Info` (see `budget`), even when its body
            // then fails: Salesforce answered it.
            // Not a `move` closure: it fills this `reported` (a `Copy` type, which a `move`
            // would copy and leave `None` here).
            let mut reported = None;
            let answered = http
                .exchange_observed(request, &host_name, encoding, |headers| {
                    reported = limit_info(headers);
                })
                .await;
            // Settled here, or, should the task panic or be dropped first, by `reserved`'s
            // drop (giving the slot back, counting nothing).
            reserved.settle(reported);
            let answer = answered?;
            let code = error_body_if_failed(&answer);
            Ok::<_, Error>((answer, code, reported))
        });
        let exchanged = exchange
            .await
            .map_err(|error| Error::internal(format!("a request task failed: {error}")))?;
        let (answer, code, reported) = match exchanged {
            Ok(exchanged) => exchanged,
            Err(error) => {
                return match error.kind {
                    // Tried again here, so the message's own "try again" goes (the final
                    // failure says how often it was tried).
                    ErrorKind::NETWORK if error.retryable => Ok(Attempt::Retry(Transient {
                        cause: error
                            .message
                            .strip_suffix(TRY_AGAIN)
                            .map_or_else(|| error.message.clone(), str::to_owned),
                        kind: ErrorKind::NETWORK,
                    })),
                    _ => Err(error),
                };
            }
        };
        // The answer is in: the slot goes to the next request while this one is read.
        drop(permit);
        if let Some(Peek(peek)) = call.peek
            && answer.status.is_success()
        {
            peek(&answer);
        }
        if !is_gzip(&answer.headers) && answer.body.len() < READ_INLINE_BYTES {
            return sort(object, &answer, &code, reported, read);
        }
        // Reading a big answer (a page of 2,000 rows, a result set) is CPU work of milliseconds:
        // on the blocking pool, so that the runtime's workers go on sending requests and
        // taking answers meanwhile. A body kept gzipped ([`Encoding::KeepGzip`]) goes there
        // whatever its size: its compressed size says little of the work of reading it.
        let object = object.to_owned();
        tokio::task::spawn_blocking(move || sort(&object, &answer, &code, reported, read))
            .await
            .map_err(|error| Error::internal(format!("reading an answer failed: {error}")))?
    }
}

/// Answers smaller than this, and not gzipped, are read on the runtime's worker (errors, job
/// infos, describe).
const READ_INLINE_BYTES: usize = 64 << 10;

/// Sorts an answer into a value, an expired session, a retry, or an error.
fn sort<T>(
    object: &str,
    answer: &Answer,
    refusal: &ApiErrorBody,
    reported: Option<LimitInfo>,
    read: Reader<T>,
) -> Result<Attempt<T>, Error> {
    let status = answer.status.as_u16();
    let said = if refusal.error_code.is_empty() {
        String::new()
    } else {
        format!(" {}: {}", refusal.error_code, refusal.message)
    };
    match status {
        200..=299 => Ok(match read(object, answer)? {
            Read::Done(value) => Attempt::Done(value),
            Read::Retry(cause) => Attempt::Retry(Transient {
                cause,
                kind: ErrorKind::UPSTREAM,
            }),
            Read::Damaged(cause) => Attempt::Retry(Transient {
                cause,
                kind: ErrorKind::NETWORK,
            }),
        }),
        401 if refusal.message.to_ascii_lowercase().contains("scope") => Err(Error::auth(format!(
            "{object}: the token may not call the REST API ({}: {}); add the `api` (and \
                 `refresh_token`) scope to the connected app's OAuth scopes, then generate \
                 a new refresh token",
            refusal.error_code, refusal.message
        ))),
        401 => Ok(Attempt::Expired),
        403 | 429 if status == 429 || refusal.error_code == "REQUEST_LIMIT_EXCEEDED" => {
            let usage = reported
                .map(|r| format!(" ({} of {} daily calls used)", r.used, r.max))
                .unwrap_or_default();
            Ok(Attempt::Retry(Transient {
                cause: format!("Salesforce refused for too many requests{said}{usage}"),
                kind: ErrorKind::RATE_LIMITED,
            }))
        }
        500 | 502 | 503 | 504 => Ok(Attempt::Retry(Transient {
            cause: format!("Salesforce answered {status}{said}"),
            kind: ErrorKind::UPSTREAM,
        })),
        _ => {
            let mut error = match status {
                403 => Error::auth(format!(
                    "{object}: Salesforce refused access (HTTP 403{said}); the user the token \
                     belongs to needs API Enabled, View Setup and Configuration and Manage \
                     Users"
                )),
                _ => Error::upstream(format!(
                    "{object}: Salesforce answered HTTP {status}{}",
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", said.trim_start())
                    }
                )),
            };
            if !refusal.error_code.is_empty() {
                error = error.with_details(serde_json::json!({
                    ERROR_CODE_DETAIL: refusal.error_code
                }));
            }
            Err(error)
        }
    }
}

/// Reads a successful answer as JSON of type `T` (every query page, describe and job info).
/// A body still gzipped ([`Encoding::KeepGzip`]) is inflated first.
pub fn read_json<T: DeserializeOwned>(object: &str, answer: &Answer) -> Result<Read<T>, Error> {
    let inflated;
    let body = if is_gzip(&answer.headers) {
        inflated = match gunzip(&answer.body) {
            Ok(body) => body,
            Err(error) => {
                // Worth asking again; if it keeps happening, the message ends the run.
                return Ok(Read::Damaged(format!(
                    "Salesforce's answer is not valid gzip ({error}): it was cut off or damaged \
                     on the way; if it keeps happening, a proxy or gateway may be altering \
                     Salesforce's answers (check proxy.server)"
                )));
            }
        };
        &inflated
    } else {
        &answer.body
    };
    // Checked as UTF-8 once, as a whole: serde_json reading bytes would check every string
    // (and every key) on its own, a visible share of an import's CPU. A body that is not UTF-8
    // throughout is read as bytes, as before: serde_json then checks only the strings it
    // keeps, so bad bytes in a field the import ignores do not matter.
    match std::str::from_utf8(body).map_or_else(
        |_| serde_json::from_slice::<T>(body),
        serde_json::from_str::<T>,
    ) {
        Ok(value) => Ok(Read::Done(value)),
        Err(error) => {
            let html = body.trim_ascii_start().starts_with(b"<");
            if html {
                Ok(Read::Retry(
                    "Salesforce answered an HTML page instead of JSON (maintenance?)".to_owned(),
                ))
            } else if error.is_eof() {
                Ok(Read::Retry("Salesforce's answer was cut short".to_owned()))
            } else if error.is_data() {
                // Complete JSON of another shape: asking again gives the same answer. Only
                // the place is named: serde's message may quote a value of the org.
                Err(Error::upstream(format!(
                    "{object}: Salesforce's answer has an unexpected shape (at line {}, column \
                     {}); report it to invhost's authors with the org's API version",
                    error.line(),
                    error.column()
                )))
            } else {
                Ok(Read::Retry(format!(
                    "Salesforce's answer could not be read (malformed JSON at line {}, column {})",
                    error.line(),
                    error.column()
                )))
            }
        }
    }
}

/// The org's usage an answer's `Sforce-Limit-Info` header reports, if it has one.
fn limit_info(headers: &reqwest::header::HeaderMap) -> Option<LimitInfo> {
    headers
        .get("sforce-limit-info")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_limit_info)
}

/// The error body of a failed answer (empty for a success).
fn error_body_if_failed(answer: &Answer) -> ApiErrorBody {
    if answer.status.is_success() {
        ApiErrorBody::default()
    } else {
        error_body(&answer.body)
    }
}

/// Shares an [`Api`] between the import's tasks.
pub type SharedApi = Arc<Api>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_leniently() {
        let array = error_body(
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(array.error_code, "INVALID_SESSION_ID");
        let object = error_body(br#"{"message":"m","errorCode":"X"}"#);
        assert_eq!(
            (object.error_code.as_str(), object.message.as_str()),
            ("X", "m")
        );
        let html = error_body(b"<html>down</html>");
        assert!(html.error_code.is_empty());
    }

    /// Sorts an answer of `status` with `body` (and a limit header of 5 of 100).
    fn check(status: u16, body: &str) -> Result<Attempt<serde_json::Value>, Error> {
        let answer = Answer {
            status: reqwest::StatusCode::from_u16(status).expect("a status"),
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let refusal = error_body_if_failed(&answer);
        sort(
            "User",
            &answer,
            &refusal,
            Some(LimitInfo { used: 5, max: 100 }),
            read_json,
        )
    }

    fn retried(status: u16, body: &str) -> Transient {
        match check(status, body) {
            Ok(Attempt::Retry(transient)) => transient,
            Ok(Attempt::Done(value)) => panic!("{status}: done with {value}"),
            Ok(Attempt::Expired) => panic!("{status}: expired"),
            Err(error) => panic!("{status}: {error:?}"),
        }
    }

    fn failed(status: u16, body: &str) -> Error {
        match check(status, body) {
            Err(error) => error,
            Ok(_) => panic!("{status} {body}: not an error"),
        }
    }

    #[test]
    fn a_body_kept_gzipped_is_inflated_and_damaged_gzip_asked_for_again() {
        use std::io::Write as _;
        #[derive(Debug, serde::Deserialize)]
        struct Kept {
            a: String,
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(br#"{"a":"x"}"#).expect("compresses");
        let compressed = encoder.finish().expect("compresses");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        let sorted = |body: &[u8]| {
            let answer = Answer {
                status: reqwest::StatusCode::OK,
                headers: headers.clone(),
                body: body.to_vec(),
            };
            sort::<Kept>("User", &answer, &ApiErrorBody::default(), None, read_json)
        };
        match sorted(&compressed) {
            Ok(Attempt::Done(kept)) => assert_eq!(kept.a, "x"),
            other => panic!("not read: {:?}", other.map(|_| ()).err()),
        }
        match sorted(&compressed[..compressed.len() - 6]) {
            Ok(Attempt::Retry(transient)) => {
                assert!(
                    transient.cause.contains("not valid gzip")
                        && transient.cause.contains("proxy.server"),
                    "{}",
                    transient.cause
                );
                // As when the answer is inflated on arrival.
                assert_eq!(transient.kind, ErrorKind::NETWORK);
            }
            other => panic!("not retried: {:?}", other.map(|_| ()).err()),
        }
    }

    #[test]
    fn bodies_not_utf8_throughout_are_read_as_bytes() {
        #[derive(Debug, serde::Deserialize)]
        struct Kept {
            a: String,
        }
        let sorted = |body: &[u8]| {
            let answer = Answer {
                status: reqwest::StatusCode::OK,
                headers: reqwest::header::HeaderMap::new(),
                body: body.to_vec(),
            };
            sort::<Kept>("User", &answer, &ApiErrorBody::default(), None, read_json)
        };
        // Bad bytes in a field the import does not keep: read as before.
        match sorted(b"{\"a\":\"x\",\"junk\":\"\xff\"}") {
            Ok(Attempt::Done(kept)) => assert_eq!(kept.a, "x"),
            other => panic!("not read: {:?}", other.map(|_| ()).err()),
        }
        // In a kept string, and a body cut inside a character: retried, without the bytes.
        for body in [&b"{\"a\":\"\xff\"}"[..], &"{\"a\":\"\u{e9}".as_bytes()[..7]] {
            match sorted(body) {
                Ok(Attempt::Retry(transient)) => {
                    assert!(transient.cause.contains("answer"), "{}", transient.cause);
                }
                other => panic!("not retried: {:?}", other.map(|_| ()).err()),
            }
        }
    }

    #[test]
    fn answers_are_sorted() {
        assert!(matches!(check(200, r#"{"a": 1}"#), Ok(Attempt::Done(_))));
        assert!(matches!(
            check(
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            Ok(Attempt::Expired)
        ));
        let cut = retried(200, r#"{"a": [1, 2"#);
        assert_eq!(cut.cause, "Salesforce's answer was cut short");
        let html = retried(200, "<html><body>Maintenance</body></html>");
        assert!(html.cause.contains("HTML page"), "{}", html.cause);
        let limit = retried(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert_eq!(limit.kind, ErrorKind::RATE_LIMITED);
        assert_eq!(
            limit.cause,
            "Salesforce refused for too many requests REQUEST_LIMIT_EXCEEDED: TotalRequests \
             Limit exceeded. (5 of 100 daily calls used)"
        );
        assert_eq!(retried(429, "").kind, ErrorKind::RATE_LIMITED);
        for status in [500, 502, 503, 504] {
            let transient = retried(status, "<html>busy</html>");
            assert_eq!(transient.kind, ErrorKind::UPSTREAM);
            assert_eq!(transient.cause, format!("Salesforce answered {status}"));
        }

        let scope = failed(
            401,
            r#"[{"message":"This session is not valid for use with the specified REST API endpoint. One of the following scopes is required: api, full","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(scope.kind, ErrorKind::AUTH);
        assert!(
            scope
                .message
                .starts_with("User: the token may not call the REST API")
        );
        let field = failed(
            400,
            r#"[{"message":"No such column 'Nope' on entity 'User'","errorCode":"INVALID_FIELD"}]"#,
        );
        assert_eq!(field.kind, ErrorKind::UPSTREAM);
        assert_eq!(
            field.message,
            "User: Salesforce answered HTTP 400 (INVALID_FIELD: No such column 'Nope' on entity \
             'User')"
        );
        assert_eq!(error_code(&field), Some("INVALID_FIELD"));
        let access = failed(
            403,
            r#"[{"message":"insufficient access rights","errorCode":"INSUFFICIENT_ACCESS"}]"#,
        );
        assert_eq!(access.kind, ErrorKind::AUTH);
        assert!(
            access.message.contains("View Setup and Configuration"),
            "{}",
            access.message
        );
        assert_eq!(error_code(&access), Some("INSUFFICIENT_ACCESS"));
        let bare = failed(404, "");
        assert_eq!(bare.message, "User: Salesforce answered HTTP 404");
        assert_eq!(error_code(&bare), None);
    }

    #[test]
    fn complete_json_of_another_shape_fails_at_once_and_garbage_is_retried() {
        #[derive(Debug, Deserialize)]
        struct Page {
            #[allow(dead_code)]
            records: Vec<u32>,
        }
        let answer = |body: &str| Answer {
            status: reqwest::StatusCode::OK,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        };
        let shape = answer(r#"{"records": "not a list"}"#);
        match sort::<Page>(
            "User",
            &shape,
            &error_body_if_failed(&shape),
            None,
            read_json,
        ) {
            Err(error) => {
                assert_eq!(error.kind, ErrorKind::UPSTREAM);
                assert!(!error.retryable);
                assert!(
                    error
                        .message
                        .starts_with("User: Salesforce's answer has an unexpected shape"),
                    "{}",
                    error.message
                );
                assert!(!error.message.contains("not a list"), "no value is shown");
            }
            Ok(_) => panic!("an answer of another shape was not refused"),
        }
        let garbage = answer(r#"{"records": [1] }}"#);
        match sort::<Page>(
            "User",
            &garbage,
            &error_body_if_failed(&garbage),
            None,
            read_json,
        ) {
            Ok(Attempt::Retry(transient)) => {
                assert!(
                    transient.cause.contains("could not be read"),
                    "{}",
                    transient.cause
                );
            }
            Ok(_) | Err(_) => panic!("a garbled answer is worth another attempt"),
        }
    }

    #[test]
    fn the_backoff_grows_with_jitter_and_stops() {
        let builder = ExponentialBuilder::default()
            .with_min_delay(FIRST_DELAY)
            .with_max_delay(MAX_DELAY)
            .with_factor(2.0)
            .with_max_times(ATTEMPTS - 1)
            .with_jitter();
        let delays: Vec<Duration> = builder.build().collect();
        assert_eq!(delays.len(), ATTEMPTS - 1);
        for (i, delay) in delays.iter().enumerate() {
            let base = FIRST_DELAY * 2u32.pow(u32::try_from(i).expect("small"));
            assert!(*delay >= base && *delay < base * 2, "{i}: {delay:?}");
        }
    }
}
