//! The refresh token flow: plain, rotated, revoked, secret rules.

use invhost_sim_salesforce::SimConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::{Harness, SECRET, assert_oauth_error, config, text};

const LIMITS: &str = "/services/data/v62.0/limits";

#[tokio::test]
async fn refresh_without_rotation_keeps_the_token() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let refresh_token = text(&tokens, "refresh_token");

    let (status, refreshed) = harness.refresh(refresh_token, Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert!(refreshed.get("refresh_token").is_none(), "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    assert_eq!(refreshed["instance_url"], harness.sim.base_url());
    let response = harness
        .get(LIMITS, Some(text(&refreshed, "access_token")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Still the same token, again and again.
    let (status, _) = harness.refresh(refresh_token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        harness.sim.control().valid_refresh_tokens(),
        [refresh_token]
    );
}

#[tokio::test]
async fn rotation_returns_a_new_token_and_retires_the_old_one() {
    let harness = Harness::start(SimConfig {
        rotate_refresh_tokens: true,
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    let old = text(&tokens, "refresh_token");

    let (status, rotated) = harness.refresh(old, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = text(&rotated, "refresh_token");
    assert_ne!(new, old);
    assert_eq!(harness.sim.control().valid_refresh_tokens(), [new]);

    let answer = harness.refresh(old, None).await;
    assert_eq!(
        answer,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
        )
    );
    let (status, _) = harness.refresh(new, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn rotation_can_be_switched_on_while_running() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let old = text(&tokens, "refresh_token");
    harness.sim.control().set_rotate_refresh_tokens(true);
    let (status, rotated) = harness.refresh(old, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert!(rotated["refresh_token"].is_string(), "{rotated}");
    assert_oauth_error(&harness.refresh(old, None).await, "invalid_grant");
}

#[tokio::test]
async fn revoked_tokens_answer_invalid_grant() {
    let harness = Harness::start(config()).await;
    let tokens = harness.authorize().await;
    let refresh_token = text(&tokens, "refresh_token");
    harness.sim.control().revoke_refresh_tokens();
    assert!(harness.sim.control().valid_refresh_tokens().is_empty());
    let answer = harness.refresh(refresh_token, None).await;
    assert_oauth_error(&answer, "invalid_grant");
    assert_eq!(
        answer.1["error_description"],
        "expired access/refresh token"
    );
}

#[tokio::test]
async fn secret_rules() {
    let harness = Harness::start(SimConfig {
        require_secret_for_refresh: true,
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    let refresh_token = text(&tokens, "refresh_token");
    assert_oauth_error(
        &harness.refresh(refresh_token, None).await,
        "invalid_client",
    );
    assert_oauth_error(
        &harness.refresh(refresh_token, Some("wrong")).await,
        "invalid_client",
    );
    let (status, _) = harness.refresh(refresh_token, Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK);

    let other_app = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "OTHER"),
        ("client_secret", SECRET),
    ];
    assert_oauth_error(&harness.token(&other_app).await, "invalid_client_id");
}
