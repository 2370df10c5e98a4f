//! `invhost export` through the real binary: one file per record kind with the documented
//! columns, rows of every connection (or one), supersession applied, JSON Lines and CSV, no
//! overwriting without `--force`.

use std::{collections::BTreeMap, path::Path};

use serde_json::{Value, json};

use crate::{
    reports::{N, add_fixture, add_typed, fixture_user, import, imported, parse_csv},
    support::*,
};

/// The documented columns of each file (docs/reports.md, "export"), connection first.
const COLUMNS: [(&str, &str); 6] = [
    (
        "tenants",
        "connection,id,name,edition,instance,sandbox,attributes",
    ),
    (
        "accounts",
        "connection,id,username,display_name,email,active,frozen,account_type,created_at,last_login_at,attributes",
    ),
    ("applications", "connection,id,name,vendor,attributes"),
    (
        "licenses",
        "connection,id,application_id,name,family,unit,purchased,consumed,unlimited,expires_on,status,imported_status,attributes",
    ),
    (
        "assignments",
        "connection,license_id,account_id,source,assigned_at",
    ),
    (
        "usage",
        "connection,account_id,application_id,window_days,logins,last_interactive_at,last_api_at",
    ),
];

fn export(env: &Env, format: &str, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "export",
        "--format",
        format,
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn jsonl(path: &Path) -> Vec<Value> {
    read(path)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

#[test]
fn csv_export_writes_every_kind_with_the_documented_columns() {
    let env = imported();
    add_typed(&env, "mgmt", "fixture_successor", &json!({"accounts": 3}));
    import(&env, "mgmt");
    env.run(&["connections", "disable", "mgmt"]).success();
    let out = env.root().join("export").join("nested");
    let run = export(&env, "csv", &out, &[]);
    assert!(
        run.success().contains("Exported alpha, mgmt to ")
            && run.stdout.contains("accounts.csv (53 rows)"),
        "{run:#?}"
    );
    let with_logins = (0..N)
        .filter(|i| fixture_user(*i).last_day.is_some())
        .count();
    // (kind, rows of alpha, rows of mgmt)
    let expected: BTreeMap<&str, (usize, usize)> = BTreeMap::from([
        ("tenants", (0, 1)),
        ("accounts", (N as usize, 3)),
        ("applications", (1, 1)),
        ("licenses", (1, 1)),
        ("assignments", (N as usize, 3)),
        ("usage", (with_logins, 3)),
    ]);
    for (kind, columns) in COLUMNS {
        let text = read(&out.join(format!("{kind}.csv")));
        assert_eq!(text.lines().next(), Some(columns), "{kind}'s header");
        let rows = parse_csv(&text);
        let count = |name: &str| rows.iter().filter(|r| r["connection"] == name).count();
        assert_eq!((count("alpha"), count("mgmt")), expected[kind], "{kind}");
        assert_eq!(rows.len(), expected[kind].0 + expected[kind].1, "{kind}");
    }
    let accounts = parse_csv(&read(&out.join("accounts.csv")));
    let u6 = accounts
        .iter()
        .find(|r| r["connection"] == "alpha" && r["id"] == "u6")
        .expect("u6");
    assert_eq!(
        (
            u6["username"].as_str(),
            u6["active"].as_str(),
            u6["frozen"].as_str(),
            u6["last_login_at"].as_str(),
            u6["attributes"].as_str()
        ),
        ("user6@fixture.example", "false", "", "", "{}")
    );
    let u4 = accounts
        .iter()
        .find(|r| r["connection"] == "alpha" && r["id"] == "u4")
        .expect("u4");
    assert_eq!(u4["last_login_at"], "2026-01-05T00:00:00Z");
    let licenses = parse_csv(&read(&out.join("licenses.csv")));
    assert_eq!(
        (
            licenses[0]["purchased"].as_str(),
            licenses[0]["consumed"].as_str(),
            licenses[0]["status"].as_str()
        ),
        ("51", "50", "active"),
        "the successor is disabled: nothing retired"
    );
    let usage = parse_csv(&read(&out.join("usage.csv")));
    let u4 = usage
        .iter()
        .find(|r| r["connection"] == "alpha" && r["account_id"] == "u4")
        .expect("u4's usage");
    assert_eq!(
        (
            u4["application_id"].as_str(),
            u4["logins"].as_str(),
            u4["last_interactive_at"].as_str()
        ),
        ("", "5", "2026-01-05T00:00:00Z")
    );
    // The documentation names the same columns.
    let docs = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/reports.md"));
    for (kind, columns) in COLUMNS {
        assert!(
            docs.contains(&format!("`{columns}`")),
            "docs/reports.md lacks {kind}'s columns"
        );
    }
    // Nothing else is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "accounts.csv",
            "applications.csv",
            "assignments.csv",
            "licenses.csv",
            "tenants.csv",
            "usage.csv"
        ]
    );
}

