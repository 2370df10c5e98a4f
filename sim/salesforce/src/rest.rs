//! The REST API under `/services/data`.
//!
//! - `GET /services/data` and `/services/data/`: the versions list (no session needed,
//!   not counted against the allowance).
//! - Everything under `/services/data/vNN.N/` goes through [`api_gate`]: it checks the
//!   bearer token and its scopes, counts the call against the daily allowance, answers
//!   404 for a version the org does not serve, and adds `Sforce-Limit-Info` to the answer.
//!   Resources are routes of [`versioned`]: `/limits` here; `query`, `queryAll`, their
//!   `nextRecordsUrl` pages and `sobjects/X/describe` in `rest_query.rs`; Bulk API 2.0
//!   query jobs (`jobs/query`) in `bulk.rs`.
//! - Before admission the gate applies armed faults ([`crate::Faults`]): latency, then
//!   a one-shot 403 (counted, as a refusal for the allowance is), 503 or HTML answer, or one
//!   of a run of 503s (not counted).
//!
//! Errors are Salesforce's JSON array: `[{"message": "...", "errorCode": "..."}]`.

use std::sync::Arc;

use axum::extract::{OriginalUri, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::debug;

use crate::rest_query::ChainOf;
use crate::state::{ApiRefusal, ApiUsage, Shared};

pub(crate) use crate::rest_query::{describe, query, query_more};

/// `Sforce-Limit-Info: api-usage=USED/MAX` on every counted data call.
const LIMIT_INFO: HeaderName = HeaderName::from_static("sforce-limit-info");

/// The routes of this module.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .nest("/services/data/{version}", versioned(shared))
}

/// Resources of one API version. Each needs a session and counts as an API call.
fn versioned(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/limits", get(limits))
        .route("/query", get(query))
        .route("/query/", get(query))
        .route("/queryAll", get(query))
        .route("/queryAll/", get(query))
        .route("/query/{locator}", get(query_more))
        .route("/queryAll/{locator}", get(query_more))
        .route("/sobjects/{object}/describe", get(describe))
        .route("/sobjects/{object}/describe/", get(describe))
        .merge(crate::bulk::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared, api_gate))
}

/// One entry of a Salesforce error array.
#[derive(Debug, Serialize)]
struct ApiErrorBody {
    message: &'static str,
    #[serde(rename = "errorCode")]
    error_code: &'static str,
}

/// A Salesforce REST error: `status` and `[{"message","errorCode"}]`.
pub(crate) fn api_error(
    status: StatusCode,
    error_code: &'static str,
    message: &'static str,
) -> Response {
    let body = [ApiErrorBody {
        message,
        error_code,
    }];
    (status, Json(body)).into_response()
}

/// 404 `NOT_FOUND`, for unknown resources and versions.
pub(crate) async fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// `GET /services/data/`: the versions list, oldest first.
async fn versions(State(shared): State<Arc<Shared>>) -> Json<Vec<Value>> {
    let state = shared.lock();
    let list = state
        .config()
        .api_versions
        .iter()
        .map(|version| {
            json!({
                "label": release_label(version),
                "url": format!("/services/data/v{version}"),
                "version": version,
            })
        })
        .collect();
    Json(list)
}

/// `GET /services/data/vNN.N/limits`: the org's limits; `DailyApiRequests` follows the
/// simulated usage, the other entries are fixed, realistic values.
async fn limits(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let usage = shared.lock().api_usage();
    Json(json!({
        "DailyApiRequests": {"Max": usage.max, "Remaining": usage.max.saturating_sub(usage.used)},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976_562, "Remaining": 976_562},
        "DailyBulkV2QueryJobs": {"Max": 10_000, "Remaining": 10_000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
    }))
}

/// Admits (or refuses) a data call; see the module docs. Armed one-shot faults
/// ([`crate::Faults`]) answer before admission, so they are not counted, except the
/// `REQUEST_LIMIT_EXCEEDED` refusal (counted as a refusal for the allowance is).
async fn api_gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let latency = shared.lock().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    if let Some(response) = one_shot_fault(&shared) {
        return response;
    }
    let version = requested_version(&request);
    let admitted = {
        let mut state = shared.lock();
        state
            .admit_api_call(bearer_token(request.headers()))
            .map(|usage| (usage, state.serves_version(&version)))
    };
    match admitted {
        Ok((usage, true)) => {
            // A Bulk API 2.0 job's requests after its creation name it in their path.
            let job = job_in_path(request.uri().path());
            let response = next.run(request).await;
            let chain = response
                .extensions()
                .get::<ChainOf>()
                .map(|chain| chain.0.clone())
                .or(job);
            // Only answered requests count towards a chain: not a refusal, an error or an
            // expired session (a job's set asked for again after a refresh counts once).
            if let Some(chain) = chain
                && response.status().is_success()
            {
                shared.lock().add_served(&chain, arrived.elapsed());
            }
            // A session the handler ended (a fault) is refused like any other: no usage.
            if response.status() == StatusCode::UNAUTHORIZED {
                return response;
            }
            with_usage(response, usage)
        }
        Ok((usage, false)) => {
            debug!(%version, "Data call to an unknown API version.");
            with_usage(not_found().await, usage)
        }
        Err(refusal) => {
            debug!(?refusal, "Data call refused.");
            refused(refusal)
        }
    }
}

