//! `invhost schedules add|list|remove` and `invhost connections schedule`, without `serve`:
//! definitions and their errors, the next run time, assignment, and removal refused while a
//! connection uses the schedule.

use serde_json::{Value, json};

use crate::support::*;

fn add_connection(env: &Env, name: &str) {
    add_fixture(env, name, &fixture_settings(3, json!({})));
}

fn list(env: &Env) -> Vec<Value> {
    match env.run(&["schedules", "list", "--json"]).json() {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (SQLite's clock, to compare with RFC 3339).
fn utc_now() -> String {
    rusqlite::Connection::open_in_memory()
        .expect("sqlite")
        .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', 'now')", [], |r| {
            r.get(0)
        })
        .expect("now")
}

#[test]
fn schedules_are_added_listed_with_their_next_run_and_removed() {
    let env = Env::with_plugins(&[GOOD]);
    let empty = env.run(&["schedules", "list"]);
    assert!(empty.success().contains("No schedules."), "{empty:#?}");
    let added = env.run(&[
        "schedules",
        "add",
        "nightly",
        "--daily",
        "02:30",
        "--tz",
        "europe/berlin",
    ]);
    assert!(
        added
            .success()
            .contains("Added schedule `nightly`: daily at 02:30 (Europe/Berlin); next run 20"),
        "{added:#?}"
    );
    env.run(&["schedules", "add", "fast", "--every", "15m"])
        .success();
    env.run(&[
        "schedules",
        "add",
        "Weekdays",
        "--cron",
        "0 6 * * mon-fri",
        "--tz",
        "America/New_York",
    ])
    .success();
    env.run(&["schedules", "add", "mondays", "--weekly", "mon", "07:00"])
        .success();
    let items = list(&env);
    let names: Vec<&str> = items
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["fast", "mondays", "nightly", "Weekdays"]);
    let fast = &items[0];
    assert_eq!(fast["kind"], "every");
    assert_eq!(fast["expression"], "15m");
    assert_eq!(fast["time_zone"], "UTC", "UTC unless --tz");
    assert_eq!(items[1]["description"], "weekly on Monday at 07:00");
    assert_eq!(items[1]["cron"], "0 7 * * 1");
    let nightly = &items[2];
    assert_eq!(nightly["description"], "daily at 02:30");
    assert_eq!(nightly["time_zone"], "Europe/Berlin");
    assert_eq!(items[3]["expression"], "0 6 * * mon-fri");
    let now = utc_now();
    for item in &items {
        let next = item["next_run"].as_str().expect("a next run");
        assert!(next > now.as_str(), "{next} is after {now}");
        assert!(item["next_run_local"].is_string());
        assert_eq!(item["connections"], json!([]));
    }
    // A 15-minute interval next runs at a quarter hour.
    let minute = &fast["next_run"].as_str().expect("next")[14..16];
    assert!(["00", "15", "30", "45"].contains(&minute), "{fast}");
    let text = env.run(&["schedules", "list"]);
    let stdout = text.success();
    assert!(
        stdout.contains("NEXT RUN")
            && stdout.contains("every 15m")
            && stdout.contains("Europe/Berlin")
            && (stdout.contains(" CET") || stdout.contains(" CEST")),
        "{text:#?}"
    );
    let removed = env.run(&["schedules", "remove", "FAST"]);
    assert!(
        removed.success().contains("Removed schedule `fast`."),
        "{removed:#?}"
    );
    assert_eq!(list(&env).len(), 3);
}

