//! Calls through a real forward proxy (tinyproxy on loopback, started here), and a proxy that
//! is not there. tinyproxy must be installed (`cargo xtask test` installs it on Debian-family
//! machines; `.ci/run` does too).

use invhost_plugin_api::{
    ErrorKind,
    sdk::{Plugin, testing::RecordingHost},
};
use invhost_salesforce::Salesforce;
use invhost_sim_salesforce::SimConfig;
use serde_json::{Value, json};

use crate::support::{generate_request, local_settings, run_action, simulator, test_request};

use invhost_testkit::{PROXY_PASSWORD as PASSWORD, PROXY_USER as USER, Tinyproxy, free_port};

fn with_proxy(mut settings: Value, proxy: Value) -> Value {
    settings["proxy"] = proxy;
    settings
}

#[tokio::test]
async fn calls_go_through_the_proxy_with_its_credentials() {
    let tinyproxy = Tinyproxy::start();
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
    .await;
    let server = format!("127.0.0.1:{}", tinyproxy.port);

    // The device flow through the proxy, with stored proxy credentials.
    let good = json!({"server": server,
                      "credentials": {"source": "local", "username": USER, "password": PASSWORD}});
    let settings = with_proxy(local_settings(&sim, ""), good);
    let response = run_action(generate_request(settings, 10), &RecordingHost::new().host())
        .await
        .expect("device flow through the proxy");
    let token = response.settings_updates["credentials.refresh_token"]
        .as_str()
        .expect("a token")
        .to_owned();

    // The connection test through the proxy, with proxy credentials from the vault.
    let query = "Safe=Network;Object=proxy";
    let vault = RecordingHost::new()
        .with_vault_account(query, &[("UserName", USER), ("Content", PASSWORD)]);
    let from_vault =
        json!({"server": server, "credentials": {"source": "cyberark", "query": query}});
    let settings = with_proxy(local_settings(&sim, &token), from_vault);
    Salesforce
        .test_connection(test_request(settings.clone()), &vault.host())
        .await
        .expect("connection test through the proxy");

    // The calls really went through the proxy: with the proxy gone, they fail.
    drop(tinyproxy);
    let error = Salesforce
        .test_connection(test_request(settings), &vault.host())
        .await
        .expect_err("no proxy, no connection");
    assert!(error.message.contains("proxy"), "{}", error.message);
}

/// Salesforce is HTTPS, so the client asks the proxy for a CONNECT tunnel; pointing an
/// `https://` login URL at the (plain HTTP) simulator exercises that path without TLS certificates:
/// the proxy refuses the tunnel, or opens it and the TLS handshake fails.
#[tokio::test]
async fn the_proxy_refuses_wrong_or_missing_credentials_for_a_tunnel() {
    let tinyproxy = Tinyproxy::start();
    let sim = simulator(SimConfig::default()).await;
    let server = format!("http://127.0.0.1:{}", tinyproxy.port);
    let https_login = format!("https://{}", sim.addr());
    let credentials = |password: &str| {
        json!({"server": server,
               "credentials": {"source": "local", "username": USER, "password": password}})
    };
    let cases = [
        // tinyproxy 1.11 answers wrong credentials with 401 instead of 407.
        (credentials("nope"), "the proxy refused the credentials"),
        (
            json!({"server": server}),
            "the proxy refused the credentials; check proxy.credentials",
        ),
        (
            credentials(PASSWORD),
            "the TLS connection to 127.0.0.1 failed",
        ),
    ];
    for (proxy, expected) in cases {
        let mut settings = with_proxy(local_settings(&sim, ""), proxy);
        settings["login_url"] = json!(https_login);
        let error = run_action(generate_request(settings, 10), &RecordingHost::new().host())
            .await
            .expect_err("refused");
        assert_eq!(error.kind, ErrorKind::NETWORK);
        assert!(error.message.starts_with(expected), "{}", error.message);
    }
    assert_eq!(
        sim.control().requests(),
        0,
        "no request reached the simulator"
    );
}

/// A plain HTTP target (the loopback simulator) is asked through the proxy without a tunnel:
/// tinyproxy answers the refusal itself and closes the connection without reading the request's
/// body, so the answer breaks off. The refusal must still read as one.
#[tokio::test]
async fn the_proxy_refuses_wrong_or_missing_credentials_for_plain_http() {
    let tinyproxy = Tinyproxy::start();
    let sim = simulator(SimConfig::default()).await;
    let server = format!("http://127.0.0.1:{}", tinyproxy.port);
    let wrong = json!({"server": server,
                       "credentials": {"source": "local", "username": USER, "password": "nope"}});
    let missing = json!({"server": server});
    let refused = |error: invhost_plugin_api::Error| {
        assert_eq!(error.kind, ErrorKind::NETWORK);
        let expected = "the proxy refused the credentials; check proxy.credentials";
        assert!(error.message.starts_with(expected), "{}", error.message);
    };
    for proxy in [wrong, missing] {
        // The device flow's first request, a POST with a form body.
        let settings = with_proxy(local_settings(&sim, ""), proxy.clone());
        refused(
            run_action(generate_request(settings, 10), &RecordingHost::new().host())
                .await
                .expect_err("refused"),
        );
        // The connection test's refresh, also a POST.
        let settings = with_proxy(local_settings(&sim, "some-token"), proxy);
        refused(
            Salesforce
                .test_connection(test_request(settings), &RecordingHost::new().host())
                .await
                .expect_err("refused"),
        );
    }
    assert_eq!(
        sim.control().requests(),
        0,
        "no request reached the simulator"
    );
}

/// `https://` in front of a plain HTTP proxy: the client's TLS hello is answered in plain
/// text. The failure says which part of the address to change.
#[tokio::test]
async fn a_plain_proxy_addressed_with_https_says_to_write_http() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { continue };
            let mut hello = [0_u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let sim = simulator(SimConfig::default()).await;
    let proxy = json!({"server": format!("https://127.0.0.1:{port}")});
    let settings = with_proxy(local_settings(&sim, ""), proxy);
    let error = run_action(generate_request(settings, 10), &RecordingHost::new().host())
        .await
        .expect_err("no TLS from a plain proxy");
    assert_eq!(error.kind, ErrorKind::NETWORK);
    assert!(
        error.message.ends_with(
            "proxy.server starts with https://, which needs a proxy that speaks TLS: for a \
             plain HTTP proxy write http://"
        ),
        "{}",
        error.message
    );
    assert_eq!(sim.control().requests(), 0);
}

#[tokio::test]
async fn a_proxy_that_is_not_there() {
    let sim = simulator(SimConfig::default()).await;
    let proxy = json!({"server": format!("127.0.0.1:{}", free_port())});
    let settings = with_proxy(local_settings(&sim, ""), proxy);
    let error = run_action(generate_request(settings, 10), &RecordingHost::new().host())
        .await
        .expect_err("no proxy listening");
    assert_eq!(error.kind, ErrorKind::NETWORK);
    assert!(
        error.message.contains("check proxy.server"),
        "{}",
        error.message
    );
    assert_eq!(sim.control().requests(), 0);
}
