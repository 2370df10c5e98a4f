//! `invhost demo`: the whole pipeline against the Salesforce plugin's built-in simulator.

use std::process::Command;

use crate::support::*;

#[test]
fn the_demo_runs_the_pipeline_and_keeps_the_data_in_a_given_directory() {
    let env = Env::with_plugins(&[SALESFORCE, GOOD]);
    for round in 0..2 {
        let run = env.run(&["demo", "--users", "1500"]);
        let stdout = run.success();
        for expected in [
            "A simulated Salesforce org of 1500 users",
            "Generated a refresh token",
            "Demo Salesforce: succeeded in",
            "1500 accounts",
            "Licenses (invhost report licenses):",
            "Reclaimable seats per license",
            "The data stays in",
        ] {
            assert!(
                stdout.contains(expected),
                "round {round}: {expected}: {run:#?}"
            );
        }
    }
    // The data stays for the reports, with every reason to reclaim a seat represented.
    let unused = env.run(&["report", "unused", "--format", "json"]).json();
    let reasons: Vec<&str> = unused["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|row| row["reason"].as_str())
        .collect();
    for reason in [
        "unassigned",
        "deactivated",
        "frozen",
        "never_logged_in",
        "no_recent_login",
    ] {
        assert!(reasons.contains(&reason), "no `{reason}` row");
    }
    let runs = env.run(&["runs", "--json"]).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(2));
    assert!(
        runs.as_array()
            .expect("runs")
            .iter()
            .all(|r| r["state"] == "succeeded")
    );
}

#[test]
fn without_a_data_directory_the_demo_leaves_nothing_behind() {
    let env = Env::with_plugins(&[SALESFORCE]);
    let home = env.root().join("home");
    let tmp = env.root().join("tmp");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut command = Command::new(env.binary());
    command
        .env_remove("INVHOST_DATA_DIR")
        .env_remove("INVHOST_PLUGINS_DIR")
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("TMPDIR", &tmp)
        .arg("--plugins-dir")
        .arg(env.plugins_dir())
        .args(["demo", "--users", "300"]);
    let run = Run::of(command, None);
    assert!(
        run.success()
            .contains("temporary data directory, now removed"),
        "{run:#?}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        !home.join(".local/share/invhost").exists(),
        "the default data directory was not touched"
    );
}

#[test]
fn a_source_type_without_a_demo_is_named() {
    let env = Env::with_plugins(&[GOOD]);
    let run = env.run(&["demo", "--type", "fixture"]);
    assert!(
        run.failure()
            .contains("no loaded plugin offers a demo of source type `fixture`"),
        "{run:#?}"
    );
    let run = env.run(&["demo"]);
    assert!(
        run.failure().contains("no loaded plugin offers a demo"),
        "{run:#?}"
    );
}
