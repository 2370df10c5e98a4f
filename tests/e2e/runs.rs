//! `invhost run` and `invhost runs` with the fixture plugin: snapshots made current only on
//! success, failures and cancellation that keep the previous snapshot, SIGKILL mid-run, one run
//! per connection, pruning, usage merged by the host, the history of unknown and removed
//! connections, and the plugin id on the log events of a plugin's own tasks.

use std::{
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::support::*;

fn runs(env: &Env) -> Vec<Value> {
    match env.run(&["runs", "--json"]).json() {
        Value::Array(runs) => runs,
        other => panic!("not a list: {other}"),
    }
}

/// Starts `invhost run NAME` in the background.
fn spawn_run(env: &Env, name: &str) -> Child {
    env.invhost(&["run", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("invhost starts")
}

/// Waits until the running import has written at least `rows` accounts into its snapshot.
fn wait_for_building_rows(env: &Env, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let written = db(env)
            .query_row(
                "SELECT COUNT(*) FROM accounts a JOIN snapshots s ON s.id = a.snapshot_id
                 WHERE s.state = 'building'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0);
        if written >= rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the import never wrote {rows} rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name}");
}

fn integrity_ok(path: &Path) {
    let db = rusqlite::Connection::open(path).expect("open");
    let result: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(result, "ok");
}

#[test]
fn a_run_makes_a_current_snapshot_and_the_history_shows_it() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(
            50,
            json!({"batch": 10, "api_calls": 7, "warning": "three seats expire soon", "split_usage": true}),
        ),
    );
    let run = env.run(&["run", "alpha"]);
    let stdout = run.success();
    assert!(
        stdout.contains("alpha: succeeded in ")
            && stdout.contains("50 accounts, 1 application, 1 license, 50 assignments, 33 usage")
            && stdout.contains("; 7 API calls."),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("warning: alpha: three seats expire soon"),
        "{run:#?}"
    );
    let history = runs(&env);
    assert_eq!(history.len(), 1);
    let first = &history[0];
    assert_eq!(first["state"], "succeeded");
    assert_eq!(first["trigger"], "manual");
    assert_eq!(first["api_calls"], 7);
    assert_eq!(
        first["counts"],
        json!({"account": 50, "application": 1, "assignment": 50, "license": 1, "usage": 33})
    );
    assert_eq!(first["warnings"], json!(["three seats expire soon"]));
    assert!(first["ended_at"].is_string());
    assert_eq!(current_accounts(&env, "alpha"), 50);
    // Usage sent in two halves per account was merged: logins add up, the latest time wins.
    let logins: i64 = count(&env, "SELECT SUM(logins) FROM usage");
    let expected: u32 = (0..50u32)
        .filter(|i| !i.is_multiple_of(3))
        .map(|i| i % 5 + 1)
        .sum();
    assert_eq!(logins, i64::from(expected));
    // User 26: 2 logins, the later half on day 26.
    let (logins, latest): (i64, String) = db(&env)
        .query_row(
            "SELECT logins, last_interactive_at FROM usage WHERE account_id = 'u26'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("usage of u26");
    assert_eq!((logins, latest.as_str()), (2, "2026-01-27T00:00:00Z"));
    let text = env.run(&["runs"]);
    assert!(
        text.success().contains("succeeded") && text.stdout.contains("alpha"),
        "{text:#?}"
    );
}

#[test]
fn a_failed_run_keeps_the_previous_snapshot_and_leaves_no_records_behind() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(50, json!({"batch": 10})));
    env.run(&["run", "alpha"]).success();
    update_connection(
        &env,
        "alpha",
        &fixture_settings(80, json!({"batch": 10, "fail_after_batches": 3})),
    );
    let run = env.run(&["run", "alpha"]);
    let stderr = run.failure();
    assert!(
        stderr.contains("alpha: failed after")
            && stderr.contains("the fixture failed on purpose after 3 batches"),
        "{run:#?}"
    );
    let history = runs(&env);
    assert_eq!(history[0]["state"], "failed");
    assert_eq!(history[0]["error_kind"], "upstream");
    assert_eq!(history[0]["retryable"], false);
    // What the plugin said it spent, from its error's details.
    assert_eq!(history[0]["api_calls"], 3);
    assert_eq!(history[1]["state"], "succeeded");
    assert_eq!(current_accounts(&env, "alpha"), 50);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'building'"
        ),
        0
    );
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 50);
}

