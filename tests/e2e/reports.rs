//! `invhost report licenses|unused|users` through the real binary, on imports of the fixture
//! plugin (whose data is deterministic) and, when the Salesforce plugin can import, of the
//! Salesforce simulator: exact figures, the same figures in table, JSON and CSV, and
//! supersession through the CLI (a successor connection retires; disabling or removing it
//! restores).

use std::collections::BTreeMap;

use invhost_sim_salesforce::{GroundTruth, LicenseFamily, OrgSpec, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::{
    connections::{
        add as add_salesforce, generate_approved, settings as salesforce_settings, simulator,
    },
    support::*,
};

/// The reports' "now" in these tests (the fixture's logins are in January 2026).
pub(crate) const AS_OF: &str = "2026-02-01T00:00:00Z";
/// Accounts of the fixture connection.
pub(crate) const N: u32 = 50;
/// The window used (the cutoff is 2026-01-12, day 11 of the fixture's month of logins).
const DAYS: u32 = 20;

/// What the fixture's import makes of account `i` (tests/fixtures/plugins/good): active unless
/// `i % 7 == 6`; never logged in when `i % 3 == 0`, otherwise last on 2026-01-01 plus
/// `i % 28` days (login and usage alike).
pub(crate) struct FixtureUser {
    pub active: bool,
    /// Days after 2026-01-01 of the last login, if any.
    pub last_day: Option<u32>,
}

pub(crate) fn fixture_user(i: u32) -> FixtureUser {
    FixtureUser {
        active: i % 7 != 6,
        last_day: (!i.is_multiple_of(3)).then_some(i % 28),
    }
}

/// Whether a last login `day` days after 2026-01-01 is within `days` days of [`AS_OF`]
/// (2026-02-01 is day 31).
fn recent(day: u32, days: u32) -> bool {
    day + days >= 31
}

pub(crate) fn add_fixture(env: &Env, name: &str, accounts: u32) {
    add_typed(
        env,
        name,
        "fixture",
        &json!({"accounts": accounts, "token": {"source": "local", "value": "t0ken"}}),
    );
}

pub(crate) fn add_typed(env: &Env, name: &str, source_type: &str, settings: &Value) {
    let file = env.write(&format!("{name}.json"), &settings.to_string());
    env.run(&[
        "connections",
        "add",
        name,
        "--type",
        source_type,
        "--settings",
        file.to_str().expect("utf-8 path"),
    ])
    .success();
}

pub(crate) fn import(env: &Env, name: &str) {
    let run = env.run(&["run", name]);
    assert!(run.success().contains("succeeded"), "{run:#?}");
}

/// A host with the fixture and successor plugins and an imported fixture connection `alpha`.
pub(crate) fn imported() -> Env {
    let env = Env::with_plugins(&[GOOD, SUCCESSOR]);
    add_fixture(&env, "alpha", N);
    import(&env, "alpha");
    env
}

/// `invhost report KIND --as-of AS_OF ARGS --format FORMAT`.
fn report(env: &Env, kind: &str, format: &str, args: &[&str]) -> Run {
    let mut all = vec!["report", kind, "--as-of", AS_OF, "--format", format];
    all.extend_from_slice(args);
    env.run(&all)
}

fn report_json(env: &Env, kind: &str, args: &[&str]) -> Value {
    let run = report(env, kind, "json", args);
    run.success();
    run.json()
}

/// CSV output as maps from column to cell.
fn report_csv(env: &Env, kind: &str, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let run = report(env, kind, "csv", args);
    parse_csv(run.success())
}

pub(crate) fn parse_csv(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|record| {
            let record = record.expect("a CSV record");
            assert_eq!(record.len(), header.len(), "{record:?}");
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The table's lines that are rows, as cells: the header (its lines merged, cell by cell,
/// with a space) and then the body rows (a row is one line when the output is not a
/// terminal: nothing wraps).
fn table_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('│')
            .split('┆')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut header: Vec<String> = Vec::new();
    let mut body = Vec::new();
    let mut in_header = true;
    for line in text.lines() {
        if line.starts_with('╞') {
            in_header = false;
        } else if line.starts_with('│') {
            if in_header {
                let parts = cells(line);
                if header.is_empty() {
                    header = parts;
                } else {
                    for (title, part) in header.iter_mut().zip(parts) {
                        if !part.is_empty() {
                            title.push(' ');
                            title.push_str(&part);
                        }
                    }
                }
            } else {
                body.push(cells(line));
            }
        }
    }
    (header, body)
}

/// The table's rows as maps from header to cell.
fn report_table(env: &Env, kind: &str, args: &[&str]) -> (Vec<BTreeMap<String, String>>, String) {
    let run = report(env, kind, "table", args);
    let text = run.success().to_owned();
    let (header, rows) = table_rows(&text);
    assert!(!header.is_empty(), "no table: {text}");
    let maps = rows
        .into_iter()
        .map(|cells| {
            assert_eq!(
                cells.len(),
                header.len(),
                "a wrapped or broken row in {text}"
            );
            header.iter().cloned().zip(cells).collect()
        })
        .collect();
    (maps, text)
}

fn num(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn licenses_report_has_the_fixture_figures_in_every_format() {
    let env = imported();
    let days = DAYS.to_string();
    let args = ["--active-days", days.as_str()];
    let (mut active, mut inactive, mut deactivated) = (0u64, 0u64, 0u64);
    for i in 0..N {
        let user = fixture_user(i);
        if !user.active {
            deactivated += 1;
        } else if user.last_day.is_some_and(|d| recent(d, DAYS)) {
            active += 1;
        } else {
            inactive += 1;
        }
    }
    assert_eq!(
        (active, inactive, deactivated),
        (15, 28, 7),
        "the fixture's arithmetic"
    );
    let purchased = u64::from(N) + 1;
    let util = (active as f64 * 1000.0 / purchased as f64).round() / 10.0;

    let json = report_json(&env, "licenses", &args);
    assert_eq!(json["report"], "licenses");
    assert_eq!(json["parameters"]["as_of"], AS_OF);
    assert_eq!(json["parameters"]["days"], DAYS);
    assert_eq!(json["parameters"]["since"], "2026-01-12T00:00:00Z");
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let expected = json!({
        "connection": "alpha", "source_type": "fixture", "family": "user",
        "application_id": "app", "application": "Fixture App", "license_id": "seat",
        "license": "Fixture seat", "unit": "seat", "status": "active",
        "imported_status": "active", "retired_by": [], "purchased": purchased,
        "unlimited": false, "consumed": N, "assigned": N, "active": active,
        "inactive": inactive, "deactivated": deactivated,
        // The fixture's seats are direct assignments: deactivation frees none.
        "deactivated_freed": 0, "holders": N, "unassigned": 1,
        "utilisation_pct": util, "utilisation_basis": "purchased", "expires_on": null,
        "counted": true
    });
    assert_eq!(row, &expected);
    for key in [
        "purchased",
        "consumed",
        "assigned",
        "active",
        "inactive",
        "deactivated",
        "deactivated_freed",
        "holders",
        "unassigned",
        "utilisation_pct",
    ] {
        assert_eq!(json["totals"]["all"][key], row[key], "total {key}");
        assert_eq!(
            json["totals"]["connections"][0][key], row[key],
            "connection total {key}"
        );
    }
    assert_eq!(json["totals"]["all"]["licenses"], 1);

    let csv = report_csv(&env, "licenses", &args);
    let kinds: Vec<&str> = csv.iter().map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["license", "connection_total", "total"]);
    let (table, _) = report_table(&env, "licenses", &args);
    let table_row = table
        .iter()
        .find(|r| r["License"] == "Fixture seat")
        .expect("the license's row");
    let table_total = table
        .iter()
        .find(|r| r["Connection"] == "All connections")
        .expect("the total row");
    for (key, column) in [
        ("purchased", "Bought"),
        ("consumed", "Used"),
        ("assigned", "Assigned"),
        ("active", "Active 20d"),
        ("inactive", "Inactive"),
        ("deactivated", "Deact."),
        ("holders", "Held"),
        ("unassigned", "Spare"),
        ("utilisation_pct", "Util %"),
    ] {
        let figure = num(&row[key]);
        assert_eq!(csv[0][key], figure, "csv {key}");
        assert_eq!(
            csv[2][key],
            num(&json["totals"]["all"][key]),
            "csv total {key}"
        );
        assert_eq!(table_row[column], figure, "table {key}");
        assert_eq!(
            table_total[column],
            num(&json["totals"]["all"][key]),
            "table total {key}"
        );
    }
    assert_eq!(csv[0]["utilisation_pct"], format!("{util:.1}"));

    // The default window (90 days) holds every login of January.
    let json = report_json(&env, "licenses", &[]);
    assert_eq!(json["rows"][0]["active"], 29);
    assert_eq!(json["rows"][0]["inactive"], 14);
}

#[test]
fn unused_report_lists_each_seat_with_one_reason_biggest_first() {
    let env = imported();
    // A second, smaller connection: its group of reclaimable seats comes after alpha's.
    add_fixture(&env, "beta", 4);
    import(&env, "beta");
    let days = DAYS.to_string();
    let args = ["--inactive-days", days.as_str()];
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..N {
        let user = fixture_user(i);
        let reason = match (user.active, user.last_day) {
            // Fixture seats are direct assignments: deactivation does not free them.
            (false, _) => Some("deactivated"),
            (true, None) => Some("never_logged_in"),
            (true, Some(day)) if !recent(day, DAYS) => Some("no_recent_login"),
            _ => None,
        };
        if let Some(reason) = reason {
            *expected.entry(reason).or_default() += 1;
        }
    }
    assert_eq!(
        expected,
        BTreeMap::from([
            ("deactivated", 7),
            ("never_logged_in", 14),
            ("no_recent_login", 14)
        ])
    );

    let json = report_json(&env, "unused", &args);
    let rows = json["rows"].as_array().expect("rows");
    let alpha: Vec<&Value> = rows.iter().filter(|r| r["connection"] == "alpha").collect();
    // alpha: 1 seat never assigned + 35 accounts; beta: 1 + users 0 and 3 (never logged in)
    // + users 1 and 2 (last logged in on January 2 and 3) = 5.
    assert_eq!(alpha.len(), 36);
    assert!(
        rows[..36].iter().all(|r| r["connection"] == "alpha"),
        "biggest group first"
    );
    assert!(rows[36..].iter().all(|r| r["connection"] == "beta"));
    assert_eq!(rows[0]["reason"], "unassigned");
    assert_eq!(rows[0]["seats"], 1);
    assert_eq!(rows[0]["account_id"], Value::Null);
    assert_eq!(rows[0]["license_reclaimable"], 36);
    let reasons: Vec<&str> = alpha[1..]
        .iter()
        .map(|r| r["reason"].as_str().expect("reason"))
        .collect();
    let mut sorted = reasons.clone();
    sorted.sort_by_key(|r| {
        [
            "deactivated",
            "frozen",
            "never_logged_in",
            "no_recent_login",
        ]
        .iter()
        .position(|x| x == r)
    });
    assert_eq!(reasons, sorted, "reasons in precedence order");
    for (reason, count) in &expected {
        let n = alpha.iter().filter(|r| r["reason"] == *reason).count() as u64;
        assert_eq!(n, *count, "{reason}");
    }
    // One row per account and license: user6 is deactivated (and never logged in).
    let user6: Vec<&&Value> = alpha.iter().filter(|r| r["account_id"] == "u6").collect();
    assert_eq!(user6.len(), 1);
    assert_eq!(user6[0]["reason"], "deactivated");
    // No login in 20 days, with the last activity: user 10 last logged in on 2026-01-11.
    let user10 = alpha
        .iter()
        .find(|r| r["account_id"] == "u10")
        .expect("user 10 is stale");
    assert_eq!(user10["reason"], "no_recent_login");
    assert_eq!(user10["last_activity_at"], "2026-01-11T00:00:00Z");
    assert_eq!(user10["days_inactive"], 21);
    // Oldest first within a reason.
    let stale: Vec<&str> = alpha
        .iter()
        .filter(|r| r["reason"] == "no_recent_login")
        .map(|r| r["last_activity_at"].as_str().expect("time"))
        .collect();
    let mut ordered = stale.clone();
    ordered.sort();
    assert_eq!(stale, ordered);
    let totals = &json["totals"];
    assert_eq!(totals["by_reason"]["unassigned"]["seats"], 2);
    assert_eq!(totals["by_reason"]["deactivated"]["accounts"], 7);
    assert_eq!(totals["by_reason"]["never_logged_in"]["seats"], 14 + 2);
    assert_eq!(totals["by_reason"]["no_recent_login"]["seats"], 14 + 2);
    assert_eq!(totals["by_reason"]["frozen"]["seats"], 0);
    assert_eq!(totals["by_connection"]["alpha"], 36);
    assert_eq!(totals["seats"], 36 + 5);
    assert_eq!(totals["accounts"], 35 + 4);

    let csv = report_csv(&env, "unused", &args);
    assert_eq!(csv.len(), rows.len());
    for (record, row) in csv.iter().zip(rows) {
        for key in [
            "connection",
            "reason",
            "seats",
            "account_id",
            "last_activity_at",
            "days_inactive",
        ] {
            assert_eq!(record[key], num(&row[key]), "{key}");
        }
    }
    let (table, text) = report_table(&env, "unused", &args);
    assert_eq!(table.len(), rows.len());
    for (line, row) in table.iter().zip(rows) {
        assert_eq!(line["Seats"], num(&row["seats"]));
        assert_eq!(line["Connection"], num(&row["connection"]));
    }
    assert_eq!(table[0]["Reason"], "bought, unassigned");
    assert!(
        text.contains("Reclaimable: 41 seats of 39 accounts"),
        "{text}"
    );
    let stale_line = table
        .iter()
        .find(|r| r["Account"] == "user10@fixture.example")
        .expect("user 10");
    assert_eq!(stale_line["Reason"], "no login in 20 days");
    assert_eq!(stale_line["Last activity"], "2026-01-11");

    // Only one connection.
    let beta = report_json(
        &env,
        "unused",
        &["--connection", "beta", "--inactive-days", &days],
    );
    assert_eq!(beta["rows"].as_array().expect("rows").len(), 5);
}

#[test]
fn users_report_shows_licenses_last_activity_and_flags() {
    let env = imported();
    let json = report_json(&env, "users", &[]);
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), N as usize);
    let (mut never, mut deactivated, mut inactive) = (0, 0, 0);
    for i in 0..N {
        let user = fixture_user(i);
        never += u32::from(user.last_day.is_none());
        deactivated += u32::from(!user.active);
        inactive += u32::from(user.active && user.last_day.is_none());
    }
    let totals = &json["totals"];
    assert_eq!(totals["accounts"], N);
    assert_eq!(totals["licensed"], N);
    assert_eq!(totals["never_logged_in"], never);
    assert_eq!(totals["deactivated"], deactivated);
    assert_eq!(
        totals["inactive"], inactive,
        "90 days: only the never-logged-in"
    );
    assert_eq!(totals["frozen"], 0);
    let user4 = rows
        .iter()
        .find(|r| r["account_id"] == "u4")
        .expect("user 4");
    assert_eq!(user4["last_login_at"], "2026-01-05T00:00:00Z");
    assert_eq!(user4["last_interactive_at"], "2026-01-05T00:00:00Z");
    assert_eq!(user4["last_api_at"], Value::Null);
    assert_eq!(user4["logins"], 5);
    assert_eq!(
        user4["licenses"],
        json!([{"license_id": "seat", "name": "Fixture seat", "family": "user", "status": "active"}])
    );
    let user6 = rows
        .iter()
        .find(|r| r["account_id"] == "u6")
        .expect("user 6");
    assert_eq!(
        (
            &user6["deactivated"],
            &user6["never_logged_in"],
            &user6["inactive"]
        ),
        (&json!(true), &json!(true), &json!(false))
    );

    let csv = report_csv(&env, "users", &[]);
    assert_eq!(csv.len(), rows.len());
    for (record, row) in csv.iter().zip(rows) {
        for key in [
            "account_id",
            "username",
            "last_login_at",
            "logins",
            "deactivated",
            "never_logged_in",
            "inactive",
        ] {
            assert_eq!(record[key], num(&row[key]), "{key}");
        }
    }
    let (table, text) = report_table(&env, "users", &[]);
    assert_eq!(table.len(), rows.len());
    let line = table
        .iter()
        .find(|r| r["Username"] == "user6@fixture.example")
        .expect("user 6");
    assert_eq!(line["Flags"], "deactivated, never logged in");
    assert_eq!(line["Licenses"], "Fixture seat");
    assert!(text.contains(&format!("{N} accounts: ")), "{text}");
}

