//! Shared helpers: a simulator, settings pointing at it, requests, and the user at the browser.

use std::time::Duration;

use invhost_plugin_api::{
    Host,
    protocol::{ActionOptions, ActionRequest, ActionResponse, ConnectionInfo, TestRequest},
    sdk::{Plugin, testing::RecordingHost},
};
use invhost_salesforce::{
    Salesforce,
    plugin::{GENERATE_REFRESH_TOKEN, SOURCE_TYPE},
};
use invhost_sim_salesforce::{Control, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// A simulator that polls fast, with everything else at its defaults.
pub async fn simulator(config: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        device_interval_secs: 1,
        ..config
    })
    .await
    .expect("simulator starts")
}

/// Settings with stored credentials for the simulator's app.
pub fn local_settings(sim: &Simulator, refresh_token: &str) -> Value {
    json!({
        "login_url": sim.base_url(),
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {"source": "local", "consumer_secret": "SIM_CONSUMER_SECRET",
                        "refresh_token": refresh_token},
    })
}

/// A `generate_refresh_token` request.
pub fn generate_request(settings: Value, timeout_secs: u64) -> ActionRequest {
    ActionRequest {
        source_type: SOURCE_TYPE.into(),
        action: GENERATE_REFRESH_TOKEN.into(),
        connection: ConnectionInfo {
            name: "Acme prod".into(),
        },
        settings,
        options: ActionOptions { timeout_secs },
    }
}

/// A `test_connection` request.
pub fn test_request(settings: Value) -> TestRequest {
    TestRequest {
        source_type: SOURCE_TYPE.into(),
        connection: ConnectionInfo {
            name: "Acme prod".into(),
        },
        settings,
    }
}

/// What the person at the browser does with the first code shown.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    Allow,
    Deny,
}

/// Plays the person: waits for a pending user code, decides, and returns the code.
pub fn browser(control: Control, decision: Decision) -> JoinHandle<String> {
    tokio::spawn(async move {
        loop {
            if let Some(code) = control.pending_user_codes().into_iter().next() {
                let done = match decision {
                    Decision::Allow => control.approve(&code),
                    Decision::Deny => control.deny(&code),
                };
                assert!(done, "the simulator took the decision on {code}");
                return code;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Runs the action with a guard 5 s past the action's own deadline, so that a hang fails
/// instead of blocking.
pub async fn run_action(
    request: ActionRequest,
    host: &Host,
) -> Result<ActionResponse, invhost_plugin_api::Error> {
    let guard = Duration::from_secs(request.options.timeout_secs + 5);
    tokio::time::timeout(guard, Salesforce.run_action(request, host))
        .await
        .expect("the action finishes by its deadline")
}

/// Generates a refresh token through the plugin, approving in the simulator.
pub async fn generate_token(sim: &Simulator) -> String {
    let approver = browser(sim.control(), Decision::Allow);
    let recording = RecordingHost::new();
    let request = generate_request(local_settings(sim, ""), 10);
    let response = run_action(request, &recording.host())
        .await
        .expect("device flow succeeds");
    approver.await.expect("approver finishes");
    response.settings_updates["credentials.refresh_token"]
        .as_str()
        .expect("a string token")
        .to_owned()
}