#[test]
fn old_snapshots_are_pruned_and_the_history_is_kept() {
    let env = Env::with_plugins(&[GOOD]);
    std::fs::create_dir_all(env.data_dir()).expect("data dir");
    std::fs::write(
        env.data_dir().join("invhost.toml"),
        "[runs]\nkeep_snapshots = 2\n",
    )
    .expect("config");
    add_fixture(&env, "alpha", &fixture_settings(5, json!({})));
    for _ in 0..4 {
        env.run(&["run", "alpha"]).success();
    }
    assert_eq!(runs(&env).len(), 4);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'current'"
        ),
        1
    );
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'previous'"
        ),
        1
    );
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 10);
}

#[test]
fn sigkill_mid_run_loses_nothing_and_the_run_is_marked_interrupted() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(30, json!({})));
    env.run(&["run", "alpha"]).success();
    update_connection(
        &env,
        "alpha",
        &fixture_settings(5000, json!({"batch": 20, "pause_ms": 100})),
    );
    for round in 0..2 {
        let mut child = spawn_run(&env, "alpha");
        wait_for_building_rows(&env, 40);
        signal(&child, "KILL");
        let status = child.wait().expect("killed");
        assert!(!status.success(), "round {round}");
        integrity_ok(&env.data_dir().join("invhost.db"));
        assert_eq!(current_accounts(&env, "alpha"), 30, "round {round}");
        // Listing the runs finds the dead run and marks it, deleting its records.
        let history = runs(&env);
        assert_eq!(history[0]["state"], "interrupted", "round {round}");
        assert!(
            history[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("stopped")),
            "{history:?}"
        );
        assert_eq!(
            count(
                &env,
                "SELECT COUNT(*) FROM snapshots WHERE state = 'building'"
            ),
            0
        );
        assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 30);
    }
    // The next run works.
    update_connection(&env, "alpha", &fixture_settings(40, json!({})));
    env.run(&["run", "alpha"]).success();
    assert_eq!(current_accounts(&env, "alpha"), 40);
}

#[test]
fn ctrl_c_cancels_the_run_and_keeps_the_previous_snapshot() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(30, json!({})));
    env.run(&["run", "alpha"]).success();
    update_connection(
        &env,
        "alpha",
        &fixture_settings(5000, json!({"batch": 20, "pause_ms": 100})),
    );
    let child = spawn_run(&env, "alpha");
    wait_for_building_rows(&env, 40);
    signal(&child, "INT");
    let started = Instant::now();
    let output = child.wait_with_output().expect("ends");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cancelled promptly"
    );
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("alpha: cancelled after"), "{stderr}");
    assert_eq!(runs(&env)[0]["state"], "cancelled");
    assert_eq!(current_accounts(&env, "alpha"), 30);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 30);
}

#[test]
fn one_run_per_connection_at_a_time() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(2000, json!({"batch": 20, "pause_ms": 50})),
    );
    let mut first = spawn_run(&env, "alpha");
    wait_for_building_rows(&env, 20);
    let second = env.run(&["run", "alpha"]);
    assert!(
        second
            .failure()
            .contains("connection `alpha` is already being imported"),
        "{second:#?}"
    );
    // The live run is not taken for a dead one.
    assert_eq!(runs(&env)[0]["state"], "running");
    signal(&first, "KILL");
    let _ = first.wait();
}

