//! `invhost run` of a Salesforce connection against the simulator's synthetic org, through the
//! real binary and the real plugin library: the stored snapshot equals the simulator's ground
//! truth, injected faults end in success or a clean failure with the previous snapshot intact,
//! and SIGKILL mid-import loses nothing.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use invhost_sim_salesforce::{Faults, GroundTruth, LicenseFamily, OrgSpec, SimConfig, Simulator};
use serde_json::Value;

use crate::{
    connections::{add, generate_approved, settings, simulator},
    support::*,
};

fn org_simulator(users: usize, page_size: usize) -> Simulator {
    simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        org: Some(OrgSpec {
            users,
            page_size,
            ..OrgSpec::default()
        }),
        ..SimConfig::default()
    })
}

/// A host with a Salesforce connection `org` whose refresh token is generated.
fn connected(sim: &Simulator) -> Env {
    let env = Env::with_plugins(&[SALESFORCE]);
    add(&env, "org", &settings(sim));
    generate_approved(&env, "org");
    env
}

fn db(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.data_dir().join("invhost.db")).expect("database opens")
}

fn query_i64(env: &Env, sql: &str) -> i64 {
    db(env)
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const CURRENT: &str = "(SELECT id FROM snapshots WHERE state = 'current')";

fn last_run(env: &Env) -> Value {
    env.run(&["runs", "--json", "--limit", "1"]).json()[0].clone()
}

/// Salesforce's `2026-01-01T00:00:00.000+0000` as stored (`2026-01-01T00:00:00Z`).
fn stored_time(salesforce: &str) -> String {
    let parsed = chrono::DateTime::parse_from_str(salesforce, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("{salesforce}: {e}"));
    parsed
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

/// The current snapshot equals the ground truth: licenses (purchased, used, assignments,
/// active assignments), users, and last logins.
fn assert_matches_truth(env: &Env, truth: &GroundTruth) {
    let db = db(env);
    for license in &truth.licenses {
        let (family, purchased, consumed, unlimited): (String, Option<i64>, Option<i64>, bool) = db
            .query_row(
                &format!(
                    "SELECT family, purchased, consumed, unlimited FROM licenses
                     WHERE snapshot_id = {CURRENT} AND id = ?1"
                ),
                [&license.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap_or_else(|e| panic!("license {} ({}): {e}", license.id, license.name));
        assert_eq!(family, family_text(license.family), "{}", license.name);
        assert_eq!(
            purchased, license.purchased,
            "purchased of {}",
            license.name
        );
        assert_eq!(
            unlimited,
            license.purchased.is_none() && license.family == LicenseFamily::Package,
            "unlimited of {}",
            license.name
        );
        assert_eq!(consumed, Some(license.used), "consumed of {}", license.name);
        let (assigned, active): (i64, i64) = db
            .query_row(
                &format!(
                    "SELECT COUNT(*), COALESCE(SUM(a.active), 0) FROM assignments s
                     JOIN accounts a ON a.snapshot_id = s.snapshot_id AND a.id = s.account_id
                     WHERE s.snapshot_id = {CURRENT} AND s.license_id = ?1"
                ),
                [&license.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("assignments");
        assert_eq!(
            assigned as u64, license.assigned,
            "assigned of {}",
            license.name
        );
        assert_eq!(
            active as u64, license.active_assigned,
            "active assigned of {}",
            license.name
        );
    }
    let count = |condition: &str| -> u64 {
        db.query_row(
            &format!("SELECT COUNT(*) FROM accounts WHERE snapshot_id = {CURRENT} AND {condition}"),
            [],
            |r| r.get::<_, i64>(0),
        )
        .expect("count") as u64
    };
    assert_eq!(count("1 = 1"), truth.users.total);
    assert_eq!(count("active = 1"), truth.users.active);
    assert_eq!(count("last_login_at IS NULL"), truth.users.never_logged_in);
    assert_eq!(count("frozen = 1"), truth.users.frozen);
    for sample in &truth.last_login_sample {
        let stored: Option<String> = db
            .query_row(
                &format!(
                    "SELECT last_login_at FROM accounts WHERE snapshot_id = {CURRENT} AND id = ?1"
                ),
                [&sample.id],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("account {}: {e}", sample.id));
        assert_eq!(
            stored,
            sample.last_login.as_deref().map(stored_time),
            "last login of {}",
            sample.username
        );
    }
}

#[test]
fn an_import_equals_the_ground_truth_and_counts_its_api_calls() {
    let sim = org_simulator(2_500, 500);
    let env = connected(&sim);
    let before = sim.control().api_calls();
    let run = env.run(&["run", "org", "--json"]);
    run.success();
    let truth = sim.ground_truth().expect("an org");
    assert_matches_truth(&env, &truth);
    let finished = &run.json()[0];
    assert_eq!(finished["state"], "succeeded");
    assert_eq!(
        finished["api_calls"].as_u64(),
        Some(sim.control().api_calls() - before),
        "the run's count agrees with the org's"
    );
    assert_eq!(finished["counts"]["account"], truth.users.total);
    assert_eq!(finished["counts"]["tenant"], 1);
}

#[test]
fn faults_end_in_success_with_the_exact_inventory() {
    let sim = org_simulator(1_200, 200);
    let env = connected(&sim);
    let truth = sim.ground_truth().expect("an org");
    for faults in [
        Faults {
            expire_session_after_page: Some(2),
            ..Faults::default()
        },
        Faults {
            rate_limit_once: true,
            ..Faults::default()
        },
        Faults {
            unavailable_once: true,
            ..Faults::default()
        },
        Faults {
            truncated_json_once: true,
            ..Faults::default()
        },
        Faults {
            dropped_body_once: true,
            ..Faults::default()
        },
        Faults {
            html_once: true,
            ..Faults::default()
        },
    ] {
        sim.control().set_faults(faults.clone());
        let before = sim.control().api_calls();
        let run = env.run(&["run", "org"]);
        assert_eq!(run.code, Some(0), "{faults:?}: {run:#?}");
        let finished = last_run(&env);
        assert_eq!(finished["state"], "succeeded", "{faults:?}");
        // Every answer the org counted is in the run's count: a refusal for the allowance,
        // and an answer whose body was cut or dropped, included.
        assert_eq!(
            finished["api_calls"].as_u64(),
            Some(sim.control().api_calls() - before),
            "{faults:?}: the run's count agrees with the org's"
        );
        assert_matches_truth(&env, &truth);
    }
    assert_eq!(
        query_i64(
            &env,
            "SELECT COUNT(*) FROM snapshots WHERE state = 'building'"
        ),
        0
    );
}

#[test]
fn a_lasting_outage_fails_with_one_line_on_stderr() {
    let sim = org_simulator(600, 200);
    let env = connected(&sim);
    // Every data call answers 503, for longer than the run's retries last.
    sim.control().set_faults(Faults {
        unavailable_times: 1_000,
        ..Faults::default()
    });
    let run = env.run(&["run", "org"]);
    let stderr = run.failure();
    // The retries are logged at `info`; at the default level only the outcome shows.
    assert_eq!(stderr.trim_end().lines().count(), 1, "{run:#?}");
    assert!(stderr.starts_with("org: failed after"), "{run:#?}");
    assert!(
        stderr.contains("503 SERVER_UNAVAILABLE") && stderr.contains("four times"),
        "{run:#?}"
    );
    assert_eq!(last_run(&env)["state"], "failed");
}

#[test]
fn a_revoked_token_fails_cleanly_and_keeps_the_previous_snapshot() {
    let sim = org_simulator(600, 200);
    let env = connected(&sim);
    env.run(&["run", "org"]).success();
    let accounts = query_i64(
        &env,
        &format!("SELECT COUNT(*) FROM accounts WHERE snapshot_id = {CURRENT}"),
    );
    sim.control().revoke_refresh_tokens();
    sim.control().expire_access_tokens();
    let run = env.run(&["run", "org"]);
    let stderr = run.failure();
    assert!(stderr.contains("org: failed after"), "{run:#?}");
    assert!(stderr.contains("generate-token org"), "{run:#?}");
    // The remedy is said once, in the CLI's words, not also in the plugin's.
    assert_eq!(stderr.matches("generate").count(), 2, "{run:#?}");
    assert!(!stderr.contains("generate_refresh_token"), "{run:#?}");
    let failed = last_run(&env);
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["error_kind"], "auth");
    assert_eq!(
        query_i64(
            &env,
            &format!("SELECT COUNT(*) FROM accounts WHERE snapshot_id = {CURRENT}")
        ),
        accounts
    );
    let list = env.run(&["connections", "list"]);
    assert!(
        list.success().contains("re-authorization required"),
        "{list:#?}"
    );
}

#[test]
fn sigkill_during_an_import_loses_nothing() {
    let sim = org_simulator(3_000, 200);
    let env = connected(&sim);
    env.run(&["run", "org"]).success();
    let truth = sim.ground_truth().expect("an org");
    // Slow pages, so that the kill lands mid-import.
    sim.control().set_faults(Faults {
        latency_ms: 40,
        ..Faults::default()
    });
    for round in 0..3 {
        let mut child = env
            .invhost(&["run", "org"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("invhost starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let written = query_i64(
                &env,
                "SELECT COUNT(*) FROM accounts a JOIN snapshots s ON s.id = a.snapshot_id
                 WHERE s.state = 'building'",
            );
            if written > 200 {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: nothing written");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let integrity: String = db(&env)
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity check");
        assert_eq!(integrity, "ok");
        assert_matches_truth(&env, &truth);
        assert_eq!(last_run(&env)["state"], "interrupted", "round {round}");
    }
    sim.control().set_faults(Faults::default());
    env.run(&["run", "org"]).success();
    assert_matches_truth(&env, &truth);
}