#[test]
fn reports_before_an_import_say_what_to_run() {
    let env = Env::with_plugins(&[GOOD]);
    let stderr = env.run(&["report", "licenses"]).failure().to_owned();
    assert!(stderr.contains("invhost connections add"), "{stderr}");
    add_fixture(&env, "alpha", 3);
    let stderr = env.run(&["report", "unused"]).failure().to_owned();
    assert!(stderr.contains("run `invhost run NAME`"), "{stderr}");
    let stderr = env
        .run(&["report", "users", "--connection", "alpha"])
        .failure()
        .to_owned();
    assert!(
        stderr.contains(
            "connection `alpha` has no imported snapshot yet; run `invhost run alpha` first"
        ),
        "{stderr}"
    );
    let stderr = env
        .run(&["report", "users", "--connection", "nope"])
        .failure()
        .to_owned();
    assert!(stderr.contains("no connection named `nope`"), "{stderr}");
    let stderr = env
        .run(&["report", "licenses", "--format", "xml"])
        .failure()
        .to_owned();
    assert!(stderr.contains("xml"), "{stderr}");
    // One imported, one not: the report is made, with a warning naming the other.
    add_fixture(&env, "beta", 2);
    import(&env, "beta");
    let run = env.run(&["report", "licenses", "--format", "json"]);
    assert_eq!(run.json()["rows"].as_array().expect("rows").len(), 1);
    assert!(
        run.stderr
            .contains("warning: connection `alpha` has no imported snapshot yet"),
        "{run:#?}"
    );
}