#[test]
fn run_all_imports_every_enabled_connection_and_unknown_names_fail() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(3, json!({})));
    add_fixture(&env, "beta", &fixture_settings(4, json!({})));
    let run = env.run(&["run", "--all", "--json"]);
    let finished = run.json();
    let mut names: Vec<&str> = finished
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["connection"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(current_accounts(&env, "beta"), 4);
    // The history of one connection, by name in any case, positional or `--connection`.
    for args in [
        &["runs", "--connection", "ALPHA", "--json"][..],
        &["runs", "Alpha", "--json"][..],
    ] {
        let only = env.run(args).json();
        let only = only.as_array().expect("list");
        assert_eq!(only.len(), 1, "{only:?}");
        assert_eq!(only[0]["connection"], "alpha");
    }
    let missing = env.run(&["run", "gamma"]);
    assert!(
        missing.failure().contains("no connection named `gamma`"),
        "{missing:#?}"
    );
    let nothing = Env::with_plugins(&[GOOD]);
    assert!(
        nothing
            .run(&["run", "--all"])
            .failure()
            .contains("there is no enabled connection to import")
    );
}

#[test]
fn removing_a_connection_removes_its_snapshots_but_not_its_history() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(12, json!({})));
    env.run(&["run", "alpha"]).success();
    env.run(&["connections", "remove", "alpha"]).success();
    assert_eq!(count(&env, "SELECT COUNT(*) FROM snapshots"), 0);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 0);
    let history = runs(&env);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["connection"], "alpha");
}

#[test]
fn runs_of_a_name_that_is_no_connection_fail_but_a_removed_connections_history_shows() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(3, json!({})));
    add_fixture(&env, "beta", &fixture_settings(3, json!({})));
    env.run(&["run", "alpha"]).success();
    env.run(&["connections", "remove", "alpha"]).success();
    for args in [
        &["runs", "--connection", "nosuch"][..],
        &["runs", "nosuch"][..],
        &["runs", "nosuch", "--json"][..],
    ] {
        let run = env.run(args);
        let stderr = run.failure();
        assert_eq!(stderr.lines().count(), 1, "one line: {run:#?}");
        assert!(
            stderr.contains("no connection named `nosuch`; see `invhost connections list`"),
            "{run:#?}"
        );
        assert!(run.stdout.is_empty(), "{run:#?}");
    }
    // Removed, but its history is kept and listed by name.
    let removed = env.run(&["runs", "--connection", "ALPHA", "--json"]).json();
    assert_eq!(removed.as_array().map(Vec::len), Some(1), "{removed}");
    assert_eq!(removed[0]["connection"], "alpha");
    // A connection never imported has an empty history, not an error.
    assert_eq!(env.run(&["runs", "beta", "--json"]).json(), json!([]));
    let text = env.run(&["runs", "beta"]);
    assert!(text.success().contains("No runs yet"), "{text:#?}");
}

#[test]
fn a_plugins_own_tasks_log_under_its_plugin_id() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(3, json!({"background_log": true})),
    );
    let mut command = env.invhost(&["run", "alpha"]);
    command.env("INVHOST_LOG", "invhost::plugin=info");
    let run = Run::of(command, None);
    run.success();
    // Logged by a task the plugin spawned: it reaches the host through the callbacks given at
    // load time, which name the plugin as its calls' callbacks do.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("Fixture background task ran."))
        .unwrap_or_else(|| panic!("the background event is logged: {run:#?}"));
    assert!(line.contains(r#"plugin="fixture""#), "{line}");
}

#[test]
fn a_connection_being_imported_cannot_be_removed_and_no_records_are_orphaned() {
    let env = Env::with_plugins(&[GOOD]);
    // Long enough (about 25 s) that the removal is tried while the import runs, however
    // loaded the machine.
    add_fixture(
        &env,
        "alpha",
        &fixture_settings(5000, json!({"batch": 20, "pause_ms": 100})),
    );
    let child = spawn_run(&env, "alpha");
    wait_for_building_rows(&env, 20);
    let refused = env.run(&["connections", "remove", "alpha"]);
    assert!(
        refused
            .failure()
            .contains("connection `alpha` is being imported"),
        "{refused:#?}"
    );
    signal(&child, "INT");
    let output = child.wait_with_output().expect("ends");
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    env.run(&["connections", "remove", "alpha"]).success();
    // Nothing is left that no snapshot owns, and a new connection starts from nothing.
    assert_eq!(count(&env, "SELECT COUNT(*) FROM accounts"), 0);
    add_fixture(&env, "alpha", &fixture_settings(3, json!({})));
    env.run(&["run", "alpha"]).success();
    assert_eq!(current_accounts(&env, "alpha"), 3);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM accounts WHERE snapshot_id NOT IN (SELECT id FROM snapshots)"
        ),
        0
    );
}

