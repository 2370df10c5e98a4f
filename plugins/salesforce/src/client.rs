//! The HTTP client every Salesforce call goes through, the proxy it may use, and the
//! translation of transport failures (DNS, proxy, TLS, timeouts) into operator messages.
//!
//! rustls only (no OpenSSL), TLS 1.2 at least. Without a configured proxy the client ignores
//! `HTTP_PROXY` and friends, so that stray environment variables never reroute traffic.

use std::{error::Error as StdError, time::Duration};

use invhost_plugin_api::{
    Error, Host, Secret,
    settings::{ProxyCredentials, ProxySettings},
};
use tracing::debug;
use url::Url;

/// How long establishing a connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long one request may take, from sending to the end of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("invhost-salesforce/", env!("CARGO_PKG_VERSION"));

/// A proxy with its credentials read (from the settings or from the vault).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProxy {
    /// The proxy address (`http://10.0.0.1:3128/`).
    pub url: Url,
    /// The proxy user name, when the proxy needs Basic authentication.
    pub username: Option<String>,
    /// The proxy password, when the proxy needs Basic authentication.
    pub password: Option<Secret>,
}

impl ResolvedProxy {
    /// Checks the address and reads the credentials: stored ones directly, CyberArk ones
    /// through `host.vault_lookup` (user name from `UserName`, password from `Content`).
    pub fn resolve(settings: &ProxySettings, host: &Host) -> Result<Self, Error> {
        let address = settings
            .address()
            .map_err(|message| Error::config(format!("proxy.server: {message}")))?;
        let (username, password) = match &settings.credentials {
            ProxyCredentials::NoCredentials => (None, None),
            ProxyCredentials::Local { username, password } => {
                (Some(username.clone()), Some(password.clone()))
            }
            ProxyCredentials::Cyberark { query } => {
                let [username, password] = vault_pair(host, &query.0)?;
                (Some(username.expose().to_owned()), Some(password))
            }
        };
        Ok(ResolvedProxy {
            url: address.url,
            username,
            password,
        })
    }

    /// [`ResolvedProxy::resolve`] for an optional proxy block.
    pub fn resolve_optional(
        settings: Option<&ProxySettings>,
        host: &Host,
    ) -> Result<Option<Self>, Error> {
        settings
            .map(|s| ResolvedProxy::resolve(s, host))
            .transpose()
    }
}

/// Reads the user name and the password of one vault account.
fn vault_pair(host: &Host, query: &str) -> Result<[Secret; 2], Error> {
    let values = host
        .vault_lookup(query, &["UserName", ""])
        .map_err(|mut error| {
            // The host's wording ("leave the field empty") is for settings that name a
            // property; the proxy's has none.
            if error.details["reason"] == "missing_property" {
                let names: Vec<&str> = error.details["properties"]
                    .as_array()
                    .map(|names| names.iter().filter_map(|n| n.as_str()).collect())
                    .unwrap_or_default();
                error.message = format!(
                    "the proxy's CyberArk account `{query}` has no property `{}` (its \
                     properties are {}); a proxy account needs a UserName property (the proxy \
                     user) beside its password: ask the CyberArk administrator to add it, or \
                     set proxy.credentials to source `local`",
                    error.details["field"].as_str().unwrap_or("UserName"),
                    names.join(", ")
                );
            }
            error
        })?;
    <[Secret; 2]>::try_from(values).map_err(|values| {
        Error::internal(format!(
            "the vault answered {} values for 2 fields",
            values.len()
        ))
    })
}

/// Builds the HTTP client: rustls with TLS 1.2 at least, 15 s to connect, 60 s per request,
/// our user agent, and either exactly the given proxy or no proxy at all. Bodies are read as
/// they come: [`Http::exchange_bytes`] asks for gzip and inflates it itself.
pub fn http_client(proxy: Option<&ResolvedProxy>) -> Result<reqwest::Client, Error> {
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // Answers are inflated by `decoded_body`, also in a build where another crate turns
        // reqwest's `gzip` feature on.
        .no_gzip()
        // Never follow a redirect: it would re-send the token form (consumer secret, refresh
        // token) to wherever the redirect points.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT);
    let builder = match proxy {
        None => builder.no_proxy(),
        Some(proxy) => builder.proxy(reqwest_proxy(proxy)?),
    };
    builder
        .build()
        .map_err(|error| Error::internal(format!("could not build the HTTP client: {error}")))
}

