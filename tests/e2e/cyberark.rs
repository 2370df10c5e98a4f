//! Connections whose secrets come from CyberArk: the Salesforce credentials and the proxy's,
//! from the CCP simulator over mutual TLS. Nothing read from the vault may show or be stored.

use invhost_sim_cyberark::{Account, SimConfig as VaultConfig, Simulator as Vault, TestPki};
use invhost_sim_salesforce::SimConfig;
use invhost_testkit::{PROXY_PASSWORD, PROXY_USER, Tinyproxy};
use serde_json::{Value, json};

use crate::{connections::*, support::*};

/// A Salesforce refresh token issued by the simulator, through a throw-away local connection.
fn issue_refresh_token(sim: &invhost_sim_salesforce::Simulator) -> String {
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "seed", &settings(sim));
    Run::of(
        env.invhost(&[
            "connections",
            "generate-token",
            "seed",
            "--no-browser",
            "--timeout",
            "20",
        ]),
        None,
    )
    .success();
    sim.control()
        .valid_refresh_tokens()
        .pop()
        .expect("a token was issued")
}

struct Setup {
    env: Env,
    vault: Vault,
    _pki_dir: tempfile::TempDir,
}

/// A host whose `invhost.toml` points at a CCP simulator that requires a client certificate.
fn setup(accounts: Vec<Account>, with_client_cert: bool) -> Setup {
    let pki = TestPki::generate().expect("test PKI");
    let pki_dir = tempfile::tempdir().expect("dir");
    let files = pki.write_to(pki_dir.path()).expect("PKI files");
    let vault = Vault::spawn(VaultConfig {
        accounts,
        tls: Some(pki.server_tls(true)),
        ..VaultConfig::default()
    })
    .expect("vault simulator");
    let env = Env::with_plugins(&[SALESFORCE]);
    std::fs::create_dir_all(env.data_dir()).expect("data dir");
    let mut config = format!(
        "[cyberark]\nurl = \"{}\"\napp_id = \"InventoryHost\"\nca_cert = \"{}\"\n",
        vault.base_url(),
        files.ca_cert.display()
    );
    if with_client_cert {
        config += &format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"\n",
            files.client_cert.display(),
            files.client_key.display()
        );
    }
    std::fs::write(env.data_dir().join("invhost.toml"), config).expect("config");
    Setup {
        env,
        vault,
        _pki_dir: pki_dir,
    }
}

fn vault_settings(sim: &invhost_sim_salesforce::Simulator, object: &str) -> Value {
    json!({
        "login_url": sim.base_url(),
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {
            "source": "cyberark",
            "query": format!("Safe=Salesforce;Object={object}"),
            "consumer_secret_field": "ConsumerSecret",
            "refresh_token_field": "RefreshToken"
        }
    })
}

#[test]
fn salesforce_and_proxy_credentials_from_cyberark_pass_the_test() {
    let sim = approving_simulator();
    let token = issue_refresh_token(&sim);
    let proxy = Tinyproxy::start();
    let setup = setup(
        vec![
            Account::new("Salesforce", "acme-prod", "unused-password")
                .property("ConsumerSecret", SECRET)
                .property("RefreshToken", &token),
            Account::new("Proxy", "proxy-account", PROXY_PASSWORD).user_name(PROXY_USER),
        ],
        true,
    );
    let mut document = vault_settings(&sim, "acme-prod");
    document["proxy"] = json!({
        "server": proxy.url(),
        "credentials": {"source": "cyberark", "query": "Safe=Proxy;Object=proxy-account"}
    });
    add(&setup.env, "acme", &document);
    let run = test_run(&setup.env, "acme");
    assert!(run.success().contains("API usage: "), "{run:?}");
    assert_eq!(
        setup.vault.control().requests(),
        2,
        "one lookup per account: the Salesforce credentials and the proxy's"
    );
    let secrets = [SECRET, token.as_str(), PROXY_PASSWORD];
    assert_absent(run.stdout.as_bytes(), &secrets, "test stdout");
    assert_absent(
        run.stderr.as_bytes(),
        &secrets,
        "test stderr at trace level",
    );
    assert_absent(&database_bytes(&setup.env), &secrets, "the database");
    let shown = setup.env.run(&["connections", "show", "acme", "--json"]);
    assert_absent(shown.stdout.as_bytes(), &secrets, "show");
}

