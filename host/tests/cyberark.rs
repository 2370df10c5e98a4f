//! The CyberArk CCP client against the CCP simulator: lookups, provider errors, TLS and
//! client certificates, settings validation, and that no value ever shows in a message.

use std::path::{Path, PathBuf};
use std::time::Duration;

use invhost::cyberark::{
    BlockingCcpClient, CcpClient, ConfigError, CyberArkConfig, CyberArkError, load, parse_section,
};
use invhost_plugin_api::protocol::VaultRequest;
use invhost_plugin_api::{Error, ErrorKind};
use invhost_sim_cyberark::{Account, RawAnswer, SimConfig, Simulator, TestPki, TlsSetup};
use url::Url;

/// Every value in the simulated vault; none may ever appear in a message.
const VALUES: [&str; 7] = [
    "pw-acme-prod-9f3K",
    "cs-acme-prod-Qm7x",
    "rt-acme-prod-Lw2p",
    "pw-acme-dev-4hTz",
    "pw-proxy-8Rnb",
    "integration@acme.example",
    "proxyuser",
];

fn vault() -> Vec<Account> {
    vec![
        Account::new("Salesforce", "acme-prod", VALUES[0])
            .user_name(VALUES[5])
            .address("login.salesforce.com")
            .property("ConsumerSecret", VALUES[1])
            .property("RefreshToken", VALUES[2]),
        Account::new("Salesforce", "acme-dev", VALUES[3]),
        Account::new("Proxy", "corp-proxy", VALUES[4])
            .folder("Network")
            .user_name(VALUES[6]),
    ]
}

const PROD: &str = "Safe=Salesforce;Folder=Root;Object=acme-prod";

