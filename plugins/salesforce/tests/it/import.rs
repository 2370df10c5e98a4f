//! `import` against the simulator's synthetic org: everything emitted is compared with the
//! simulator's ground truth, with and without injected faults; budget, scope, missing fields,
//! missing objects and cancellation.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use invhost_plugin_api::{
    Error, ErrorKind, Host,
    abi::{FfiError, HostCallbacks, LogLevel},
    abi_stable::std_types::{RResult, RStr, RString},
    model::{Account, AssignmentSource, License, LicenseFamily as Family, Record, Usage},
    protocol::{ConnectionInfo, ImportRequest, ImportSummary},
    sdk::{Plugin, testing::RecordingHost},
};
use invhost_salesforce::{Salesforce, import::stream::WAITING_PAGES, plugin::SOURCE_TYPE};
use invhost_sim_salesforce::{
    Faults, GroundTruth, LicenseFamily, OrgSpec, SimConfig, Simulator, SlowObject, SyntheticOrg,
};
use serde_json::{Value, json};

use crate::support::{generate_token, local_settings, simulator};

const USERS: usize = 3_000;
const PAGE: usize = 500;

/// A simulator serving an org of `users` users in pages of `page_size`.
async fn org_sim(users: usize, page_size: usize, config: SimConfig) -> Simulator {
    let org = config.org.clone().unwrap_or_default();
    simulator(SimConfig {
        auto_approve_after_polls: Some(1),
        org: Some(OrgSpec {
            users,
            page_size,
            ..org
        }),
        ..config
    })
    .await
}

/// Settings with a freshly generated refresh token, and `import` settings if given.
async fn settings(sim: &Simulator, import: Option<Value>) -> Value {
    let token = generate_token(sim).await;
    let mut settings = local_settings(sim, &token);
    if let Some(import) = import {
        settings["import"] = import;
    }
    settings
}

/// Runs the import with a one-minute guard, so that a hang fails instead of blocking.
async fn run(settings: Value, host: &Host) -> Result<ImportSummary, Error> {
    let request = ImportRequest {
        source_type: SOURCE_TYPE.into(),
        connection: ConnectionInfo {
            name: "Acme prod".into(),
        },
        settings,
        model_version: invhost_plugin_api::model::MODEL_VERSION,
    };
    tokio::time::timeout(Duration::from_secs(60), Salesforce.import(request, host))
        .await
        .expect("the import finishes within a minute")
}

/// What an import emitted, indexed.
#[derive(Debug, Default)]
struct Inventory {
    tenants: usize,
    accounts: HashMap<String, Account>,
    account_records: usize,
    applications: HashSet<String>,
    licenses: HashMap<String, License>,
    /// (account, license, source), every one emitted.
    assignments: Vec<(String, String, AssignmentSource)>,
    usage: Vec<Usage>,
}

impl Inventory {
    fn of(records: &[Record]) -> Self {
        let mut inventory = Inventory::default();
        for record in records {
            match record {
                Record::Tenant(_) => inventory.tenants += 1,
                Record::Account(account) => {
                    inventory.account_records += 1;
                    inventory
                        .accounts
                        .insert(account.id.clone(), account.clone());
                }
                Record::Application(application) => {
                    assert!(
                        inventory.applications.insert(application.id.clone()),
                        "application {} sent twice",
                        application.id
                    );
                }
                Record::License(license) => {
                    let previous = inventory
                        .licenses
                        .insert(license.id.clone(), license.clone());
                    assert!(previous.is_none(), "license {} sent twice", license.id);
                }
                Record::Assignment(a) => {
                    inventory.assignments.push((
                        a.account_id.clone(),
                        a.license_id.clone(),
                        a.source,
                    ));
                }
                Record::Usage(usage) => inventory.usage.push(usage.clone()),
            }
        }
        inventory
    }

    fn counts(&self) -> HashMap<&'static str, u64> {
        HashMap::from([
            ("tenant", self.tenants as u64),
            ("account", self.account_records as u64),
            ("application", self.applications.len() as u64),
            ("license", self.licenses.len() as u64),
            ("assignment", self.assignments.len() as u64),
            ("usage", self.usage.len() as u64),
        ])
    }
}

fn family(family: LicenseFamily) -> Family {
    match family {
        LicenseFamily::User => Family::User,
        LicenseFamily::PermissionSet => Family::PermissionSet,
        LicenseFamily::Package => Family::Package,
        LicenseFamily::Feature => Family::Feature,
    }
}

fn salesforce_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// How the import is expected to have found the org's optional objects.
#[derive(Debug, Clone, Copy)]
struct Readable {
    feature_metrics: bool,
    user_login: bool,
}

const ALL_READABLE: Readable = Readable {
    feature_metrics: true,
    user_login: true,
};

/// Compares everything emitted with the ground truth.
/// What `recording` holds equals `sim`'s ground truth, every object readable.
fn assert_recorded_matches_truth(sim: &Simulator, recording: &RecordingHost) {
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    let inventory = Inventory::of(&recording.recorded().records);
    assert_matches_truth(&inventory, &truth, &org, ALL_READABLE);
}