fn reqwest_proxy(proxy: &ResolvedProxy) -> Result<reqwest::Proxy, Error> {
    let mut built = reqwest::Proxy::all(proxy.url.as_str()).map_err(|error| {
        Error::config(format!(
            "proxy.server: `{}` is not usable as a proxy ({error})",
            proxy.url
        ))
    })?;
    if let Some(username) = &proxy.username {
        let password = proxy.password.as_ref().map_or("", Secret::expose);
        built = built.basic_auth(username, password);
    }
    debug!(proxy = %proxy.url, with_credentials = proxy.username.is_some(), "Using a proxy.");
    Ok(built)
}

/// An answer read whole: its status, its headers and its (decompressed) body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: reqwest::StatusCode,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body, gzip already undone.
    pub body: Vec<u8>,
}

/// The most a gzip body's own size field may make [`gunzip`] reserve at once; a larger body
/// grows as it is inflated.
pub const MAX_RESERVE: usize = 64 << 20;

/// Inflates a gzip body (one member or several) into one buffer.
///
/// The buffer is reserved from the size the body announces in its last four bytes (gzip's
/// `ISIZE`, the inflated length modulo 2^32), bounded by [`MAX_RESERVE`] and by a thousand
/// times the compressed length, so that a page is inflated in place, in one call, rather than
/// in small chunks copied together afterwards. zlib reads each member's header and checks its
/// CRC and length. A body that is cut off or damaged is an error.
pub fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut body = Vec::with_capacity(reserve_for(compressed));
    let mut input = compressed;
    loop {
        // One member per turn; 15 is the largest window, which any gzip writer may use.
        let mut inflater = Decompress::new_gzip(15);
        loop {
            if body.len() == body.capacity() {
                body.reserve((body.len() / 2).max(32 << 10));
            }
            let (read, written) = (inflater.total_in(), body.len());
            let status = inflater
                .decompress_vec(input, &mut body, FlushDecompress::Finish)
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))?;
            let consumed = usize::try_from(inflater.total_in() - read).unwrap_or(input.len());
            input = input.get(consumed..).unwrap_or_default();
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError
                    if consumed == 0 && body.len() == written && body.len() < body.capacity() =>
                {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the gzip body ends early",
                    ));
                }
                Status::Ok | Status::BufError => {}
            }
        }
        if input.is_empty() {
            return Ok(body);
        }
    }
}

/// What [`gunzip`] reserves for `compressed`: its `ISIZE`, within the bounds.
fn reserve_for(compressed: &[u8]) -> usize {
    let announced = compressed
        .last_chunk::<4>()
        .map_or(0, |isize| u32::from_le_bytes(*isize) as usize);
    announced
        .min(MAX_RESERVE)
        .min(compressed.len().saturating_mul(1000))
}

/// The body of an answer as Salesforce meant it: inflated when its `Content-Encoding` is gzip
/// (which then loses that header and `Content-Length`), as it came otherwise. An empty body
/// stays empty whatever its headers say (a 204, or a proxy's answer). A gzip body that does not
/// inflate is a retryable network error.
fn decoded_body<B: AsRef<[u8]> + Into<Vec<u8>>>(
    headers: &mut reqwest::header::HeaderMap,
    raw: B,
    host: &str,
) -> Result<Vec<u8>, Error> {
    if !is_gzip(headers) || raw.as_ref().is_empty() {
        return Ok(raw.into());
    }
    headers.remove(reqwest::header::CONTENT_ENCODING);
    headers.remove(reqwest::header::CONTENT_LENGTH);
    gunzip(raw.as_ref()).map_err(|error| {
        Error::network(format!(
            "the answer from {host} is not valid gzip ({error}); it was cut off or damaged on \
             the way, try again; if it keeps happening, a proxy or gateway may be altering \
             Salesforce's answers (check proxy.server)"
        ))
    })
}