fn statuses(env: &Env) -> Vec<(String, String)> {
    let json = report_json(env, "licenses", &[]);
    json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (num(&r["connection"]), num(&r["status"])))
        .collect()
}

#[test]
fn a_successor_connection_retires_the_superseded_licenses_until_disabled_or_removed() {
    let env = imported();
    let before = report_json(&env, "licenses", &[]);
    assert_eq!(before["totals"]["all"]["purchased"], N + 1);

    // Adding an enabled successor retires alpha's licenses at once (no import needed).
    add_typed(&env, "mgmt", "fixture_successor", &json!({"accounts": 3}));
    assert_eq!(statuses(&env), [("alpha".to_owned(), "retired".to_owned())]);
    import(&env, "mgmt");
    let json = report_json(&env, "licenses", &[]);
    let alpha = &json["rows"][0];
    assert_eq!(
        (
            &alpha["connection"],
            &alpha["status"],
            &alpha["imported_status"],
            &alpha["retired_by"],
            &alpha["counted"]
        ),
        (
            &json!("alpha"),
            &json!("retired"),
            &json!("active"),
            &json!(["mgmt"]),
            &json!(false)
        )
    );
    // Still listed with its figures, but out of the totals: only mgmt's 5 seats count.
    assert_eq!(alpha["assigned"], N);
    assert_eq!(json["totals"]["all"]["purchased"], 5);
    assert_eq!(json["totals"]["all"]["licenses"], 1);
    assert_eq!(json["totals"]["all"]["excluded_licenses"], 1);
    assert_eq!(json["totals"]["connections"][0]["purchased"], 0);
    let csv = report_csv(&env, "licenses", &[]);
    assert_eq!(csv[0]["status"], "retired");
    assert_eq!(csv[0]["retired_by"], "mgmt");
    let (table, text) = report_table(&env, "licenses", &[]);
    assert_eq!(table[0]["License"], "Fixture seat (retired)");
    assert!(
        text.contains("Retired: the licenses of `alpha` are superseded by `mgmt`"),
        "{text}"
    );
    let total = table
        .iter()
        .find(|r| r["Connection"] == "All connections")
        .expect("total");
    assert_eq!(total["Bought"], "5");
    // The unused report lists alpha's seats as retired, after mgmt's, and out of its totals.
    let unused = report_json(&env, "unused", &[]);
    let rows = unused["rows"].as_array().expect("rows");
    let first_retired = rows
        .iter()
        .position(|r| r["license_status"] == "retired")
        .expect("retired rows");
    assert!(
        rows[..first_retired]
            .iter()
            .all(|r| r["connection"] == "mgmt")
    );
    assert!(
        rows[first_retired..]
            .iter()
            .all(|r| r["connection"] == "alpha")
    );
    assert_eq!(unused["totals"]["seats"], 2, "mgmt: 2 seats never assigned");
    // The users report keeps users visible, with their licenses marked.
    let users = report_json(&env, "users", &["--connection", "alpha"]);
    assert_eq!(users["rows"].as_array().expect("rows").len(), N as usize);
    assert_eq!(users["rows"][0]["licenses"][0]["status"], "retired");
    // Even a report of alpha alone applies supersession.
    let only = report_json(&env, "licenses", &["--connection", "alpha"]);
    assert_eq!(only["rows"][0]["status"], "retired");

    // Disabled: restored.
    let run = env.run(&["connections", "disable", "mgmt"]);
    assert!(run.success().contains("Disabled connection `mgmt`"));
    let listed = env.run(&["connections", "list", "--json"]).json();
    assert_eq!(listed[1]["enabled"], false);
    assert_eq!(
        statuses(&env),
        [
            ("alpha".to_owned(), "active".to_owned()),
            ("mgmt".to_owned(), "active".to_owned())
        ]
    );
    let json = report_json(&env, "licenses", &[]);
    assert_eq!(json["totals"]["all"]["purchased"], N + 1 + 5);

    // Enabled again: retired; removed: restored.
    env.run(&["connections", "enable", "mgmt"]).success();
    assert_eq!(statuses(&env)[0].1, "retired");
    env.run(&["connections", "remove", "mgmt"]).success();
    assert_eq!(statuses(&env), [("alpha".to_owned(), "active".to_owned())]);
    let after = report_json(&env, "licenses", &[]);
    assert_eq!(after["rows"], before["rows"], "exactly as before");

    let stderr = env
        .run(&["connections", "disable", "nope"])
        .failure()
        .to_owned();
    assert!(stderr.contains("no connection named `nope`"), "{stderr}");
}

