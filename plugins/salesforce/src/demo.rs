//! The demo environment (`invhost demo`): the Salesforce simulator of this repository, started
//! inside the plugin, serving a synthetic org on a loopback port. It approves device codes by
//! itself, so the host can run the real device flow and the real import against it without a
//! person or a Salesforce org.
//!
//! The simulator runs on a thread of its own until `stop_demo` (or the process ends).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use invhost_plugin_api::{
    Error,
    protocol::{DemoEnvironment, DemoRequest, StopDemoRequest},
};
use invhost_sim_salesforce::{OrgSpec, SimConfig, Simulator};
use serde_json::json;

/// Users of the demo org unless the host asks for another size.
pub const DEFAULT_USERS: u64 = 5_000;

/// The largest org the demo serves.
pub const MAX_USERS: u64 = 1_000_000;

/// The running demo simulators, by id.
fn running() -> &'static Mutex<HashMap<String, Simulator>> {
    static RUNNING: OnceLock<Mutex<HashMap<String, Simulator>>> = OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Starts a simulator with a synthetic org and answers the settings that reach it.
pub fn start(request: &DemoRequest) -> Result<DemoEnvironment, Error> {
    let users = request.users.unwrap_or(DEFAULT_USERS);
    if !(1..=MAX_USERS).contains(&users) {
        return Err(Error::config(format!(
            "the demo org can have 1 to {MAX_USERS} users (asked for {users})"
        )));
    }
    let defaults = SimConfig::default();
    let spec = OrgSpec::default();
    let config = SimConfig {
        auto_approve_after_polls: Some(1),
        device_interval_secs: 1,
        org: Some(OrgSpec {
            users: usize::try_from(users).unwrap_or(usize::MAX),
            seed: request.seed.unwrap_or(spec.seed),
            ..spec
        }),
        api_daily_max: defaults.api_daily_max.max(users.saturating_mul(2)),
        ..defaults
    };
    let consumer_key = config.consumer_key.clone();
    let consumer_secret = config.consumer_secret.clone().unwrap_or_default();
    let simulator = Simulator::spawn(config).map_err(|error| {
        Error::internal(format!(
            "could not start the Salesforce simulator on a loopback port: {error}"
        ))
    })?;
    let base_url = simulator.base_url();
    let id = format!("salesforce-{}", simulator.addr().port());
    running()
        .lock()
        .map_err(|_| Error::internal("the demo registry's lock was poisoned"))?
        .insert(id.clone(), simulator);
    tracing::info!(%base_url, users, "Started the Salesforce demo simulator.");
    Ok(DemoEnvironment {
        id,
        connection_name: "Demo Salesforce".to_owned(),
        settings: json!({
            "login_url": base_url,
            "consumer_key": consumer_key,
            "credentials": {
                "source": "local",
                "consumer_secret": consumer_secret,
                "refresh_token": ""
            }
        }),
        actions: vec![crate::plugin::GENERATE_REFRESH_TOKEN.to_owned()],
        description: format!(
            "A simulated Salesforce org of {users} users at {base_url} (every license family, \
             users who never logged in, inactive, frozen and deactivated users), which approves \
             the device flow by itself."
        ),
    })
}

/// Stops a simulator started by [`start`].
pub fn stop(request: &StopDemoRequest) -> Result<(), Error> {
    let simulator = running()
        .lock()
        .map_err(|_| Error::internal("the demo registry's lock was poisoned"))?
        .remove(&request.id)
        .ok_or_else(|| Error::config(format!("no demo environment `{}` is running", request.id)))?;
    simulator.shutdown();
    Ok(())
}