/// The first `want` bytes (or fewer) of a body, inflated when its `Content-Encoding` is gzip:
/// enough to look at the start of a big answer without inflating all of it. Damaged gzip
/// gives what could be inflated before the damage (reading the whole body finds the damage).
pub fn body_prefix(headers: &reqwest::header::HeaderMap, body: &[u8], want: usize) -> Vec<u8> {
    if !is_gzip(headers) {
        return body.get(..want).unwrap_or(body).to_vec();
    }
    let mut inflater = flate2::Decompress::new_gzip(15);
    let mut prefix = Vec::with_capacity(want);
    let mut input = body;
    while prefix.len() < want && !input.is_empty() {
        let before = inflater.total_in();
        let status = inflater.decompress_vec(input, &mut prefix, flate2::FlushDecompress::None);
        let consumed = usize::try_from(inflater.total_in() - before).unwrap_or(input.len());
        input = input.get(consumed..).unwrap_or_default();
        match status {
            Ok(flate2::Status::Ok) if consumed > 0 => {}
            _ => break,
        }
    }
    prefix
}

/// What [`Http::exchange_encoded`] does with a gzip body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Inflate it ([`gunzip`]).
    Inflate,
    /// Keep a successful answer's body compressed, with its `Content-Encoding`.
    KeepGzip,
}

/// Whether the answer's `Content-Encoding` is gzip.
pub fn is_gzip(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("gzip"))
}