fn assert_matches_truth(
    inventory: &Inventory,
    truth: &GroundTruth,
    org: &SyntheticOrg,
    readable: Readable,
) {
    assert_eq!(inventory.tenants, 1);
    // Accounts: each user exactly once.
    assert_eq!(
        inventory.account_records as u64, truth.users.total,
        "account records"
    );
    assert_eq!(
        inventory.accounts.len() as u64,
        truth.users.total,
        "distinct accounts"
    );
    let accounts = &inventory.accounts;
    let count = |f: &dyn Fn(&Account) -> bool| accounts.values().filter(|a| f(a)).count() as u64;
    let as_of = salesforce_time(&truth.as_of);
    let inactive_90 = |a: &Account| {
        a.last_login_at
            .is_none_or(|t| as_of - t > chrono::Duration::days(90))
    };
    assert_eq!(count(&|a| a.active), truth.users.active, "active users");
    assert_eq!(
        count(&|a| a.last_login_at.is_none()),
        truth.users.never_logged_in,
        "never logged in"
    );
    if readable.user_login {
        assert_eq!(
            count(&|a| a.frozen == Some(true)),
            truth.users.frozen,
            "frozen"
        );
        assert_eq!(count(&|a| a.frozen.is_none()), 0, "frozen known for all");
    } else {
        assert_eq!(
            count(&|a| a.frozen.is_none()),
            truth.users.total,
            "frozen unknown"
        );
    }
    assert_eq!(
        count(&|a| a.active && inactive_90(a)),
        truth.users.active_inactive_90,
        "active but inactive for 90 days"
    );
    let seated: HashSet<&str> = inventory
        .assignments
        .iter()
        .filter(|(_, _, source)| {
            matches!(
                source,
                AssignmentSource::PermissionSetLicense | AssignmentSource::Package
            )
        })
        .map(|(account, _, _)| account.as_str())
        .collect();
    assert_eq!(
        seated
            .iter()
            .filter(|id| accounts.get(**id).is_some_and(|a| !a.active))
            .count() as u64,
        truth.users.deactivated_with_seats,
        "deactivated with seats"
    );

    // Licenses, with their assignments joined to the accounts.
    assert_eq!(
        inventory.licenses.len(),
        truth.licenses.len(),
        "licenses: {:?}",
        inventory.licenses.keys().collect::<Vec<_>>()
    );
    let mut by_license: HashMap<&str, Vec<&Account>> = HashMap::new();
    let mut distinct = HashSet::new();
    for (account, license, source) in &inventory.assignments {
        assert!(
            distinct.insert((account, license, source)),
            "assignment {account} {license} {source:?} sent twice"
        );
        let holder = accounts
            .get(account)
            .unwrap_or_else(|| panic!("assignment of {license} to unknown account {account}"));
        by_license.entry(license.as_str()).or_default().push(holder);
    }
    for expected in &truth.licenses {
        let license = inventory
            .licenses
            .get(&expected.id)
            .unwrap_or_else(|| panic!("license {} ({}) missing", expected.id, expected.name));
        let name = &expected.name;
        assert_eq!(license.family, family(expected.family), "family of {name}");
        assert!(
            inventory.applications.contains(&license.application_id),
            "application of {name}"
        );
        let feature_without_metric =
            expected.family == LicenseFamily::Feature && !readable.feature_metrics;
        let purchased = if feature_without_metric {
            None
        } else {
            expected.purchased
        };
        assert_eq!(
            license.purchased,
            purchased.map(|n| u64::try_from(n).expect("positive")),
            "purchased of {name}"
        );
        assert_eq!(
            license.consumed,
            Some(u64::try_from(expected.used).expect("positive")),
            "consumed of {name}"
        );
        assert_eq!(
            license.unlimited,
            expected.family == LicenseFamily::Package && expected.purchased.is_none(),
            "unlimited of {name}"
        );
        let holders = by_license
            .get(expected.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        assert_eq!(
            holders.len() as u64,
            expected.assigned,
            "assigned of {name}"
        );
        let active: Vec<&&Account> = holders.iter().filter(|a| a.active).collect();
        assert_eq!(
            active.len() as u64,
            expected.active_assigned,
            "active of {name}"
        );
        assert_eq!(
            active.iter().filter(|a| inactive_90(a)).count() as u64,
            expected.inactive_90_assigned,
            "inactive for 90 days of {name}"
        );
    }

    // Last logins: the sample, and users across the org.
    for sample in &truth.last_login_sample {
        let account = &accounts[&sample.id];
        assert_eq!(account.username, sample.username);
        assert_eq!(
            account.last_login_at,
            sample.last_login.as_deref().map(salesforce_time),
            "last login of {}",
            sample.username
        );
    }
    let users = org.user_count();
    for i in [20, users / 3, users / 2 + 7, users - 1] {
        assert_eq!(
            accounts[&org.user_id(i)].last_login_at,
            org.user_last_login(i).as_deref().map(salesforce_time),
            "last login of user {i}"
        );
    }

    // Usage: every successful login once; merged per user, the newest one is the user's
    // LastLoginDate (the simulator's newest LoginHistory row of a user is that login).
    let mut merged: HashMap<&str, (u64, Option<DateTime<Utc>>)> = HashMap::new();
    for usage in &inventory.usage {
        assert_eq!(usage.window_days, 90);
        assert_eq!(usage.application_id, None);
        let entry = merged.entry(usage.account_id.as_str()).or_default();
        entry.0 += usage.logins;
        entry.1 = entry
            .1
            .max(usage.last_interactive_at)
            .max(usage.last_api_at);
    }
    let logins: u64 = merged.values().map(|(n, _)| n).sum();
    assert_eq!(logins, truth.login_history_successful_rows, "logins");
    for (user, (_, newest)) in &merged {
        let account = accounts
            .get(*user)
            .unwrap_or_else(|| panic!("usage of unknown account {user}"));
        assert_eq!(*newest, account.last_login_at, "newest login of {user}");
    }
}

/// Time windows `LoginHistory` is read in by default.
const LOGIN_HISTORY_WINDOWS: u64 = 4;

/// The call that counts `LoginHistory`'s rows with `login_history_api = "auto"`, the default.
const LOGIN_HISTORY_COUNT: u64 = 1;

/// Pages the import needs: one per page of each query, and describe. `LoginHistory` is read
/// in [`LOGIN_HISTORY_WINDOWS`] windows, each a query of its own whose last page may be
/// partly filled: up to one more page per window after the first than the unsplit query.
fn pages_needed(truth: &GroundTruth, page: usize) -> std::ops::RangeInclusive<u64> {
    let pages = |rows: u64| rows.div_ceil(page as u64).max(1);
    let assigned = |family: LicenseFamily| -> u64 {
        truth
            .licenses
            .iter()
            .filter(|l| l.family == family)
            .map(|l| l.assigned)
            .sum()
    };
    // Organization, UserLicense, Profile, PermissionSetLicense, PackageLicense, describe
    // User and the two metrics each take one call.
    let least = 8
        + pages(truth.users.total)
        + pages(truth.users.frozen)
        + pages(assigned(LicenseFamily::PermissionSet))
        + pages(assigned(LicenseFamily::Package))
        + pages(truth.login_history_rows);
    least..=least + LOGIN_HISTORY_WINDOWS - 1
}

fn summary_counts(summary: &ImportSummary) -> HashMap<&str, u64> {
    summary
        .counts
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect()
}

#[tokio::test]
async fn an_import_equals_the_ground_truth() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();
    let started = Instant::now();

    let summary = run(settings, &recording.host()).await.expect("imports");

    let elapsed = started.elapsed();
    let recorded = recording.recorded();
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    let inventory = Inventory::of(&recorded.records);
    assert_matches_truth(&inventory, &truth, &org, ALL_READABLE);

    let calls = sim.control().api_calls() - before;
    assert_eq!(
        summary.api_calls,
        Some(calls),
        "the run's count agrees with the org's"
    );
    assert!(
        pages_needed(&truth, PAGE).contains(&(calls - LOGIN_HISTORY_COUNT)),
        "one call per page and the count, no more: {calls} calls, {:?} pages",
        pages_needed(&truth, PAGE)
    );
    // Every page was asked for, and sent, gzipped (the describe of `User` as well).
    let (queries, gzipped) = (sim.control().queries(), sim.control().gzip_answers());
    assert!(queries > 0);
    assert_eq!(
        gzipped,
        queries + 1,
        "{gzipped} gzip answers for {queries} query pages and one describe"
    );
    // LoginHistory is read in windows: no query pages through all of it.
    let unsplit = (truth.login_history_rows as usize).div_ceil(PAGE) as u64;
    let longest = sim.control().longest_chain();
    assert!(
        longest < unsplit && longest >= (USERS.div_ceil(PAGE) as u64),
        "longest chain {longest}, LoginHistory unsplit {unsplit} pages"
    );
    assert_eq!(summary_counts(&summary), inventory.counts());
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    // Progress per page of each streamed object, ending at its total.
    let users = recorded
        .progress
        .iter()
        .filter(|p| p.stage == "User")
        .collect::<Vec<_>>();
    assert_eq!(users.len(), USERS.div_ceil(PAGE));
    assert_eq!(
        users.last().map(|p| (p.done, p.total)),
        Some((USERS as u64, Some(USERS as u64)))
    );
    assert!(
        recorded.progress.iter().any(|p| p.stage == "LoginHistory"),
        "LoginHistory reports progress"
    );
    eprintln!("import of {USERS} users: {elapsed:?}, {calls} API calls");
}