#[test]
fn a_wrong_object_says_no_account_matches_and_what_to_check() {
    let sim = simulator(SimConfig::default());
    let setup = setup(
        vec![Account::new("Salesforce", "acme-prod", "pw").property("ConsumerSecret", SECRET)],
        true,
    );
    add(&setup.env, "acme", &vault_settings(&sim, "acme-typo"));
    let run = test_run(&setup.env, "acme");
    let stderr = run.failure();
    assert!(stderr.contains("APPAP004E"), "{stderr}");
    assert!(stderr.contains("Safe"), "says what to check: {stderr}");
    let run = setup.env.run(&[
        "cyberark",
        "test",
        "--query",
        "Safe=Salesforce;Object=acme-typo",
    ]);
    assert!(run.failure().contains("APPAP004E"), "{run:?}");
}

#[test]
fn a_property_that_does_not_exist_lists_the_account_s_property_names() {
    let sim = simulator(SimConfig::default());
    let setup = setup(
        vec![Account::new("Salesforce", "acme-prod", "pw").property("ConsumerSecret", SECRET)],
        true,
    );
    add(&setup.env, "acme", &vault_settings(&sim, "acme-prod"));
    let run = test_run(&setup.env, "acme");
    let stderr = run.failure();
    assert!(stderr.contains("RefreshToken"), "{stderr}");
    assert!(
        stderr.contains("ConsumerSecret"),
        "lists the names the account has: {stderr}"
    );
    assert_absent(stderr.as_bytes(), &[SECRET, "pw"], "the error");
    let run = setup.env.run(&[
        "cyberark",
        "test",
        "--query",
        "Safe=Salesforce;Object=acme-prod",
        "--field",
        "Nope",
    ]);
    let stderr = run.failure();
    assert!(stderr.contains("ConsumerSecret"), "{stderr}");
    let ok = setup.env.run(&[
        "cyberark",
        "test",
        "--query",
        "Safe=Salesforce;Object=acme-prod",
        "--field",
        "consumersecret",
    ]);
    let out = ok.success();
    assert!(out.contains("Property `consumersecret`: present."), "{out}");
    assert_absent(out.as_bytes(), &[SECRET], "cyberark test output");
}

