//! `invhost settings validate SOURCE_TYPE FILE|-`.

use serde_json::json;

use crate::support::*;

fn validate(document: &serde_json::Value, extra: &[&str]) -> Run {
    let env = Env::with_plugins(&[SALESFORCE]);
    let mut args = vec!["settings", "validate", "salesforce", "-"];
    args.extend_from_slice(extra);
    env.run_with_input(&args, &document.to_string())
}

#[test]
fn an_empty_document_names_every_missing_field_in_one_line() {
    let run = validate(&json!({}), &[]);
    let stderr = run.failure();
    assert_eq!(
        stderr.trim_end(),
        "invhost: Mandatory parameter(s) missing: login_url, consumer_key, credentials"
    );
}

#[test]
fn a_complete_document_is_valid() {
    let run = validate(&salesforce_settings(), &[]);
    assert_eq!(run.success().trim(), "valid");
    assert_eq!(run.stderr, "");
}

#[test]
fn a_document_can_come_from_a_file() {
    let env = Env::with_plugins(&[SALESFORCE]);
    let file = env.write("settings.json", &salesforce_settings().to_string());
    let run = env.run(&[
        "settings",
        "validate",
        "salesforce",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.success().trim(), "valid");
}

#[test]
fn a_proxy_in_another_form_names_the_accepted_forms() {
    let mut document = salesforce_settings();
    document["proxy"]["server"] = json!("ftp://x:1");
    let run = validate(&document, &[]);
    let stderr = run.failure();
    assert!(stderr.contains("proxy.server"), "{stderr}");
    assert!(
        stderr.contains("http://host:port, https://host:port or IP:port"),
        "{stderr}"
    );
}

#[test]
fn an_https_proxy_is_valid_with_a_warning() {
    let mut document = salesforce_settings();
    document["proxy"]["server"] = json!("https://proxy.corp:3128");
    let run = validate(&document, &[]);
    run.success();
    assert!(
        run.stderr.starts_with("warning: proxy.server"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_empty_refresh_token_is_fine_to_save_but_not_to_import() {
    let mut document = salesforce_settings();
    document["credentials"]["refresh_token"] = json!("");
    validate(&document, &[]).success();
    let run = validate(&document, &["--purpose", "import"]);
    assert!(
        run.failure()
            .contains("credentials.refresh_token: is empty"),
        "{run:?}"
    );
}

#[test]
fn json_output_carries_the_error_details_for_forms() {
    let run = validate(
        &json!({"login_url": "http://example.com", "consumer_key": "k"}),
        &["--json"],
    );
    assert_eq!(run.code, Some(1));
    let answer = run.json();
    assert_eq!(answer["valid"], false);
    assert_eq!(
        answer["error"]["details"]["missing"],
        json!(["credentials"])
    );
    assert_eq!(
        answer["error"]["details"]["problems"],
        json!([]),
        "schema problems come first"
    );
}

#[test]
fn broken_input_gets_a_clear_error() {
    let env = Env::with_plugins(&[SALESFORCE]);
    let run = env.run_with_input(&["settings", "validate", "salesforce", "-"], "{not json");
    assert!(
        run.failure().contains("standard input is not valid JSON"),
        "{run:?}"
    );
    // serde_json would keep the last of two equal keys; the operator hears of it instead.
    let twice =
        r#"{"login_url": "https://a.example", "proxy": null, "login_url": "https://b.example"}"#;
    let run = env.run_with_input(&["settings", "validate", "salesforce", "-"], twice);
    assert!(
        run.failure().contains(
            "the key `login_url` is given twice in one object (keep one); the second is at line 1"
        ),
        "{run:?}"
    );
    let nested = r#"{"credentials": {"source": "local", "source": "cyberark"}}"#;
    let run = env.run_with_input(&["settings", "validate", "salesforce", "-"], nested);
    assert!(
        run.failure().contains("the key `source` is given twice"),
        "{run:?}"
    );
    let trailing = r#"{"login_url": "https://a.example"} {}"#;
    let run = env.run_with_input(&["settings", "validate", "salesforce", "-"], trailing);
    assert!(
        run.failure().contains("standard input is not valid JSON"),
        "{run:?}"
    );
    let run = env.run(&[
        "settings",
        "validate",
        "salesforce",
        "/nonexistent/settings.json",
    ]);
    assert!(
        run.failure()
            .contains("reading settings file /nonexistent/settings.json"),
        "{run:?}"
    );
}

#[test]
fn secrets_never_appear_in_the_output() {
    let mut document = salesforce_settings();
    document["login_url"] = json!("http://login.salesforce.com");
    let run = validate(&document, &["--json"]);
    for secret in ["s3cret", "5Aep-token", "proxy-pass"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} leaked: {run:?}"
        );
    }
}

#[test]
fn a_password_typed_into_the_proxy_address_is_not_echoed() {
    let mut document = salesforce_settings();
    document["proxy"]["server"] = json!("http://svc:Typed-Pass-9@proxy.corp:3128");
    let run = validate(&document, &["--json"]);
    assert_eq!(run.code, Some(1));
    assert!(
        !run.stdout.contains("Typed-Pass-9") && !run.stderr.contains("Typed-Pass-9"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("the address holds an `@`, so it is not repeated here"),
        "{run:?}"
    );
}

#[test]
fn a_plugin_that_panics_in_validate_gives_a_one_line_error_and_nothing_is_saved() {
    let env = Env::with_plugins(&[GOOD]);
    let document = fixture_settings(3, json!({"panic_in_validate": true}));
    let run = env.run_with_input(
        &["settings", "validate", "fixture", "-"],
        &document.to_string(),
    );
    let stderr = run.failure();
    assert_eq!(run.code, Some(1), "a clean exit, not an abort: {run:#?}");
    // The panic is logged as an error; the reason is the last line, and one line.
    let reason = "invhost: the plugin panicked: fixture panic in validate, on purpose; this is a \
                  bug in the plugin, report it to its authors";
    assert_eq!(stderr.lines().last(), Some(reason), "{stderr}");
    let run = env.run_with_input(
        &[
            "connections",
            "add",
            "alpha",
            "--type",
            "fixture",
            "--settings",
            "-",
        ],
        &document.to_string(),
    );
    let stderr = run.failure();
    assert_eq!(run.code, Some(1), "a clean exit, not an abort: {run:#?}");
    assert_eq!(stderr.lines().last(), Some(reason), "{stderr}");
    // The host goes on: the same plugin answers the next call, and nothing was stored.
    let run = env.run_with_input(
        &["settings", "validate", "fixture", "-"],
        &fixture_settings(3, json!({})).to_string(),
    );
    assert_eq!(run.success().trim(), "valid");
    let list = env.run(&["connections", "list", "--json"]);
    assert_eq!(list.json(), json!([]));
}

#[test]
fn urls_queries_vault_fields_and_proxy_ports_are_checked_without_echoing_secrets() {
    let cases = [
        (
            "/login_url",
            json!("http://127.0.0.1:18931/?x=1"),
            "login_url: has a query",
        ),
        (
            "/login_url",
            json!("https://login.salesforce.com/services/oauth2"),
            "login_url: has a path (`/services/oauth2`); a login URL is the address alone, such as https://login.salesforce.com",
        ),
        (
            "/login_url",
            json!("https://user:SEKRET_Y@a b"),
            "login_url: `https://***@a b` is not a URL",
        ),
        (
            "/credentials",
            json!({"source": "cyberark", "query": "Safe=;Object=o"}),
            "credentials.query: `Safe` has no value",
        ),
        (
            "/credentials",
            json!({"source": "cyberark", "query": "Safe=a;safe=b"}),
            "credentials.query: `Safe` and `safe` are the same key",
        ),
        (
            "/credentials",
            json!({"source": "cyberark", "query": "Safe=a;AppID=x"}),
            "credentials.query: `AppID` cannot be part of the query",
        ),
        (
            "/credentials",
            json!({"source": "cyberark", "query": "Safe=a", "consumer_secret_field": "", "refresh_token_field": ""}),
            "credentials.refresh_token_field: reads the same value as consumer_secret_field",
        ),
        (
            "/proxy/server",
            json!("10.0.0.1:abc"),
            "(port `abc` is not a number;",
        ),
        (
            "/proxy/server",
            json!("http://h:0"),
            "(port 0 is out of range;",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut document = salesforce_settings();
        *document.pointer_mut(pointer).expect("pointer") = value.clone();
        let run = validate(&document, &[]);
        let stderr = run.failure();
        assert!(stderr.contains(expected), "{value}: {stderr}");
        assert!(!stderr.contains("SEKRET_Y"), "{value}: {stderr}");
    }
    let mut document = salesforce_settings();
    document["credentials"] = json!({"source": "cyberark", "query": " Safe=S;;Object=o; ",
                                     "refresh_token_field": "RefreshToken"});
    assert_eq!(validate(&document, &[]).success().trim(), "valid");
}