/// Asserts that `served` holds no page of the assignment objects, which start only once the
/// small tables are read.
fn assert_no_assignment_pages(served: &[&str]) {
    assert!(
        served
            .iter()
            .all(|object| !["PermissionSetLicenseAssign", "UserPackageLicense"].contains(object)),
        "{served:?}"
    );
}

/// The frozen users' query (`UserLogin`, which `User`'s mapping waits for) answered `delay_ms`
/// late.
fn frozen_users_late(delay_ms: u64) -> Option<SlowObject> {
    Some(SlowObject {
        object: "UserLogin".into(),
        delay_ms,
    })
}

#[tokio::test]
async fn users_pages_are_read_while_the_small_tables_are_and_mapped_once_they_are_in() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    // The frozen users' query answers late: `User`'s chain, the longest, must not wait for it.
    sim.control().set_faults(Faults {
        slow_object: frozen_users_late(2_000),
        ..Faults::default()
    });
    let recording = RecordingHost::new();

    run(settings, &recording.host()).await.expect("imports");

    let served = sim.control().served_pages();
    let frozen_at = served
        .iter()
        .position(|object| *object == "UserLogin")
        .expect("UserLogin was read");
    let users_before = served[..frozen_at]
        .iter()
        .filter(|object| **object == "User")
        .count();
    // The first page, the pages read ahead while the mapping waited, and the one in flight.
    assert!(
        USERS.div_ceil(PAGE) > WAITING_PAGES + 1,
        "enough pages to see the bound"
    );
    assert_eq!(
        users_before,
        WAITING_PAGES + 1,
        "User's pages served before UserLogin: {served:?}"
    );
    // No other big object but `LoginHistory` (which starts with `User`) starts before the
    // small tables are read.
    assert_no_assignment_pages(&served[..frozen_at]);
    // Rows fetched before the frozen users were known are mapped with them.
    assert_recorded_matches_truth(&sim, &recording);
}