/// `cyberark test ARGS --json`: the run, after checking that stdout is one JSON object.
fn cyberark_test_json(env: &Env, args: &[&str]) -> (Run, Value) {
    let mut all = vec!["cyberark", "test"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = env.run(&all);
    let value = run.json();
    assert!(value.is_object(), "{run:?}");
    (run, value)
}

/// The Salesforce account with its consumer secret, and a refresh token property left empty.
fn account_with_an_empty_refresh_token() -> Account {
    Account::new("Salesforce", "acme-prod", "pw")
        .property("ConsumerSecret", SECRET)
        .property("RefreshToken", "")
}

#[test]
fn an_empty_property_is_present_but_empty_and_fails_like_a_lookup() {
    let setup = setup(vec![account_with_an_empty_refresh_token()], true);
    let query = ["--query", "Safe=Salesforce;Object=acme-prod"];
    let run = setup.env.run(
        &[
            &["cyberark", "test"][..],
            &query,
            &["--field", "RefreshToken"],
        ]
        .concat(),
    );
    let stderr = run.failure();
    assert!(
        run.stdout
            .contains("Property `RefreshToken`: present but empty."),
        "{run:?}"
    );
    assert_eq!(
        stderr.trim(),
        "invhost: property `RefreshToken` of the CyberArk account matching \
         `Safe=Salesforce;Object=acme-prod` is empty; store the value there in CyberArk, or \
         name another property"
    );

    let (run, value) = cyberark_test_json(
        &setup.env,
        &[&query[..], &["--field", "RefreshToken"]].concat(),
    );
    assert!(run.failure().contains("is empty"), "{run:?}");
    assert_eq!(value["ok"], false);
    assert_eq!(
        value["field"],
        json!({"name": "RefreshToken", "present": true, "empty": true})
    );
    assert_eq!(value["reason"], "empty_property");

    let (run, value) = cyberark_test_json(
        &setup.env,
        &[&query[..], &["--field", "ConsumerSecret"]].concat(),
    );
    run.success();
    assert_eq!(value["ok"], true);
    assert_eq!(
        value["field"],
        json!({"name": "ConsumerSecret", "present": true, "empty": false})
    );
    assert!(value.get("error").is_none(), "{value}");
    assert_absent(
        run.stdout.as_bytes(),
        &[SECRET, "pw"],
        "cyberark test --json",
    );
}

#[test]
fn cyberark_test_json_prints_one_object_whatever_happens() {
    let setup = setup(
        vec![Account::new("Salesforce", "acme-prod", "pw").property("ConsumerSecret", SECRET)],
        true,
    );
    // The lookup fails: no account.
    let (run, value) =
        cyberark_test_json(&setup.env, &["--query", "Safe=Salesforce;Object=acme-typo"]);
    let stderr = run.failure();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(value["ok"], false);
    assert_eq!(value["reason"], "not_found");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("APPAP004E")),
        "{value}"
    );
    assert!(value.get("properties").is_none(), "{value}");

    // A property the account lacks: the names it has.
    let (run, value) = cyberark_test_json(
        &setup.env,
        &[
            "--query",
            "Safe=Salesforce;Object=acme-prod",
            "--field",
            "Nope",
        ],
    );
    run.failure();
    assert_eq!(value["ok"], false);
    assert_eq!(value["reason"], "missing_property");
    assert_eq!(
        value["field"],
        json!({"name": "Nope", "present": false, "empty": false})
    );
    assert!(
        value["properties"]
            .as_array()
            .is_some_and(|names| names.contains(&json!("ConsumerSecret"))),
        "{value}"
    );
    assert_absent(
        run.stdout.as_bytes(),
        &[SECRET, "pw"],
        "cyberark test --json",
    );

    // CyberArk not configured.
    let bare = Env::with_plugins(&[SALESFORCE]);
    let (run, value) = cyberark_test_json(&bare, &["--query", "Safe=S;Object=o"]);
    assert!(
        run.failure().contains("CyberArk is not configured"),
        "{run:?}"
    );
    assert_eq!(value["ok"], false);
    assert_eq!(value["reason"], "not_configured");

    // A configuration that does not load stops every command; this one still answers JSON.
    std::fs::create_dir_all(bare.data_dir()).expect("data directory");
    std::fs::write(
        bare.data_dir().join("invhost.toml"),
        "[cyberark]\nurl = \"https://127.0.0.1:9\"\n",
    )
    .expect("config written");
    let (run, value) = cyberark_test_json(&bare, &["--query", "Safe=S;Object=o"]);
    let stderr = run.failure();
    assert!(stderr.contains("cyberark.app_id"), "{run:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(value["ok"], false);
    assert_eq!(value["reason"], "config");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("cyberark.app_id")),
        "{value}"
    );
}

