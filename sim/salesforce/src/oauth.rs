//! The OAuth side: `POST /services/oauth2/token` (device flow steps 1 and 2, refresh)
//! and the device flow's verification page `GET /setup/connect`.
//!
//! Wire format: form-urlencoded requests; JSON answers; errors are HTTP 400
//! `{"error": "...", "error_description": "..."}` (see the crate docs for each code).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tracing::debug;

use crate::config::SimConfig;
use crate::state::{Client, DeviceCodes, Issued, Refusal, Shared, State as SimState};

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/setup/connect", get(connect_page))
}

/// The form fields the token endpoint reads; all optional so that a missing one gets
/// Salesforce's error rather than a generic rejection.
#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    response_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    refresh_token: Option<String>,
}

impl TokenForm {
    fn client(&self) -> Client<'_> {
        Client {
            id: self.client_id.as_deref(),
            secret: self.client_secret.as_deref(),
        }
    }

    /// What the request asks for, for logs (never a value that is a secret).
    fn kind(&self) -> &'static str {
        match (self.grant_type.as_deref(), self.response_type.as_deref()) {
            (None, Some("device_code")) => "device_code",
            (Some("device"), _) => "device",
            (Some("refresh_token"), _) => "refresh_token",
            _ => "unsupported",
        }
    }
}

/// A successful answer of the token endpoint.
#[derive(Debug)]
enum Answer {
    DeviceCodes(DeviceCodes),
    Tokens(Issued),
}

/// Step-1 body: `{"device_code","user_code","verification_uri","interval"}`.
#[derive(Debug, Serialize)]
struct DeviceCodeBody {
    device_code: String,
    user_code: String,
    verification_uri: String,
    interval: u64,
}

/// The token JSON shared by the device flow and the refresh flow.
#[derive(Debug, Serialize)]
struct TokenBody {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    signature: String,
    scope: String,
    instance_url: String,
    id: String,
    token_type: &'static str,
    issued_at: String,
}

/// An OAuth error body.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: String,
}

async fn token(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        debug!("Token request refused: the body is not a form.");
        return oauth_error(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded".to_owned(),
        );
    };
    let now = Instant::now();
    let response = {
        let mut state = shared.lock();
        let response = token_response(&shared, &mut state, &form, now);
        (response, state.faults.token_answer_delay_ms)
    };
    let (response, delay) = response;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    response
}

/// The answer to a token request, which has taken effect when this returns.
fn token_response(
    shared: &Shared,
    state: &mut SimState,
    form: &TokenForm,
    now: Instant,
) -> Response {
    match answer(state, form, now) {
        Ok(Answer::DeviceCodes(codes)) => {
            debug!(request = form.kind(), "Device code issued.");
            Json(device_code_body(&shared.base_url, codes)).into_response()
        }
        Ok(Answer::Tokens(issued)) => {
            debug!(
                request = form.kind(),
                with_refresh_token = issued.refresh_token.is_some(),
                "Tokens issued."
            );
            let body = token_body(&shared.base_url, state.config(), issued, SystemTime::now());
            Json(body).into_response()
        }
        Err(refusal) => {
            debug!(
                request = form.kind(),
                error = refusal.code(),
                "Token request refused."
            );
            oauth_error(refusal.code(), refusal.to_string())
        }
    }
}

/// Dispatches on `response_type` / `grant_type`.
fn answer(state: &mut SimState, form: &TokenForm, now: Instant) -> Result<Answer, Refusal> {
    match form.kind() {
        "device_code" => state
            .start_device_flow(form.client_id.as_deref(), now)
            .map(Answer::DeviceCodes),
        "device" => state
            .poll_device_flow(form.client(), form.code.as_deref(), now)
            .map(Answer::Tokens),
        "refresh_token" => state
            .refresh(form.client(), form.refresh_token.as_deref())
            .map(Answer::Tokens),
        _ => Err(Refusal::UnsupportedGrant),
    }
}