#[tokio::test]
async fn users_chain_failing_while_the_small_tables_are_read_ends_the_run_at_once() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    // `User` may no longer be queried (describe still answers), while the frozen users'
    // query, which `User`'s mapping waits for, answers late.
    sim.control().set_faults(Faults {
        slow_object: frozen_users_late(1_500),
        refuse_queries_of: Some("User".into()),
        ..Faults::default()
    });

    // (The run still returns only once the frozen users' request, already sent, is answered:
    // it counts the calls it made.)
    let error = run(settings, &RecordingHost::new().host())
        .await
        .expect_err("User cannot be read");

    assert!(
        error.message.starts_with("User: ") && error.message.contains("INVALID_TYPE"),
        "{}",
        error.message
    );
    // The run ended with `User`'s error before the small tables were read (the frozen users'
    // request, sent already, is still answered): the other big objects, which start after
    // them, never sent a request.
    assert_no_assignment_pages(&sim.control().served_pages());
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_the_same_page_resumed() {
    let sim = org_sim(
        USERS,
        PAGE,
        SimConfig {
            rotate_refresh_tokens: true,
            ..SimConfig::default()
        },
    )
    .await;
    let settings = settings(&sim, None).await;
    // The first query with more than 2 pages ends every session at its third page; the
    // other streams notice at the same time and must not refresh again.
    sim.control().set_faults(Faults {
        expire_session_after_page: Some(2),
        ..Faults::default()
    });
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();

    let summary = run(settings, &recording.host()).await.expect("imports");

    assert_eq!(sim.control().faults(), Faults::default(), "the fault fired");
    let recorded = recording.recorded();
    assert_recorded_matches_truth(&sim, &recording);
    assert_eq!(summary.api_calls, Some(sim.control().api_calls() - before));
    // One rotation at the start, one at the refresh; the last one stored is the valid one.
    let updates = &recorded.secret_updates;
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(
        updates
            .iter()
            .all(|(field, _)| field == "credentials.refresh_token")
    );
    assert_eq!(
        sim.control().valid_refresh_tokens(),
        vec![updates[1].1.expose().to_owned()]
    );
}

