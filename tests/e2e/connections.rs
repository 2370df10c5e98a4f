//! `invhost connections ...` against the Salesforce simulator: the device flow, tests, refresh,
//! the proxy (a real tinyproxy), and secrets that never show.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Stdio},
};

use invhost_sim_salesforce::{SimConfig, Simulator};
use invhost_testkit::{PROXY_PASSWORD, PROXY_USER, Tinyproxy};
use serde_json::{Value, json};

use crate::support::*;

pub(crate) const SECRET: &str = "SIM_CONSUMER_SECRET";

/// A simulator that approves every device code on the first poll.
pub(crate) fn approving_simulator() -> Simulator {
    simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        ..SimConfig::default()
    })
}

/// Runs `generate-token` against an approving simulator; it must succeed.
pub(crate) fn generate_approved(env: &Env, name: &str) -> Run {
    let run = Run::of(
        env.invhost(&[
            "connections",
            "generate-token",
            name,
            "--no-browser",
            "--timeout",
            "20",
        ]),
        None,
    );
    run.success();
    run
}

pub(crate) fn simulator(config: SimConfig) -> Simulator {
    Simulator::spawn(SimConfig {
        device_interval_secs: 1,
        ..config
    })
    .expect("simulator starts")
}

pub(crate) fn settings(sim: &Simulator) -> Value {
    json!({
        "login_url": sim.base_url(),
        "consumer_key": "SIM_CONSUMER_KEY",
        "credentials": {"source": "local", "consumer_secret": SECRET, "refresh_token": ""}
    })
}

pub(crate) fn add(env: &Env, name: &str, settings: &Value) {
    let file = env.write(
        &format!("{}.json", name.replace(' ', "_")),
        &settings.to_string(),
    );
    env.run(&[
        "connections",
        "add",
        name,
        "--type",
        "salesforce",
        "--settings",
        file.to_str().expect("utf-8"),
    ])
    .success();
}

/// A running `generate-token`; reads its output until the user code shows.
struct Generation {
    child: Child,
    lines: Vec<String>,
    reader: BufReader<std::process::ChildStdout>,
}

impl Generation {
    fn start(env: &Env, name: &str, extra: &[&str]) -> Generation {
        let mut args = vec!["connections", "generate-token", name, "--no-browser"];
        args.extend_from_slice(extra);
        let mut command = env.invhost(&args);
        command
            .env("INVHOST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("invhost starts");
        let reader = BufReader::new(child.stdout.take().expect("stdout"));
        Generation {
            child,
            lines: Vec::new(),
            reader,
        }
    }

    /// Reads stdout until a line starting with `  Code: `; returns the code.
    fn user_code(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).expect("read") > 0,
                "no code shown: {:?}",
                self.lines
            );
            self.lines.push(line.clone());
            if let Some(code) = line.trim().strip_prefix("Code: ") {
                return code.to_owned();
            }
        }
    }

    fn finish(mut self) -> Run {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.reader, &mut rest).expect("read rest");
        let output = self.child.wait_with_output().expect("ends");
        Run {
            code: output.status.code(),
            stdout: self.lines.concat() + &rest,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn generate(env: &Env, sim: &Simulator, name: &str) -> Run {
    let mut generation = Generation::start(env, name, &[]);
    let code = generation.user_code();
    assert!(
        sim.control().approve(&code),
        "the code shown is the simulator's"
    );
    generation.finish()
}

pub(crate) fn test_run(env: &Env, name: &str) -> Run {
    let mut command = env.invhost(&["connections", "test", name]);
    command.env("INVHOST_LOG", "trace");
    Run::of(command, None)
}

/// The database with its write-ahead log and shared-memory index (each when it exists), for
/// secret scans: a value may sit in any of the three.
pub(crate) fn database_bytes(env: &Env) -> Vec<u8> {
    let mut bytes = Vec::new();
    for file in ["invhost.db", "invhost.db-wal", "invhost.db-shm"] {
        if let Ok(content) = std::fs::read(env.data_dir().join(file)) {
            bytes.extend(content);
        }
    }
    assert!(!bytes.is_empty(), "the database exists");
    bytes
}

pub(crate) fn assert_absent(haystack: &[u8], secrets: &[&str], what: &str) {
    for secret in secrets {
        let found = haystack
            .windows(secret.len())
            .any(|w| w == secret.as_bytes());
        assert!(!found, "a secret appears in {what}");
    }
}

#[test]
fn generate_a_token_then_test_and_no_secret_shows_anywhere() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "Acme Prod", &settings(&sim));

    let generation = generate(&env, &sim, "Acme Prod");
    let out = generation.success().to_owned();
    assert!(
        out.contains("/setup/connect?user_code="),
        "the link carries the code: {out}"
    );
    let tokens = sim.control().valid_refresh_tokens();
    assert_eq!(tokens.len(), 1, "one refresh token was issued");

    let test = test_run(&env, "Acme Prod");
    let report = test.success();
    assert!(report.contains("API usage: "), "{report}");
    assert!(report.contains("of 15000 calls"), "{report}");

    let show = env.run(&["connections", "show", "Acme Prod", "--json"]);
    let view = show.json();
    assert_eq!(view["settings"]["credentials"]["refresh_token"], "********");
    assert_eq!(
        view["settings"]["credentials"]["consumer_secret"],
        "********"
    );
    assert_eq!(view["auth_state"], "ok");

    // Access tokens are `{org id}!{random}`: the org id followed by `!` never shows.
    let secrets = [SECRET, tokens[0].as_str(), "00D000000000001AAA!"];
    for (what, run) in [
        ("generate-token", &generation),
        ("test", &test),
        ("show", &show),
    ] {
        assert_absent(run.stdout.as_bytes(), &secrets, &format!("{what} stdout"));
        assert_absent(
            run.stderr.as_bytes(),
            &secrets,
            &format!("{what} stderr at trace level"),
        );
    }
    assert_absent(&database_bytes(&env), &secrets, "the database");
}