/// An HTTP client together with what is needed to explain its failures.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    via_proxy: bool,
    /// The proxy's address starts with `https://`: the client speaks TLS to the proxy itself.
    tls_proxy: bool,
    /// Some request through this client (or a clone) got an answer: the proxy speaks TLS.
    answered: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Http {
    /// Builds the client (see [`http_client`]).
    pub fn new(proxy: Option<&ResolvedProxy>) -> Result<Self, Error> {
        Ok(Http {
            client: http_client(proxy)?,
            via_proxy: proxy.is_some(),
            tls_proxy: proxy.is_some_and(|p| p.url.scheme() == "https"),
            answered: std::sync::Arc::default(),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request asking for JSON (unless it names another `Accept`) and reads the whole
    /// body; transport failures and a
    /// proxy's refusal become operator errors naming `host`. Other statuses are the caller's.
    pub async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        host: &str,
    ) -> Result<(reqwest::StatusCode, String), Error> {
        let answer = self.exchange_bytes(request, host).await?;
        let body = String::from_utf8(answer.body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok((answer.status, body))
    }

    /// [`Http::exchange`], keeping the headers and the body as bytes (an import reads
    /// `Sforce-Limit-Info` and parses large pages without a copy into a `String`).
    ///
    /// Every request asks for `Accept-Encoding: gzip`. A non-empty gzip answer is inflated here
    /// ([`gunzip`]) and loses its `Content-Encoding` and `Content-Length` headers; a gzip body
    /// that does not inflate is a retryable network error.
    pub async fn exchange_bytes(
        &self,
        request: reqwest::RequestBuilder,
        host: &str,
    ) -> Result<Answer, Error> {
        self.exchange_encoded(request, host, Encoding::Inflate)
            .await
    }

    /// [`Http::exchange_bytes`]; with [`Encoding::KeepGzip`] a successful gzip answer keeps its
    /// compressed body and its `Content-Encoding` (for a caller that inflates it later, off the
    /// runtime's workers, or only its start). Failed answers are always inflated: their error
    /// bodies are read.
    pub async fn exchange_encoded(
        &self,
        request: reqwest::RequestBuilder,
        host: &str,
        encoding: Encoding,
    ) -> Result<Answer, Error> {
        self.exchange_observed(request, host, encoding, |_| {})
            .await
    }

    /// [`Http::exchange_encoded`], handing the answer's headers to `headers_seen` as soon as
    /// they are in, before the body is read: a caller that counts what the server billed (an
    /// import reads `Sforce-Limit-Info`) still sees them when the body then fails (a dropped
    /// connection, a gzip stream that does not inflate).
    pub async fn exchange_observed(
        &self,
        request: reqwest::RequestBuilder,
        host: &str,
        encoding: Encoding,
        headers_seen: impl FnOnce(&reqwest::header::HeaderMap),
    ) -> Result<Answer, Error> {
        let mut request = request.build().map_err(|error| {
            Error::internal(format!("could not build a request to {host}: {error}"))
        })?;
        let headers = request.headers_mut();
        if !headers.contains_key(reqwest::header::ACCEPT) {
            headers.insert(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
        }
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        // Through a proxy, an https target is reached through a CONNECT tunnel: every HTTP
        // answer then comes from Salesforce itself, never from the proxy.
        let tunnelled = request.url().scheme() == "https";
        // A GET may be sent again when a kept-alive connection turns out to be closed: the
        // server (or a proxy such as tinyproxy) closed it while it sat in the pool, and the
        // request never reached anyone.
        let again = (request.method() == reqwest::Method::GET)
            .then(|| request.try_clone())
            .flatten();
        let response = match (self.client.execute(request).await, again) {
            (Err(error), Some(again)) if is_stale_connection(&error) => {
                debug!(
                    host,
                    "A pooled connection was closed; sending the request again."
                );
                self.client.execute(again).await
            }
            (result, _) => result,
        }
        .map_err(|error| self.explain(&error, host))?;
        self.answered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let status = response.status();
        let mut headers = response.headers().clone();
        headers_seen(&headers);
        let raw = match response.bytes().await {
            Ok(raw) => raw,
            // A proxy that refuses a plain HTTP request answers and closes without reading the
            // request's body (tinyproxy does), so the answer breaks off; Salesforce's own
            // refusals are whole JSON bodies. The status alone says who refused.
            Err(error) => {
                return Err(match self.proxy_refusal(status.as_u16(), "") {
                    Some(refusal) if !tunnelled => refusal,
                    _ => self.explain_body(&error, host),
                });
            }
        };
        let body = match encoding {
            Encoding::KeepGzip if status.is_success() => raw.into(),
            _ => decoded_body(&mut headers, raw, host)?,
        };
        // Only these statuses can come from a proxy; a big page is not scanned for them.
        let text = if matches!(status.as_u16(), 401 | 403 | 407) {
            std::str::from_utf8(&body).unwrap_or_default()
        } else {
            ""
        };
        match self.proxy_refusal(status.as_u16(), text) {
            Some(error) if !tunnelled => Err(error),
            _ => Ok(Answer {
                status,
                headers,
                body,
            }),
        }
    }

    /// An answer that came from the proxy rather than from Salesforce: 407, or 401 (which
    /// tinyproxy 1.11 sends for wrong credentials) or 403 with a body that is not JSON.
    pub fn proxy_refusal(&self, status: u16, body: &str) -> Option<Error> {
        let from_proxy = status == 407
            || (matches!(status, 401 | 403)
                && serde_json::from_str::<serde_json::Value>(body).is_err());
        if !self.via_proxy || !from_proxy {
            return None;
        }
        Some(if status == 403 {
            Error::network(
                "the proxy refused the connection (HTTP 403); check proxy.server and the proxy's \
                 rules for Salesforce hosts",
            )
            .retryable(false)
        } else {
            proxy_credentials_refused()
        })
    }

    /// Explains a failed request to `host` (see [`classify`]), knowing whether a proxy was
    /// in the way.
    pub fn explain(&self, error: &reqwest::Error, host: &str) -> Error {
        let chain = error_chain(error);
        let explained = classify_chain(&chain, error.is_timeout(), host, self.via_proxy);
        let answered_before = self.answered.load(std::sync::atomic::Ordering::Relaxed);
        if self.tls_proxy && !answered_before && may_be_a_plain_proxy(&chain, error.is_timeout()) {
            tls_proxy_hint(explained)
        } else {
            explained
        }
    }

    /// A failure while the body of an answer was read: the server had answered, so it is
    /// neither a name nor a refused connection but an answer cut short (or one too slow).
    fn explain_body(&self, error: &reqwest::Error, host: &str) -> Error {
        if error.is_timeout() {
            // The answer had begun, so the way there works: no hint about the proxy's address.
            return classify_chain(&error_chain(error), true, host, self.via_proxy);
        }
        let chain = error_chain(error);
        let cause = chain.last().map_or("unknown error", String::as_str);
        Error::network(format!(
            "the answer from {host} broke off before it was complete ({cause}): the network, a \
             proxy or Salesforce dropped the connection{TRY_AGAIN}"
        ))
    }
}

/// The next step that ends the message of a connection dropped mid-answer. A caller that tries
/// again by itself (an import's requests) takes it off and says how often it tried.
pub const TRY_AGAIN: &str = "; try again";

/// Turns a transport failure into an operator message that names the next step: DNS, proxy
/// credentials, proxy connection, timeout, TLS, refused connection.
pub fn classify(error: &reqwest::Error, login_host: &str) -> Error {
    classify_chain(&error_chain(error), error.is_timeout(), login_host, false)
}

/// The messages of `error` and of every `source()` below it, outermost first.
fn error_chain(error: &reqwest::Error) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain
}

/// Whether a request failed because the connection it was sent on had been closed by the
/// other side before any answer (a stale kept-alive connection).
pub fn is_stale_connection(error: &reqwest::Error) -> bool {
    failure_of(&error_chain(error).join(": ").to_lowercase(), false, false) == Failure::Closed
}

/// What a chain of error messages says went wrong, checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    ProxyCredentials,
    /// A CONNECT answer other than 200 or 407: tinyproxy's answer to wrong credentials (401),
    /// a forbidden port (403), or a login host the proxy cannot reach (5xx).
    TunnelRefused,
    ProxyConnection,
    /// The connection was closed or reset before the answer was complete.
    Closed,
    Dns,
    Timeout,
    Tls,
    Refused,
    Other,
}

fn failure_of(text: &str, timed_out: bool, via_proxy: bool) -> Failure {
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["proxy authorization required"]) || has_word(text, "407") {
        Failure::ProxyCredentials
    } else if has(&["tunnel error: unsuccessful"]) {
        Failure::TunnelRefused
    } else if has(&["tunnel error"]) {
        Failure::ProxyConnection
    } else if has(&[
        "connection closed before message completed",
        "connection reset",
        "broken pipe",
    ]) {
        Failure::Closed
    } else if has(&[
        "failed to lookup address",
        "dns error",
        "name or service not known",
        "temporary failure in name resolution",
        "no such host",
        "nodename nor servname",
    ]) {
        Failure::Dns
    } else if timed_out || has(&["timed out", "deadline has elapsed"]) {
        Failure::Timeout
    } else if has(&[
        "certificate",
        "tls",
        "handshake",
        "alert",
        "corrupt message",
        "invalidcontenttype",
    ]) {
        Failure::Tls
    } else if via_proxy && has(&["connect", "connection"]) {
        Failure::ProxyConnection
    } else if has(&["connection refused"]) {
        Failure::Refused
    } else {
        Failure::Other
    }
}

/// Whether `word` occurs in `text` as a whole token (so that port 4070 is not status 407).
fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| token == word)
}

