//! `LoginHistory` through a Bulk API 2.0 query job: the rows of a big org's login history
//! come as CSV result sets of [`SET_ROWS`] rows, a few API calls where the REST API takes one
//! per 2,000 rows, and CSV is much cheaper to read than JSON with an `attributes` object per
//! row.
//!
//! 1. `POST /services/data/vNN.N/jobs/query` `{"operation": "query", "query": SOQL}` creates
//!    the job.
//! 2. `GET .../jobs/query/ID` is polled, first after [`FIRST_POLL`] and then twice as long each
//!    time (at most [`MAX_POLL`]), until the job is `JobComplete`; `Failed` or `Aborted`, or
//!    still running after [`JOB_DEADLINE`], makes the job [`BulkError::Unusable`].
//! 3. `GET .../jobs/query/ID/results?maxRecords=N[&locator=L]` gives the sets, each read whole,
//!    inflated as it is read (its rows checked against `Sforce-NumberOfRecords`, and gzip's own
//!    check, so a set cut short or damaged is asked for again);
//!    the next one is fetched while the records of this one are written, once its rows are
//!    aggregated, so one set's rows are in memory at a time. `Sforce-Locator` names the next
//!    set until it is the text `null`.
//! 4. `DELETE .../jobs/query/ID` removes the job and its results from the org (the results hold
//!    every login of the window), sent as soon as the last set is fetched; a failure there is
//!    only logged.
//!
//! Every call goes through [`Api::call`](crate::import::api::Api::call) (budget, slots, session refresh, retries) and counts
//! as an API call. A job that could not be used before any row was read ([`BulkError::Unusable`])
//! lets the caller read the same rows through the REST API instead.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use invhost_plugin_api::{Error, ErrorKind, Host, protocol::Progress, sdk::RecordBatch};
use serde::Deserialize;
use tracing::{debug, warn};
use url::Url;

use crate::{
    client::{Answer, Encoding, is_gzip},
    import::{
        api::{Call, PAGE_ROWS, Read, SharedApi, read_json},
        limiter::{CHAIN, URGENT},
        rows::{LoginRow, parse_datetime},
        stream::{Emitter, Sink, Task},
        usage::{api_type_names_api, login_type_names_api},
    },
};

/// The rows asked for per result set: 600,000 logins take 25 calls where the REST API takes
/// 300. A set's rows are held at once (about 1.2 MiB), its body only compressed: it is
/// inflated as it is read.
pub const SET_ROWS: u64 = 25_000;
/// The wait before the first poll of a new job.
pub const FIRST_POLL: Duration = Duration::from_millis(200);
/// The longest wait between two polls.
pub const MAX_POLL: Duration = Duration::from_secs(5);
/// How long a job may run before the import gives up on it.
pub const JOB_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// What went wrong with a job.
#[derive(Debug)]
pub enum BulkError {
    /// The job could not be created, or ended without results; no row of it was read, so the
    /// same rows can still be read another way.
    Unusable(Error),
    /// The import cannot go on (cancelled, out of budget, the session refused, rows already
    /// read when a set failed).
    Failed(Error),
}

impl BulkError {
    /// An error of creating or polling: Salesforce refusing the job itself makes it unusable;
    /// anything else (cancellation, the budget, the session, a network that failed every
    /// retry) stops the import.
    fn before_rows(error: Error) -> Self {
        if error.kind == ErrorKind::UPSTREAM && !error.retryable {
            BulkError::Unusable(error)
        } else {
            BulkError::Failed(error)
        }
    }
}

/// A job's info, as creation and polls answer it (only what the import uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobInfo {
    id: String,
    state: String,
    #[serde(default)]
    number_records_processed: Option<u64>,
    #[serde(default)]
    error_message: Option<String>,
}

/// One result set.
#[derive(Debug)]
pub struct LoginSet {
    /// Its rows.
    pub rows: Vec<LoginRow>,
    /// The locator of the next set; `None` after the last.
    pub next: Option<String>,
}

