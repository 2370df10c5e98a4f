//! Compatibility with plugins built against older plugin-api releases: a plugin built against
//! plugin-api 1.0 (the `api-1-0` fixture, which carries a frozen copy of the 1.0 ABI instead of
//! depending on plugin-api) loads, passes `invhost plugins check` and imports through this host.
//! If a change of `plugin-api/src/abi.rs` makes 1.0 plugins unloadable, this fails.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

/// The records of one kind in a JSON Lines export.
fn exported(dir: &Path, kind: &str) -> Vec<Value> {
    let path = dir.join(format!("{kind}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_checks_and_imports() {
    let env = Env::with_plugins(&[API_1_0]);

    // Loaded, not refused, and listed with the version it was built against.
    let run = env.run(&["plugins", "--json"]);
    run.success();
    let listing = run.json();
    assert_eq!(
        listing["refused"],
        json!([]),
        "the plugin-api 1.0 plugin was refused: the host no longer loads 1.0 plugins"
    );
    assert_eq!(listing["plugins"].as_array().map(Vec::len), Some(1));
    let plugin = &listing["plugins"][0];
    assert_eq!(plugin["plugin_id"], "api_one_zero");
    assert_eq!(plugin["api_version"], "1.0.0");
    assert_eq!(plugin["source_types"][0]["id"], "api_one_zero");
    let host_api = listing["api_version"]
        .as_str()
        .expect("the host's api version");
    assert!(host_api.starts_with("1."), "{host_api}");

    // The conformance check passes on it.
    let path = library(API_1_0);
    let run = env.run(&["plugins", "check", path.to_str().expect("utf-8 path")]);
    let out = run.success();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{out}");
    assert!(out.contains("built against plugin-api 1.0.0"), "{out}");
    assert!(out.contains("refused, naming tenant"), "{out}");

    // A connection of its source type imports: the records it emitted are stored, and its
    // log line reaches the host's log under its plugin id.
    let settings = env.write("old.json", &json!({"tenant": "Snapshot Org"}).to_string());
    env.run(&[
        "connections",
        "add",
        "old",
        "--type",
        "api_one_zero",
        "--settings",
        settings.to_str().expect("utf-8 path"),
    ])
    .success();
    // An operation it does not offer answers `unsupported` across the boundary (an
    // `FfiError`), which the host reports as it is.
    let run = env.run(&["connections", "test", "old"]);
    assert!(
        run.failure()
            .contains("operation `test_connection` is not offered by this plugin"),
        "{run:#?}"
    );
    let mut command = env.invhost(&["run", "old"]);
    command.env("INVHOST_LOG", "invhost::plugin=info");
    let run = Run::of(command, None);
    assert!(run.success().contains("succeeded"), "{run:#?}");
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("The plugin-api 1.0 fixture sent one batch."))
        .unwrap_or_else(|| panic!("the plugin's log line is forwarded: {run:#?}"));
    assert!(line.contains(r#"plugin="api_one_zero""#), "{line}");
    assert!(line.contains("INFO"), "{line}");

    let out = env.root().join("export");
    env.run(&[
        "export",
        "--format",
        "json",
        "--out",
        out.to_str().expect("utf-8 path"),
    ])
    .success();
    let accounts = exported(&out, "accounts");
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(
        (
            &accounts[0]["connection"],
            &accounts[0]["id"],
            &accounts[0]["username"],
            &accounts[0]["active"],
            &accounts[0]["last_login_at"],
        ),
        (
            &json!("old"),
            &json!("u1"),
            &json!("ada@api-one-zero.example"),
            &json!(true),
            &json!("2026-01-02T03:04:05Z"),
        )
    );
    let tenants = exported(&out, "tenants");
    assert_eq!(tenants.len(), 1, "{tenants:?}");
    assert_eq!(tenants[0]["name"], "Snapshot Org");
    let licenses = exported(&out, "licenses");
    assert_eq!(licenses.len(), 1, "{licenses:?}");
    assert_eq!(
        (&licenses[0]["purchased"], &licenses[0]["consumed"]),
        (&json!(5), &json!(1))
    );
    let assignments = exported(&out, "assignments");
    assert_eq!(assignments.len(), 1, "{assignments:?}");
    assert_eq!(
        (&assignments[0]["account_id"], &assignments[0]["license_id"]),
        (&json!("u1"), &json!("seat"))
    );
}