/// Whether a failure through an `https://` proxy may come from a plain HTTP proxy: TLS sent
/// to one goes unanswered (a timeout) or is answered in plain text (a TLS failure). A
/// certificate the client does not trust came from a peer that speaks TLS: there the address
/// form is right and the trust store is not.
fn may_be_a_plain_proxy(chain: &[String], timed_out: bool) -> bool {
    let text = chain.join(": ").to_lowercase();
    let spoke_tls = text.contains("certificate") || text.contains("unknownissuer");
    !spoke_tls
        && matches!(
            failure_of(&text, timed_out, true),
            Failure::Timeout | Failure::Tls
        )
}

/// Adds to a timeout or TLS failure through an `https://` proxy that most proxies speak plain
/// HTTP: TLS sent to such a proxy goes unanswered (a timeout) or is answered in plain text (a
/// TLS failure). The address form is checked when settings are saved, with a warning; this
/// repeats it where the failure shows.
fn tls_proxy_hint(mut error: Error) -> Error {
    error.message.push_str(
        "; proxy.server starts with https://, which needs a proxy that speaks TLS: for a plain \
         HTTP proxy write http://",
    );
    error
}

fn proxy_credentials_refused() -> Error {
    Error::network("the proxy refused the credentials; check proxy.credentials").retryable(false)
}