/// The job id in `.../jobs/query/{id}` and `.../jobs/query/{id}/results`.
fn job_in_path(path: &str) -> Option<String> {
    let (_, rest) = path.split_once("/jobs/query/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// The armed rate-limit, 503 or HTML fault, cleared as it fires.
fn one_shot_fault(shared: &Shared) -> Option<Response> {
    let mut state = shared.lock();
    if std::mem::take(&mut state.faults.rate_limit_once) {
        return Some(refused(ApiRefusal::LimitExceeded(
            state.count_refused_call(),
        )));
    }
    let faults = &mut state.faults;
    let lasting = faults.unavailable_times > 0;
    faults.unavailable_times = faults.unavailable_times.saturating_sub(1);
    if std::mem::take(&mut faults.unavailable_once) || lasting {
        return Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable",
        ));
    }
    if std::mem::take(&mut faults.html_once) {
        let page = "<html><head><title>Maintenance</title></head><body><h1>Down for \
                    maintenance</h1><p>Salesforce is temporarily unavailable.</p></body></html>";
        return Some(
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "text/html;charset=UTF-8")],
                page,
            )
                .into_response(),
        );
    }
    None
}

pub(crate) fn refused(refusal: ApiRefusal) -> Response {
    match refusal {
        ApiRefusal::InvalidSession => api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ),
        ApiRefusal::MissingApiScope => api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "This session is not valid for use with the specified REST API endpoint. \
             One of the following scopes is required: api, full",
        ),
        ApiRefusal::LimitExceeded(usage) => with_usage(
            api_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
            usage,
        ),
    }
}

fn with_usage(mut response: Response, usage: ApiUsage) -> Response {
    let value = HeaderValue::from_str(&format!("api-usage={}/{}", usage.used, usage.max))
        .expect("invariant: digits and ASCII make a valid header value");
    response.headers_mut().insert(LIMIT_INFO, value);
    response
}

/// The token of `Authorization: Bearer <token>`. Salesforce also takes the older
/// `OAuth <token>`; schemes are case-insensitive.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// `"62.0"` from `/services/data/v62.0/...`; empty when the segment is not `vNN.N`.
fn requested_version(request: &Request) -> String {
    // Inside the nested router the URI lacks its prefix; the original one has it all.
    let path = match request.extensions().get::<OriginalUri>() {
        Some(original) => original.path(),
        None => request.uri().path(),
    };
    path.strip_prefix("/services/data/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|segment| segment.strip_prefix('v'))
        .unwrap_or_default()
        .to_owned()
}

/// The release that introduced an API version: 31.0 was Summer '14, and three releases
/// (Spring, Summer, Winter) come each year, Winter named after the following year.
fn release_label(version: &str) -> String {
    let major = version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .filter(|major| *major >= 31);
    match major {
        Some(major) => {
            let since = major - 31;
            let season = match since % 3 {
                0 => "Summer",
                1 => "Winter",
                _ => "Spring",
            };
            let year = 14 + since.div_ceil(3);
            format!("{season} '{year:02}")
        }
        None => format!("Version {version}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_labels_follow_the_calendar() {
        let check = |version: &str, expected: &str| {
            assert_eq!(release_label(version), expected, "{version}");
        };
        check("31.0", "Summer '14");
        check("32.0", "Winter '15");
        check("33.0", "Spring '15");
        check("58.0", "Summer '23");
        check("59.0", "Winter '24");
        check("60.0", "Spring '24");
        check("62.0", "Winter '25");
        check("64.0", "Summer '25");
        check("20.0", "Version 20.0");
        check("latest", "Version latest");
    }

    #[test]
    fn bearer_tokens_are_read_leniently() {
        let check = |value: &str, expected: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
            assert_eq!(bearer_token(&headers), expected, "{value:?}");
        };
        check("Bearer 00D!abc", Some("00D!abc"));
        check("bearer 00D!abc", Some("00D!abc"));
        check("OAuth 00D!abc", Some("00D!abc"));
        check("Basic dXNlcg==", None);
        check("Bearer ", None);
        check("00D!abc", None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn versions_are_read_from_the_original_path() {
        let check = |path: &str, expected: &str| {
            let request = Request::builder()
                .uri("/limits")
                .extension(OriginalUri(path.parse().expect("uri")))
                .body(axum::body::Body::empty())
                .expect("request");
            assert_eq!(requested_version(&request), expected, "{path}");
        };
        check("/services/data/v62.0/limits", "62.0");
        check("/services/data/v62.0", "62.0");
        check("/services/data/62.0/limits", "");
        check("/services/data/v/limits", "");
    }
}
