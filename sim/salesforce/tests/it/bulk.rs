//! Bulk API 2.0 query jobs: the lifecycle, result sets against the REST query's rows,
//! errors, faults and gzip.

use std::collections::BTreeSet;
use std::io::Read as _;

use invhost_sim_salesforce::{Faults, OrgSpec, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, config, text};

const V: &str = "/services/data/v62.0";
const LOGINS: &str = "SELECT UserId, LoginTime, Status FROM LoginHistory";

fn org_config(polls: u32) -> SimConfig {
    SimConfig {
        org: Some(OrgSpec {
            seed: 11,
            users: 400,
            page_size: 2000,
            bulk_polls_in_progress: polls,
            bulk_max_records: 1000,
            ..OrgSpec::default()
        }),
        ..config()
    }
}

/// One result set: status, `Sforce-NumberOfRecords`, `Sforce-Locator`, the CSV body (inflated
/// when it came gzipped) and whether it did.
struct Set {
    status: StatusCode,
    records: Option<u64>,
    locator: Option<String>,
    body: String,
    gzipped: bool,
}

impl Harness {
    async fn create_job(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("{V}/jobs/query")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST jobs/query");
        let status = response.status();
        (status, response.json().await.expect("JSON"))
    }

    async fn job(&self, token: &str, id: &str) -> (StatusCode, Value) {
        let response = self.get(&format!("{V}/jobs/query/{id}"), Some(token)).await;
        let status = response.status();
        (status, response.json().await.expect("JSON"))
    }

    async fn set(&self, token: &str, path: &str, gzip: bool) -> Set {
        let mut request = self.http.get(self.url(path)).bearer_auth(token);
        if gzip {
            request = request.header("Accept-Encoding", "gzip");
        }
        let response = request.send().await.expect("GET results");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().expect("ASCII").to_owned())
        };
        let (records, locator) = (header("sforce-numberofrecords"), header("sforce-locator"));
        let gzipped = header("content-encoding").as_deref() == Some("gzip");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        let body = if gzipped {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .expect("gzip");
            text
        } else {
            String::from_utf8(bytes.to_vec()).expect("UTF-8")
        };
        Set {
            status,
            records: records.map(|n| n.parse().expect("a number")),
            locator,
            body,
            gzipped,
        }
    }
}