/// Classifies from the chain of messages (outermost first); testable without a network.
fn classify_chain(chain: &[String], timed_out: bool, host: &str, via_proxy: bool) -> Error {
    let text = chain.join(": ").to_lowercase();
    let cause = chain.last().map_or("unknown error", String::as_str);
    match failure_of(&text, timed_out, via_proxy) {
        Failure::ProxyCredentials => proxy_credentials_refused(),
        Failure::TunnelRefused => Error::network(format!(
            "the proxy refused the credentials or the connection to {host}; check \
             proxy.credentials, then proxy.server and login_url"
        ))
        .retryable(false),
        Failure::ProxyConnection => Error::network(format!(
            "the proxy refused the connection to {host} ({cause}); check proxy.server"
        )),
        Failure::Closed => Error::network(format!(
            "the connection to {host} was closed before the answer was complete ({cause}); \
             the network, a proxy or Salesforce dropped it{TRY_AGAIN}"
        )),
        Failure::Dns if via_proxy => Error::network(format!(
            "a host name could not be resolved ({cause}); check proxy.server and the network"
        )),
        Failure::Dns => Error::network(format!(
            "the host name {host} could not be resolved: no internet connection, the name is \
             blocked, or Salesforce is down; check login_url and the network"
        )),
        Failure::Timeout => Error::network(format!(
            "timed out waiting for {host}; the network or Salesforce is slow, try again later"
        )),
        Failure::Tls => Error::network(format!(
            "the TLS connection to {host} failed ({cause}); a proxy or firewall that inspects \
             TLS needs its CA certificate in the system trust store, and Salesforce needs TLS 1.2 \
             or newer"
        ))
        .retryable(false),
        Failure::Refused => {
            Error::network(format!("{host} refused the connection; check login_url"))
        }
        Failure::Other => Error::network(format!("could not reach {host}: {cause}")),
    }
}

#[cfg(test)]
mod tests {
    use invhost_plugin_api::ErrorKind;

    use super::*;