#[tokio::test]
async fn transient_faults_are_retried_to_the_exact_inventory() {
    let sim = org_sim(1_500, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    for faults in [
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
        Faults {
            unavailable_times: 3,
            ..Faults::default()
        },
    ] {
        sim.control().set_faults(faults.clone());
        let recording = RecordingHost::new();
        let before = sim.control().api_calls();
        let summary = run(settings.clone(), &recording.host())
            .await
            .unwrap_or_else(|e| panic!("{faults:?}: {e:?}"));
        assert_eq!(
            sim.control().faults(),
            Faults::default(),
            "{faults:?} fired"
        );
        let inventory = Inventory::of(&recording.recorded().records);
        assert_matches_truth(&inventory, &truth, &org, ALL_READABLE);
        let calls = sim.control().api_calls() - before;
        assert_eq!(summary.api_calls, Some(calls), "{faults:?}");
        // An answer cut or dropped halfway is billed and asked again, and so is a refusal for
        // the allowance (counted on the safe side); the other refusals are not billed.
        let extra = u64::from(faults.truncated_json_once)
            + u64::from(faults.dropped_body_once)
            + u64::from(faults.rate_limit_once)
            + LOGIN_HISTORY_COUNT;
        assert!(
            pages_needed(&truth, PAGE).contains(&(calls - extra)),
            "{faults:?}: {calls} calls"
        );
    }
}

/// `User`'s pages for [`a_follow_on_page_damaged_once`]: ten pages of 300 rows.
const SMALL_PAGE: usize = 300;

/// Page 5 of `User`'s chain (pages 0 to 9) answered damaged once by `faults`: the import asks
/// for page 6 as soon as the damaged answer's start names it, asks for page 5 again, and ends
/// with the exact inventory, having made one call more than the pages (and the count) it
/// needs.
async fn a_follow_on_page_damaged_once(faults: Faults) {
    let sim = org_sim(USERS, SMALL_PAGE, SimConfig::default()).await;
    // One LoginHistory window: its pages, so the calls the import needs, are known exactly.
    let settings = settings(&sim, Some(json!({"login_history_windows": 1}))).await;
    let truth = sim.ground_truth().expect("an org");
    assert_eq!(USERS.div_ceil(SMALL_PAGE), 10);
    sim.control().set_faults(faults.clone());
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();

    let summary = run(settings, &recording.host())
        .await
        .unwrap_or_else(|e| panic!("{faults:?}: {e:?}"));

    assert_eq!(sim.control().faults(), Faults::default(), "the fault fired");
    assert_recorded_matches_truth(&sim, &recording);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let calls = sim.control().api_calls() - before;
    assert_eq!(summary.api_calls, Some(calls));
    let needed = *pages_needed(&truth, SMALL_PAGE).start();
    assert_eq!(
        calls,
        needed + LOGIN_HISTORY_COUNT + 1,
        "the pages needed, the count, and the damaged one again"
    );
    // `User`'s chain was the first long one: page 5 came damaged, page 6 was asked for at once
    // (before the retry, which waits at least 250 ms), then page 5 whole; no page twice else.
    let users: Vec<(u32, bool)> = sim
        .control()
        .served_page_log()
        .into_iter()
        .filter(|page| page.object == "User")
        .map(|page| (page.page, page.damaged))
        .collect();
    let expected: Vec<(u32, bool)> = [0, 1, 2, 3, 4, 5, 6, 5, 7, 8, 9]
        .into_iter()
        .enumerate()
        .map(|(i, page)| (page, i == 5))
        .collect();
    assert_eq!(users, expected, "User's pages as served");
    let damaged = sim
        .control()
        .served_page_log()
        .iter()
        .filter(|page| page.damaged)
        .count();
    assert_eq!(damaged, 1);
}

#[tokio::test]
async fn a_follow_on_page_cut_short_is_read_again_while_the_next_one_is_already_asked_for() {
    a_follow_on_page_damaged_once(Faults {
        truncated_json_at_page: Some(5),
        ..Faults::default()
    })
    .await;
}

#[tokio::test]
async fn a_follow_on_page_with_damaged_gzip_is_read_again_while_the_next_one_is_already_asked_for()
{
    a_follow_on_page_damaged_once(Faults {
        damaged_gzip_at_page: Some(5),
        ..Faults::default()
    })
    .await;
}

#[tokio::test]
async fn a_lasting_outage_fails_naming_the_object_after_four_attempts() {
    let sim = org_sim(600, PAGE, SimConfig::default()).await;
    // Without the count of `LoginHistory` (`auto`), whose failure is no failure of the run.
    let settings = settings(&sim, Some(json!({"login_history_api": "bulk"}))).await;
    sim.control().set_faults(Faults {
        unavailable_times: 10,
        ..Faults::default()
    });
    let started = Instant::now();
    let error = run(settings, &RecordingHost::new().host())
        .await
        .expect_err("Salesforce stays down");
    assert_eq!(error.kind, ErrorKind::UPSTREAM);
    assert!(error.retryable);
    // `Organization` and describe `User` go first, at once: whichever gives up first is
    // named.
    let said = |object: &str| {
        format!(
            "{object}: Salesforce answered 503 SERVER_UNAVAILABLE: Server temporarily \
             unavailable four times; try again later"
        )
    };
    assert!(
        ["Organization", "User"]
            .iter()
            .any(|object| error.message == said(object)),
        "{}",
        error.message
    );
    // Four attempts of the one named, and (sent at the same time) two to four of the other:
    // its third attempt normally comes before the first one gives up (after at most 500 +
    // 1000 ms of waits, against at least 250 + 500 + 1000), so two or three 503s are left; four
    // leaves room for a slow machine. Had the two gone one after the other, six would be left.
    // No request was answered, and nothing else was asked for.
    let left = sim.control().faults().unavailable_times;
    assert!((2..=4).contains(&left), "{left} of the 10 503s left");
    assert_eq!(sim.control().api_calls(), 0);
    assert_eq!(error.details["api_calls"], 0);
    // Three jittered waits: 250-500, 500-1000 and 1000-2000 ms.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1750), "{elapsed:?}");
}

#[tokio::test]
async fn the_budget_stops_the_run_before_it_is_spent() {
    let sim = org_sim(
        USERS,
        PAGE,
        SimConfig {
            api_daily_max: 2_000,
            ..SimConfig::default()
        },
    )
    .await;
    let settings = settings(&sim, Some(json!({"api_budget_percent": 1}))).await;
    let error = run(settings, &RecordingHost::new().host())
        .await
        .expect_err("over budget");
    assert_eq!(error.kind, ErrorKind::RATE_LIMITED);
    assert!(!error.retryable);
    assert!(
        error.message.contains(
            "the next API call would take this import over its budget of 20 calls \
             (import.api_budget_percent = 1% of the org's daily allowance of 2000)"
        ),
        "{}",
        error.message
    );
    let spent = sim.control().api_calls();
    assert!(spent <= 20, "spent {spent}");
    assert_eq!(error.details["api_calls"], spent);
}

#[tokio::test]
async fn a_token_without_the_api_scope_is_explained() {
    let sim = org_sim(
        100,
        PAGE,
        SimConfig {
            scopes: "refresh_token".to_owned(),
            ..SimConfig::default()
        },
    )
    .await;
    // Without the count of `LoginHistory`, so that the first requests are known.
    let settings = settings(&sim, Some(json!({"login_history_api": "bulk"}))).await;
    let recording = RecordingHost::new();
    let before = sim.control().requests();
    let error = run(settings, &recording.host())
        .await
        .expect_err("no api scope");
    assert_eq!(error.kind, ErrorKind::AUTH);
    assert!(
        error
            .message
            .strip_prefix("Organization")
            .or_else(|| error.message.strip_prefix("User"))
            .is_some_and(|rest| rest.starts_with(": the token may not call the REST API"))
            && error.message.contains(
                "add the `api` (and `refresh_token`) scope to the connected app's OAuth \
                 scopes, then generate a new refresh token"
            ),
        "{}",
        error.message
    );
    // The refresh, the versions list, and the first two requests (`Organization` and describe
    // `User`, sent at once), both refused; no second refresh.
    assert_eq!(sim.control().requests() - before, 4);
}

#[tokio::test]
async fn flags_the_org_lacks_are_not_selected_and_missing_objects_are_warnings() {
    let features = ["UserPermissionsSupportUser", "UserPermissionsMarketingUser"];
    let sim = org_sim(
        1_200,
        PAGE,
        SimConfig {
            org: Some(OrgSpec {
                features: Some(features.map(str::to_owned).to_vec()),
                hidden_objects: vec![
                    "ActiveFeatureLicenseMetric".to_owned(),
                    "ActivePermSetLicenseMetric".to_owned(),
                    "UserLogin".to_owned(),
                ],
                ..OrgSpec::default()
            }),
            ..SimConfig::default()
        },
    )
    .await;
    let settings = settings(&sim, None).await;
    let recording = RecordingHost::new();
    let summary = run(settings, &recording.host()).await.expect("imports");
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    let inventory = Inventory::of(&recording.recorded().records);
    assert_matches_truth(
        &inventory,
        &truth,
        &org,
        Readable {
            feature_metrics: false,
            user_login: false,
        },
    );
    let mut feature_licenses: Vec<&str> = inventory
        .licenses
        .values()
        .filter(|l| l.family == Family::Feature)
        .map(|l| l.id.as_str())
        .collect();
    feature_licenses.sort_unstable();
    assert_eq!(
        feature_licenses,
        ["UserPermissionsMarketingUser", "UserPermissionsSupportUser"]
    );
    assert_eq!(
        inventory.licenses["UserPermissionsSupportUser"].name,
        "Service Cloud User"
    );
    assert_eq!(summary.warnings.len(), 3, "{:?}", summary.warnings);
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.starts_with("ActivePermSetLicenseMetric could not be read"))
    );
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.starts_with("ActiveFeatureLicenseMetric could not be read"))
    );
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.starts_with("UserLogin could not be read"))
    );
}