#[test]
fn bad_definitions_are_refused_with_what_to_write() {
    let env = Env::with_plugins(&[GOOD]);
    for (args, expected) in [
        (
            vec!["bad", "--cron", "61 * * * *"],
            "cron expression `61 * * * *` is not valid",
        ),
        (
            vec!["bad", "--cron", "0 0 30 2 *"],
            "never matches a future time",
        ),
        (vec!["bad", "--every", "soon"], "`soon` is not a duration"),
        (vec!["bad", "--every", "500ms"], "whole number of seconds"),
        (vec!["bad", "--daily", "25:00"], "time `25:00` is not HH:MM"),
        (
            vec!["bad", "--weekly", "someday", "10:00"],
            "`someday` is not a day of the week",
        ),
        (
            vec!["bad", "--daily", "02:30", "--tz", "Mars/Olympus"],
            "unknown time zone `Mars/Olympus`",
        ),
        (
            vec!["bad-name", "--daily", "02:30"],
            "schedule name `bad-name` contains `-`",
        ),
        (
            vec!["bad", "--every", "5m", "--tz", "Europe/Berlin"],
            "cannot be used with",
        ),
        (vec!["bad"], "required"),
        (
            vec!["bad", "--every", "5m", "--daily", "02:30"],
            "cannot be used with",
        ),
    ] {
        let mut full = vec!["schedules", "add"];
        full.extend(args.iter().copied());
        let run = env.run(&full);
        assert!(run.failure().contains(expected), "{args:?}: {run:#?}");
    }
    env.run(&["schedules", "add", "nightly", "--daily", "02:30"])
        .success();
    let twice = env.run(&["schedules", "add", "NIGHTLY", "--every", "1h"]);
    assert!(
        twice
            .failure()
            .contains("a schedule named `NIGHTLY` already exists"),
        "{twice:#?}"
    );
    assert_eq!(list(&env).len(), 1, "nothing else was stored");
}

#[test]
fn connections_get_a_schedule_and_removal_is_refused_while_in_use_unless_forced() {
    let env = Env::with_plugins(&[GOOD]);
    add_connection(&env, "alpha");
    add_connection(&env, "beta");
    env.run(&["schedules", "add", "nightly", "--daily", "02:30"])
        .success();
    let assigned = env.run(&["connections", "schedule", "alpha", "Nightly"]);
    assert!(
        assigned.success().contains(
            "Connection `alpha` runs on schedule `nightly` (daily at 02:30, UTC); next run 20"
        ),
        "{assigned:#?}"
    );
    env.run(&["connections", "schedule", "beta", "nightly"])
        .success();
    let shown = env.run(&["connections", "show", "alpha", "--json"]).json();
    assert_eq!(shown["schedule"], "nightly");
    assert_eq!(list(&env)[0]["connections"], json!(["alpha", "beta"]));
    for (args, expected) in [
        (
            vec!["connections", "schedule", "alpha", "weekly"],
            "no schedule named `weekly`",
        ),
        (
            vec!["connections", "schedule", "gamma", "nightly"],
            "no connection named `gamma`",
        ),
        (vec!["connections", "schedule", "alpha"], "required"),
        (
            vec!["connections", "schedule", "alpha", "nightly", "--none"],
            "cannot be used with",
        ),
    ] {
        let run = env.run(&args);
        assert!(run.failure().contains(expected), "{args:?}: {run:#?}");
    }
    let refused = env.run(&["schedules", "remove", "nightly"]);
    assert!(
        refused.failure().contains(
            "schedule `nightly` is used by connections `alpha`, `beta`; assign them another schedule"
        ) && refused.stderr.contains("--force"),
        "{refused:#?}"
    );
    assert_eq!(list(&env).len(), 1, "still there");
    let none = env.run(&["connections", "schedule", "beta", "--none"]);
    assert!(
        none.success()
            .contains("Connection `beta` has no schedule now."),
        "{none:#?}"
    );
    assert_eq!(
        env.run(&["connections", "show", "beta", "--json"]).json()["schedule"],
        Value::Null
    );
    let forced = env.run(&["schedules", "remove", "nightly", "--force"]);
    let stdout = forced.success();
    assert!(
        stdout.contains("Unassigned `alpha` from schedule `nightly`.")
            && stdout.contains("Removed schedule `nightly`."),
        "{forced:#?}"
    );
    assert!(list(&env).is_empty());
    assert_eq!(
        env.run(&["connections", "show", "alpha", "--json"]).json()["schedule"],
        Value::Null
    );
    let gone = env.run(&["schedules", "remove", "nightly"]);
    assert!(
        gone.failure().contains("no schedule named `nightly`"),
        "{gone:#?}"
    );
}