/// Accounts of the simulated org in the Salesforce test.
const SF_USERS: usize = 300;

fn sf_simulator() -> Simulator {
    simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        org: Some(OrgSpec {
            users: SF_USERS,
            ..OrgSpec::default()
        }),
        ..SimConfig::default()
    })
}

/// The simulator's `2026-01-01T00:00:00.000+0000` as RFC 3339.
fn rfc3339(salesforce: &str) -> String {
    chrono::DateTime::parse_from_str(salesforce, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("{salesforce}: {e}"))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn family_text(family: LicenseFamily) -> &'static str {
    match family {
        LicenseFamily::User => "user",
        LicenseFamily::PermissionSet => "permission_set",
        LicenseFamily::Package => "package",
        LicenseFamily::Feature => "feature",
    }
}

/// The licenses report equals the simulator's ground truth per license: purchased, consumed
/// (Salesforce's used), assigned, inactive at 90 days, seat holders and spare seats.
fn assert_licenses_match(json: &Value, truth: &GroundTruth) {
    let rows = json["rows"].as_array().expect("rows");
    for license in &truth.licenses {
        let row = rows
            .iter()
            .find(|r| r["connection"] == "sf" && r["license_id"] == license.id.as_str())
            .unwrap_or_else(|| panic!("no row for {:?} {}", license.family, license.name));
        let figures = (
            row["purchased"].as_i64(),
            row["consumed"].as_i64(),
            row["assigned"].as_u64(),
            row["inactive"].as_u64(),
            row["active"]
                .as_u64()
                .zip(row["inactive"].as_u64())
                .map(|(a, i)| a + i),
        );
        let expected = (
            license.purchased,
            Some(license.used),
            Some(license.assigned),
            Some(license.inactive_90_assigned),
            Some(license.active_assigned),
        );
        assert_eq!(figures, expected, "{:?} {}", license.family, license.name);
        assert_eq!(
            (row["holders"].as_u64(), row["unassigned"].as_i64()),
            (Some(license.holders), license.spare),
            "seat holders and spare seats of {:?} {}",
            license.family,
            license.name
        );
        assert_eq!(
            row["family"],
            family_text(license.family),
            "{}",
            license.name
        );
    }
}