/// Reads `soql` (a `LoginHistory` query) through a Bulk API 2.0 job into `sink`, emitting each
/// set's records and reporting progress as `object`. Returns the sink and the rows read.
pub async fn read_logins<S: Sink<LoginRow>>(
    api: &SharedApi,
    emitter: &Emitter,
    host: &Host,
    object: &'static str,
    soql: &str,
    mut sink: S,
) -> Result<(S, u64), BulkError> {
    let jobs = api
        .url(&format!("/services/data/v{}/jobs/query", api.version()))
        .map_err(BulkError::Failed)?;
    let body = serde_json::json!({"operation": "query", "query": soql});
    let created: JobInfo = api
        .call(
            object,
            Call {
                method: &reqwest::Method::POST,
                url: &jobs,
                body: Some(&body),
                accept: "application/json",
                encoding: Encoding::Inflate,
                peek: None,
            },
            CHAIN,
            read_json::<JobInfo>,
        )
        .await
        .map_err(BulkError::before_rows)?;
    let job = api
        .url(&format!(
            "/services/data/v{}/jobs/query/{}",
            api.version(),
            created.id
        ))
        .map_err(BulkError::Failed)?;
    debug!(object, job = %created.id, "Bulk API 2.0 query job created.");
    let total = wait(api, host, object, &job, &created.id).await?;

    let results = api
        .url(&format!("{}/results", job.path()))
        .map_err(BulkError::Failed)?;
    let mut pending = Some(fetch(api, object, &results, None, total));
    let mut done: u64 = 0;
    let mut removed = None;
    while let Some(task) = pending.take() {
        let set = task.join().await.and_then(|set| set);
        let set = match set {
            Ok(set) => set,
            // Nothing of the job was read yet: the rows can still come another way.
            Err(error) if done == 0 => return Err(BulkError::before_rows(error)),
            Err(error) => return Err(BulkError::Failed(error)),
        };
        host.check_cancelled().map_err(BulkError::Failed)?;
        let LoginSet { rows, next } = set;
        let count = rows.len() as u64;
        let mut out = RecordBatch::new();
        sink.page(rows, &mut out).map_err(BulkError::Failed)?;
        // The next set is asked for once this one's rows are consumed (one set's rows in
        // memory at a time, whatever the job's size), while this one's records are written.
        if let Some(next) = next {
            let left = total.saturating_sub(done + count);
            pending = Some(fetch(api, object, &results, Some(next), left));
        } else {
            // Everything is fetched: the job goes while the last records are written.
            let (api, job, id) = (Arc::clone(api), job.clone(), created.id.clone());
            removed = Some(Task::spawn(
                async move { remove(&api, object, &job, &id).await },
            ));
            sink.finish(&mut out);
        }
        emitter.send(out).await.map_err(BulkError::Failed)?;
        done += count;
        host.progress(&Progress {
            stage: object.to_owned(),
            done,
            total: Some(total.max(done)),
        });
    }
    if let Some(removed) = removed {
        // A failure to delete is logged by `remove`; a panic there is only worth a log too.
        if let Err(error) = removed.join().await {
            warn!(object, error = %error.message, "Deleting the Bulk API 2.0 query job failed.");
        }
    }
    Ok((sink, done))
}

/// Polls the job until it is complete; returns its row count.
async fn wait(
    api: &SharedApi,
    host: &Host,
    object: &'static str,
    job: &Url,
    id: &str,
) -> Result<u64, BulkError> {
    let started = Instant::now();
    let mut delay = FIRST_POLL;
    loop {
        tokio::time::sleep(delay).await;
        host.check_cancelled().map_err(BulkError::Failed)?;
        let info: JobInfo = api.get(object, job).await.map_err(BulkError::before_rows)?;
        match info.state.as_str() {
            "JobComplete" => return Ok(info.number_records_processed.unwrap_or(0)),
            "Failed" | "Aborted" => {
                let why = info
                    .error_message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                return Err(BulkError::Unusable(Error::upstream(format!(
                    "{object}: the Bulk API 2.0 query job {id} ended {}{why}",
                    info.state
                ))));
            }
            _ if started.elapsed() >= JOB_DEADLINE => {
                return Err(BulkError::Unusable(Error::upstream(format!(
                    "{object}: the Bulk API 2.0 query job {id} was still {} after {} minutes",
                    info.state,
                    JOB_DEADLINE.as_secs() / 60
                ))));
            }
            _ => delay = (delay * 2).min(MAX_POLL),
        }
    }
}