#[test]
fn a_proxy_account_without_a_user_name_says_what_a_proxy_account_needs() {
    let sim = simulator(SimConfig::default());
    let setup = setup(
        vec![Account::new("Proxy", "proxy-account", "pw-proxy")],
        true,
    );
    let mut document = settings(&sim);
    document["credentials"]["refresh_token"] = json!("not-checked-before-the-proxy");
    document["proxy"] = json!({
        "server": "http://127.0.0.1:9",
        "credentials": {"source": "cyberark", "query": "Safe=Proxy;Object=proxy-account"}
    });
    add(&setup.env, "acme", &document);
    let run = test_run(&setup.env, "acme");
    let stderr = run.failure();
    assert!(
        stderr.contains(
            "the proxy's CyberArk account `Safe=Proxy;Object=proxy-account` has no property \
             `UserName` (its properties are Content, Folder, Name, PasswordChangeInProcess, \
             Safe); a proxy account needs a UserName property (the proxy user) beside its \
             password: ask the CyberArk administrator to add it, or set proxy.credentials to \
             source `local`"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("leave the field empty"), "{stderr}");
    assert_absent(stderr.as_bytes(), &["pw-proxy"], "the error");
}

#[test]
fn a_client_key_that_does_not_match_the_certificate_stops_every_command() {
    let setup = setup(vec![Account::new("Salesforce", "acme-prod", "pw")], true);
    let other = TestPki::generate().expect("test PKI");
    let config_file = setup.env.data_dir().join("invhost.toml");
    let config = std::fs::read_to_string(&config_file).expect("config");
    let key_line = config
        .lines()
        .find(|line| line.starts_with("client_key"))
        .expect("a client_key line");
    let other_key = setup._pki_dir.path().join("other.key");
    std::fs::write(&other_key, &other.client_key_pem).expect("key");
    std::fs::write(
        &config_file,
        config.replace(
            key_line,
            &format!("client_key = \"{}\"", other_key.display()),
        ),
    )
    .expect("config");
    for args in [
        &["connections", "list"][..],
        &[
            "cyberark",
            "test",
            "--query",
            "Safe=Salesforce;Object=acme-prod",
        ][..],
    ] {
        let run = setup.env.run(args);
        let stderr = run.failure();
        assert!(
            stderr.contains(&format!(
                "cyberark.client_key: `{}` is not the private key of the certificate in \
                 cyberark.client_cert",
                other_key.display()
            )),
            "{args:?}: {stderr}"
        );
        for jargon in ["KeyMismatch", "cyberark.ca_cert", "CyberArk client: cannot"] {
            assert!(!stderr.contains(jargon), "{args:?}: {stderr}");
        }
    }
    assert_eq!(
        setup.vault.control().requests(),
        0,
        "refused before any lookup"
    );
}

#[test]
fn a_provider_that_requires_a_client_certificate_says_so() {
    let setup = setup(vec![Account::new("Salesforce", "acme-prod", "pw")], false);
    let run = setup.env.run(&[
        "cyberark",
        "test",
        "--query",
        "Safe=Salesforce;Object=acme-prod",
    ]);
    let stderr = run.failure();
    assert!(stderr.contains("client certificate"), "{stderr}");
    assert!(stderr.contains("cyberark.client_cert"), "{stderr}");
}

#[test]
fn generating_a_token_for_vault_credentials_prints_it_once_to_store_in_the_vault() {
    let sim = approving_simulator();
    let setup = setup(
        vec![Account::new("Salesforce", "acme-prod", "pw").property("ConsumerSecret", SECRET)],
        true,
    );
    add(&setup.env, "acme", &vault_settings(&sim, "acme-prod"));
    let run = Run::of(
        setup.env.invhost(&[
            "connections",
            "generate-token",
            "acme",
            "--no-browser",
            "--timeout",
            "20",
        ]),
        None,
    );
    let out = run.success();
    let token = sim.control().valid_refresh_tokens().pop().expect("issued");
    assert_eq!(
        out.matches(token.as_str()).count(),
        1,
        "printed exactly once: {out}"
    );
    assert!(
        out.contains("RefreshToken"),
        "says which property to store it in: {out}"
    );
    assert_absent(
        &database_bytes(&setup.env),
        &[token.as_str(), SECRET],
        "the database",
    );
}

#[test]
fn an_empty_refresh_token_in_the_vault_says_which_command_generates_one() {
    let sim = approving_simulator();
    let setup = setup(vec![account_with_an_empty_refresh_token()], true);
    add(&setup.env, "acme", &vault_settings(&sim, "acme-prod"));
    let run = test_run(&setup.env, "acme");
    assert!(
        run.failure().contains(
            "the refresh token in CyberArk account `Safe=Salesforce;Object=acme-prod` (property \
             RefreshToken) is empty (no token generated and stored there yet); generate \
             credentials.refresh_token with `invhost connections generate-token acme`"
        ),
        "{run:?}"
    );
    assert_eq!(sim.control().requests(), 0, "nothing reached Salesforce");
}

#[test]
fn a_bad_cyberark_configuration_names_the_key() {
    let env = Env::with_plugins(&[SALESFORCE]);
    std::fs::create_dir_all(env.data_dir()).expect("data dir");
    std::fs::write(
        env.data_dir().join("invhost.toml"),
        "[cyberark]\nurl = \"http://ccp.corp.example\"\napp_id = \"InventoryHost\"\ncolour = 1\n",
    )
    .expect("config");
    let run = env.run(&["connections", "list"]);
    assert!(run.failure().contains("colour"), "{run:?}");
    std::fs::write(
        env.data_dir().join("invhost.toml"),
        "[cyberark]\nurl = \"http://ccp.corp.example\"\napp_id = \"X\"\n",
    )
    .expect("config");
    let run = env.run(&["connections", "list"]);
    assert!(run.failure().contains("cyberark.url"), "{run:?}");
}
