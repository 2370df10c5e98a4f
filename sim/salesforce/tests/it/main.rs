//! End-to-end tests of the simulator over real loopback HTTP, one module per area.

mod bulk;
mod control;
mod device;
mod query;
mod refresh;
mod rest;
mod spawn;

use invhost_sim_salesforce::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::Value;

pub const KEY: &str = "SIM_CONSUMER_KEY";
pub const SECRET: &str = "SIM_CONSUMER_SECRET";

/// The defaults, with a 1-second poll interval.
pub fn config() -> SimConfig {
    SimConfig {
        device_interval_secs: 1,
        ..SimConfig::default()
    }
}

/// A running simulator and an HTTP client for it.
#[derive(Debug)]
pub struct Harness {
    pub sim: Simulator,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start(config: SimConfig) -> Harness {
        let sim = Simulator::start(config).await.expect("simulator starts");
        Harness {
            sim,
            // Raw bodies, whatever features of reqwest a workspace build turns on: decoding
            // would drop `Content-Encoding` behind the tests' backs.
            http: reqwest::Client::builder()
                .no_gzip()
                .build()
                .expect("HTTP client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// POSTs `form` to the token endpoint.
    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// Device flow step 1 with the right consumer key.
    pub async fn device_codes(&self) -> Value {
        let form = [
            ("response_type", "device_code"),
            ("client_id", KEY),
            ("scope", "api refresh_token"),
        ];
        let (status, body) = self.token(&form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// One device flow poll.
    pub async fn poll(&self, device_code: &str) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "device"),
            ("client_id", KEY),
            ("code", device_code),
        ];
        self.token(&form).await
    }

    /// A whole device flow, approved through `Control` before the first poll.
    pub async fn authorize(&self) -> Value {
        let codes = self.device_codes().await;
        assert!(self.sim.control().approve(text(&codes, "user_code")));
        let (status, body) = self.poll(text(&codes, "device_code")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn refresh(&self, refresh_token: &str, secret: Option<&str>) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", KEY),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret));
        }
        self.token(&form).await
    }

    /// GET `path` with an optional bearer token.
    pub async fn get(&self, path: &str, access_token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET")
    }
}

/// A string field of a JSON object.
pub fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string in {body}"))
}

/// Asserts an OAuth error answer: 400 with exactly this `error`.
pub fn assert_oauth_error(answer: &(StatusCode, Value), error: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}