/// A recording host that runs `hook` with the number of each `emit` call (from 1) before
/// passing it on.
struct HookHost {
    inner: RecordingHost,
    emits: AtomicUsize,
    hook: Box<dyn Fn(usize) + Send + Sync>,
}

impl HostCallbacks for HookHost {
    fn emit(&self, batch: RStr<'_>) -> RResult<(), FfiError> {
        (self.hook)(self.emits.fetch_add(1, Ordering::SeqCst) + 1);
        self.inner.emit(batch)
    }
    fn progress(&self, update: RStr<'_>) {
        self.inner.progress(update);
    }
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>, fields: RStr<'_>) {
        self.inner.log(level, target, message, fields);
    }
    fn prompt(&self, prompt: RStr<'_>) -> RResult<(), FfiError> {
        self.inner.prompt(prompt)
    }
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
    fn vault(&self, request: RStr<'_>) -> RResult<RString, FfiError> {
        self.inner.vault(request)
    }
    fn call(&self, op: RStr<'_>, request: RStr<'_>) -> RResult<RString, FfiError> {
        self.inner.call(op, request)
    }
}

#[tokio::test]
async fn cancellation_mid_import_stops_it() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    let recording = RecordingHost::new();
    let canceller = recording.clone();
    let host = Host::from_callbacks(HookHost {
        inner: recording.clone(),
        emits: AtomicUsize::new(0),
        hook: Box::new(move |n| {
            if n == 4 {
                canceller.cancel();
            }
        }),
    });
    let error = run(settings, &host).await.expect_err("cancelled");
    assert_eq!(error.kind, ErrorKind::CANCELLED, "{error:?}");
    let truth = sim.ground_truth().expect("an org");
    let accounts = Inventory::of(&recording.recorded().records).accounts.len() as u64;
    assert!(
        accounts < truth.users.total,
        "stopped early: {accounts} accounts"
    );
    // Give aborted prefetches a moment, then check that the run stopped calling.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls = sim.control().api_calls();
    assert!(calls < *pages_needed(&truth, PAGE).start(), "{calls} calls");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.control().api_calls(),
        calls,
        "no call after the cancellation"
    );
}