/// Fetches one set in a task of its own. Its priority for a slot is the rows left counted
/// as the REST pages' rows are: a priority measures the requests a chain still needs, and a
/// set holds [`SET_ROWS`] rows where a page holds [`PAGE_ROWS`], so a job with many rows left
/// does not keep a longer REST chain (`User`) waiting.
fn fetch(
    api: &SharedApi,
    object: &'static str,
    results: &Url,
    locator: Option<String>,
    rows_left: u64,
) -> Task<Result<LoginSet, Error>> {
    let mut url = results.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("maxRecords", &SET_ROWS.to_string());
        if let Some(locator) = &locator {
            query.append_pair("locator", locator);
        }
    }
    let api = Arc::clone(api);
    Task::spawn(async move {
        api.call(
            object,
            Call {
                method: &reqwest::Method::GET,
                url: &url,
                body: None,
                accept: "text/csv",
                encoding: Encoding::KeepGzip,
                peek: None,
            },
            rows_left.saturating_mul(PAGE_ROWS) / SET_ROWS,
            read_set,
        )
        .await
    })
}

/// Deletes the job; a failure is logged, not returned (the rows are read).
async fn remove(api: &SharedApi, object: &'static str, job: &Url, id: &str) {
    let deleted = api
        .call(
            object,
            Call {
                method: &reqwest::Method::DELETE,
                url: job,
                body: None,
                accept: "application/json",
                encoding: Encoding::Inflate,
                peek: None,
            },
            URGENT,
            |_, _| Ok(Read::Done(())),
        )
        .await;
    if let Err(error) = deleted {
        warn!(
            object,
            job = id,
            error = %error.message,
            "Could not delete the Bulk API 2.0 query job; Salesforce removes old jobs itself."
        );
    }
}

/// The columns of a set, found by the header's names.
#[derive(Debug, Clone, Copy)]
struct Columns {
    user_id: usize,
    login_time: usize,
    login_type: Option<usize>,
    status: Option<usize>,
    api_type: Option<usize>,
}

/// The column order of the query the import sends, for a set without a header line.
const QUERY_COLUMNS: Columns = Columns {
    user_id: 0,
    login_time: 1,
    login_type: Some(2),
    status: Some(3),
    api_type: Some(4),
};

impl Columns {
    /// The columns named by `header`, if it is a header line (it names `UserId`).
    fn of(header: &csv::ByteRecord) -> Option<Columns> {
        let find = |name: &str| {
            header
                .iter()
                .position(|field| field.eq_ignore_ascii_case(name.as_bytes()))
        };
        Some(Columns {
            user_id: find("UserId")?,
            login_time: find("LoginTime")?,
            login_type: find("LoginType"),
            status: find("Status"),
            api_type: find("ApiType"),
        })
    }
}

/// A field as text; an empty field (how Bulk API 2.0 writes null) is `None`.
fn text(record: &csv::ByteRecord, column: Option<usize>) -> Option<&str> {
    let field = record.get(column?)?;
    std::str::from_utf8(field).ok().filter(|t| !t.is_empty())
}