async fn simulator(tls: Option<TlsSetup>) -> Simulator {
    Simulator::start(SimConfig {
        accounts: vault(),
        tls,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn config_for(sim: &Simulator) -> CyberArkConfig {
    let url = Url::parse(&sim.base_url()).expect("simulator URL");
    CyberArkConfig::new(url, "InventoryHost")
}

fn client_for(sim: &Simulator) -> CcpClient {
    CcpClient::new(&config_for(sim)).expect("client builds")
}

fn fields(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// The error's message, after checking that no vault value shows in it (nor in the
/// plugin error it becomes).
fn message(error: CyberArkError) -> String {
    let text = error.to_string();
    let debug = format!("{error:?}");
    let plugin = Error::from(error);
    let plugin_json = serde_json::to_string(&plugin).expect("serialises");
    for value in VALUES {
        for shown in [&text, &debug, &plugin_json] {
            assert!(!shown.contains(value), "a vault value leaked: {shown}");
        }
    }
    text
}

fn expect_error<T: std::fmt::Debug>(result: Result<T, CyberArkError>) -> CyberArkError {
    result.expect_err("the lookup must fail")
}

mod lookups {
    use super::*;

    #[tokio::test]
    async fn content_by_default() {
        let sim = simulator(None).await;
        let values = client_for(&sim)
            .lookup(PROD, &fields(&["", " "]))
            .await
            .expect("found");
        let exposed: Vec<&str> = values.iter().map(|v| v.expose()).collect();
        assert_eq!(exposed, [VALUES[0], VALUES[0]]);
        assert_eq!(format!("{:?}", values[0]), "********");
    }

    #[tokio::test]
    async fn named_properties_match_case_insensitively() {
        let sim = simulator(None).await;
        let values = client_for(&sim)
            .lookup(
                PROD,
                &fields(&["consumersecret", "REFRESHTOKEN", "UserName", "content"]),
            )
            .await
            .expect("found");
        let exposed: Vec<&str> = values.iter().map(|v| v.expose()).collect();
        assert_eq!(exposed, [VALUES[1], VALUES[2], VALUES[5], VALUES[0]]);
    }

    #[tokio::test]
    async fn account_keeps_every_string_property_behind_a_redacted_debug() {
        let sim = simulator(None).await;
        let account = client_for(&sim).account(PROD).await.expect("found");
        assert_eq!(
            account.property_names(),
            [
                "Address",
                "ConsumerSecret",
                "Content",
                "Folder",
                "Name",
                "PasswordChangeInProcess",
                "RefreshToken",
                "Safe",
                "UserName"
            ]
        );
        let debug = format!("{account:?}");
        assert!(VALUES.iter().all(|value| !debug.contains(value)), "{debug}");
        assert!(!account.password_change_in_process());
    }

    #[tokio::test]
    async fn missing_property_lists_the_names_only() {
        let sim = simulator(None).await;
        let error = expect_error(
            client_for(&sim)
                .lookup(PROD, &fields(&["", "ClientSecret"]))
                .await,
        );
        assert_eq!(
            message(error),
            "the CyberArk account has no property `ClientSecret`; its properties are Address, \
             ConsumerSecret, Content, Folder, Name, PasswordChangeInProcess, RefreshToken, \
             Safe, UserName; leave the field empty for the password (Content)"
        );
    }

    #[tokio::test]
    async fn any_json_object_is_an_account_and_content_matches_in_any_case() {
        let sim = simulator(None).await;
        let client = client_for(&sim);
        sim.control().set_raw_answer(Some(RawAnswer::json(
            200,
            &serde_json::json!({"content": VALUES[4], "username": VALUES[6]}),
        )));
        let values = client
            .lookup(PROD, &fields(&["", "UserName"]))
            .await
            .expect("a lowercase content is the password");
        let exposed: Vec<&str> = values.iter().map(|v| v.expose()).collect();
        assert_eq!(exposed, [VALUES[4], VALUES[6]]);

        // An account without a password property is still an account: asking for the
        // password says which properties it has.
        sim.control().set_raw_answer(Some(RawAnswer::json(
            200,
            &serde_json::json!({"ConsumerSecret": VALUES[1], "Name": "acme-prod"}),
        )));
        let account = client.account(PROD).await.expect("an account");
        assert_eq!(account.property_names(), ["ConsumerSecret", "Name"]);
        let error = expect_error(client.lookup(PROD, &fields(&[""])).await);
        assert_eq!(
            message(error),
            "the CyberArk account has no property `Content`; its properties are \
             ConsumerSecret, Name; the account has no password (Content) to read: store it in \
             CyberArk, or name the property that holds the value"
        );
    }

    #[tokio::test]
    async fn query_pairs_are_passed_through_encoded() {
        let sim = simulator(None).await;
        let client = client_for(&sim);
        // After `Query=`, the pairs are the CCP's own query; control parameters stay apart.
        let query = "Query=Safe=Proxy;Folder=Network;Object=corp-proxy;QueryFormat=Exact;\
                     Reason=nightly import & check #1";
        let values = client.lookup(query, &fields(&[""])).await.expect("found");
        assert_eq!(values[0].expose(), VALUES[4]);
        assert_eq!(
            sim.control().last_params(),
            [
                ("AppID", "InventoryHost"),
                ("Query", "Safe=Proxy;Folder=Network;Object=corp-proxy"),
                ("QueryFormat", "Exact"),
                ("Reason", "nightly import & check #1"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
        );

        // Separate parameters, values with spaces and `&`.
        let query = "Safe=Proxy;Folder=Network;Object=corp-proxy;QueryFormat=Exact;\
                     Reason=nightly import & check #1;ConnectionTimeout=20";
        let values = client
            .lookup(query, &fields(&["UserName", ""]))
            .await
            .expect("found");
        assert_eq!(values[0].expose(), VALUES[6]);
        assert_eq!(values[1].expose(), VALUES[4]);
        let params = sim.control().last_params();
        let names: Vec<&str> = params.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AppID",
                "Safe",
                "Folder",
                "Object",
                "QueryFormat",
                "Reason",
                "ConnectionTimeout"
            ]
        );
        assert_eq!(params[5].1, "nightly import & check #1");
    }

    #[test]
    fn blocking_client_serves_synchronous_callers() {
        let sim = Simulator::spawn(SimConfig {
            accounts: vault(),
            ..SimConfig::default()
        })
        .expect("simulator spawns");
        let client = BlockingCcpClient::new(&config_for(&sim)).expect("client builds");
        let response = client
            .vault(&VaultRequest {
                query: PROD.to_owned(),
                fields: fields(&["ConsumerSecret", "RefreshToken"]),
            })
            .expect("found");
        let exposed: Vec<&str> = response.values.iter().map(|v| v.expose()).collect();
        assert_eq!(exposed, [VALUES[1], VALUES[2]]);

        // From a thread inside another runtime, too.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let error = runtime
            .block_on(async {
                client.vault(&VaultRequest {
                    query: "Safe=Nope".to_owned(),
                    fields: fields(&[""]),
                })
            })
            .expect_err("not found");
        assert_eq!(error.kind, ErrorKind::VAULT);
        assert_eq!(error.details["code"], "APPAP004E");
        assert!(!error.retryable);
    }
}

mod provider_errors {
    use super::*;

    #[tokio::test]
    async fn wrong_object_is_not_found_or_not_permitted() {
        let sim = simulator(None).await;
        let error = expect_error(
            client_for(&sim)
                .account("Safe=Salesforce;Object=acme-typo")
                .await,
        );
        assert_eq!(error.code(), Some("APPAP004E"));
        let text = message(error);
        assert!(
            text.starts_with(
                "no CyberArk account matches the query `Safe=Salesforce;Object=acme-typo`, or \
                 application `InventoryHost` has no permission on its safe (APPAP004E: "
            ),
            "{text}"
        );
        assert!(text.contains("check Safe, Folder and Object"), "{text}");
    }

    #[tokio::test]
    async fn broad_query_matches_several_accounts() {
        let sim = simulator(None).await;
        let error = expect_error(client_for(&sim).account("Safe=Salesforce").await);
        assert_eq!(error.code(), Some("APPAP227E"));
        let text = message(error);
        assert!(
            text.starts_with("the query `Safe=Salesforce` matches several CyberArk accounts"),
            "{text}"
        );
        assert!(text.contains("add Object (and Folder if needed)"), "{text}");
    }

    #[tokio::test]
    async fn unknown_app_id_fails_authentication() {
        let sim = simulator(None).await;
        let mut config = config_for(&sim);
        config.app_id = "Stranger".to_owned();
        let client = CcpClient::new(&config).expect("client builds");
        let error = expect_error(client.account(PROD).await);
        assert_eq!(error.code(), Some("APPAP306E"));
        let text = message(error);
        assert!(
            text.starts_with("CyberArk could not authenticate application `Stranger` (APPAP306E"),
            "{text}"
        );
        assert!(text.contains("check cyberark.app_id, the application's allowed machines"));
    }

    #[tokio::test]
    async fn malformed_request_shows_the_accepted_form() {
        let sim = simulator(None).await;
        let error = expect_error(client_for(&sim).account("Safe=Salesforce;Colour=red").await);
        assert_eq!(error.code(), Some("AIMWS030E"));
        let text = message(error);
        assert!(
            text.contains("write the query as Key=Value pairs separated by semicolons"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn transient_conditions_are_retryable() {
        let sim = simulator(None).await;
        let client = client_for(&sim);

        sim.control().set_vault_unreachable(true);
        let error = Error::from(expect_error(client.account(PROD).await));
        assert!(
            error.message.contains("cannot reach the vault"),
            "{}",
            error.message
        );
        assert_eq!(
            (error.retryable, &error.details["code"]),
            (true, &"APPAP007E".into())
        );
        sim.control().set_vault_unreachable(false);

        sim.control()
            .set_password_change_in_progress("acme-prod", true);
        let account = client.account(PROD).await.expect("answered while changing");
        assert!(account.password_change_in_process());
        let strict = format!("{PROD};FailRequestOnPasswordChange=true");
        let error = expect_error(client.account(&strict).await);
        assert_eq!(error.code(), Some("APPAP282E"));
        assert!(error.is_retryable());
        assert!(message(error).contains("try again in a few minutes"));
    }

    #[tokio::test]
    async fn slow_provider_times_out() {
        let sim = simulator(None).await;
        sim.control().set_latency(Duration::from_millis(2500));
        let mut config = config_for(&sim);
        config.timeout_secs = 1;
        let client = CcpClient::new(&config).expect("client builds");
        let error = expect_error(client.account(PROD).await);
        assert!(error.is_retryable());
        let text = message(error);
        assert!(text.contains("did not answer within 1 s"), "{text}");
    }

    #[tokio::test]
    async fn closed_port_is_connection_refused() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
            listener.local_addr().expect("address").port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).expect("URL");
        let client = CcpClient::new(&CyberArkConfig::new(url, "InventoryHost")).expect("builds");
        let error = expect_error(client.account(PROD).await);
        assert!(error.is_retryable());
        assert_eq!(
            message(error),
            format!(
                "the CyberArk provider at 127.0.0.1:{port} refused the connection; check the \
                 host and port in cyberark.url and that the provider is running"
            )
        );
    }

    #[tokio::test]
    async fn unknown_and_unmapped_codes_say_whom_to_ask() {
        let sim = simulator(None).await;
        let client = client_for(&sim);
        sim.control().set_raw_answer(Some(RawAnswer::ccp_error(
            400,
            "ZZZZ999E",
            "Something new went wrong.",
        )));
        let error = expect_error(client.account(PROD).await);
        assert_eq!(
            (error.reason(), error.code()),
            ("provider", Some("ZZZZ999E"))
        );
        assert!(!error.is_retryable());
        assert_eq!(
            message(error),
            format!(
                "CyberArk refused the request (ZZZZ999E: Something new went wrong.; HTTP 400); \
                 ask the CyberArk administrator what ZZZZ999E means for application \
                 `InventoryHost` and the query `{PROD}`, quoting the code"
            )
        );

        sim.control().set_raw_answer(Some(RawAnswer::ccp_error(
            403,
            "APPAP008E",
            "ITATS982E User InventoryHost is not defined.",
        )));
        let error = expect_error(client.account(PROD).await);
        assert_eq!(error.reason(), "vault_user");
        let text = message(error);
        assert!(
            text.starts_with(
                "CyberArk refused application `InventoryHost` because of a vault user problem \
                 (APPAP008E: ITATS982E User InventoryHost is not defined.); ask the CyberArk \
                 administrator"
            ) && text.ends_with("quoting APPAP008E"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_failing_provider_is_not_a_wrong_url() {
        let sim = simulator(None).await;
        let client = client_for(&sim);
        for answer in [
            RawAnswer::iis_server_error(),
            RawAnswer {
                status: 503,
                content_type: "text/plain".to_owned(),
                body: "Service Unavailable".to_owned(),
            },
            RawAnswer::json(502, &serde_json::json!({})),
        ] {
            let status = answer.status;
            sim.control().set_raw_answer(Some(answer));
            let error = expect_error(client.account(PROD).await);
            assert_eq!(error.reason(), "provider_failed");
            assert!(error.is_retryable());
            assert_eq!(
                message(error),
                format!(
                    "the CyberArk provider at {} failed (HTTP {status}); try again later, and \
                     if it persists ask the CyberArk administrator to check the provider (its \
                     web server and the AIMWebService application)",
                    sim.accounts_url()
                )
            );
        }
        // A CCP error code with a 5xx keeps its own meaning.
        sim.control().set_raw_answer(Some(RawAnswer::ccp_error(
            500,
            "APPAP282E",
            "Being changed.",
        )));
        let error = expect_error(client.account(PROD).await);
        assert_eq!(error.reason(), "password_change_in_progress");
    }

    #[tokio::test]
    async fn html_answers_are_not_the_ccp() {
        let sim = simulator(None).await;
        for path in ["/AIMWebService/api/Account", "/"] {
            let mut config = config_for(&sim);
            config.path = path.to_owned();
            let client = CcpClient::new(&config).expect("client builds");
            let error = expect_error(client.account(PROD).await);
            let text = message(error);
            assert!(
                text.contains("answered something that is not the CCP API (HTTP")
                    && text.ends_with("check cyberark.url and cyberark.path"),
                "{path}: {text}"
            );
        }
    }
}

mod tls {
    use super::*;

    /// A config trusting the PKI's CA, with its client certificate when `identity`.
    fn tls_config(sim: &Simulator, dir: &Path, identity: bool) -> CyberArkConfig {
        let mut config = config_for(sim);
        config.ca_cert = Some(dir.join("ca.pem"));
        if identity {
            config.client_cert = Some(dir.join("client.pem"));
            config.client_key = Some(dir.join("client.key"));
        }
        config
    }

    fn pki_dir() -> (tempfile::TempDir, TestPki) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = TestPki::generate().expect("PKI");
        pki.write_to(dir.path()).expect("PKI written");
        (dir, pki)
    }

    #[tokio::test]
    async fn https_needs_the_extra_ca() {
        let (dir, pki) = pki_dir();
        let sim = simulator(Some(pki.server_tls(false))).await;

        let trusting = CcpClient::new(&tls_config(&sim, dir.path(), false)).expect("builds");
        let values = trusting.lookup(PROD, &fields(&[""])).await.expect("found");
        assert_eq!(values[0].expose(), VALUES[0]);

        let error = expect_error(client_for(&sim).account(PROD).await);
        assert_eq!(error.reason(), "server_certificate");
        let text = message(error);
        assert!(
            text.starts_with("the CyberArk provider's TLS certificate is not trusted (")
                && text.contains("set cyberark.ca_cert"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn client_certificate_required_by_the_provider() {
        let (dir, pki) = pki_dir();
        let sim = simulator(Some(pki.server_tls(true))).await;

        let with_cert = CcpClient::new(&tls_config(&sim, dir.path(), true)).expect("builds");
        let values = with_cert
            .lookup(PROD, &fields(&["RefreshToken"]))
            .await
            .expect("found with the client certificate");
        assert_eq!(values[0].expose(), VALUES[2]);

        let without = CcpClient::new(&tls_config(&sim, dir.path(), false)).expect("builds");
        let error = expect_error(without.account(PROD).await);
        assert_eq!(error.reason(), "client_certificate_required");
        let text = message(error);
        assert!(
            text.starts_with("the CyberArk provider requires a client certificate (")
                && text.ends_with("set cyberark.client_cert and cyberark.client_key"),
            "{text}"
        );
        assert_eq!(sim.control().tls_handshake_failures(), 1);
        assert_eq!(sim.control().requests(), 1);
    }

    #[tokio::test]
    async fn certificate_from_another_ca_is_rejected() {
        let (dir, pki) = pki_dir();
        let sim = simulator(Some(pki.server_tls(true))).await;
        let other = TestPki::generate().expect("PKI");
        std::fs::write(dir.path().join("client.pem"), &other.client_cert_pem).expect("writes");
        std::fs::write(dir.path().join("client.key"), &other.client_key_pem).expect("writes");

        let client = CcpClient::new(&tls_config(&sim, dir.path(), true)).expect("builds");
        let error = expect_error(client.account(PROD).await);
        assert_eq!(error.reason(), "client_certificate_rejected");
        assert!(
            message(error).contains("refused the client certificate"),
            "wrong message"
        );
    }
}

mod settings {
    use super::*;

    fn config(url: &str) -> CyberArkConfig {
        CyberArkConfig::new(Url::parse(url).expect("URL"), "InventoryHost")
    }

    fn problems(config: &CyberArkConfig) -> String {
        config.validate().expect_err("invalid").to_string()
    }

    #[test]
    fn validation_messages_name_the_key() {
        assert!(
            problems(&config("http://ccp.corp.example"))
                .contains("cyberark.url: `http://ccp.corp.example/` uses http; the provider must be reached over https")
        );

        let mut cert_only = config("https://ccp.corp.example");
        cert_only.client_cert = Some(PathBuf::from("/nonexistent/client.pem"));
        assert!(
            problems(&cert_only).contains("cyberark.client_key: is missing: client_cert is set")
        );

        let mut missing = config("https://ccp.corp.example");
        missing.ca_cert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let text = problems(&missing);
        assert!(
            text.contains("cyberark.ca_cert: cannot read `/nonexistent/ca.pem`"),
            "{text}"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").expect("writes");
        let mut garbage = config("https://ccp.corp.example");
        garbage.ca_cert = Some(not_pem);
        assert!(problems(&garbage).contains("holds no PEM certificate"));

        let mut bad_timeout = config("https://ccp.corp.example");
        bad_timeout.timeout_secs = 301;
        assert!(problems(&bad_timeout).contains("cyberark.timeout_secs: 301 is out of range"));

        // The client refuses invalid settings too.
        assert!(matches!(
            CcpClient::new(&bad_timeout),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn key_file_without_a_key_names_client_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = TestPki::generate().expect("PKI");
        let files = pki.write_to(dir.path()).expect("PKI written");
        let mut config = config("https://ccp.corp.example");
        config.client_cert = Some(files.client_cert.clone());
        config.client_key = Some(files.client_cert);
        let text = problems(&config);
        assert!(
            text.contains("cyberark.client_key: `") && text.contains("holds no usable private key"),
            "{text}"
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_when_loading() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = TestPki::generate().expect("PKI");
        pki.write_to(dir.path()).expect("PKI written");
        // Two generated keys: the other PKI's client key does not belong to this client
        // certificate.
        let other = TestPki::generate().expect("PKI");
        std::fs::write(dir.path().join("other.key"), &other.client_key_pem).expect("writes");
        let file = dir.path().join("invhost.toml");
        std::fs::write(
            &file,
            "[cyberark]\nurl = \"https://ccp.corp.example\"\napp_id = \"InventoryHost\"\n\
             client_cert = \"client.pem\"\nclient_key = \"other.key\"\n",
        )
        .expect("writes");
        let error = load(&file).expect_err("refused at load");
        let keys: Vec<&str> = error.problems().iter().map(|p| p.key).collect();
        assert_eq!(keys, ["client_key"]);
        assert_eq!(
            error.to_string(),
            format!(
                "invalid CyberArk settings: cyberark.client_key: `{}` is not the private key \
                 of the certificate in cyberark.client_cert (`{}`); give the key file that was \
                 created with that certificate",
                dir.path().join("other.key").display(),
                dir.path().join("client.pem").display()
            )
        );

        // The matching key loads.
        std::fs::write(
            &file,
            "[cyberark]\nurl = \"https://ccp.corp.example\"\napp_id = \"InventoryHost\"\n\
             client_cert = \"client.pem\"\nclient_key = \"client.key\"\n",
        )
        .expect("writes");
        assert!(load(&file).expect("valid").is_some());
    }

    #[test]
    fn unknown_key_in_the_table_names_line_and_key() {
        let text = "[server]\nlisten = \"127.0.0.1:8787\"\n\n[cyberark]\n\
                    url = \"https://ccp.corp.example\"\napp_id = \"InventoryHost\"\n\
                    clientcert = \"ccp-client.pem\"\n";
        let error = parse_section(text).expect_err("refused").to_string();
        assert!(
            error.starts_with(
                "invalid host config, line 7, column 1: cyberark.clientcert: not a setting of \
                 this table; expected one of `url`, `app_id`, `path`, `client_cert`"
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn load_resolves_files_next_to_the_config() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = TestPki::generate().expect("PKI");
        pki.write_to(dir.path()).expect("PKI written");
        let sim = simulator(Some(pki.server_tls(true))).await;
        let file = dir.path().join("invhost.toml");
        std::fs::write(
            &file,
            format!(
                "[cyberark]\nurl = \"{}\"\napp_id = \"InventoryHost\"\n\
                 client_cert = \"client.pem\"\nclient_key = \"client.key\"\n\
                 ca_cert = \"ca.pem\"\ntimeout_secs = 5\n",
                sim.base_url()
            ),
        )
        .expect("writes");
        let config = load(&file).expect("valid").expect("has the table");
        assert_eq!(
            config.ca_cert.as_deref(),
            Some(dir.path().join("ca.pem").as_path())
        );
        let values = CcpClient::new(&config)
            .expect("builds")
            .lookup(PROD, &fields(&["ConsumerSecret"]))
            .await
            .expect("found");
        assert_eq!(values[0].expose(), VALUES[1]);

        std::fs::write(&file, "[other]\nx = 1\n").expect("writes");
        assert!(load(&file).expect("valid").is_none());
    }
}
