//! Bulk API 2.0 query jobs, served from the synthetic org with the same SOQL engine as
//! `query` ([`crate::query`]).
//!
//! - `POST /services/data/vNN.N/jobs/query` with `{"operation": "query" | "queryAll",
//!   "query": SOQL}` (optional `contentType` `CSV`, `columnDelimiter` `COMMA`, `lineEnding`
//!   `LF`; the simulator writes no other format and refuses other values with 400
//!   `INVALIDJOB`): the job's info, state `UploadComplete`. The SOQL is checked at once: a
//!   query the REST API refuses is refused here with the same error; `COUNT()` is refused
//!   (`INVALIDJOB`), as Bulk API 2.0 does not run aggregates.
//! - `GET .../jobs/query/ID`: the job's info. The job answers `InProgress` to its first
//!   [`crate::OrgSpec::bulk_polls_in_progress`] polls, then `JobComplete` (or `Failed` with
//!   an `errorMessage` when [`crate::Faults::bulk_job_fails_once`] was armed at its creation).
//! - `GET .../jobs/query/ID/results[?locator=L][&maxRecords=N]`: up to `N` rows (at most
//!   [`crate::OrgSpec::bulk_max_records`]) as CSV (`text/csv`): a header line, then one line per
//!   row, every field quoted, null as an empty field, dateTimes as `2024-04-01T09:30:00.000Z`.
//!   Headers `Sforce-NumberOfRecords` (rows in this set) and `Sforce-Locator` (the next set's
//!   locator, or the text `null` after the last). A set can be fetched again with its locator.
//!   Before `JobComplete`: 412 `JOB_NOT_COMPLETE`; another API version than the job's: 409;
//!   an unknown locator: 400 `INVALID_LOCATOR`. `Accept-Encoding: gzip` gets a gzip body.
//! - `PATCH .../jobs/query/ID` with `{"state": "Aborted"}`: aborts a job not yet complete.
//! - `DELETE .../jobs/query/ID`: 204; the job and its results are gone (404 `NOT_FOUND` after).
//!
//! Every request here is a data call (the gate of `rest.rs` counts it and applies the armed
//! faults); [`crate::Faults::truncated_json_once`] also cuts a result set in half, and
//! [`crate::Faults::bulk_expire_session_at_set`] ends every session when a set is asked for.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::data::SyntheticOrg;
use crate::query::{Plan, parse};
use crate::rest::refused;
use crate::rest_query::{
    ChainOf, accepts_gzip, error, positions, query_error, result_set, version_of,
};
use crate::state::{ApiRefusal, Shared};

/// The routes of this module, inside `/services/data/vNN.N`.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/jobs/query", post(create))
        .route("/jobs/query/{id}", get(info).patch(abort).delete(remove))
        .route("/jobs/query/{id}/results", get(results))
}

/// The job id of a path (the nest above adds `version`).
#[derive(Debug, Deserialize)]
struct JobPath {
    id: String,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    fn name(self) -> &'static str {
        match self {
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }
}

/// One query job.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    plan: Arc<Plan>,
    operation: String,
    version: String,
    created: String,
    total: u64,
    /// For an `ORDER BY` other than `Id`: matching positions in order.
    sorted: Option<Arc<Vec<u64>>>,
    state: JobState,
    /// Polls still answered `InProgress`.
    polls_left: u32,
    /// The job ends `Failed` instead of `JobComplete`.
    fails: bool,
    /// Result sets handed out: locator -> (where the set starts: a position, or an index into
    /// `sorted`; rows delivered before it; the set's number, 0 for the first).
    sets: HashMap<String, (u64, u64, u32)>,
    /// Requests about this job (creation, polls, result sets, deletion).
    pub(crate) calls: u64,
}

/// The job info Salesforce answers for creation, polls and aborts.
fn job_info(id: &str, job: &Job) -> Value {
    let mut info = json!({
        "id": id,
        "operation": job.operation,
        "object": job.plan.obj.name(),
        "createdById": "005000000000001AAA",
        "createdDate": job.created,
        "systemModstamp": job.created,
        "state": job.state.name(),
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": job.version.parse::<f64>().unwrap_or_default(),
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    });
    if job.state == JobState::JobComplete {
        info["numberRecordsProcessed"] = json!(job.total);
        info["retries"] = json!(0);
        info["totalProcessingTime"] = json!(100);
    }
    if job.state == JobState::Failed {
        info["errorMessage"] =
            json!("The query job failed: an internal error occurred (simulated)");
    }
    info
}