#[tokio::test]
async fn a_lasting_outage_mid_stream_names_the_object_and_keeps_the_call_count() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    let control = sim.control();
    let armed = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&armed);
    let host = Host::from_callbacks(HookHost {
        inner: RecordingHost::new(),
        emits: AtomicUsize::new(0),
        hook: Box::new(move |n| {
            if n == 3 {
                seen.store(n, Ordering::SeqCst);
                control.set_faults(Faults {
                    unavailable_times: 1_000,
                    ..Faults::default()
                });
            }
        }),
    });
    let error = run(settings, &host).await.expect_err("fails");
    assert_eq!(armed.load(Ordering::SeqCst), 3);
    let objects = [
        "UserLicense",
        "Profile",
        "PermissionSetLicense",
        "PackageLicense",
        "User",
        "UserLogin",
        "ActiveFeatureLicenseMetric",
        "ActivePermSetLicenseMetric",
        "PermissionSetLicenseAssign",
        "UserPackageLicense",
        "LoginHistory",
    ];
    let (object, rest) = error.message.split_once(": ").expect("object: cause");
    assert!(objects.contains(&object), "{}", error.message);
    assert_eq!(
        rest,
        "Salesforce answered 503 SERVER_UNAVAILABLE: Server temporarily unavailable four \
         times; try again later"
    );
    assert_eq!(
        error.details["api_calls"],
        sim.control().api_calls(),
        "the calls made before the outage"
    );
}