#[test]
fn a_missing_or_different_master_key_is_a_clear_error() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    let with_another_key = |args: &[&str]| {
        let mut command = env.invhost(args);
        command.env(
            "INVHOST_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        );
        let run = Run::of(command, None);
        assert!(
            run.failure().contains("encrypted with another master key"),
            "{run:?}"
        );
    };
    with_another_key(&["connections", "test", "acme"]);
    // Adding a connection under another key would leave two keys in one database.
    let file = env.write("other.json", &settings(&sim).to_string());
    let other = file.to_str().expect("utf-8");
    let add_other = [
        "connections",
        "add",
        "other",
        "--type",
        "salesforce",
        "--settings",
        other,
    ];
    with_another_key(&add_other);
    let key_file = env.data_dir().join("master.key");
    std::fs::remove_file(&key_file).expect("key file exists");
    let run = env.run(&["connections", "test", "acme"]);
    assert!(run.failure().contains("the master key"), "{run:?}");
    assert!(
        run.stderr.contains("restore it from your backup"),
        "{run:?}"
    );
    // Nor does a lost key file start a new key while secrets need the old one.
    let run = env.run(&add_other);
    assert!(
        run.failure().contains("restore it from your backup"),
        "{run:?}"
    );
    assert!(!key_file.exists(), "no second key was created");
    let list = env.run(&["connections", "list", "--json"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

#[test]
fn an_update_that_sends_the_placeholder_keeps_the_stored_secrets() {
    let sim = approving_simulator();
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    generate_approved(&env, "acme");
    let shown = env.run(&["connections", "show", "acme", "--json"]).json();
    let file = env.write("update.json", &shown["settings"].to_string());
    env.run(&[
        "connections",
        "update",
        "acme",
        "--settings",
        file.to_str().expect("utf-8"),
    ])
    .success();
    test_run(&env, "acme").success();
}

#[test]
fn denied_in_the_browser() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    let mut generation = Generation::start(&env, "acme", &[]);
    let code = generation.user_code();
    assert!(sim.control().deny(&code));
    let run = generation.finish();
    assert!(
        run.failure().contains("access was denied in the browser"),
        "{run:?}"
    );
}

#[test]
fn a_wrong_consumer_key_says_so() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    let mut document = settings(&sim);
    document["consumer_key"] = json!("3MVG9-not-the-key");
    add(&env, "acme", &document);
    let run = Run::of(
        env.invhost(&["connections", "generate-token", "acme", "--no-browser"]),
        None,
    );
    assert!(
        run.failure()
            .contains("the consumer key does not match the connected app"),
        "{run:?}"
    );
}

#[test]
fn nobody_approves_before_the_timeout() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    let run = Run::of(
        env.invhost(&[
            "connections",
            "generate-token",
            "acme",
            "--no-browser",
            "--timeout",
            "2",
        ]),
        None,
    );
    assert!(run.failure().contains("timed out"), "{run:?}");
    assert!(sim.control().valid_refresh_tokens().is_empty());
}

#[test]
fn ctrl_c_cancels_the_flow_cleanly() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    let mut generation = Generation::start(&env, "acme", &[]);
    generation.user_code();
    let pid = generation.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let run = generation.finish();
    assert_eq!(run.code, Some(130), "{run:?}");
    assert!(
        run.stderr.contains("cancelled; no token was stored"),
        "{run:?}"
    );
}

