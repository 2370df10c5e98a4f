//! How a simulated org and its connected app behave: [`SimConfig`].

use std::fmt;

use crate::data::OrgSpec;

/// The simulated org and connected app.
///
/// Every field has a realistic default ([`SimConfig::default`]); tests change the few
/// they care about with struct update syntax:
///
/// ```
/// let config = invhost_sim_salesforce::SimConfig {
///     device_interval_secs: 1,
///     rotate_refresh_tokens: true,
///     ..Default::default()
/// };
/// assert_eq!(config.consumer_key, "SIM_CONSUMER_KEY");
/// ```
///
/// `Debug` prints `***` in place of the consumer secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The connected app's consumer key (`client_id`). Default `"SIM_CONSUMER_KEY"`.
    pub consumer_key: String,
    /// The connected app's consumer secret. Default `Some("SIM_CONSUMER_SECRET")`.
    /// When `Some`, a `client_secret` sent on a device poll or a refresh must match it.
    pub consumer_secret: Option<String>,
    /// "Require Secret for Refresh Token Flow": when true, a refresh without
    /// `client_secret` is refused with `invalid_client`. Default false.
    pub require_secret_for_refresh: bool,
    /// Refresh token rotation: when true, each refresh returns a new `refresh_token`
    /// and the old one is invalid immediately. Default false.
    pub rotate_refresh_tokens: bool,
    /// The device flow's `interval` in seconds. Default 5; tests use 1.
    pub device_interval_secs: u64,
    /// `Some(n)`: a pending device code is approved by itself on its n-th poll (that
    /// poll returns the tokens). Polls answered `slow_down` do not count. Default `None`.
    pub auto_approve_after_polls: Option<u32>,
    /// The first n polls of each device code that respect its interval are answered
    /// `slow_down`, and each raises that code's interval by 5 s (RFC 8628, section 3.5): a
    /// poll sooner than the raised interval is answered `slow_down` again. Default 0.
    pub device_slow_downs: u32,
    /// "Enable for Device Flow". When false, requesting a device code is refused with
    /// `invalid_grant` / "device flow is not enabled for the app". Default true.
    pub device_flow_enabled: bool,
    /// Whether an admin installed (or pre-authorised) the app in the org. When false,
    /// requesting a device code is refused with `invalid_client` /
    /// "app must be installed into org". Default true.
    pub app_preauthorized: bool,
    /// The granted scopes, returned as `scope`. Default `"api refresh_token"`.
    /// Without `api` (or `full`) data calls answer 401 `INVALID_SESSION_ID`; without
    /// `refresh_token` (or `offline_access`) no refresh token is issued.
    pub scopes: String,
    /// The org's daily API allowance (`DailyApiRequests.Max`). Default 15000.
    pub api_daily_max: u64,
    /// API calls already spent today when the simulator starts. Default 0.
    pub api_used_start: u64,
    /// The API versions the org serves, oldest first.
    /// Default `["58.0", "59.0", "60.0", "61.0", "62.0"]`.
    pub api_versions: Vec<String>,
    /// The org id (the access token's prefix). Default `"00D000000000001AAA"`.
    pub org_id: String,
    /// The id of the user who approves the device flow. Default `"005000000000001AAA"`.
    pub user_id: String,
    /// A synthetic org to serve through `query`, `queryAll` and `describe`
    /// ([`crate::OrgSpec`]). Default `None`: no data (those resources answer as for
    /// an empty schema).
    pub org: Option<OrgSpec>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            consumer_key: "SIM_CONSUMER_KEY".to_owned(),
            consumer_secret: Some("SIM_CONSUMER_SECRET".to_owned()),
            require_secret_for_refresh: false,
            rotate_refresh_tokens: false,
            device_interval_secs: 5,
            auto_approve_after_polls: None,
            device_slow_downs: 0,
            device_flow_enabled: true,
            app_preauthorized: true,
            scopes: "api refresh_token".to_owned(),
            api_daily_max: 15_000,
            api_used_start: 0,
            api_versions: ["58.0", "59.0", "60.0", "61.0", "62.0"]
                .map(str::to_owned)
                .to_vec(),
            org_id: "00D000000000001AAA".to_owned(),
            user_id: "005000000000001AAA".to_owned(),
            org: None,
        }
    }
}

/// Whether a space-separated scope string includes `scope`.
pub(crate) fn scope_includes(scopes: &str, scope: &str) -> bool {
    scopes.split_whitespace().any(|granted| granted == scope)
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("consumer_key", &self.consumer_key)
            .field(
                "consumer_secret",
                &self.consumer_secret.as_ref().map(|_| "***"),
            )
            .field(
                "require_secret_for_refresh",
                &self.require_secret_for_refresh,
            )
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("device_interval_secs", &self.device_interval_secs)
            .field("auto_approve_after_polls", &self.auto_approve_after_polls)
            .field("device_slow_downs", &self.device_slow_downs)
            .field("device_flow_enabled", &self.device_flow_enabled)
            .field("app_preauthorized", &self.app_preauthorized)
            .field("scopes", &self.scopes)
            .field("api_daily_max", &self.api_daily_max)
            .field("api_used_start", &self.api_used_start)
            .field("api_versions", &self.api_versions)
            .field("org_id", &self.org_id)
            .field("user_id", &self.user_id)
            .field("org", &self.org)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let printed = format!("{:?}", SimConfig::default());
        assert!(!printed.contains("SIM_CONSUMER_SECRET"), "{printed}");
        assert!(
            printed.contains("consumer_secret: Some(\"***\")"),
            "{printed}"
        );
        assert!(printed.contains("SIM_CONSUMER_KEY"), "{printed}");
    }

    #[test]
    fn scopes_match_whole_words() {
        let check = |scopes: &str, scope: &str, expected: bool| {
            assert_eq!(
                scope_includes(scopes, scope),
                expected,
                "{scopes:?} has {scope:?}"
            );
        };
        check("api refresh_token", "api", true);
        check("api refresh_token", "refresh_token", true);
        check("refresh_token web", "api", false);
        check("chatter_api", "api", false);
        check("", "api", false);
    }
}