#[test]
fn json_lines_export_applies_supersession_and_never_overwrites_without_force() {
    let env = imported();
    add_typed(&env, "mgmt", "fixture_successor", &json!({"accounts": 2}));
    let out = env.root().join("json");
    let run = export(&env, "json", &out, &["--json"]);
    let summary = run.json();
    assert_eq!(
        summary["connections"],
        json!(["alpha"]),
        "mgmt has no snapshot"
    );
    assert!(
        run.stderr.contains("`mgmt` has no imported snapshot"),
        "{run:#?}"
    );
    let rows: Vec<(String, u64)> = summary["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().expect("kind").to_owned(),
                f["rows"].as_u64().expect("rows"),
            )
        })
        .collect();
    assert_eq!(rows[1], ("accounts".to_owned(), u64::from(N)));
    for (kind, columns) in COLUMNS {
        let lines = jsonl(&out.join(format!("{kind}.jsonl")));
        for line in &lines {
            let keys: Vec<&str> = line
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys.join(","), columns, "{kind}");
        }
    }
    let licenses = jsonl(&out.join("licenses.jsonl"));
    assert_eq!(
        licenses[0],
        json!({"connection": "alpha", "id": "seat", "application_id": "app", "name": "Fixture seat",
               "family": "user", "unit": "seat", "purchased": 51, "consumed": 50,
               "unlimited": false, "expires_on": null, "status": "retired",
               "imported_status": "active", "attributes": {}})
    );
    let accounts = jsonl(&out.join("accounts.jsonl"));
    let u6 = accounts.iter().find(|a| a["id"] == "u6").expect("u6");
    assert_eq!(
        (&u6["active"], &u6["frozen"]),
        (&json!(false), &Value::Null)
    );
    let usage = jsonl(&out.join("usage.jsonl"));
    assert_eq!(usage[0]["application_id"], Value::Null);
    assert!(usage[0]["logins"].is_u64());

    // Existing files are kept unless --force.
    env.run(&["connections", "remove", "mgmt"]).success();
    let stderr = export(&env, "json", &out, &[]).failure().to_owned();
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        jsonl(&out.join("licenses.jsonl"))[0]["status"],
        "retired",
        "untouched"
    );
    export(&env, "json", &out, &["--force"]).success();
    assert_eq!(
        jsonl(&out.join("licenses.jsonl"))[0]["status"],
        "active",
        "replaced"
    );
}

#[test]
fn export_of_one_connection_and_before_any_import() {
    let env = Env::with_plugins(&[GOOD]);
    let out = env.root().join("out");
    let stderr = export(&env, "csv", &out, &[]).failure().to_owned();
    assert!(stderr.contains("invhost connections add"), "{stderr}");
    add_fixture(&env, "alpha", 4);
    add_fixture(&env, "beta", 2);
    let stderr = export(&env, "csv", &out, &["--connection", "beta"])
        .failure()
        .to_owned();
    assert!(stderr.contains("run `invhost run beta` first"), "{stderr}");
    assert!(!out.exists(), "nothing written on a refusal");
    import(&env, "alpha");
    import(&env, "beta");
    export(&env, "csv", &out, &["--connection", "beta"]).success();
    let accounts = parse_csv(&read(&out.join("accounts.csv")));
    assert_eq!(accounts.len(), 2);
    assert!(accounts.iter().all(|r| r["connection"] == "beta"));
}

/// The files of `dir` (hidden ones included) with their contents.
fn files_of(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("an entry").path();
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).unwrap_or_default())
        })
        .collect()
}

#[test]
fn a_failed_export_leaves_the_previous_files_intact() {
    let env = imported();
    let out = env.root().join("kept");
    export(&env, "csv", &out, &[]).success();
    let before = files_of(&out);
    assert_eq!(before.len(), COLUMNS.len(), "{:?}", before.keys());
    // New data for every file, then the database fails while the export writes its last file
    // (the `usage` table is gone): the five files written before it must not replace the
    // previous ones.
    add_fixture(&env, "beta", 3);
    import(&env, "beta");
    let db = rusqlite::Connection::open(env.data_dir().join("invhost.db")).expect("database");
    db.execute("DROP TABLE usage", []).expect("dropped");
    drop(db);
    let stderr = export(&env, "csv", &out, &["--force"]).failure().to_owned();
    assert!(stderr.contains("usage"), "{stderr}");
    assert_eq!(
        files_of(&out),
        before,
        "the previous files, unchanged, and nothing of the failed export"
    );
    assert!(
        !read(&out.join("accounts.csv")).contains("beta"),
        "beta's accounts were not exported"
    );

    // A directory where a file goes is refused before anything is written.
    let json = env.root().join("json");
    std::fs::create_dir_all(json.join("usage.jsonl")).expect("a directory in the way");
    let stderr = export(&env, "json", &json, &["--force"])
        .failure()
        .to_owned();
    assert!(stderr.contains("is a directory"), "{stderr}");
    assert_eq!(files_of(&json).keys().collect::<Vec<_>>(), ["usage.jsonl"]);
}