#[test]
fn an_unresolvable_login_host_says_the_name_could_not_be_resolved() {
    // In a network namespace of its own the host has no network at all, so the name cannot be
    // resolved and no query leaves the machine.
    let env = Env::with_plugins(&[SALESFORCE]);
    add(
        &env,
        "acme",
        &json!({
            "login_url": "https://login.salesforce.com",
            "consumer_key": "K",
            "credentials": {"source": "local", "consumer_secret": "S", "refresh_token": ""}
        }),
    );
    let invhost = env.invhost(&[
        "connections",
        "generate-token",
        "acme",
        "--no-browser",
        "--timeout",
        "5",
    ]);
    let mut command = std::process::Command::new("unshare");
    command
        .arg("--net")
        .arg("--map-root-user")
        .arg(invhost.get_program())
        .args(invhost.get_args());
    command
        .env_remove("INVHOST_PLUGINS_DIR")
        .env_remove("INVHOST_DATA_DIR");
    let run = Run::of(command, None);
    assert!(
        run.failure()
            .contains("the host name login.salesforce.com could not be resolved"),
        "{run:?}"
    );
}

#[test]
fn a_revoked_token_marks_the_connection_for_reauthorization() {
    let sim = approving_simulator();
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    generate_approved(&env, "acme");
    sim.control().revoke_refresh_tokens();
    let run = test_run(&env, "acme");
    assert!(
        run.failure()
            .contains("invhost connections generate-token acme"),
        "{run:?}"
    );
    let list = env.run(&["connections", "list", "--json"]).json();
    assert_eq!(list[0]["auth_state"], "reauthorization_required");
    let text = env.run(&["connections", "list"]);
    assert!(text.success().contains("re-authorization required"));
    // A new token clears the mark.
    generate_approved(&env, "acme");
    assert_eq!(
        env.run(&["connections", "list", "--json"]).json()[0]["auth_state"],
        "ok"
    );
}

#[test]
fn a_connection_without_a_token_says_which_command_generates_it() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    // A name with a space: the command to paste quotes it.
    add(&env, "Acme Prod", &settings(&sim));
    let expected = "credentials.refresh_token: is empty (no token generated yet); generate \
                    credentials.refresh_token with \
                    `invhost connections generate-token \"Acme Prod\"`";
    let run = test_run(&env, "Acme Prod");
    assert!(run.failure().contains(expected), "{run:?}");
    let run = env.run(&["run", "Acme Prod"]);
    assert!(run.failure().contains(expected), "{run:?}");
    let runs = env.run(&["runs", "Acme Prod", "--json"]).json();
    assert!(
        runs[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains(expected)),
        "{runs}"
    );
    // Nothing reached Salesforce, and nothing asks for re-authorization: there was no token.
    assert_eq!(sim.control().requests(), 0);
    assert_eq!(
        env.run(&["connections", "list", "--json"]).json()[0]["auth_state"],
        "ok"
    );
}

/// The environment's proxy variables are not used: without a `proxy` block, calls go direct
/// (the operator guide says so). Here they point at a port where nothing listens.
#[test]
fn the_environments_proxy_variables_are_not_used() {
    let sim = approving_simulator();
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    let dead = format!("http://127.0.0.1:{}", invhost_testkit::free_port());
    let with_proxy_variables = |args: &[&str]| {
        let mut command = env.invhost(args);
        for variable in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env(variable, &dead);
            command.env(variable.to_lowercase(), &dead);
        }
        command.env_remove("NO_PROXY").env_remove("no_proxy");
        Run::of(command, None)
    };
    with_proxy_variables(&["connections", "generate-token", "acme", "--no-browser"]).success();
    let run = with_proxy_variables(&["connections", "test", "acme"]);
    assert!(run.success().contains("API usage"), "{run:?}");
}

#[test]
fn a_rotated_refresh_token_is_stored_and_used_next_time() {
    let sim = simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        rotate_refresh_tokens: true,
        ..SimConfig::default()
    });
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "acme", &settings(&sim));
    generate_approved(&env, "acme");
    // Each test rotates the token; the second works only if the first stored the new one.
    test_run(&env, "acme").success();
    test_run(&env, "acme").success();
    let tokens = sim.control().valid_refresh_tokens();
    assert_eq!(tokens.len(), 1);
    assert_absent(&database_bytes(&env), &[tokens[0].as_str()], "the database");
}

fn with_proxy(
    sim: &Simulator,
    proxy: &Tinyproxy,
    password: &str,
    login_url: Option<String>,
) -> Value {
    let mut document = settings(sim);
    if let Some(url) = login_url {
        document["login_url"] = json!(url);
    }
    document["proxy"] = json!({
        "server": proxy.url(),
        "credentials": {"source": "local", "username": PROXY_USER, "password": password}
    });
    document
}