#[tokio::test]
async fn a_refresh_refused_mid_run_asks_for_reauthorization() {
    let sim = org_sim(USERS, PAGE, SimConfig::default()).await;
    let settings = settings(&sim, None).await;
    let token = settings["credentials"]["refresh_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    sim.control().set_faults(Faults {
        expire_session_after_page: Some(2),
        ..Faults::default()
    });
    // Once the run is under way (its first batch), the refresh token is revoked: the
    // refresh after the session ends mid-stream is refused.
    let control = sim.control();
    let host = Host::from_callbacks(HookHost {
        inner: RecordingHost::new(),
        emits: AtomicUsize::new(0),
        hook: Box::new(move |n| {
            if n == 1 {
                control.revoke_refresh_tokens();
            }
        }),
    });
    let error = run(settings, &host).await.expect_err("refused");
    assert_eq!(error.kind, ErrorKind::AUTH);
    assert!(
        error
            .message
            .starts_with("the refresh token was revoked or expired"),
        "{}",
        error.message
    );
    assert_eq!(error.details["reauthorize"], true);
    assert_eq!(error.details["api_calls"], sim.control().api_calls());
    assert!(!error.message.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_dropped_during_a_token_refresh_still_stores_the_rotated_token() {
    let sim = org_sim(
        USERS,
        PAGE,
        SimConfig {
            rotate_refresh_tokens: true,
            ..SimConfig::default()
        },
    )
    .await;
    let settings = settings(&sim, None).await;
    // Every session ends at the third page of the first long query, and every token answer
    // arrives 1.5 s after the refresh rotated the token on the server.
    sim.control().set_faults(Faults {
        expire_session_after_page: Some(2),
        token_answer_delay_ms: 1500,
        ..Faults::default()
    });
    let control = sim.control();
    let recording = RecordingHost::new();
    let host = recording.host();
    // The run is dropped (as the SDK drops a cancelled call) once the refresh in the middle of
    // the run has rotated the token on the server, while its answer is still on the way.
    let rotated_mid_run = async {
        loop {
            let stored = recording.recorded().secret_updates;
            if stored.len() == 1 && control.valid_refresh_tokens() != [stored[0].1.expose()] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        outcome = run(settings, &host) => panic!("the run ended before its refresh: {outcome:?}"),
        () = rotated_mid_run => {}
    }
    // The exchange goes on by itself and stores the token the server now accepts.
    let deadline = Instant::now() + Duration::from_secs(15);
    while recording.recorded().secret_updates.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the rotated refresh token was never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let updates = recording.recorded().secret_updates;
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(
        control.valid_refresh_tokens(),
        vec![updates[1].1.expose().to_owned()]
    );
}

/// A simulator whose Bulk API 2.0 jobs answer `InProgress` to two polls and hand out result
/// sets of at most `set_rows` rows.
async fn bulk_sim(users: usize, set_rows: usize) -> Simulator {
    org_sim(
        users,
        PAGE,
        SimConfig {
            org: Some(OrgSpec {
                bulk_polls_in_progress: 2,
                bulk_max_records: set_rows,
                ..OrgSpec::default()
            }),
            ..SimConfig::default()
        },
    )
    .await
}

/// Pages the import needs besides `LoginHistory` (see [`pages_needed`]).
fn pages_besides_login_history(truth: &GroundTruth, page: usize) -> u64 {
    pages_needed(truth, page).start() - truth.login_history_rows.div_ceil(page as u64).max(1)
}

#[tokio::test]
async fn login_history_through_a_bulk_job_equals_the_ground_truth() {
    let sim = bulk_sim(1_500, 700).await;
    let settings = settings(&sim, Some(json!({"login_history_api": "bulk"}))).await;
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();

    let summary = run(settings, &recording.host()).await.expect("imports");

    let recorded = recording.recorded();
    let inventory = Inventory::of(&recorded.records);
    assert_matches_truth(&inventory, &truth, &org, ALL_READABLE);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert_eq!(sim.control().bulk_jobs(), 1);
    // The sim's sets hold 700 rows although 50,000 were asked for: the locators chain them.
    let sets = truth.login_history_rows.div_ceil(700);
    assert!(sets > 2, "{sets} sets");
    let calls = sim.control().api_calls() - before;
    assert_eq!(summary.api_calls, Some(calls));
    // Creation, three polls, the sets, the deletion.
    assert_eq!(
        calls,
        pages_besides_login_history(&truth, PAGE) + 1 + 3 + sets + 1
    );
    // The job's chain of calls ended with its deletion.
    assert_eq!(sim.control().longest_chain(), 1 + 3 + sets + 1);
    // The result sets came gzipped too, like every query page and the describe.
    assert_eq!(
        sim.control().gzip_answers(),
        sim.control().queries() + 1 + sets
    );
    let progress: Vec<_> = recorded
        .progress
        .iter()
        .filter(|p| p.stage == "LoginHistory")
        .collect();
    assert_eq!(progress.len() as u64, sets);
    assert_eq!(
        progress.last().map(|p| (p.done, p.total)),
        Some((truth.login_history_rows, Some(truth.login_history_rows)))
    );
}

#[tokio::test]
async fn a_login_history_that_cannot_be_counted_is_read_with_a_bulk_job() {
    // `LoginHistory` may not be queried through the REST API (so neither counted), while
    // Bulk API 2.0 reads it.
    let sim = bulk_sim(1_500, 100_000).await;
    let settings = settings(&sim, None).await;
    sim.control().set_faults(Faults {
        refuse_queries_of: Some("LoginHistory".into()),
        ..Faults::default()
    });
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    assert!(
        truth.login_history_rows <= 20_000,
        "a count would have chosen REST"
    );
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();

    let summary = run(settings, &recording.host()).await.expect("imports");

    assert_matches_truth(
        &Inventory::of(&recording.recorded().records),
        &truth,
        &org,
        ALL_READABLE,
    );
    assert_eq!(sim.control().bulk_jobs(), 1);
    assert_eq!(summary.api_calls, Some(sim.control().api_calls() - before));
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    assert!(
        summary.warnings[0].starts_with("LoginHistory could not be counted (LoginHistory: ")
            && summary.warnings[0].contains("INVALID_TYPE")
            && summary.warnings[0].ends_with(
                "so it was read with a Bulk API 2.0 query job, as a large login history is"
            ),
        "{}",
        summary.warnings[0]
    );
}

#[tokio::test]
async fn auto_reads_a_large_login_history_with_a_bulk_job_and_a_small_one_with_rest() {
    // 4,000 users log in more than 20,000 times in 90 days.
    let sim = bulk_sim(4_000, 100_000).await;
    let large_settings = settings(&sim, None).await;
    let truth = sim.ground_truth().expect("an org");
    assert!(
        truth.login_history_rows > 20_000,
        "{}",
        truth.login_history_rows
    );
    let org = sim.control().org().expect("an org");
    let recording = RecordingHost::new();
    let before = sim.control().api_calls();
    let summary = run(large_settings, &recording.host())
        .await
        .expect("imports");
    assert_matches_truth(
        &Inventory::of(&recording.recorded().records),
        &truth,
        &org,
        ALL_READABLE,
    );
    assert_eq!(sim.control().bulk_jobs(), 1);
    // One count told the size, then one job read it in sets of the rows the import asks
    // for.
    let calls = sim.control().api_calls() - before;
    assert_eq!(summary.api_calls, Some(calls));
    let sets = truth
        .login_history_rows
        .div_ceil(invhost_salesforce::import::bulk::SET_ROWS);
    assert_eq!(
        calls,
        pages_besides_login_history(&truth, PAGE) + LOGIN_HISTORY_COUNT + 1 + 3 + sets + 1
    );

    // 3,000 users stay under the line: no job, the count and the REST windows' pages.
    let small = bulk_sim(3_000, 100_000).await;
    let small_settings = settings(&small, None).await;
    let small_truth = small.ground_truth().expect("an org");
    assert!(small_truth.login_history_rows <= 20_000);
    let summary = run(small_settings, &RecordingHost::new().host())
        .await
        .expect("imports");
    assert_eq!(small.control().bulk_jobs(), 0);
    let calls = summary.api_calls.expect("counted");
    assert!(
        pages_needed(&small_truth, PAGE).contains(&(calls - LOGIN_HISTORY_COUNT)),
        "{calls} calls"
    );
}

#[tokio::test]
async fn bulk_faults_end_in_the_exact_inventory_or_fall_back_to_rest() {
    let sim = bulk_sim(1_500, 700).await;
    let settings = settings(&sim, Some(json!({"login_history_api": "bulk"}))).await;
    let truth = sim.ground_truth().expect("an org");
    let org = sim.control().org().expect("an org");
    for faults in [
        // A session that ends when the second set is asked for: refreshed, the same set read.
        Faults {
            bulk_expire_session_at_set: Some(1),
            ..Faults::default()
        },
        // The job fails: LoginHistory is read through the REST API, with a warning.
        Faults {
            bulk_job_fails_once: true,
            ..Faults::default()
        },
    ] {
        sim.control().set_faults(faults.clone());
        let recording = RecordingHost::new();
        let summary = run(settings.clone(), &recording.host())
            .await
            .unwrap_or_else(|e| panic!("{faults:?}: {e:?}"));
        assert_eq!(
            sim.control().faults(),
            Faults::default(),
            "{faults:?} fired"
        );
        assert_matches_truth(
            &Inventory::of(&recording.recorded().records),
            &truth,
            &org,
            ALL_READABLE,
        );
        if faults.bulk_job_fails_once {
            assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
            let warning = &summary.warnings[0];
            assert!(
                warning.contains("ended Failed") && warning.contains("REST API instead"),
                "{warning}"
            );
        } else {
            assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        }
    }
}
