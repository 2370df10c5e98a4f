//! The device flow: step 1, polling, approval, denial, refusals.

use std::time::Duration;

use invhost_sim_salesforce::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::{Harness, KEY, SECRET, assert_oauth_error, config, text};

#[tokio::test]
async fn pending_then_slow_down_then_approved_tokens() {
    let harness = Harness::start(config()).await;
    let base = harness.sim.base_url();
    let codes = harness.device_codes().await;
    let user_code = text(&codes, "user_code");
    let device_code = text(&codes, "device_code");
    assert_eq!(codes["verification_uri"], format!("{base}/setup/connect"));
    assert_eq!(codes["interval"], 1);
    assert_eq!(user_code.len(), 8);
    assert!(
        user_code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert!(device_code.len() >= 64);
    let mut keys: Vec<&String> = codes.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["device_code", "interval", "user_code", "verification_uri"]
    );

    assert_oauth_error(&harness.poll(device_code).await, "authorization_pending");
    assert_oauth_error(&harness.poll(device_code).await, "slow_down");

    let control = harness.sim.control();
    assert_eq!(control.pending_user_codes(), [user_code]);
    assert!(control.approve(user_code));
    assert!(control.pending_user_codes().is_empty());
    tokio::time::sleep(Duration::from_millis(1_050)).await;

    let (status, tokens) = harness.poll(device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(text(&tokens, "access_token").starts_with("00D000000000001AAA!"));
    assert_eq!(tokens["instance_url"], base);
    assert_eq!(
        tokens["id"],
        format!("{base}/id/00D000000000001AAA/005000000000001AAA")
    );
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "api refresh_token");
    let issued_at = text(&tokens, "issued_at");
    assert_eq!(issued_at.len(), 13, "milliseconds: {issued_at}");
    assert!(issued_at.bytes().all(|b| b.is_ascii_digit()));
    assert!(!text(&tokens, "signature").is_empty());
    assert!(tokens.get("expires_in").is_none());
    let refresh_token = text(&tokens, "refresh_token");
    assert_eq!(control.valid_refresh_tokens(), [refresh_token]);

    // The code was exchanged: it cannot be used twice.
    assert_oauth_error(&harness.poll(device_code).await, "invalid_grant");
}

#[tokio::test]
async fn denied_code_answers_access_denied() {
    let harness = Harness::start(config()).await;
    let codes = harness.device_codes().await;
    assert!(harness.sim.control().deny(text(&codes, "user_code")));
    let answer = harness.poll(text(&codes, "device_code")).await;
    assert_oauth_error(&answer, "access_denied");
    assert!(harness.sim.control().valid_refresh_tokens().is_empty());
}

#[tokio::test]
async fn unknown_consumer_key_is_invalid_client_id() {
    let harness = Harness::start(config()).await;
    let expected =
        json!({"error": "invalid_client_id", "error_description": "client identifier invalid"});
    let step1 = [("response_type", "device_code"), ("client_id", "OTHER")];
    assert_eq!(
        harness.token(&step1).await,
        (StatusCode::BAD_REQUEST, expected.clone())
    );

    let codes = harness.device_codes().await;
    let poll = [
        ("grant_type", "device"),
        ("client_id", "OTHER"),
        ("code", text(&codes, "device_code")),
    ];
    assert_eq!(
        harness.token(&poll).await,
        (StatusCode::BAD_REQUEST, expected)
    );
}

#[tokio::test]
async fn wrong_secret_on_poll_is_invalid_client() {
    let harness = Harness::start(config()).await;
    let codes = harness.device_codes().await;
    let device_code = text(&codes, "device_code");
    let poll = |secret| {
        [
            ("grant_type", "device"),
            ("client_id", KEY),
            ("code", device_code),
            ("client_secret", secret),
        ]
    };
    let answer = harness.token(&poll("wrong")).await;
    assert_oauth_error(&answer, "invalid_client");
    assert_eq!(answer.1["error_description"], "invalid client credentials");
    assert_oauth_error(&harness.token(&poll(SECRET)).await, "authorization_pending");
}

#[tokio::test]
async fn unknown_code_and_unsupported_grants() {
    let harness = Harness::start(config()).await;
    assert_oauth_error(&harness.poll("not-a-code").await, "invalid_grant");
    let rfc_grant = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", KEY),
        ("device_code", "x"),
    ];
    assert_oauth_error(&harness.token(&rfc_grant).await, "unsupported_grant_type");
    assert_oauth_error(
        &harness.token(&[("client_id", KEY)]).await,
        "unsupported_grant_type",
    );
}

#[tokio::test]
async fn app_settings_refuse_step_one() {
    let check = |config: SimConfig, error: &'static str, description: &'static str| async move {
        let harness = Harness::start(config).await;
        let answer = harness
            .token(&[("response_type", "device_code"), ("client_id", KEY)])
            .await;
        assert_eq!(
            answer,
            (
                StatusCode::BAD_REQUEST,
                json!({"error": error, "error_description": description})
            )
        );
        assert!(harness.sim.control().pending_user_codes().is_empty());
    };
    check(
        SimConfig {
            device_flow_enabled: false,
            ..config()
        },
        "invalid_grant",
        "device flow is not enabled for the app",
    )
    .await;
    check(
        SimConfig {
            app_preauthorized: false,
            ..config()
        },
        "invalid_client",
        "app must be installed into org",
    )
    .await;
}

#[tokio::test]
async fn auto_approval_on_the_first_poll() {
    let harness = Harness::start(SimConfig {
        auto_approve_after_polls: Some(1),
        ..config()
    })
    .await;
    let codes = harness.device_codes().await;
    let (status, tokens) = harness.poll(text(&codes, "device_code")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
}

#[tokio::test]
async fn verification_page_shows_the_code() {
    let harness = Harness::start(config()).await;
    let response = harness.get("/setup/connect?user_code=ABCD1234", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = response.text().await.expect("body");
    assert!(page.contains("value=\"ABCD1234\""), "{page}");

    let hostile = harness
        .get("/setup/connect?user_code=%3Cscript%3E", None)
        .await;
    let page = hostile.text().await.expect("body");
    assert!(!page.contains("<script>"), "{page}");
}