/// Reads a `LoginHistory` result set: CSV with a header line (a set without one is read in
/// the query's column order), every row checked. A set with fewer rows than its
/// `Sforce-NumberOfRecords`, or whose last line is cut, is asked for again.
pub fn read_set(object: &str, answer: &Answer) -> Result<Read<LoginSet>, Error> {
    let html = || {
        Ok(Read::Retry(
            "Salesforce answered an HTML page instead of CSV (maintenance?)".to_owned(),
        ))
    };
    let header = |name: &str| {
        answer
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let announced = header("sforce-numberofrecords").and_then(|n| n.parse::<u64>().ok());
    let next = header("sforce-locator")
        .filter(|l| !l.is_empty() && !l.eq_ignore_ascii_case("null"))
        .map(str::to_owned);
    if is_gzip(&answer.headers) && !answer.body.is_empty() {
        // Inflated as it is read: the set is never held inflated.
        let mut source =
            std::io::BufReader::new(flate2::read::MultiGzDecoder::new(&answer.body[..]));
        match std::io::BufRead::fill_buf(&mut source) {
            Ok(start) if start.trim_ascii_start().starts_with(b"<") => return html(),
            Ok(_) => {}
            Err(error) => return Ok(Read::Damaged(damaged(&error.to_string()))),
        }
        read_rows(object, source, announced, next)
    } else {
        if answer.body.trim_ascii_start().starts_with(b"<") {
            return html();
        }
        read_rows(object, &answer.body[..], announced, next)
    }
}

fn damaged(why: &str) -> String {
    format!("Salesforce's result set could not be read ({why}); it was cut short or damaged")
}

/// The rows of a set from `source`; see [`read_set`].
fn read_rows(
    object: &str,
    source: impl std::io::Read,
    announced: Option<u64>,
    next: Option<String>,
) -> Result<Read<LoginSet>, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(source);
    let mut record = csv::ByteRecord::new();
    let mut columns = None;
    let mut rows =
        Vec::with_capacity(usize::try_from(announced.unwrap_or(0).min(SET_ROWS)).unwrap_or(0));
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                return Ok(match error.kind() {
                    csv::ErrorKind::Io(io) => Read::Damaged(damaged(&format!("gzip: {io}"))),
                    _ => Read::Retry(damaged(&format!(
                        "CSV broken at line {}",
                        error.position().map_or(0, |p| p.line())
                    ))),
                });
            }
        }
        let columns = match columns {
            Some(columns) => columns,
            None => {
                let (found, is_header) = match Columns::of(&record) {
                    Some(found) => (found, true),
                    None => (QUERY_COLUMNS, false),
                };
                columns = Some(found);
                if is_header {
                    continue;
                }
                found
            }
        };
        let Some(user_id) = text(&record, Some(columns.user_id)) else {
            return Err(Error::upstream(format!(
                "{object}: a row of the Bulk API 2.0 result set has no UserId (line {}); report \
                 it to invhost's authors with the org's API version",
                record.position().map_or(0, |p| p.line())
            )));
        };
        rows.push(LoginRow {
            user_id: user_id.into(),
            login_time: text(&record, Some(columns.login_time)).and_then(parse_datetime),
            login_type_api: login_type_names_api(text(&record, columns.login_type)),
            success: text(&record, columns.status)
                .is_some_and(|s| s.eq_ignore_ascii_case("Success")),
            api_type_api: api_type_names_api(text(&record, columns.api_type)),
        });
    }
    if let Some(announced) = announced
        && announced != rows.len() as u64
    {
        return Ok(Read::Retry(format!(
            "Salesforce's result set held {} of the {announced} rows it announced; it was cut \
             short",
            rows.len()
        )));
    }
    Ok(Read::Done(LoginSet { rows, next }))
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn answer(body: &str, records: Option<&str>, locator: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(n) = records {
            headers.insert(
                "sforce-numberofrecords",
                HeaderValue::from_str(n).expect("ASCII"),
            );
        }
        if let Some(l) = locator {
            headers.insert("sforce-locator", HeaderValue::from_str(l).expect("ASCII"));
        }
        Answer {
            status: reqwest::StatusCode::OK,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn done(answer: &Answer) -> LoginSet {
        match read_set("LoginHistory", answer) {
            Ok(Read::Done(set)) => set,
            Ok(Read::Retry(cause) | Read::Damaged(cause)) => panic!("retry: {cause}"),
            Err(error) => panic!("{error:?}"),
        }
    }

    fn retried(answer: &Answer) -> String {
        match read_set("LoginHistory", answer) {
            Ok(Read::Retry(cause)) => cause,
            Ok(Read::Damaged(cause)) => panic!("damaged on the way: {cause}"),
            Ok(Read::Done(set)) => panic!("read {} rows", set.rows.len()),
            Err(error) => panic!("{error:?}"),
        }
    }

    /// Asked for again as damaged on the way (a `network` failure once retries run out).
    fn damaged_on_the_way(answer: &Answer) -> String {
        match read_set("LoginHistory", answer) {
            Ok(Read::Damaged(cause)) => cause,
            Ok(Read::Retry(cause)) => panic!("retried as incomplete: {cause}"),
            Ok(Read::Done(set)) => panic!("read {} rows", set.rows.len()),
            Err(error) => panic!("{error:?}"),
        }
    }

    const SET: &str = "\"UserId\",\"LoginTime\",\"LoginType\",\"Status\",\"ApiType\"\n\
        \"005A\",\"2026-11-01T10:00:00.000Z\",\"Application\",\"Success\",\"\"\n\
        \"005B\",\"2026-11-02T11:30:00.000Z\",\"Remote Access 2.0\",\"Success\",\"REST API\"\n\
        \"005A\",\"\",\"Application\",\"Invalid Password\",\"\"\n";

    #[test]
    fn a_set_is_read_by_its_header_with_empty_fields_as_null() {
        let set = done(&answer(SET, Some("3"), Some("MTAwMA")));
        assert_eq!(set.next.as_deref(), Some("MTAwMA"));
        let expected = [
            (
                "005A",
                Some("2026-11-01T10:00:00+00:00"),
                false,
                true,
                false,
            ),
            ("005B", Some("2026-11-02T11:30:00+00:00"), false, true, true),
            ("005A", None, false, false, false),
        ];
        assert_eq!(set.rows.len(), expected.len());
        for (row, (user, time, login_api, success, api_type)) in set.rows.iter().zip(expected) {
            assert_eq!(row.user_id, user);
            assert_eq!(row.login_time.map(|t| t.to_rfc3339()).as_deref(), time);
            assert_eq!(
                (row.login_type_api, row.success, row.api_type_api),
                (login_api, success, api_type)
            );
        }
        // Columns in another order, some missing; the last set says `null`.
        let other = "\"Status\",\"LoginTime\",\"UserId\"\n\"Success\",\"2026-11-01T10:00:00.000+0000\",\"005C\"\n";
        let set = done(&answer(other, Some("1"), Some("null")));
        assert_eq!(set.next, None);
        assert_eq!(set.rows[0].user_id, "005C");
        assert!(set.rows[0].success && set.rows[0].login_time.is_some());
        // A set without a header line is read in the query's order.
        let bare = SET.split_once('\n').expect("lines").1;
        assert_eq!(done(&answer(bare, Some("3"), None)).rows.len(), 3);
        // An empty set.
        assert!(done(&answer("", Some("0"), Some("null"))).rows.is_empty());
    }

    #[test]
    fn a_cut_or_foreign_set_is_asked_for_again_and_a_row_without_user_fails() {
        // Cut at a line end: fewer rows than announced.
        let cut = &SET[..SET.rfind("\"005A\"").expect("a row")];
        assert!(retried(&answer(cut, Some("3"), None)).contains("2 of the 3"));
        // Cut inside a line: the row is short.
        let mid = &SET[..SET.len() - 12];
        assert!(retried(&answer(mid, Some("3"), None)).contains("cut short"));
        assert!(retried(&answer("<html>down</html>", None, None)).contains("HTML"));
        let no_user = "\"UserId\",\"LoginTime\"\n\"\",\"2026-11-01T10:00:00.000Z\"\n";
        let error = match read_set("LoginHistory", &answer(no_user, Some("1"), None)) {
            Err(error) => error,
            Ok(_) => panic!("a row without a user was read"),
        };
        assert_eq!(error.kind, ErrorKind::UPSTREAM);
        assert!(error.message.contains("no UserId"), "{}", error.message);
    }

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).expect("compresses");
        encoder.finish().expect("compresses")
    }

    fn gzipped(body: Vec<u8>, records: &str) -> Answer {
        let mut answer = answer("", Some(records), None);
        answer.body = body;
        answer.headers.insert(
            reqwest::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        answer
    }

    #[test]
    fn a_gzip_set_is_inflated_as_it_is_read_and_a_damaged_one_asked_for_again() {
        let plain = done(&answer(SET, Some("3"), None));
        let inflated = done(&gzipped(gzip(SET), "3"));
        assert_eq!(inflated.rows, plain.rows);
        // Two gzip members, as a proxy may pass them on.
        let (a, b) = SET.split_at(SET.find("\"005B\"").expect("a row"));
        let mut two = gzip(a);
        two.extend(gzip(b));
        assert_eq!(done(&gzipped(two, "3")).rows, plain.rows);
        // Cut short: the gzip stream ends early.
        let whole = gzip(SET);
        let cut = whole[..whole.len() - 10].to_vec();
        assert!(damaged_on_the_way(&gzipped(cut, "3")).contains("cut short or damaged"));
        // A damaged byte: the CRC does not match, or the stream breaks.
        let mut bad = gzip(SET);
        let middle = bad.len() / 2;
        bad[middle] ^= 0x55;
        assert!(damaged_on_the_way(&gzipped(bad, "3")).contains("could not be read"));
        assert!(retried(&gzipped(gzip("<html>down</html>"), "0")).contains("HTML"));
    }

    #[test]
    fn only_a_refusal_of_the_job_itself_lets_the_rows_come_another_way() {
        let unusable = BulkError::before_rows(Error::upstream("INVALIDJOB"));
        assert!(matches!(unusable, BulkError::Unusable(_)));
        for error in [
            Error::cancelled(),
            Error::auth("scope"),
            Error::upstream("503 four times").retryable(true),
            Error::new(ErrorKind::RATE_LIMITED, "budget"),
        ] {
            assert!(matches!(
                BulkError::before_rows(error),
                BulkError::Failed(_)
            ));
        }
    }
}
