//! `generate_refresh_token`: Salesforce's device flow, end to end against the simulator.

use std::time::{Duration, Instant};

use invhost_plugin_api::{ErrorKind, sdk::testing::RecordingHost};
use invhost_sim_salesforce::SimConfig;
use serde_json::json;

use crate::support::{Decision, browser, generate_request, local_settings, run_action, simulator};

#[tokio::test]
async fn approved_flow_prompts_with_the_code_and_stores_the_issued_token() {
    let sim = simulator(SimConfig::default()).await;
    let approver = browser(sim.control(), Decision::Allow);
    let recording = RecordingHost::new();

    let response = run_action(
        generate_request(local_settings(&sim, ""), 10),
        &recording.host(),
    )
    .await
    .expect("device flow succeeds");
    let user_code = approver.await.expect("approver finishes");

    let prompts = recording.recorded().prompts;
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert_eq!(prompts[0].user_code.as_deref(), Some(user_code.as_str()));
    let expected_link = format!("{}/setup/connect?user_code={user_code}", sim.base_url());
    assert_eq!(prompts[0].url.as_deref(), Some(expected_link.as_str()));
    assert!(
        prompts[0].message.contains(&user_code),
        "{}",
        prompts[0].message
    );

    let token = response.settings_updates["credentials.refresh_token"]
        .as_str()
        .expect("a string token");
    assert_eq!(sim.control().valid_refresh_tokens(), vec![token.to_owned()]);
    assert!(response.show_once.is_empty());
    assert!(!response.message.contains(token), "{}", response.message);
}

