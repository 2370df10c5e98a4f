//! Faults a test arms for the next data calls: [`Faults`].

use serde::{Deserialize, Serialize};

/// Faults armed through [`crate::Control::set_faults`] or `POST /__sim/faults` (the
/// same JSON, missing fields false/absent/0). Each `*_once` fault fires on the next
/// data call (any request under `/services/data/vNN.N/`) and then clears itself; the faults
/// that name a page or a result set (`expire_session_after_page`, `*_at_page`,
/// `bulk_expire_session_at_set`) wait for it and then clear themselves;
/// `latency_ms`, `slow_object`, `refuse_queries_of` and `token_answer_delay_ms` stay until
/// changed.
///
/// | fault | answer |
/// |---|---|
/// | `expire_session_after_page: Some(k)` | the next `query`/`queryAll` chain that has more than `k` pages serves `k` pages (smaller queries leave the fault armed); fetching page `k + 1` ends every session (as [`crate::Control::expire_access_tokens`]) and answers 401 `INVALID_SESSION_ID` "Session expired or invalid". `Some(0)` refuses the next query itself. After a refresh the same `nextRecordsUrl` works. |
/// | `rate_limit_once` | 403 `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]` |
/// | `unavailable_once` | 503 `[{"message":"Server temporarily unavailable","errorCode":"SERVER_UNAVAILABLE"}]` |
/// | `unavailable_times: n` | the same 503 for each of the next `n` data calls (a lasting outage: a client's retries run out), counting down |
/// | `truncated_json_once` | the next `query`/describe answer is 200 with its JSON cut in half; or the next Bulk API 2.0 result set, its CSV cut in half |
/// | `truncated_json_at_page: Some(k)` | the next `query`/`queryAll` chain that has a page `k` (0 = the first page, answered by the query itself; `Some(k)` with `k > 0` waits for a chain of more than `k` pages, smaller queries, and `COUNT()` answers, leave it armed) gets page `k` answered 200 with its JSON cut in half (then gzipped if asked: the gzip stream is whole, the JSON in it is not). Then it clears itself: asking again for the same `nextRecordsUrl` answers the whole page (for `Some(0)`, asking the query again opens a new chain). |
/// | `damaged_gzip_at_page: Some(k)` | as `truncated_json_at_page`, but the JSON is whole and the **gzip stream** of page `k` is cut in half, so inflating it fails (a client that did not ask for gzip gets its JSON cut in half instead: the bytes on the wire are cut either way) |
/// | `dropped_body_once` | the next `query`/describe answer is 200 with its headers (counted, `Sforce-Limit-Info` included), and its body stops halfway: the connection is dropped |
/// | `html_once` | 200 `text/html`, a maintenance page |
/// | `bulk_job_fails_once` | the next Bulk API 2.0 query job created ends `Failed` (with an `errorMessage`) instead of `JobComplete` |
/// | `bulk_expire_session_at_set: Some(k)` | the next request for result set `k` (0 = the first) of any Bulk API 2.0 query job ends every session and answers 401 `INVALID_SESSION_ID`; asking again after a refresh works |
/// | `latency_ms` | every data call waits this long first |
/// | `slow_object: Some({object, delay_ms})` | every query page of `object` (its first page and its `nextRecordsUrl` pages) waits `delay_ms` more: one object slower than the others |
/// | `refuse_queries_of: Some(object)` | every query of `object` answers 400 `INVALID_TYPE`, as for an object the user may not see, while its describe still answers: a user who loses access during a run |
/// | `token_answer_delay_ms` | every token request is answered this long **after** it took effect (a refresh has already rotated the refresh token): a client that gives up meanwhile loses the new token |
///
/// Refused calls (401, 503, HTML) are not counted against the allowance. A 403
/// `REQUEST_LIMIT_EXCEEDED` is (whether Salesforce bills a refused call is not documented; the
/// simulator counts it, as the import does, so that a budget errs on the safe side).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// See the table above.
    pub expire_session_after_page: Option<u32>,
    /// See the table above.
    pub rate_limit_once: bool,
    /// See the table above.
    pub unavailable_once: bool,
    /// See the table above.
    pub unavailable_times: u32,
    /// See the table above.
    pub truncated_json_once: bool,
    /// See the table above.
    pub truncated_json_at_page: Option<u32>,
    /// See the table above.
    pub damaged_gzip_at_page: Option<u32>,
    /// See the table above.
    pub dropped_body_once: bool,
    /// See the table above.
    pub html_once: bool,
    /// See the table above.
    pub bulk_job_fails_once: bool,
    /// See the table above.
    pub bulk_expire_session_at_set: Option<u32>,
    /// See the table above.
    pub latency_ms: u64,
    /// See the table above.
    pub slow_object: Option<SlowObject>,
    /// See the table above.
    pub refuse_queries_of: Option<String>,
    /// See the table above.
    pub token_answer_delay_ms: u64,
}

/// One object whose query pages are answered later than the others' ([`Faults::slow_object`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlowObject {
    /// The object, as the query's `FROM` names it (`UserLogin`).
    pub object: String,
    /// How much later, in milliseconds.
    pub delay_ms: u64,
}