#[test]
fn a_successor_retires_an_imported_salesforce_org() {
    let sim = sf_simulator();
    let env = Env::with_plugins(&[SALESFORCE, SUCCESSOR]);
    add_salesforce(&env, "sf", &salesforce_settings(&sim));
    generate_approved(&env, "sf");
    add_typed(&env, "mgmt", "successor", &json!({"accounts": 4}));
    import(&env, "mgmt");
    // Whatever the Salesforce plugin can do yet: the successor's own figures, and sf not
    // imported yet.
    let json = report_json(&env, "licenses", &[]);
    assert_eq!(json["rows"][0]["connection"], "mgmt");
    assert_eq!(json["rows"][0]["status"], "active");
    assert_eq!(json["totals"]["all"]["purchased"], 6);
    let stderr = env
        .run(&["report", "licenses", "--connection", "sf"])
        .failure()
        .to_owned();
    assert!(stderr.contains("run `invhost run sf` first"), "{stderr}");

    let run = env.run(&["run", "sf"]);
    if run.code != Some(0) && run.stderr.contains("cannot import yet") {
        eprintln!(
            "NOTE: the Salesforce plugin in this build cannot import yet; the Salesforce part of \
             a_successor_retires_an_imported_salesforce_org was skipped"
        );
        return;
    }
    assert!(run.success().contains("succeeded"), "{run:#?}");
    let truth = sim.ground_truth().expect("the simulator serves an org");
    let as_of = rfc3339(&truth.as_of);
    let args = ["--as-of", as_of.as_str(), "--format", "json"];

    // Superseded: every Salesforce license reads retired, out of the totals.
    let retired = env
        .run(&[&["report", "licenses"][..], &args[..]].concat())
        .json();
    let sf_rows: Vec<&Value> = retired["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["connection"] == "sf")
        .collect();
    assert_eq!(sf_rows.len(), truth.licenses.len());
    assert!(
        sf_rows
            .iter()
            .all(|r| r["status"] == "retired" && r["counted"] == false)
    );
    assert_eq!(
        retired["totals"]["all"]["purchased"], 6,
        "only mgmt's seats count"
    );
    assert_licenses_match(&retired, &truth);
    // Users and usage stay visible.
    let users = env
        .run(&[&["report", "users", "--connection", "sf"][..], &args[..]].concat())
        .json();
    assert_eq!(users["totals"]["accounts"], truth.users.total);

    // Disabled: back, and equal to the ground truth.
    env.run(&["connections", "disable", "mgmt"]).success();
    let restored = env
        .run(&[&["report", "licenses"][..], &args[..]].concat())
        .json();
    assert!(
        restored["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["connection"] == "sf")
            .all(|r| r["status"] != "retired")
    );
    assert_licenses_match(&restored, &truth);
    let users = env
        .run(&[&["report", "users", "--connection", "sf"][..], &args[..]].concat())
        .json();
    let totals = &users["totals"];
    assert_eq!(totals["active"], truth.users.active);
    assert_eq!(totals["never_logged_in"], truth.users.never_logged_in);
    assert_eq!(totals["frozen"], truth.users.frozen);
    assert_eq!(totals["inactive"], truth.users.active_inactive_90);
    let unused = env
        .run(&[&["report", "unused", "--connection", "sf"][..], &args[..]].concat())
        .json();
    assert_eq!(
        unused["totals"]["by_reason"]["deactivated"]["accounts"],
        truth.users.deactivated_with_seats
    );
    assert_eq!(
        unused["totals"]["by_reason"]["frozen"]["accounts"],
        truth.users.frozen
    );
    // Per license: the spare seats, and one `deactivated` row per deactivated user still
    // holding a permission set or package seat (user and feature seats were freed).
    let unused_rows = unused["rows"].as_array().expect("rows");
    let mut deactivated_holders = 0;
    for license in &truth.licenses {
        let rows_of = |reason: &str| -> Vec<&Value> {
            unused_rows
                .iter()
                .filter(|r| r["license_id"] == license.id.as_str() && r["reason"] == reason)
                .collect()
        };
        let spare: Vec<i64> = rows_of("unassigned")
            .iter()
            .map(|r| r["seats"].as_i64().expect("seats"))
            .collect();
        let expected: Vec<i64> = license.spare.filter(|n| *n > 0).into_iter().collect();
        assert_eq!(
            spare, expected,
            "spare {:?} {}",
            license.family, license.name
        );
        let held_by_deactivated = license.holders - license.active_assigned;
        assert_eq!(
            rows_of("deactivated").len() as u64,
            held_by_deactivated,
            "deactivated {:?} {}",
            license.family,
            license.name
        );
        if matches!(license.family, LicenseFamily::User | LicenseFamily::Feature) {
            assert_eq!(held_by_deactivated, 0, "{}", license.name);
        }
        deactivated_holders += held_by_deactivated;
    }
    assert!(
        deactivated_holders > 0,
        "the org has deactivated seat holders"
    );
    let spare_total: i64 = truth.licenses.iter().filter_map(|l| l.spare).sum();
    assert_eq!(
        unused["totals"]["by_reason"]["unassigned"]["seats"].as_i64(),
        Some(spare_total)
    );
    assert!(
        truth
            .licenses
            .iter()
            .any(|l| l.family == LicenseFamily::User && l.holders < l.assigned),
        "some user license has a deactivated user whose seat was freed"
    );

    // Removed: still restored.
    env.run(&["connections", "enable", "mgmt"]).success();
    env.run(&["connections", "remove", "mgmt"]).success();
    let back = env
        .run(&[&["report", "licenses"][..], &args[..]].concat())
        .json();
    let sf = |json: &Value| -> Vec<Value> {
        json["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["connection"] == "sf")
            .cloned()
            .collect()
    };
    assert_eq!(sf(&back), sf(&restored));
}
