//! `invhost plugins check PATH`: the conformance check for plugin authors.

use crate::support::*;

fn check(name: &str) -> Run {
    let env = Env::with_plugins(&[]);
    let path = library(name);
    env.run(&["plugins", "check", path.to_str().expect("utf-8")])
}

#[test]
fn the_salesforce_plugin_passes_every_check() {
    let run = check(SALESFORCE);
    let out = run.success();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{out}");
    assert!(out.contains("secrets: "), "{out}");
    assert!(
        out.contains("naming login_url, consumer_key, credentials"),
        "{out}"
    );
}

#[test]
fn each_bad_fixture_fails_with_its_reason() {
    for (name, step, reason) in [
        (BAD_API, "load", "rebuild it against plugin-api 1."),
        (INIT_FAILS, "load", "init failed"),
        (NOT_A_PLUGIN, "load", "not an invhost plugin"),
        (OTHER_LAYOUT, "load", "incompatible plugin API layout"),
        (
            PANICS,
            "schema panicky",
            "the plugin panicked: fixture panic in settings_schema",
        ),
    ] {
        let run = check(name);
        let stderr = run.failure();
        let last = stderr.lines().last().expect("a message");
        assert!(
            last.contains(&format!("failed the check ({step})")),
            "{name}: {stderr}"
        );
        assert!(last.contains(reason), "{name}: {stderr}");
        assert!(run.stdout.contains("FAILED"), "{name}: {}", run.stdout);
    }
}

#[test]
fn json_report_lists_the_steps() {
    let env = Env::with_plugins(&[]);
    let path = library(GOOD);
    let run = env.run(&["plugins", "check", path.to_str().expect("utf-8"), "--json"]);
    run.success();
    let report = run.json();
    let steps = report["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3);
    assert!(steps.iter().all(|s| s["ok"] == true), "{report}");
}

#[test]
fn a_path_that_is_not_a_file_is_refused_before_loading() {
    let env = Env::with_plugins(&[]);
    let run = env.run(&["plugins", "check", "/nonexistent/libx.so"]);
    assert!(run.failure().contains("is not a file"), "{run:?}");
}
