//! The HTTP control endpoints under `/__sim/`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Harness, assert_oauth_error, config, text};

impl Harness {
    async fn control_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control request");
        let status = response.status();
        (status, response.json().await.expect("JSON"))
    }

    async fn control_get(&self, path: &str) -> Value {
        let response = self.get(path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.expect("JSON")
    }
}

#[tokio::test]
async fn approve_and_deny_over_http() {
    let harness = Harness::start(config()).await;
    let first = harness.device_codes().await;
    let second = harness.device_codes().await;
    let pending = harness.control_get("/__sim/device/pending").await;
    assert_eq!(
        pending,
        json!({"user_codes": [first["user_code"], second["user_code"]]})
    );

    let approve = json!({"user_code": first["user_code"]});
    assert_eq!(
        harness.control_post("/__sim/device/approve", approve).await,
        (StatusCode::OK, json!({"ok": true}))
    );
    let deny = json!({"user_code": second["user_code"]});
    assert_eq!(
        harness.control_post("/__sim/device/deny", deny).await,
        (StatusCode::OK, json!({"ok": true}))
    );
    let unknown = json!({"user_code": "ZZZZZZZZ"});
    let (status, body) = harness.control_post("/__sim/device/approve", unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["ok"], false);

    let (status, tokens) = harness.poll(text(&first, "device_code")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_oauth_error(
        &harness.poll(text(&second, "device_code")).await,
        "access_denied",
    );
    assert_eq!(
        harness.control_get("/__sim/device/pending").await,
        json!({"user_codes": []})
    );
}

#[tokio::test]
async fn revoke_expire_and_stats_over_http() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let access_token = text(&tokens, "access_token");
    let limits = "/services/data/v62.0/limits";
    assert_eq!(
        harness.get(limits, Some(access_token)).await.status(),
        StatusCode::OK
    );

    // Step 1, one poll and one data call; control requests are not counted.
    let stats = harness.control_get("/__sim/stats").await;
    assert_eq!(
        stats,
        json!({"requests": 3, "api_calls": 1, "queries": 0, "gzip_answers": 0, "bulk_jobs": 0})
    );
    assert_eq!(harness.control_get("/__sim/stats").await, stats);

    let ok = (StatusCode::OK, json!({"ok": true}));
    assert_eq!(
        harness
            .control_post("/__sim/tokens/expire", json!({}))
            .await,
        ok
    );
    let expired = harness.get(limits, Some(access_token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        harness
            .control_post("/__sim/tokens/revoke", json!({}))
            .await,
        ok
    );
    let refresh_token = text(&tokens, "refresh_token");
    assert_oauth_error(&harness.refresh(refresh_token, None).await, "invalid_grant");
}
