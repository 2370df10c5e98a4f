//! Calls to the org's REST API with an access token: the versions list and the limits, which
//! the connection test reports; and Salesforce's REST error bodies as operator messages.

use invhost_plugin_api::{
    Error, ErrorKind, Secret,
    protocol::ApiUsage,
    settings::{Validator, check_https_url},
};
use serde::{Deserialize, de::DeserializeOwned};
use tracing::debug;
use url::Url;

use crate::{auth::Tokens, client::Http};

/// One entry of `GET /services/data/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiVersion {
    /// `62.0`.
    pub version: String,
    /// The release name (`Winter '25`).
    #[serde(default)]
    pub label: String,
    /// `/services/data/v62.0`.
    #[serde(default)]
    pub url: String,
}

/// The newest version of a versions list, compared as numbers (`100.0` after `62.0`).
pub fn newest(versions: &[ApiVersion]) -> Option<&ApiVersion> {
    versions
        .iter()
        .filter_map(|v| version_number(&v.version).map(|n| (n, v)))
        .max_by_key(|(n, _)| *n)
        .map(|(_, v)| v)
}

/// `62.0` as `(62, 0)`.
fn version_number(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A logged-in REST session on one org.
#[derive(Debug, Clone)]
pub struct Session {
    http: Http,
    instance_url: Url,
    host_name: String,
    access_token: Secret,
}

impl Session {
    /// A session on the token's `instance_url`, which must be `https://` (or loopback), since
    /// the access token goes there.
    pub fn new(http: Http, tokens: &Tokens) -> Result<Self, Error> {
        let mut validator = Validator::default();
        let instance_url = check_https_url("instance_url", &tokens.instance_url, &mut validator)
            .ok_or_else(|| {
                Error::upstream(format!(
                    "Salesforce answered an instance_url ({}) that is not an https:// URL; \
                     invhost does not send the token there; check login_url",
                    tokens.instance_url
                ))
            })?;
        let host_name = instance_url.host_str().unwrap_or_default().to_owned();
        Ok(Session {
            http,
            instance_url,
            host_name,
            access_token: tokens.access_token.clone(),
        })
    }

    /// The org's base URL.
    pub fn instance_url(&self) -> &Url {
        &self.instance_url
    }

    /// `GET /services/data/`: the API versions the org serves.
    pub async fn versions(&self) -> Result<Vec<ApiVersion>, Error> {
        self.get_json("/services/data/").await
    }

    /// `GET /services/data/v{version}/limits`: the daily API allowance, as used and max.
    pub async fn api_usage(&self, version: &str) -> Result<Option<ApiUsage>, Error> {
        let limits: serde_json::Value = self
            .get_json(&format!("/services/data/v{version}/limits"))
            .await?;
        Ok(daily_api_usage(&limits))
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = self
            .instance_url
            .join(path)
            .map_err(|e| Error::internal(format!("could not build the URL of {path}: {e}")))?;
        debug!(path, "Calling the REST API.");
        let request = self
            .http
            .client()
            .get(url)
            .bearer_auth(self.access_token.expose());
        let (status, body) = self.http.exchange(request, &self.host_name).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body, path));
        }
        serde_json::from_str(&body).map_err(|_| {
            Error::upstream(format!(
                "Salesforce answered {path} with something unreadable; check login_url"
            ))
        })
    }
}

/// `DailyApiRequests` of a limits answer; numbers may come as strings (old orgs).
fn daily_api_usage(limits: &serde_json::Value) -> Option<ApiUsage> {
    let daily = limits.get("DailyApiRequests")?;
    let number = |key: &str| {
        let value = daily.get(key)?;
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
    };
    let max = number("Max")?;
    let remaining = number("Remaining")?;
    Some(ApiUsage {
        used: max.saturating_sub(remaining),
        max,
    })
}

/// One entry of Salesforce's REST error array.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
}

/// A REST error answer as an operator message.
fn api_error(status: u16, body: &str, path: &str) -> Error {
    let Some(first) = serde_json::from_str::<Vec<ApiErrorBody>>(body)
        .ok()
        .and_then(|errors| errors.into_iter().next())
    else {
        return Error::upstream(format!(
            "Salesforce answered {path} with HTTP {status} and no readable error"
        ));
    };
    let said = format!("{}: {}", first.error_code, first.message);
    match (status, first.error_code.as_str()) {
        (401, "INVALID_SESSION_ID") if first.message.contains("scope") => Error::config(format!(
            "the token lacks the api scope ({said}); add Manage user data via APIs (api) to the \
             connected app's OAuth scopes, then generate a new token"
        )),
        (401, _) => Error::auth(format!(
            "Salesforce refused the session ({said}); test the connection again, and generate a \
             new token if it keeps failing"
        )),
        (_, "REQUEST_LIMIT_EXCEEDED") => Error::new(
            ErrorKind::RATE_LIMITED,
            format!("the org's API allowance is spent ({said}); try again tomorrow"),
        ),
        (403, _) => Error::auth(format!(
            "the user lacks a permission ({said}); the approving user needs API Enabled and \
             View Setup and Configuration"
        )),
        _ => Error::upstream(format!(
            "Salesforce answered {path} with HTTP {status} ({said})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn version(v: &str) -> ApiVersion {
        ApiVersion {
            version: v.to_owned(),
            label: String::new(),
            url: String::new(),
        }
    }

    #[test]
    fn newest_version_compares_numbers() {
        let list = [
            version("9.0"),
            version("62.0"),
            version("100.0"),
            version("x"),
        ];
        assert_eq!(newest(&list).map(|v| v.version.as_str()), Some("100.0"));
        assert_eq!(newest(&[]), None);
    }

    #[test]
    fn daily_usage_reads_numbers_and_strings() {
        let check = |limits: serde_json::Value, expected: Option<(u64, u64)>| {
            let got = daily_api_usage(&limits).map(|u| (u.used, u.max));
            assert_eq!(got, expected, "{limits}");
        };
        check(
            json!({"DailyApiRequests": {"Max": 15000, "Remaining": 14998}}),
            Some((2, 15000)),
        );
        check(
            json!({"DailyApiRequests": {"Max": "100", "Remaining": "40"}}),
            Some((60, 100)),
        );
        check(json!({"DataStorageMB": {"Max": 5, "Remaining": 5}}), None);
    }

    #[test]
    fn rest_errors_say_what_to_do() {
        let check = |status: u16, body: &str, kind: ErrorKind, fragment: &str| {
            let error = api_error(status, body, "/x");
            assert_eq!(error.kind, kind, "{body}: {}", error.message);
            assert!(
                error.message.contains(fragment),
                "{body}: {}",
                error.message
            );
        };
        check(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            ErrorKind::RATE_LIMITED,
            "allowance is spent",
        );
        check(
            401,
            r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
            ErrorKind::AUTH,
            "refused the session",
        );
        check(
            401,
            r#"[{"message":"One of the following scopes is required: api","errorCode":"INVALID_SESSION_ID"}]"#,
            ErrorKind::CONFIG,
            "api scope",
        );
        check(
            502,
            "<html>bad gateway</html>",
            ErrorKind::UPSTREAM,
            "HTTP 502",
        );
    }
}
