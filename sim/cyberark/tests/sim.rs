//! The simulator over real sockets: HTTP, HTTPS, client certificates, the binary.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use invhost_sim_cyberark::{Account, SimConfig, Simulator, TestPki};
use serde_json::Value;

fn vault() -> Vec<Account> {
    vec![
        Account::new("Salesforce", "acme-prod", "pw-prod").property("RefreshToken", "rt-prod"),
        Account::new("Salesforce", "acme-dev", "pw-dev"),
    ]
}

fn config(tls: Option<invhost_sim_cyberark::TlsSetup>) -> SimConfig {
    SimConfig {
        accounts: vault(),
        tls,
        ..SimConfig::default()
    }
}

fn client(pki: Option<&TestPki>, identity: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(pki) = pki {
        let ca = reqwest::Certificate::from_pem(pki.ca_cert_pem.as_bytes()).expect("CA parses");
        builder = builder.add_root_certificate(ca);
        if identity {
            let pem = format!("{}{}", pki.client_cert_pem, pki.client_key_pem);
            builder = builder
                .identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity parses"));
        }
    }
    builder.build().expect("client builds")
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Result<(u16, String)> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn http_answers_accounts_errors_and_html() {
    let sim = Simulator::start(config(None)).await.expect("starts");
    let client = client(None, false);
    let url = format!(
        "{}?AppID=InventoryHost&Safe=Salesforce&Object=acme-prod",
        sim.accounts_url()
    );
    let (status, body) = get(&client, &url).await.expect("answers");
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["Content"], "pw-prod");
    assert_eq!(json["RefreshToken"], "rt-prod");

    let broad = format!("{}?AppID=InventoryHost&Safe=Salesforce", sim.accounts_url());
    let (status, body) = get(&client, &broad).await.expect("answers");
    assert_eq!(status, 400);
    assert!(body.contains("\"ErrorCode\":\"APPAP227E\""), "{body}");

    let (status, body) = get(&client, &format!("{}/nowhere", sim.base_url()))
        .await
        .expect("answers");
    assert_eq!(status, 404);
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");

    assert_eq!(sim.control().requests(), 3);
    assert_eq!(
        sim.control().last_params()[1],
        ("Safe".to_owned(), "Salesforce".to_owned())
    );
}

#[tokio::test]
async fn faults_can_be_switched_while_running() {
    let sim = Simulator::start(config(None)).await.expect("starts");
    let client = client(None, false);
    let url = format!(
        "{}?AppID=InventoryHost&Safe=Salesforce&Object=acme-prod&FailRequestOnPasswordChange=true",
        sim.accounts_url()
    );
    sim.control().set_vault_unreachable(true);
    let (status, body) = get(&client, &url).await.expect("answers");
    assert_eq!((status, body.contains("APPAP007E")), (400, true), "{body}");
    sim.control().set_vault_unreachable(false);
    sim.control()
        .set_password_change_in_progress("acme-prod", true);
    let (status, body) = get(&client, &url).await.expect("answers");
    assert_eq!((status, body.contains("APPAP282E")), (500, true), "{body}");
    sim.control()
        .set_password_change_in_progress("acme-prod", false);
    assert_eq!(get(&client, &url).await.expect("answers").0, 200);
}

#[tokio::test]
async fn client_certificate_is_required_in_the_handshake() {
    let pki = TestPki::generate().expect("PKI");
    let sim = Simulator::start(config(Some(pki.server_tls(true))))
        .await
        .expect("starts");
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    let url = format!(
        "{}?AppID=InventoryHost&Safe=Salesforce&Object=acme-dev",
        sim.accounts_url()
    );

    let (status, _) = get(&client(Some(&pki), true), &url)
        .await
        .expect("answers with a client certificate");
    assert_eq!(status, 200);

    let error = get(&client(Some(&pki), false), &url)
        .await
        .expect_err("refused without a client certificate");
    let text = error_chain(&error);
    assert!(text.contains("CertificateRequired"), "{text}");

    let other = TestPki::generate().expect("PKI");
    let mixed = TestPki {
        ca_cert_pem: pki.ca_cert_pem.clone(),
        ..other
    };
    let error = get(&client(Some(&mixed), true), &url)
        .await
        .expect_err("refused with a certificate from another CA");
    let text = error_chain(&error);
    assert!(text.contains("fatal alert"), "{text}");

    assert_eq!(sim.control().tls_handshake_failures(), 2);
    assert_eq!(sim.control().requests(), 1);
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[test]
fn spawn_serves_callers_without_a_runtime() {
    let sim = Simulator::spawn(config(None)).expect("spawns");
    let url = format!("{}?AppID=InventoryHost&Object=acme-dev", sim.accounts_url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (status, body) = runtime
        .block_on(get(&client(None, false), &url))
        .expect("answers");
    assert_eq!(status, 200, "{body}");
    sim.shutdown();
}

#[test]
fn write_to_writes_the_five_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = TestPki::generate()
        .expect("PKI")
        .write_to(dir.path())
        .expect("writes");
    for (path, marker) in [
        (&files.ca_cert, "BEGIN CERTIFICATE"),
        (&files.server_cert, "BEGIN CERTIFICATE"),
        (&files.server_key, "BEGIN PRIVATE KEY"),
        (&files.client_cert, "BEGIN CERTIFICATE"),
        (&files.client_key, "BEGIN PRIVATE KEY"),
    ] {
        let text = std::fs::read_to_string(path).expect("file written");
        assert!(text.contains(marker), "{}", path.display());
    }
}

/// Kills the child process on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_https_from_an_accounts_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dir.path().join("accounts.json");
    std::fs::write(
        &accounts,
        r#"[{"safe": "Proxy", "object": "corp", "user_name": "proxyuser", "content": "proxypass"}]"#,
    )
    .expect("writes");
    let tls_dir = dir.path().join("tls");
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_invhost-sim-cyberark"))
            .args(["--listen", "127.0.0.1:0", "--accounts"])
            .arg(&accounts)
            .arg("--tls-dir")
            .arg(&tls_dir)
            .arg("--require-client-cert")
            .stdout(Stdio::piped())
            .spawn()
            .expect("binary starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout piped");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reads the first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("announces its URL")
        .to_owned();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let read = |name: &str| std::fs::read_to_string(tls_dir.join(name)).expect("PKI file");
    let pki = TestPki {
        ca_cert_pem: read("ca.pem"),
        server_cert_pem: read("server.pem"),
        server_key_pem: read("server.key"),
        client_cert_pem: read("client.pem"),
        client_key_pem: read("client.key"),
    };
    let url = format!(
        "{base}/AIMWebService/api/Accounts?AppID=InventoryHost&Query=Safe=Proxy;Object=corp"
    );
    let (status, body) = get(&client(Some(&pki), true), &url).await.expect("answers");
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["UserName"], "proxyuser");
}