fn invalid_job(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALIDJOB", message)
}

fn no_such_job() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

/// The body of a job creation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewJob {
    operation: Option<String>,
    query: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

/// `POST .../jobs/query`.
async fn create(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let Ok(new) = serde_json::from_slice::<NewJob>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "The request body is not a job definition in JSON",
        );
    };
    let operation = match new.operation.as_deref() {
        Some(op @ ("query" | "queryAll")) => op.to_owned(),
        Some(other) => return invalid_job(&format!("Invalid operation: {other}")),
        None => return invalid_job("The operation is required"),
    };
    let Some(soql) = new.query.filter(|q| !q.trim().is_empty()) else {
        return invalid_job("The query is required");
    };
    for (name, value, supported) in [
        ("contentType", &new.content_type, "CSV"),
        ("columnDelimiter", &new.column_delimiter, "COMMA"),
        ("lineEnding", &new.line_ending, "LF"),
    ] {
        if let Some(value) = value
            && value != supported
        {
            return invalid_job(&format!(
                "{name} {value} is not supported by the simulator (only {supported})"
            ));
        }
    }
    let plan = match parse(&soql) {
        Ok(plan) => plan,
        Err(e) => return query_error(&e),
    };
    if plan.count_only {
        return invalid_job("Aggregate queries are not supported by Bulk API 2.0");
    }
    let Some(org) = shared.org.clone() else {
        let message = format!("sObject type '{}' is not supported.", plan.obj.name());
        return error(StatusCode::BAD_REQUEST, "INVALID_TYPE", &message);
    };
    if let Err(e) = plan.check_org(&org) {
        return query_error(&e);
    }
    let plan = Arc::new(plan);
    let (total, sorted) = match result_set(&plan, &org).await {
        Ok(counted) => counted,
        Err(answer) => return answer,
    };
    let created = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string();
    let mut state = shared.lock();
    let fails = std::mem::take(&mut state.faults.bulk_job_fails_once);
    let job = Job {
        plan,
        operation,
        version: version_of(uri.path()),
        created,
        total,
        sorted,
        state: JobState::UploadComplete,
        polls_left: org.spec().bulk_polls_in_progress,
        fails,
        sets: HashMap::new(),
        calls: 1,
    };
    let id = state.open_job(job);
    match state.jobs.get(&id) {
        Some(job) => {
            let mut answer = Json(job_info(&id, job)).into_response();
            answer.extensions_mut().insert(ChainOf(id));
            answer
        }
        None => no_such_job(),
    }
}

/// `GET .../jobs/query/ID`: one poll.
async fn info(State(shared): State<Arc<Shared>>, Path(JobPath { id }): Path<JobPath>) -> Response {
    let mut state = shared.lock();
    let Some(job) = state.jobs.get_mut(&id) else {
        return no_such_job();
    };
    job.calls += 1;
    if matches!(job.state, JobState::UploadComplete | JobState::InProgress) {
        if job.polls_left > 0 {
            job.polls_left -= 1;
            job.state = JobState::InProgress;
        } else if job.fails {
            job.state = JobState::Failed;
        } else {
            job.state = JobState::JobComplete;
        }
    }
    Json(job_info(&id, job)).into_response()
}

#[derive(Debug, Deserialize)]
struct StateChange {
    state: Option<String>,
}

/// `PATCH .../jobs/query/ID` `{"state": "Aborted"}`.
async fn abort(
    State(shared): State<Arc<Shared>>,
    Path(JobPath { id }): Path<JobPath>,
    body: Bytes,
) -> Response {
    let Ok(StateChange { state: Some(asked) }) = serde_json::from_slice::<StateChange>(&body)
    else {
        return invalid_job("The body must set the state");
    };
    if asked != "Aborted" {
        return invalid_job(&format!("A query job cannot be set to {asked}"));
    }
    let mut state = shared.lock();
    let Some(job) = state.jobs.get_mut(&id) else {
        return no_such_job();
    };
    job.calls += 1;
    if matches!(job.state, JobState::JobComplete | JobState::Failed) {
        return invalid_job(&format!(
            "The job is {} and can no longer be aborted",
            job.state.name()
        ));
    }
    job.state = JobState::Aborted;
    Json(job_info(&id, job)).into_response()
}

