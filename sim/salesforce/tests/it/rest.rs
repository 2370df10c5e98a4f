//! The REST API: versions, limits, usage counting, session and scope errors.

use invhost_sim_salesforce::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, config, text};

const LIMITS: &str = "/services/data/v62.0/limits";

fn invalid_session() -> Value {
    json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
}

fn limit_info(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("sforce-limit-info")
        .map(|value| value.to_str().expect("ascii"))
}

#[tokio::test]
async fn versions_need_no_session_and_cost_nothing() {
    let harness = Harness::start(config()).await;
    for path in ["/services/data/", "/services/data"] {
        let response = harness.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(limit_info(&response), None);
        let versions: Value = response.json().await.expect("JSON");
        assert_eq!(versions.as_array().expect("array").len(), 5);
        assert_eq!(
            versions[4],
            json!({"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"})
        );
        assert_eq!(versions[0]["version"], "58.0");
    }
    let control = harness.sim.control();
    assert_eq!(control.requests(), 2);
    assert_eq!(control.api_calls(), 0);
}

#[tokio::test]
async fn limits_and_usage_header_count_up() {
    let harness = Harness::start(SimConfig {
        api_used_start: 100,
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");

    let first = harness.get(LIMITS, Some(token)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(limit_info(&first), Some("api-usage=101/15000"));

    let second = harness.get(LIMITS, Some(token)).await;
    assert_eq!(limit_info(&second), Some("api-usage=102/15000"));
    let limits: Value = second.json().await.expect("JSON");
    assert_eq!(
        limits["DailyApiRequests"],
        json!({"Max": 15000, "Remaining": 14898})
    );
    assert!(limits["DataStorageMB"]["Max"].is_u64(), "{limits}");
    assert!(
        limits["DailyBulkV2QueryJobs"]["Remaining"].is_u64(),
        "{limits}"
    );

    let control = harness.sim.control();
    assert_eq!(control.api_calls(), 2);
    // Step 1, one poll, two data calls.
    assert_eq!(control.requests(), 4);
}

#[tokio::test]
async fn missing_or_expired_sessions_answer_401_array() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");

    let anonymous = harness.get(LIMITS, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(limit_info(&anonymous), None);
    assert_eq!(
        anonymous.json::<Value>().await.expect("JSON"),
        invalid_session()
    );

    assert_eq!(
        harness.get(LIMITS, Some(token)).await.status(),
        StatusCode::OK
    );
    harness.sim.control().expire_access_tokens();
    let expired = harness.get(LIMITS, Some(token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.json::<Value>().await.expect("JSON"),
        invalid_session()
    );
    assert_eq!(
        harness.sim.control().api_calls(),
        1,
        "refused calls are free"
    );

    // A refresh gives a working session again.
    let (_, refreshed) = harness.refresh(text(&tokens, "refresh_token"), None).await;
    let again = harness
        .get(LIMITS, Some(text(&refreshed, "access_token")))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_without_api_scope_are_refused() {
    let harness = Harness::start(SimConfig {
        scopes: "refresh_token web".to_owned(),
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    assert_eq!(tokens["scope"], "refresh_token web");
    let response = harness
        .get(LIMITS, Some(text(&tokens, "access_token")))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID", "{body}");
    assert!(text(&body[0], "message").contains("scopes"), "{body}");
    assert_eq!(harness.sim.control().api_calls(), 0);
}

#[tokio::test]
async fn unknown_versions_and_resources_are_404_and_counted() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let token = Some(text(&tokens, "access_token"));
    let not_found =
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]);
    for (path, used) in [
        ("/services/data/v30.0/limits", 1),
        ("/services/data/v62.0/nothing-here", 2),
    ] {
        let response = harness.get(path, token).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            limit_info(&response),
            Some(format!("api-usage={used}/15000").as_str())
        );
        assert_eq!(
            response.json::<Value>().await.expect("JSON"),
            not_found,
            "{path}"
        );
    }
    let unversioned = harness.get("/services/data/v30.0/limits", None).await;
    assert_eq!(unversioned.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn spent_allowance_is_request_limit_exceeded() {
    let harness = Harness::start(SimConfig {
        api_daily_max: 1,
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    let token = Some(text(&tokens, "access_token"));
    assert_eq!(harness.get(LIMITS, token).await.status(), StatusCode::OK);
    let refused = harness.get(LIMITS, token).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The refusal is counted (whether Salesforce bills it is not documented; the import
    // counts it too).
    assert_eq!(limit_info(&refused), Some("api-usage=2/1"));
    assert_eq!(
        refused.json::<Value>().await.expect("JSON"),
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
}