    fn gzipped(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).expect("compresses");
        encoder.finish().expect("compresses")
    }

    #[test]
    fn a_body_prefix_inflates_only_the_start() {
        let page: Vec<u8> = (0..200_000u32)
            .flat_map(|n| format!("{{\"n\":{n}}},").into_bytes())
            .collect();
        let compressed = gzipped(&page);
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(body_prefix(&headers, &page, 100), page[..100]);
        assert_eq!(body_prefix(&headers, b"short", 100), b"short");
        headers.insert(
            reqwest::header::CONTENT_ENCODING,
            reqwest::header::HeaderValue::from_static("gzip"),
        );
        assert_eq!(body_prefix(&headers, &compressed, 1024), page[..1024]);
        // A body cut short gives what it holds; garbage gives nothing.
        let cut = &compressed[..compressed.len() / 2];
        let start = body_prefix(&headers, cut, 1024);
        assert_eq!(start, page[..start.len()]);
        assert!(!start.is_empty());
        assert!(body_prefix(&headers, b"not gzip at all", 1024).is_empty());
    }

    #[test]
    fn gunzip_inflates_into_a_buffer_of_the_announced_size() {
        let page: Vec<u8> = (0..200_000u32)
            .flat_map(|n| format!("{{\"n\":{n}}},").into_bytes())
            .collect();
        let body = gunzip(&gzipped(&page)).expect("inflates");
        assert_eq!(body, page);
        assert_eq!(body.capacity(), page.len(), "reserved once, from ISIZE");
        // Two members, as a server may send: both are read.
        let mut two = gzipped(b"[1,");
        two.extend(gzipped(b"2]"));
        assert_eq!(gunzip(&two).expect("inflates"), b"[1,2]");
        // The last member announces 1 byte: the buffer grows as the first one inflates.
        let mut grows = gzipped(&page);
        grows.extend(gzipped(b"!"));
        let body = gunzip(&grows).expect("inflates");
        assert_eq!((body.len(), body.last()), (page.len() + 1, Some(&b'!')));
        assert_eq!(body[..page.len()], page[..]);
        assert_eq!(gunzip(&gzipped(b"")).expect("inflates"), b"");
    }

    #[test]
    fn gunzip_refuses_cut_off_or_damaged_bodies() {
        let whole = gzipped(&[b'x'; 10_000]);
        for damaged in [
            whole[..whole.len() / 2].to_vec(),
            whole[..whole.len() - 4].to_vec(),
            b"<html>not gzip</html>".to_vec(),
            Vec::new(),
        ] {
            assert!(gunzip(&damaged).is_err(), "{} bytes", damaged.len());
        }
        // A body whose size field lies reserves within the bounds, and fails its check.
        let mut lying = gzipped(b"{}");
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(reserve_for(&lying), lying.len() * 1000);
        assert!(gunzip(&lying).is_err(), "the trailer no longer matches");
        let mut big = vec![0; 1 << 20];
        big.extend(u32::MAX.to_le_bytes());
        assert_eq!(reserve_for(&big), MAX_RESERVE);
        assert_eq!(reserve_for(b"ab"), 0);
    }

    #[test]
    fn answers_are_inflated_by_their_content_encoding() {
        use reqwest::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, HeaderValue};
        let gzip_headers = || {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP "));
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("30"));
            headers
        };
        let host = "acme.my.salesforce.com";

        let mut headers = gzip_headers();
        let body = decoded_body(&mut headers, gzipped(b"{\"a\":1}"), host);
        assert_eq!(body.expect("inflates"), b"{\"a\":1}");
        assert!(headers.get(CONTENT_ENCODING).is_none() && headers.get(CONTENT_LENGTH).is_none());

        let mut headers = gzip_headers();
        let empty = decoded_body(&mut headers, Vec::new(), host);
        assert_eq!(empty.expect("empty"), b"");

        let mut plain = HeaderMap::new();
        let body = decoded_body(&mut plain, b"<html>".to_vec(), host);
        assert_eq!(body.expect("as it came"), b"<html>");

        let whole = gzipped(&[b'x'; 5000]);
        let cut = whole[..whole.len() / 2].to_vec();
        let error = decoded_body(&mut gzip_headers(), cut, host).expect_err("cut off");
        assert_eq!(error.kind, ErrorKind::NETWORK);
        assert!(error.retryable, "{error}");
        assert!(
            error
                .message
                .starts_with("the answer from acme.my.salesforce.com is not valid gzip")
                && error.message.contains("try again")
                && error.message.ends_with("(check proxy.server)"),
            "{error}"
        );
    }

    /// Classifies a chain of messages for `login.salesforce.com`.
    fn check(chain: &[&str], via_proxy: bool, expected: &str) -> Error {
        let chain: Vec<String> = chain.iter().map(|s| (*s).to_owned()).collect();
        let error = classify_chain(&chain, false, "login.salesforce.com", via_proxy);
        assert_eq!(error.kind, ErrorKind::NETWORK, "{chain:?}");
        assert!(
            error.message.contains(expected),
            "{chain:?}: {}",
            error.message
        );
        error
    }

    const SEND: &str =
        "error sending request for url (https://login.salesforce.com/services/oauth2/token)";

    #[test]
    fn dns_failures_name_the_host() {
        for cause in [
            "failed to lookup address information: Name or service not known",
            "dns error",
            "failed to lookup address information: Temporary failure in name resolution",
        ] {
            let error = check(
                &[SEND, "client error (Connect)", cause],
                false,
                "the host name login.salesforce.com could not be resolved: no internet \
                 connection, the name is blocked, or Salesforce is down; check login_url",
            );
            assert!(error.retryable);
        }
    }

    #[test]
    fn proxy_credential_failures() {
        for cause in [
            "tunnel error: proxy authorization required",
            "unexpected status 407",
        ] {
            let error = check(
                &[SEND, "client error (Connect)", cause],
                true,
                "the proxy refused the credentials; check proxy.credentials",
            );
            assert!(!error.retryable);
        }
        // tinyproxy 1.11 answers wrong credentials with 401, which reqwest reports like any
        // other refused tunnel.
        check(
            &[SEND, "client error (Connect)", "tunnel error: unsuccessful"],
            true,
            "the proxy refused the credentials or the connection to login.salesforce.com; \
             check proxy.credentials, then proxy.server",
        );
    }

    #[test]
    fn other_proxy_failures_point_at_the_server() {
        check(
            &[
                SEND,
                "client error (Connect)",
                "tunnel error: failed to create underlying connection",
            ],
            true,
            "the proxy refused the connection",
        );
        check(
            &[
                SEND,
                "client error (Connect)",
                "tcp connect error",
                "Connection refused (os error 111)",
            ],
            true,
            "check proxy.server",
        );
        // Port 4070 is not status 407.
        check(
            &[
                SEND,
                "client error (Connect)",
                "tcp connect error: 127.0.0.1:4070",
            ],
            true,
            "check proxy.server",
        );
    }

    #[test]
    fn a_plain_proxy_behind_https_is_suspected_only_without_a_certificate_in_sight() {
        let chain = |text: &str| vec![text.to_owned()];
        assert!(may_be_a_plain_proxy(
            &chain("received corrupt message of type InvalidContentType"),
            false
        ));
        assert!(may_be_a_plain_proxy(&chain("operation timed out"), true));
        assert!(!may_be_a_plain_proxy(
            &chain("invalid peer certificate: UnknownIssuer"),
            false
        ));
        assert!(!may_be_a_plain_proxy(&chain("connection refused"), false));
    }

    #[test]
    fn timeouts_are_retryable() {
        let error = check(&[SEND, "operation timed out"], false, "timed out");
        assert!(error.retryable);
        let flagged = classify_chain(&[SEND.to_owned()], true, "h", false);
        assert!(
            flagged.message.starts_with("timed out"),
            "{}",
            flagged.message
        );
    }

    #[test]
    fn tls_failures_name_tls() {
        for cause in [
            "invalid peer certificate: UnknownIssuer",
            "received fatal alert: ProtocolVersion",
            "tls handshake eof",
        ] {
            check(&[SEND, "client error (Connect)", cause], false, "TLS");
        }
    }

    #[test]
    fn answers_from_the_proxy_are_told_apart_from_salesforce() {
        let direct = Http::new(None).expect("client");
        assert_eq!(direct.proxy_refusal(407, ""), None);
        let proxy = ResolvedProxy {
            url: Url::parse("http://127.0.0.1:3128").expect("url"),
            username: None,
            password: None,
        };
        let via = Http::new(Some(&proxy)).expect("client");
        let message = |status: u16, body: &str| via.proxy_refusal(status, body).map(|e| e.message);
        let credentials = "the proxy refused the credentials; check proxy.credentials";
        assert_eq!(message(407, "<html/>").as_deref(), Some(credentials));
        assert_eq!(
            message(401, "<html>Unauthorized</html>").as_deref(),
            Some(credentials)
        );
        assert!(message(403, "Access Denied").is_some_and(|m| m.contains("proxy.server")));
        // Salesforce's own JSON refusals pass through.
        assert_eq!(
            message(401, r#"[{"errorCode":"INVALID_SESSION_ID"}]"#),
            None
        );
        assert_eq!(message(400, "<html/>"), None);
    }

    #[test]
    fn refused_and_unknown_failures() {
        check(
            &[
                SEND,
                "client error (Connect)",
                "tcp connect error",
                "Connection refused (os error 111)",
            ],
            false,
            "login.salesforce.com refused the connection; check login_url",
        );
        check(
            &[SEND, "client error (SendRequest)", "unexpected end of file"],
            false,
            "could not reach",
        );
        // A dropped connection is not blamed on the proxy.
        for via_proxy in [false, true] {
            let error = check(
                &[SEND, "connection closed before message completed"],
                via_proxy,
                "the connection to login.salesforce.com was closed before the answer was \
                 complete",
            );
            assert!(error.retryable);
        }
    }

    /// A server that keeps the first connection alive after one answer, then closes it on
    /// the next request without answering: what a proxy that drops idle connections does.
    fn closing_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::{
            io::{BufRead, BufReader, Write},
            net::TcpListener,
            sync::{Arc, atomic::AtomicUsize, atomic::Ordering},
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut answered = 0;
                loop {
                    // Read one request head.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if line != "\r\n" || (n == 0 && answered == 1) {
                        break; // the first connection dies on its second request
                    }
                    let body = "[]";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if writer.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                    answered += 1;
                }
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn a_get_on_a_connection_closed_while_pooled_is_sent_again() {
        let (url, connections) = closing_server();
        let http = Http::new(None).expect("client");
        for _ in 0..2 {
            let (status, body) = http
                .exchange(http.client().get(&url), "127.0.0.1")
                .await
                .expect("answered, the second time on a new connection");
            assert_eq!((status.as_u16(), body.as_str()), (200, "[]"));
        }
        assert_eq!(
            connections.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the second GET went out again on a fresh connection"
        );
    }
}