#[test]
fn ctrl_c_during_run_all_starts_no_further_connection() {
    let env = Env::with_plugins(&[GOOD]);
    std::fs::create_dir_all(env.data_dir()).expect("data dir");
    std::fs::write(
        env.data_dir().join("invhost.toml"),
        "[runs]\nmax_parallel = 1\n",
    )
    .expect("config");
    let slow = fixture_settings(5000, json!({"batch": 20, "pause_ms": 100}));
    add_fixture(&env, "alpha", &slow);
    add_fixture(&env, "beta", &slow);
    let child = env
        .invhost(&["run", "--all"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("invhost starts");
    wait_for_building_rows(&env, 40);
    signal(&child, "INT");
    let output = child.wait_with_output().expect("ends");
    assert_eq!(output.status.code(), Some(130), "{output:?}");
    let history = runs(&env);
    assert_eq!(
        history.len(),
        1,
        "only the first connection ran: {history:?}"
    );
    assert_eq!(history[0]["state"], "cancelled");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let other = if history[0]["connection"] == "alpha" {
        "beta"
    } else {
        "alpha"
    };
    assert!(
        stderr.contains(&format!(
            "{other}: not started (cancelled with Ctrl-C); import it with `invhost run \"{other}\"`"
        )),
        "{stderr}"
    );
}

#[test]
fn an_import_that_panics_fails_its_run_keeps_the_previous_snapshot_and_the_host_goes_on() {
    let env = Env::with_plugins(&[GOOD]);
    add_fixture(&env, "alpha", &fixture_settings(50, json!({"batch": 10})));
    add_fixture(&env, "beta", &fixture_settings(5, json!({})));
    env.run(&["run", "alpha"]).success();
    update_connection(
        &env,
        "alpha",
        &fixture_settings(80, json!({"batch": 10, "panic_after_batches": 3})),
    );
    // One process runs both: the panic in alpha's import must not stop beta's.
    let run = env.run(&["run", "alpha", "beta"]);
    let stderr = run.failure();
    assert_eq!(run.code, Some(1), "a clean exit, not an abort: {run:#?}");
    let alpha: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("alpha: failed"))
        .collect();
    assert_eq!(alpha.len(), 1, "{run:#?}");
    assert!(
        alpha[0].contains("the plugin panicked: fixture panic in import after 3 batches"),
        "{run:#?}"
    );
    let history = runs(&env);
    let of = |name: &str| -> Vec<&Value> {
        history.iter().filter(|r| r["connection"] == name).collect()
    };
    assert_eq!(of("beta")[0]["state"], "succeeded", "{history:#?}");
    let alpha_runs = of("alpha");
    assert_eq!(alpha_runs[0]["state"], "failed", "{history:#?}");
    assert_eq!(alpha_runs[0]["error_kind"], "panic", "{history:#?}");
    assert!(
        alpha_runs[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("fixture panic in import")),
        "{history:#?}"
    );
    assert_eq!(alpha_runs[1]["state"], "succeeded");
    assert_eq!(current_accounts(&env, "alpha"), 50);
    assert_eq!(current_accounts(&env, "beta"), 5);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'building'"
        ),
        0
    );
    // The next run works.
    update_connection(&env, "alpha", &fixture_settings(60, json!({})));
    env.run(&["run", "alpha"]).success();
    assert_eq!(current_accounts(&env, "alpha"), 60);
}