/// `DELETE .../jobs/query/ID`.
async fn remove(
    State(shared): State<Arc<Shared>>,
    Path(JobPath { id }): Path<JobPath>,
) -> Response {
    let mut state = shared.lock();
    match state.close_job(&id) {
        true => StatusCode::NO_CONTENT.into_response(),
        false => no_such_job(),
    }
}

/// `GET .../jobs/query/ID/results`.
async fn results(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    Path(JobPath { id }): Path<JobPath>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(org) = shared.org.clone() else {
        return no_such_job();
    };
    let asked = match params.get("maxRecords").map(|n| n.parse::<usize>()) {
        None => org.spec().bulk_max_records,
        Some(Ok(n)) if n > 0 => n.min(org.spec().bulk_max_records),
        Some(_) => return invalid_job("maxRecords must be a positive whole number"),
    };
    let job = {
        let mut state = shared.lock();
        let Some(job) = state.jobs.get_mut(&id) else {
            return no_such_job();
        };
        job.calls += 1;
        job.clone()
    };
    if job.state != JobState::JobComplete {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "JOB_NOT_COMPLETE",
            &format!(
                "The job is {}; results are ready once it is JobComplete",
                job.state.name()
            ),
        );
    }
    if version_of(uri.path()) != job.version {
        return error(
            StatusCode::CONFLICT,
            "INVALIDJOB",
            "Results must be fetched with the API version the job was created with",
        );
    }
    let (start, delivered, set_no) = match params.get("locator").filter(|l| !l.is_empty()) {
        None => (0, 0, 0),
        Some(locator) => match job.sets.get(locator) {
            Some(set) => *set,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_LOCATOR",
                    "The locator is not valid for this job",
                );
            }
        },
    };
    {
        let mut state = shared.lock();
        if state.faults.bulk_expire_session_at_set == Some(set_no) {
            state.faults.bulk_expire_session_at_set = None;
            state.expire_access_tokens();
            state.uncount_api_call();
            return refused(ApiRefusal::InvalidSession);
        }
    }
    let remaining = job.total.saturating_sub(delivered);
    let max = usize::try_from(remaining).unwrap_or(usize::MAX).min(asked);
    let written = {
        let (plan, org, sorted) = (Arc::clone(&job.plan), Arc::clone(&org), job.sorted.clone());
        tokio::task::spawn_blocking(move || write_set(&plan, &org, sorted.as_deref(), start, max))
            .await
    };
    let Ok((csv, rows, next)) = written else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred.",
        );
    };
    let now_delivered = delivered + rows;
    let locator = if now_delivered >= job.total || rows == 0 {
        "null".to_owned()
    } else {
        let locator =
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(now_delivered.to_string());
        if let Some(stored) = shared.lock().jobs.get_mut(&id) {
            stored
                .sets
                .insert(locator.clone(), (next, now_delivered, set_no + 1));
        }
        locator
    };
    csv_answer(&shared, csv, rows, &locator, accepts_gzip(&headers))
}

/// Up to `max` rows from `start` as CSV with its header; returns the text, the rows written
/// and where the next set starts.
fn write_set(
    plan: &Plan,
    org: &SyntheticOrg,
    sorted: Option<&Vec<u64>>,
    start: u64,
    max: usize,
) -> (Vec<u8>, u64, u64) {
    let (positions, next) = positions(plan, org, sorted, start, max);
    let mut csv = Vec::with_capacity(64 + positions.len() * 96);
    plan.csv_header(&mut csv);
    for pos in &positions {
        plan.csv_row(org, *pos, &mut csv);
    }
    (csv, positions.len() as u64, next)
}

/// A 200 CSV answer with the set's headers, gzipped if asked, cut in half if that fault is
/// armed.
fn csv_answer(shared: &Shared, mut csv: Vec<u8>, rows: u64, locator: &str, gzip: bool) -> Response {
    {
        let mut state = shared.lock();
        if std::mem::take(&mut state.faults.truncated_json_once) {
            csv.truncate(csv.len() / 2);
        }
    }
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "text/csv")
        .header("Sforce-NumberOfRecords", rows.to_string())
        .header("Sforce-Locator", locator);
    if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        if let Ok(compressed) = encoder.write_all(&csv).and_then(|()| encoder.finish()) {
            csv = compressed;
            builder = builder.header(CONTENT_ENCODING, "gzip");
            shared.lock().count_gzip_answer();
        }
    }
    builder
        .body(Body::from(csv))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
