//! `test_connection`: refresh, versions, limits; rotation and revocation.

use std::sync::{Arc, Mutex};

use invhost_plugin_api::{
    ErrorKind, Host,
    abi::{FfiError, HostCallbacks, LogLevel},
    abi_stable::std_types::{RResult, RStr, RString},
    protocol::{ApiUsage, TestReport, host_op},
    sdk::{Plugin, testing::RecordingHost},
};
use invhost_salesforce::Salesforce;
use invhost_sim_salesforce::{Control, SimConfig};
use serde_json::json;

use crate::support::{generate_token, local_settings, simulator, test_request};

fn fact<'r>(report: &'r TestReport, label: &str) -> &'r str {
    report
        .facts
        .iter()
        .find(|f| f.label == label)
        .map_or("", |f| f.value.as_str())
}

#[tokio::test]
async fn reports_version_instance_org_and_api_usage() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        api_used_start: 100,
        ..SimConfig::default()
    })
    .await;
    let token = generate_token(&sim).await;
    let report = Salesforce
        .test_connection(
            test_request(local_settings(&sim, &token)),
            &RecordingHost::new().host(),
        )
        .await
        .expect("connects");
    assert_eq!(fact(&report, "API version"), "62.0");
    assert_eq!(fact(&report, "Instance"), sim.base_url());
    assert_eq!(fact(&report, "Org ID"), "00D000000000001AAA");
    // The limits call itself is the one data call counted.
    assert_eq!(
        report.api_usage,
        Some(ApiUsage {
            used: 101,
            max: 15_000
        })
    );
    assert_eq!(sim.control().api_calls(), 1);
    assert!(
        report.summary.contains("00D000000000001AAA"),
        "{}",
        report.summary
    );
    assert!(!report.summary.contains(&token));
}

/// A recording host that also notes how many requests the simulator had seen when the plugin
/// asked to store a secret.
struct OrderingHost {
    inner: RecordingHost,
    control: Control,
    requests_at_update: Arc<Mutex<Vec<u64>>>,
}

impl HostCallbacks for OrderingHost {
    fn emit(&self, batch: RStr<'_>) -> RResult<(), FfiError> {
        self.inner.emit(batch)
    }
    fn progress(&self, update: RStr<'_>) {
        self.inner.progress(update);
    }
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>, fields: RStr<'_>) {
        self.inner.log(level, target, message, fields);
    }
    fn prompt(&self, prompt: RStr<'_>) -> RResult<(), FfiError> {
        self.inner.prompt(prompt)
    }
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
    fn vault(&self, request: RStr<'_>) -> RResult<RString, FfiError> {
        self.inner.vault(request)
    }
    fn call(&self, op: RStr<'_>, request: RStr<'_>) -> RResult<RString, FfiError> {
        if op.as_str() == host_op::UPDATE_SECRET {
            let seen = self.control.requests();
            self.requests_at_update
                .lock()
                .expect("not poisoned")
                .push(seen);
        }
        self.inner.call(op, request)
    }
}

#[tokio::test]
async fn rotated_refresh_token_is_stored_before_any_data_call() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    })
    .await;
    let old = generate_token(&sim).await;
    let recording = RecordingHost::new();
    let requests_at_update = Arc::new(Mutex::new(Vec::new()));
    let host = Host::from_callbacks(OrderingHost {
        inner: recording.clone(),
        control: sim.control(),
        requests_at_update: Arc::clone(&requests_at_update),
    });
    let before = sim.control().requests();

    Salesforce
        .test_connection(test_request(local_settings(&sim, &old)), &host)
        .await
        .expect("connects");

    let updates = recording.recorded().secret_updates;
    assert_eq!(updates.len(), 1, "{updates:?}");
    let (field, new) = &updates[0];
    assert_eq!(field, "credentials.refresh_token");
    assert_ne!(new.expose(), old);
    assert_eq!(
        sim.control().valid_refresh_tokens(),
        vec![new.expose().to_owned()]
    );
    // Stored right after the token request, before the versions and limits calls.
    assert_eq!(
        *requests_at_update.lock().expect("not poisoned"),
        vec![before + 1]
    );
    assert_eq!(sim.control().requests(), before + 3);
}

#[tokio::test]
async fn revoked_refresh_token_asks_for_reauthorization() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
    .await;
    let token = generate_token(&sim).await;
    sim.control().revoke_refresh_tokens();
    let error = Salesforce
        .test_connection(
            test_request(local_settings(&sim, &token)),
            &RecordingHost::new().host(),
        )
        .await
        .expect_err("revoked");
    assert_eq!(error.kind, ErrorKind::AUTH);
    assert!(
        error
            .message
            .starts_with("the refresh token was revoked or expired"),
        "{}",
        error.message
    );
    assert_eq!(error.details, json!({"reauthorize": true}));
    assert!(!error.message.contains(&token));
    assert_eq!(sim.control().api_calls(), 0);
}

#[tokio::test]
async fn cyberark_credentials_are_read_from_the_vault() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
    .await;
    let token = generate_token(&sim).await;
    let query = "Safe=Salesforce;Object=acme-prod";
    let recording = RecordingHost::new().with_vault_account(
        query,
        &[("Content", "SIM_CONSUMER_SECRET"), ("RefreshToken", &token)],
    );
    let settings = json!({
        "login_url": sim.base_url(),
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {"source": "cyberark", "query": query, "refresh_token_field": "RefreshToken"},
    });
    let report = Salesforce
        .test_connection(test_request(settings), &recording.host())
        .await
        .expect("connects");
    assert_eq!(fact(&report, "Org ID"), "00D000000000001AAA");
    assert!(recording.recorded().secret_updates.is_empty());
}

#[tokio::test]
async fn missing_refresh_token_is_a_config_error() {
    let sim = simulator(SimConfig::default()).await;
    let error = Salesforce
        .test_connection(
            test_request(local_settings(&sim, "")),
            &RecordingHost::new().host(),
        )
        .await
        .expect_err("no token");
    assert_eq!(error.kind, ErrorKind::CONFIG);
    assert!(
        error.message.contains("credentials.refresh_token"),
        "{}",
        error.message
    );
    assert_eq!(sim.control().requests(), 0);
}