#[test]
fn through_an_authenticating_proxy() {
    let sim = approving_simulator();
    let proxy = Tinyproxy::start();
    let env = Env::with_plugins(&[SALESFORCE]);
    add(
        &env,
        "acme",
        &with_proxy(&sim, &proxy, PROXY_PASSWORD, None),
    );
    let requests_before = sim.control().requests();
    generate_approved(&env, "acme");
    let test = test_run(&env, "acme");
    test.success();
    assert!(sim.control().requests() > requests_before);
    assert_absent(
        test.stderr.as_bytes(),
        &[PROXY_PASSWORD],
        "test stderr at trace level",
    );
    assert_absent(&database_bytes(&env), &[PROXY_PASSWORD], "the database");
    let shown = env.run(&["connections", "show", "acme", "--json"]).json();
    assert_eq!(
        shown["settings"]["proxy"]["credentials"]["password"],
        "********"
    );
    // The calls really went through the proxy: without it they fail.
    drop(proxy);
    let run = test_run(&env, "acme");
    assert!(run.failure().contains("proxy"), "{run:?}");
}

#[test]
fn a_wrong_proxy_password_says_the_proxy_refused_the_credentials() {
    let sim = simulator(SimConfig::default());
    let proxy = Tinyproxy::start();
    let env = Env::with_plugins(&[SALESFORCE]);
    // An https login URL goes through a CONNECT tunnel, as real Salesforce does.
    let https = format!("https://127.0.0.1:{}", sim.addr().port());
    add(
        &env,
        "acme",
        &with_proxy(&sim, &proxy, "wrong-password", Some(https)),
    );
    let run = Run::of(
        env.invhost(&["connections", "generate-token", "acme", "--no-browser"]),
        None,
    );
    assert!(
        run.failure().contains("the proxy refused the credentials"),
        "{run:?}"
    );
    assert_eq!(sim.control().requests(), 0, "nothing reached Salesforce");
}

#[test]
fn names_follow_the_rule_and_are_unique() {
    let sim = simulator(SimConfig::default());
    let env = Env::with_plugins(&[SALESFORCE]);
    let file = env.write("s.json", &settings(&sim).to_string());
    let path = file.to_str().expect("utf-8");
    let run = env.run(&[
        "connections",
        "add",
        "acme/prod",
        "--type",
        "salesforce",
        "--settings",
        path,
    ]);
    assert!(run.failure().contains("contains `/`"), "{run:?}");
    env.run(&[
        "connections",
        "add",
        "Acme",
        "--type",
        "salesforce",
        "--settings",
        path,
    ])
    .success();
    let run = env.run(&[
        "connections",
        "add",
        "acme",
        "--type",
        "salesforce",
        "--settings",
        path,
    ]);
    // The existing connection is named as it is stored, not as typed.
    assert!(
        run.failure()
            .contains("a connection named `Acme` already exists"),
        "{run:?}"
    );
    // A name is quoted with its control characters escaped: no escape sequence reaches the
    // terminal.
    let run = env.run(&[
        "connections",
        "add",
        "\u{1b}[31mRED",
        "--type",
        "salesforce",
        "--settings",
        path,
    ]);
    let stderr = run.failure();
    assert!(
        stderr.contains("connection name `\\u{1b}[31mRED` starts with `\\u{1b}`"),
        "{run:?}"
    );
    assert!(!stderr.contains('\u{1b}'), "{run:?}");
    let run = env.run(&["connections", "show", "RED\u{1b}[0m"]);
    let stderr = run.failure();
    assert!(
        stderr.contains("no connection named `RED\\u{1b}[0m`"),
        "{run:?}"
    );
    assert!(!stderr.contains('\u{1b}'), "{run:?}");
    let run = env.run_with_input(
        &[
            "connections",
            "add",
            "Beta",
            "--type",
            "salesforce",
            "--settings",
            "-",
        ],
        "{}",
    );
    assert!(
        run.failure()
            .contains("Mandatory parameter(s) missing: login_url, consumer_key, credentials"),
        "{run:?}"
    );
    env.run(&["connections", "remove", "acme"]).success();
    assert!(
        env.run(&["connections", "show", "Acme"])
            .failure()
            .contains("no connection named")
    );
}

#[test]
fn a_token_is_stored_even_when_the_settings_leave_the_refresh_token_out() {
    let sim = approving_simulator();
    let env = Env::with_plugins(&[SALESFORCE]);
    let mut document = settings(&sim);
    document["credentials"]
        .as_object_mut()
        .expect("credentials object")
        .remove("refresh_token");
    add(&env, "acme", &document);
    generate_approved(&env, "acme");
    test_run(&env, "acme").success();
    let shown = env.run(&["connections", "show", "acme", "--json"]).json();
    assert_eq!(
        shown["settings"]["credentials"]["refresh_token"],
        "********"
    );
}