/// The rows of a CSV set (header checked), each as its fields.
fn rows(body: &str, header: &[&str]) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let found: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(found, header);
    reader
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn a_job_runs_and_its_result_sets_hold_the_rows_of_the_query() {
    let harness = Harness::start(org_config(2)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let calls_before = harness.sim.control().api_calls();

    let (status, job) = harness
        .create_job(token, json!({"operation": "query", "query": LOGINS}))
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "UploadComplete");
    assert_eq!(job["object"], "LoginHistory");
    assert_eq!(job["contentType"], "CSV");
    let id = text(&job, "id").to_owned();
    assert!(id.starts_with("750") && id.len() == 18, "{id}");

    // Results before the job completes are refused.
    let early = harness
        .set(token, &format!("{V}/jobs/query/{id}/results"), false)
        .await;
    assert_eq!(early.status, StatusCode::PRECONDITION_FAILED);

    let states: Vec<String> = {
        let mut states = Vec::new();
        for _ in 0..3 {
            let (status, info) = harness.job(token, &id).await;
            assert_eq!(status, StatusCode::OK);
            states.push(text(&info, "state").to_owned());
        }
        states
    };
    assert_eq!(states, ["InProgress", "InProgress", "JobComplete"]);
    let (_, info) = harness.job(token, &id).await;
    let total = info["numberRecordsProcessed"].as_u64().expect("count");

    // The sets, 700 rows at most each, chained by locators; the header in every one.
    let mut bulk = Vec::new();
    let mut locator: Option<String> = None;
    let mut sets = 0;
    loop {
        let mut path = format!("{V}/jobs/query/{id}/results?maxRecords=700");
        if let Some(locator) = &locator {
            path.push_str(&format!("&locator={locator}"));
        }
        let set = harness.set(token, &path, sets % 2 == 0).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        assert_eq!(set.gzipped, sets % 2 == 0);
        let found = rows(&set.body, &["UserId", "LoginTime", "Status"]);
        assert_eq!(set.records, Some(found.len() as u64));
        assert!(found.len() <= 700 && !found.is_empty());
        bulk.extend(found);
        sets += 1;
        match set.locator.as_deref() {
            Some("null") => break,
            Some(next) => {
                // A set can be fetched again with its locator.
                let again = harness
                    .set(
                        token,
                        &format!("{V}/jobs/query/{id}/results?maxRecords=700&locator={next}"),
                        false,
                    )
                    .await;
                assert_eq!(again.status, StatusCode::OK);
                locator = Some(next.to_owned());
                let repeat = harness.set(token, &path, false).await;
                assert_eq!(repeat.records, Some(700));
            }
            None => panic!("no Sforce-Locator header"),
        }
    }
    assert_eq!(bulk.len() as u64, total);
    assert_eq!(sets, total.div_ceil(700));
    assert!(total > 700, "{total}");

    // The same rows as the REST query, dateTimes in UTC with `Z`, nulls empty.
    let mut rest = BTreeSet::new();
    let (status, mut page) = {
        let response = harness
            .http
            .get(harness.url(&format!("{V}/query")))
            .query(&[("q", LOGINS)])
            .bearer_auth(token)
            .send()
            .await
            .expect("query");
        (
            response.status(),
            response.json::<Value>().await.expect("JSON"),
        )
    };
    assert_eq!(status, StatusCode::OK);
    loop {
        for record in page["records"].as_array().expect("records") {
            let time = text(record, "LoginTime").replace("+0000", "Z");
            rest.insert(vec![
                text(record, "UserId").to_owned(),
                time,
                record["Status"].as_str().unwrap_or_default().to_owned(),
            ]);
        }
        if page["done"] == Value::Bool(true) {
            break;
        }
        let next = text(&page, "nextRecordsUrl").to_owned();
        page = harness
            .get(&next, Some(token))
            .await
            .json()
            .await
            .expect("JSON");
    }
    let bulk: BTreeSet<Vec<String>> = bulk.into_iter().collect();
    assert_eq!(bulk.len() as u64, total, "rows are distinct");
    assert_eq!(bulk, rest);

    // Deleted: gone. Every request was a data call; the job's chain is the longest.
    let deleted = harness
        .http
        .delete(harness.url(&format!("{V}/jobs/query/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(harness.job(token, &id).await.0, StatusCode::NOT_FOUND);
    let control = harness.sim.control();
    assert_eq!(control.bulk_jobs(), 1);
    // Creation, the early results, four polls, each set (those with a next one twice more),
    // the deletion: each a data call, in one chain.
    let chain = 1 + 1 + 4 + (3 * (sets - 1) + 1) + 1;
    assert_eq!(control.longest_chain(), chain);
    assert!(
        control.api_calls() - calls_before > chain,
        "and the REST pages"
    );
}

#[tokio::test]
async fn bad_jobs_are_refused_as_salesforce_does() {
    let harness = Harness::start(org_config(0)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let refused = |answer: (StatusCode, Value), status: StatusCode, code: &str| {
        assert_eq!(answer.0, status, "{}", answer.1);
        assert_eq!(answer.1[0]["errorCode"], code, "{}", answer.1);
        assert!(!text(&answer.1[0], "message").is_empty());
    };
    refused(
        harness
            .create_job(token, json!({"operation": "upsert", "query": LOGINS}))
            .await,
        StatusCode::BAD_REQUEST,
        "INVALIDJOB",
    );
    refused(
        harness
            .create_job(
                token,
                json!({"operation": "query", "query": "SELECT COUNT() FROM LoginHistory"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "INVALIDJOB",
    );
    refused(
        harness
            .create_job(
                token,
                json!({"operation": "query", "query": "SELECT Nope FROM LoginHistory"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
    );
    refused(
        harness
            .create_job(
                token,
                json!({"operation": "query", "query": LOGINS, "columnDelimiter": "TAB"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "INVALIDJOB",
    );

    let (_, job) = harness
        .create_job(token, json!({"operation": "queryAll", "query": LOGINS}))
        .await;
    let id = text(&job, "id").to_owned();
    assert_eq!(harness.job(token, &id).await.1["state"], "JobComplete");
    let wrong_version = harness
        .set(
            token,
            &format!("/services/data/v61.0/jobs/query/{id}/results"),
            false,
        )
        .await;
    assert_eq!(wrong_version.status, StatusCode::CONFLICT);
    let bad_locator = harness
        .set(
            token,
            &format!("{V}/jobs/query/{id}/results?locator=bm9wZQ"),
            false,
        )
        .await;
    assert_eq!(bad_locator.status, StatusCode::BAD_REQUEST);
    assert!(bad_locator.body.contains("INVALID_LOCATOR"));
    let bad_max = harness
        .set(
            token,
            &format!("{V}/jobs/query/{id}/results?maxRecords=0"),
            false,
        )
        .await;
    assert_eq!(bad_max.status, StatusCode::BAD_REQUEST);
    // A job complete cannot be aborted; an unknown one is not found.
    let abort = |id: String| {
        let http = harness.http.clone();
        let url = harness.url(&format!("{V}/jobs/query/{id}"));
        async move {
            let response = http
                .patch(url)
                .bearer_auth(token)
                .json(&json!({"state": "Aborted"}))
                .send()
                .await
                .expect("PATCH");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    refused(
        abort(id.clone()).await,
        StatusCode::BAD_REQUEST,
        "INVALIDJOB",
    );
    refused(
        abort("750000000000999AAA".to_owned()).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    // A job still running can be aborted, and then has no results.
    let running = Harness::start(org_config(5)).await;
    let tokens = running.authorize().await;
    let token = text(&tokens, "access_token");
    let (_, job) = running
        .create_job(token, json!({"operation": "query", "query": LOGINS}))
        .await;
    let id = text(&job, "id").to_owned();
    let aborted = running
        .http
        .patch(running.url(&format!("{V}/jobs/query/{id}")))
        .bearer_auth(token)
        .json(&json!({"state": "Aborted"}))
        .send()
        .await
        .expect("PATCH");
    assert_eq!(aborted.status(), StatusCode::OK);
    assert_eq!(running.job(token, &id).await.1["state"], "Aborted");
    let none = running
        .set(token, &format!("{V}/jobs/query/{id}/results"), false)
        .await;
    assert_eq!(none.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn bulk_faults_fail_a_job_expire_a_session_and_cut_a_set() {
    let harness = Harness::start(org_config(0)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let control = harness.sim.control();

    control.set_faults(Faults {
        bulk_job_fails_once: true,
        ..Faults::default()
    });
    let (_, job) = harness
        .create_job(token, json!({"operation": "query", "query": LOGINS}))
        .await;
    let (_, info) = harness.job(token, text(&job, "id")).await;
    assert_eq!(info["state"], "Failed");
    assert!(!text(&info, "errorMessage").is_empty());

    let (_, job) = harness
        .create_job(token, json!({"operation": "query", "query": LOGINS}))
        .await;
    let id = text(&job, "id").to_owned();
    assert_eq!(harness.job(token, &id).await.1["state"], "JobComplete");
    let first = harness
        .set(token, &format!("{V}/jobs/query/{id}/results"), false)
        .await;
    let next = first.locator.expect("a locator");
    let set_one = format!("{V}/jobs/query/{id}/results?locator={next}");

    control.set_faults(Faults {
        bulk_expire_session_at_set: Some(1),
        ..Faults::default()
    });
    let calls = control.api_calls();
    let expired = harness.set(token, &set_one, false).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(expired.body.contains("INVALID_SESSION_ID"));
    assert_eq!(control.api_calls(), calls, "a refused call is not billed");
    let fresh = harness.refresh(text(&tokens, "refresh_token"), None).await;
    let token = text(&fresh.1, "access_token");
    let whole = harness.set(token, &set_one, false).await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.records, Some(1000));

    control.set_faults(Faults {
        truncated_json_once: true,
        ..Faults::default()
    });
    let cut = harness.set(token, &set_one, false).await;
    assert_eq!(cut.status, StatusCode::OK);
    assert_eq!(
        cut.records,
        Some(1000),
        "the header still tells the whole set"
    );
    assert!(cut.body.len() < whole.body.len() / 2 + 1);
    assert!(whole.body.starts_with(&cut.body));
}