/// RFC 8628: each `slow_down` raises the polling interval by 5 s for the rest of the flow. The
/// simulator answers the first timely poll `slow_down` and any poll sooner than the raised
/// interval (1 s + 5 s) `slow_down` again, so one `slow_down` in all means the client waited.
#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval() {
    let sim = simulator(SimConfig {
        device_slow_downs: 1,
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
    .await;
    let response = run_action(
        generate_request(local_settings(&sim, ""), 30),
        &RecordingHost::new().host(),
    )
    .await
    .expect("approved after slowing down");
    assert!(response.settings_updates["credentials.refresh_token"].is_string());
    assert_eq!(
        sim.control().slow_down_answers(),
        1,
        "a poll came sooner than the interval raised by slow_down"
    );
}

#[tokio::test]
async fn denied_in_the_browser() {
    let sim = simulator(SimConfig::default()).await;
    let decider = browser(sim.control(), Decision::Deny);
    let error = run_action(
        generate_request(local_settings(&sim, ""), 10),
        &RecordingHost::new().host(),
    )
    .await
    .expect_err("denied");
    decider.await.expect("decider finishes");
    assert_eq!(error.kind, ErrorKind::AUTH);
    assert_eq!(
        error.message,
        "access was denied in the browser; run the flow again and click Allow"
    );
}

#[tokio::test]
async fn wrong_consumer_key() {
    let sim = simulator(SimConfig::default()).await;
    let mut settings = local_settings(&sim, "");
    settings["consumer_key"] = json!("3MVG9-not-this-app");
    let recording = RecordingHost::new();
    let error = run_action(generate_request(settings, 10), &recording.host())
        .await
        .expect_err("unknown key");
    assert_eq!(error.kind, ErrorKind::CONFIG);
    assert!(
        error
            .message
            .starts_with("the consumer key does not match the connected app; copy Consumer Key"),
        "{}",
        error.message
    );
    assert!(recording.recorded().prompts.is_empty());
}

#[tokio::test]
async fn nobody_approves_before_our_deadline() {
    let sim = simulator(SimConfig::default()).await;
    let started = Instant::now();
    let error = run_action(
        generate_request(local_settings(&sim, ""), 2),
        &RecordingHost::new().host(),
    )
    .await
    .expect_err("times out");
    assert_eq!(error.kind, ErrorKind::TIMEOUT);
    assert!(
        error.message.starts_with(
            "timed out: the browser was closed, the login failed, or nobody approved within 2 seconds"
        ),
        "{}",
        error.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sim.control().pending_user_codes().len(),
        1,
        "still pending at the simulator"
    );
}

#[tokio::test]
async fn cancellation_stops_polling() {
    let sim = simulator(SimConfig::default()).await;
    let recording = RecordingHost::new();
    let canceller = {
        let (control, recording) = (sim.control(), recording.clone());
        tokio::spawn(async move {
            while control.pending_user_codes().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            recording.cancel();
        })
    };
    let started = Instant::now();
    let error = run_action(
        generate_request(local_settings(&sim, ""), 10),
        &recording.host(),
    )
    .await
    .expect_err("cancelled");
    canceller.await.expect("canceller finishes");
    assert_eq!(error.kind, ErrorKind::CANCELLED);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(recording.recorded().prompts.len(), 1);
}

#[tokio::test]
async fn admin_must_enable_device_flow_or_install_the_app() {
    let cases = [
        (
            SimConfig {
                device_flow_enabled: false,
                ..SimConfig::default()
            },
            "Enable for Device Flow",
        ),
        (
            SimConfig {
                app_preauthorized: false,
                ..SimConfig::default()
            },
            "Admin approved users are pre-authorized",
        ),
    ];
    for (config, fragment) in cases {
        let sim = simulator(config).await;
        let error = run_action(
            generate_request(local_settings(&sim, ""), 10),
            &RecordingHost::new().host(),
        )
        .await
        .expect_err("refused at step 1");
        assert_eq!(error.kind, ErrorKind::CONFIG);
        assert!(error.message.contains(fragment), "{}", error.message);
    }
}

/// A loopback HTTP server that answers every request with a 404 HTML page, as a web server
/// that is not Salesforce would; the number of requests it has answered.
async fn not_salesforce() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds on loopback");
    let address = listener.local_addr().expect("bound address");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buffer = [0_u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let body = "<html><body>Not found</body></html>";
            let answer = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{address}"), requests)
}

#[tokio::test]
async fn a_login_url_that_is_not_salesforce() {
    let sim = simulator(SimConfig::default()).await;
    let (other, requests) = not_salesforce().await;
    let mut settings = local_settings(&sim, "");
    settings["login_url"] = json!(other);
    let error = run_action(generate_request(settings, 10), &RecordingHost::new().host())
        .await
        .expect_err("not an OAuth endpoint");
    assert_eq!(error.kind, ErrorKind::UPSTREAM);
    assert!(
        error.message.starts_with(
            "the login host answered something that is not Salesforce's OAuth endpoint"
        ),
        "{}",
        error.message
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_login_url_with_a_path_or_query_sends_no_request() {
    let sim = simulator(SimConfig::default()).await;
    let (other, requests) = not_salesforce().await;
    for (login_url, expected) in [
        (format!("{other}/?x=1"), "login_url: has a query"),
        (
            format!("{other}/not-salesforce"),
            "login_url: has a path (`/not-salesforce`)",
        ),
        (format!("{other}/#x"), "login_url: has a fragment"),
    ] {
        let mut settings = local_settings(&sim, "");
        settings["login_url"] = json!(login_url);
        let error = run_action(generate_request(settings, 10), &RecordingHost::new().host())
            .await
            .expect_err("refused");
        assert_eq!(error.kind, ErrorKind::CONFIG, "{login_url}");
        assert!(
            error.message.starts_with(expected),
            "{login_url}: {}",
            error.message
        );
    }
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn cyberark_credentials_show_the_token_once() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
    .await;
    let query = "Safe=Salesforce;Object=acme-prod";
    let recording =
        RecordingHost::new().with_vault_account(query, &[("Content", "SIM_CONSUMER_SECRET")]);
    let settings = json!({
        "login_url": sim.base_url(),
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {"source": "cyberark", "query": query, "refresh_token_field": "RefreshToken"},
    });
    let response = run_action(generate_request(settings, 10), &recording.host())
        .await
        .expect("device flow succeeds");
    assert!(
        response.settings_updates.is_empty(),
        "{:?}",
        response.settings_updates
    );
    assert_eq!(response.show_once.len(), 1);
    let shown = &response.show_once[0];
    assert_eq!(
        sim.control().valid_refresh_tokens(),
        vec![shown.value.expose().to_owned()]
    );
    assert!(shown.instruction.contains(query), "{}", shown.instruction);
    assert!(
        shown.instruction.contains("property RefreshToken"),
        "{}",
        shown.instruction
    );
}