fn oauth_error(error: &'static str, error_description: String) -> Response {
    let body = ErrorBody {
        error,
        error_description,
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn device_code_body(base_url: &str, codes: DeviceCodes) -> DeviceCodeBody {
    DeviceCodeBody {
        device_code: codes.device_code,
        user_code: codes.user_code,
        verification_uri: format!("{base_url}/setup/connect"),
        interval: codes.interval,
    }
}

fn token_body(base_url: &str, config: &SimConfig, issued: Issued, now: SystemTime) -> TokenBody {
    let id = format!("{base_url}/id/{}/{}", config.org_id, config.user_id);
    let issued_at = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
        .to_string();
    let key = config.consumer_secret.as_deref().unwrap_or_default();
    TokenBody {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        signature: signature(key, &id, &issued_at),
        scope: issued.scope,
        instance_url: base_url.to_owned(),
        id,
        token_type: "Bearer",
        issued_at,
    }
}

/// Salesforce's `signature`: base64(HMAC-SHA256(consumer secret, id + issued_at)).
fn signature(key: &str, id: &str, issued_at: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .expect("invariant: HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[derive(Debug, Deserialize)]
struct ConnectQuery {
    user_code: Option<String>,
}

/// What a browser shows at `verification_uri`. Approval itself happens through the
/// control endpoints (or `auto_approve_after_polls`).
async fn connect_page(Query(query): Query<ConnectQuery>) -> Html<String> {
    // Only letters and digits reach the page, so nothing needs escaping.
    let code: String = query
        .user_code
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    Html(format!(
        "<!DOCTYPE html>\n<html><head><title>Connect Your Device</title></head><body>\n\
         <h1>Connect Your Device</h1>\n\
         <p>Enter the code displayed on your device.</p>\n\
         <form><input name=\"user_code\" value=\"{code}\" maxlength=\"8\"> \
         <button type=\"submit\">Connect</button></form>\n\
         <p><small>Salesforce simulator: approve with \
         <code>POST /__sim/device/approve {{\"user_code\":\"{code}\"}}</code>.</small></p>\n\
         </body></html>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(form: &[(&str, &str)], expected_kind: &str) {
        let parsed: TokenForm = serde_json::from_value(serde_json::Value::Object(
            form.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).into()))
                .collect(),
        ))
        .expect("form fields parse");
        assert_eq!(parsed.kind(), expected_kind, "{form:?}");
    }

    #[test]
    fn requests_are_told_apart_by_grant_or_response_type() {
        check(
            &[("response_type", "device_code"), ("client_id", "K")],
            "device_code",
        );
        check(&[("grant_type", "device"), ("code", "C")], "device");
        check(&[("grant_type", "refresh_token")], "refresh_token");
        check(
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            "unsupported",
        );
        check(&[("grant_type", "password")], "unsupported");
        check(&[("response_type", "code")], "unsupported");
        check(&[], "unsupported");
    }

    #[test]
    fn token_body_has_salesforce_fields_in_order() {
        let config = SimConfig::default();
        let issued = Issued {
            access_token: "00D000000000001AAA!abc".to_owned(),
            refresh_token: None,
            scope: "api refresh_token".to_owned(),
        };
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_278_448_832_702);
        let body = token_body("http://127.0.0.1:9", &config, issued, at);
        let json = serde_json::to_value(&body).expect("serializes");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "access_token",
                "signature",
                "scope",
                "instance_url",
                "id",
                "token_type",
                "issued_at"
            ]
        );
        assert_eq!(json["issued_at"], "1278448832702");
        assert_eq!(
            json["id"],
            "http://127.0.0.1:9/id/00D000000000001AAA/005000000000001AAA"
        );
        assert_eq!(json["instance_url"], "http://127.0.0.1:9");
        assert_eq!(json["token_type"], "Bearer");

        // The signature verifies as HMAC-SHA256(secret, id + issued_at).
        let raw = BASE64
            .decode(json["signature"].as_str().expect("string"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"SIM_CONSUMER_SECRET").expect("key");
        mac.update(b"http://127.0.0.1:9/id/00D000000000001AAA/005000000000001AAA1278448832702");
        mac.verify_slice(&raw).expect("signature matches");
    }
}
