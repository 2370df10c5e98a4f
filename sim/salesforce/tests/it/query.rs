//! `query`/`queryAll` paging, the synthetic org against its ground truth, describe,
//! faults and gzip.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::time::{Duration, Instant};

use invhost_sim_salesforce::{Faults, LicenseFamily, OrgSpec, ServedPage, SimConfig, SlowObject};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{Harness, SECRET, config, text};

const V: &str = "/services/data/v62.0";

fn org_config(users: usize, page_size: usize) -> SimConfig {
    SimConfig {
        org: Some(OrgSpec {
            seed: 7,
            users,
            page_size,
            login_history_days: 90,
            ..OrgSpec::default()
        }),
        ..config()
    }
}

impl Harness {
    async fn soql(&self, token: &str, soql: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("{V}/query")))
            .query(&[("q", soql)])
            .bearer_auth(token)
            .send()
            .await
            .expect("GET query")
    }

    async fn soql_json(&self, token: &str, soql: &str) -> (StatusCode, Value) {
        let response = self.soql(token, soql).await;
        let status = response.status();
        (status, response.json().await.expect("JSON"))
    }

    /// Runs `soql` and follows `nextRecordsUrl` to the end: (totalSize, records, pages).
    async fn walk(&self, token: &str, soql: &str) -> (u64, Vec<Value>, usize) {
        let (status, mut page) = self.soql_json(token, soql).await;
        assert_eq!(status, StatusCode::OK, "{soql}: {page}");
        let total = page["totalSize"].as_u64().expect("totalSize");
        let mut records = Vec::new();
        let mut pages = 1;
        loop {
            records.extend(page["records"].as_array().expect("records").iter().cloned());
            assert_eq!(page["totalSize"].as_u64(), Some(total));
            if page["done"] == Value::Bool(true) {
                assert!(page.get("nextRecordsUrl").is_none(), "{soql}");
                break;
            }
            let next = text(&page, "nextRecordsUrl").to_owned();
            assert!(next.starts_with(&format!("{V}/query/01g")), "{next}");
            let response = self.get(&next, Some(token)).await;
            assert_eq!(response.status(), StatusCode::OK, "{next}");
            page = response.json().await.expect("JSON");
            pages += 1;
        }
        (total, records, pages)
    }
}

#[tokio::test]
async fn paging_walks_all_pages_and_total_size_matches() {
    let harness = Harness::start(org_config(1000, 300)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let (total, records, pages) = harness
        .walk(
            token,
            "SELECT Id, Username, Profile.UserLicense.Name FROM User",
        )
        .await;
    assert_eq!(total, 1000);
    assert_eq!(records.len(), 1000);
    assert_eq!(pages, 4);
    let ids: HashSet<&str> = records.iter().map(|r| text(r, "Id")).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(records[0]["attributes"]["type"], "User");
    assert!(text(&records[0]["attributes"], "url").starts_with(&format!("{V}/sobjects/User/005")));
    assert_eq!(records[0]["Profile"]["UserLicense"]["Name"], "Salesforce");
    assert_eq!(records[0]["Profile"]["attributes"]["type"], "Profile");

    // Sparse tables page the same way; queryAll answers like query.
    let (total, records, _) = harness
        .walk(
            token,
            "SELECT Id, AssigneeId FROM PermissionSetLicenseAssign",
        )
        .await;
    assert_eq!(total as usize, records.len());
    let response = harness
        .http
        .get(harness.url(&format!("{V}/queryAll")))
        .query(&[("q", "SELECT COUNT() FROM PermissionSetLicenseAssign")])
        .bearer_auth(token)
        .send()
        .await
        .expect("queryAll");
    assert!(
        response
            .headers()
            .get("sforce-limit-info")
            .is_some_and(|v| v.to_str().expect("ascii").starts_with("api-usage=")),
        "usage header"
    );
    let count: Value = response.json().await.expect("JSON");
    assert_eq!(count["totalSize"].as_u64(), Some(total));
    assert_eq!(count["records"], Value::Array(vec![]));

    // A page can be fetched again; a made-up locator cannot.
    let (_, first) = harness.soql_json(token, "SELECT Id FROM User").await;
    let next = text(&first, "nextRecordsUrl").to_owned();
    let a: Value = harness
        .get(&next, Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    let b: Value = harness
        .get(&next, Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(a, b);
    let bad = harness
        .get(&format!("{V}/query/01gNOPE-300"), Some(token))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // ORDER BY another field sorts; LIMIT caps totalSize.
    let (_, sorted, _) = harness
        .walk(token, "SELECT Id, LastLoginDate FROM User WHERE LastLoginDate != null ORDER BY LastLoginDate DESC LIMIT 50")
        .await;
    assert_eq!(sorted.len(), 50);
    for pair in sorted.windows(2) {
        assert!(text(&pair[0], "LastLoginDate") >= text(&pair[1], "LastLoginDate"));
    }
    let control = harness.sim.control();
    assert!(control.queries() >= 10, "{}", control.queries());
}

#[tokio::test]
async fn counts_in_the_data_equal_the_ground_truth() {
    let harness = Harness::start(org_config(1500, 2000)).await;
    let truth = harness.sim.ground_truth().expect("an org");
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");

    let (_, users, _) = harness
        .walk(
            token,
            "SELECT Id, IsActive, LastLoginDate, Profile.UserLicense.Name, \
             UserPermissionsSupportUser FROM User",
        )
        .await;
    let active: HashSet<&str> = users
        .iter()
        .filter(|u| u["IsActive"] == Value::Bool(true))
        .map(|u| text(u, "Id"))
        .collect();
    assert_eq!(truth.users.total, 1500);
    assert_eq!(truth.users.active as usize, active.len());
    let never = users
        .iter()
        .filter(|u| u["LastLoginDate"].is_null())
        .count();
    assert_eq!(truth.users.never_logged_in as usize, never);
    assert!(never > 0 && truth.users.frozen > 0 && truth.users.deactivated_with_seats > 0);
    assert!(truth.users.active_inactive_90 > truth.users.never_logged_in / 2);

    // UserLicense.UsedLicenses = active users holding it through their profile.
    let (_, licenses, _) = harness
        .walk(
            token,
            "SELECT Id, Name, TotalLicenses, UsedLicenses FROM UserLicense",
        )
        .await;
    for license in &licenses {
        let name = text(license, "Name");
        let holders = users
            .iter()
            .filter(|u| {
                u["IsActive"] == Value::Bool(true) && u["Profile"]["UserLicense"]["Name"] == name
            })
            .count();
        assert_eq!(
            license["UsedLicenses"].as_u64(),
            Some(holders as u64),
            "{name}"
        );
        let expected = truth.license(LicenseFamily::User, name).expect("in truth");
        assert_eq!(expected.used, holders as i64, "{name}");
        assert_eq!(expected.purchased, license["TotalLicenses"].as_i64());
        assert!(expected.purchased >= Some(expected.used));
    }
    let (total, _, _) = harness
        .walk(
            token,
            "SELECT Id FROM User WHERE IsActive = true AND Profile.UserLicense.Name = 'salesforce'",
        )
        .await;
    assert_eq!(
        Some(total as i64),
        truth
            .license(LicenseFamily::User, "Salesforce")
            .map(|l| l.used)
    );

    // PermissionSetLicense.UsedLicenses = assignments of active users.
    let (_, psls, _) = harness
        .walk(token, "SELECT Id, DeveloperName, UsedLicenses, TotalLicenses, ExpirationDate FROM PermissionSetLicense")
        .await;
    let (_, assigns, _) = harness
        .walk(
            token,
            "SELECT AssigneeId, PermissionSetLicense.DeveloperName FROM PermissionSetLicenseAssign",
        )
        .await;
    assert!(psls.iter().any(|p| p["ExpirationDate"].is_string()));
    for psl in &psls {
        let name = text(psl, "DeveloperName");
        let rows: Vec<&Value> = assigns
            .iter()
            .filter(|a| a["PermissionSetLicense"]["DeveloperName"] == name)
            .collect();
        let of_active = rows
            .iter()
            .filter(|a| active.contains(text(a, "AssigneeId")))
            .count();
        assert_eq!(
            psl["UsedLicenses"].as_u64(),
            Some(of_active as u64),
            "{name}"
        );
        let expected = truth
            .license(LicenseFamily::PermissionSet, name)
            .expect("in truth");
        assert_eq!(expected.assigned as usize, rows.len());
        assert_eq!(expected.active_assigned as usize, of_active);
    }

    // PackageLicense.UsedLicenses = UserPackageLicense rows; dsfs is site-wide.
    let (_, packages, _) = harness
        .walk(
            token,
            "SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses FROM PackageLicense",
        )
        .await;
    let (_, seats, _) = harness
        .walk(
            token,
            "SELECT UserId, PackageLicenseId FROM UserPackageLicense",
        )
        .await;
    let mut per_package: HashMap<&str, u64> = HashMap::new();
    for seat in &seats {
        *per_package
            .entry(text(seat, "PackageLicenseId"))
            .or_default() += 1;
    }
    for package in &packages {
        let ns = text(package, "NamespacePrefix");
        let rows = per_package.get(text(package, "Id")).copied().unwrap_or(0);
        assert_eq!(package["UsedLicenses"].as_u64(), Some(rows), "{ns}");
        let expected = truth.license(LicenseFamily::Package, ns).expect("in truth");
        if package["AllowedLicenses"] == -1 {
            assert_eq!(expected.purchased, None);
        } else {
            assert_eq!(expected.purchased, package["AllowedLicenses"].as_i64());
        }
    }
    assert!(packages.iter().any(|p| p["AllowedLicenses"] == -1));

    // The latest ActiveFeatureLicenseMetric row counts active users with the flag.
    let (_, metrics, _) = harness
        .walk(token, "SELECT FeatureType, AssignedUserCount, TotalLicenseCount, MetricsDate FROM ActiveFeatureLicenseMetric WHERE FeatureType = 'SupportUser' ORDER BY MetricsDate DESC")
        .await;
    assert_eq!(metrics.len(), 3);
    let flagged = users
        .iter()
        .filter(|u| {
            u["IsActive"] == Value::Bool(true)
                && u["UserPermissionsSupportUser"] == Value::Bool(true)
        })
        .count();
    assert_eq!(
        metrics[0]["AssignedUserCount"].as_u64(),
        Some(flagged as u64)
    );
    let support = truth
        .license(LicenseFamily::Feature, "SupportUser")
        .expect("in truth");
    assert_eq!(support.used, flagged as i64);
    assert_eq!(support.purchased, metrics[0]["TotalLicenseCount"].as_i64());

    // Frozen users, and LoginHistory consistent with LastLoginDate.
    let (_, frozen) = harness
        .soql_json(token, "SELECT COUNT() FROM UserLogin WHERE IsFrozen = true")
        .await;
    assert_eq!(frozen["totalSize"].as_u64(), Some(truth.users.frozen));
    let (rows, logins, _) = harness
        .walk(token, "SELECT UserId, LoginTime, LoginType, Status FROM LoginHistory WHERE LoginTime >= LAST_N_DAYS:91")
        .await;
    assert_eq!(rows, truth.login_history_rows);
    assert_eq!(
        logins.iter().filter(|l| l["Status"] == "Success").count() as u64,
        truth.login_history_successful_rows
    );
    assert!(truth.login_history_successful_rows < truth.login_history_rows);
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for login in &logins {
        if login["Status"] == "Success" {
            let time = newest.entry(text(login, "UserId")).or_default();
            *time = (*time).max(text(login, "LoginTime"));
        }
    }
    let by_id: HashMap<&str, &Value> = users.iter().map(|u| (text(u, "Id"), u)).collect();
    for (user, time) in &newest {
        assert_eq!(by_id[user]["LastLoginDate"].as_str(), Some(*time), "{user}");
    }
    assert!(logins.iter().any(|l| l["LoginType"] == "Remote Access 2.0"));
    assert!(logins.iter().any(|l| l["LoginType"] == "Application"));
    let org = harness.sim.control().org().expect("org");
    assert_eq!(
        org.user_last_login(0).as_deref(),
        users[0]["LastLoginDate"].as_str()
    );
    let recent = harness
        .soql_json(token, "SELECT COUNT() FROM LoginHistory WHERE LoginTime >= 2000-01-01T00:00:00Z AND Status = 'Success'")
        .await
        .1;
    assert!(recent["totalSize"].as_u64() <= Some(rows));
}

#[tokio::test]
async fn describe_lists_the_flags_and_unknown_fields_are_refused() {
    let harness = Harness::start(org_config(10, 2000)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let response = harness
        .get(&format!("{V}/sobjects/User/describe"), Some(token))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let describe: Value = response.json().await.expect("JSON");
    let names: Vec<&str> = describe["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| text(f, "name"))
        .collect();
    for flag in [
        "UserPermissionsMarketingUser",
        "UserPermissionsKnowledgeUser",
        "UserPermissionsSupportUser",
    ] {
        assert!(names.contains(&flag), "{flag}");
    }
    assert!(!names.contains(&"UserPermissionsJigsawProspectingUser"));

    let (status, body) = harness
        .soql_json(
            token,
            "SELECT Id, UserPermissionsJigsawProspectingUser FROM User",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(
        text(&body[0], "message")
            .starts_with("No such column 'UserPermissionsJigsawProspectingUser' on entity 'User'"),
        "{body}"
    );
    let (status, body) = harness.soql_json(token, "SELECT Id FROM Account").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    assert!(text(&body[0], "message").starts_with("sObject type 'Account' is not supported"));
    let (status, body) = harness.soql_json(token, "SELECT Id FROM User WHERE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    let missing = harness
        .get(&format!("{V}/sobjects/Account/describe"), Some(token))
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_fault_fires_once_then_clears() {
    let harness = Harness::start(org_config(500, 200)).await;
    let control = harness.sim.control();
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token").to_owned();
    let limits = format!("{V}/limits");

    let once = |faults: Faults| {
        control.set_faults(faults);
    };
    once(Faults {
        rate_limit_once: true,
        ..Faults::default()
    });
    let calls = control.api_calls();
    let refused = harness.get(&limits, Some(&token)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(
        harness.get(&limits, Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        control.api_calls(),
        calls + 2,
        "the refusal for the allowance is counted, as the import counts it"
    );

    once(Faults {
        unavailable_once: true,
        ..Faults::default()
    });
    assert_eq!(
        harness.get(&limits, Some(&token)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        harness.get(&limits, Some(&token)).await.status(),
        StatusCode::OK
    );

    once(Faults {
        html_once: true,
        ..Faults::default()
    });
    let html = harness.soql(&token, "SELECT Id FROM User").await;
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.expect("text").starts_with("<html>"));
    assert_eq!(
        harness.soql(&token, "SELECT Id FROM User").await.status(),
        StatusCode::OK
    );

    once(Faults {
        truncated_json_once: true,
        ..Faults::default()
    });
    let cut = harness
        .soql(&token, "SELECT Id FROM User")
        .await
        .text()
        .await
        .expect("text");
    assert!(serde_json::from_str::<Value>(&cut).is_err());
    let whole = harness
        .soql(&token, "SELECT Id FROM User")
        .await
        .text()
        .await
        .expect("text");
    assert!(serde_json::from_str::<Value>(&whole).is_ok());

    once(Faults {
        dropped_body_once: true,
        ..Faults::default()
    });
    let calls = control.api_calls();
    let dropped = harness.soql(&token, "SELECT Id FROM User").await;
    // The headers arrive (a counted call), the body does not.
    assert_eq!(dropped.status(), StatusCode::OK);
    assert!(dropped.headers().contains_key("sforce-limit-info"));
    assert!(dropped.bytes().await.is_err(), "the body breaks off");
    assert_eq!(control.api_calls(), calls + 1);
    assert_eq!(
        harness.soql(&token, "SELECT Id FROM User").await.status(),
        StatusCode::OK
    );
    assert_eq!(control.faults(), Faults::default());

    // The session ends after page 2; a refresh resumes from the same nextRecordsUrl.
    once(Faults {
        expire_session_after_page: Some(2),
        ..Faults::default()
    });
    let (_, first) = harness.soql_json(&token, "SELECT Id FROM User").await;
    let second: Value = harness
        .get(text(&first, "nextRecordsUrl"), Some(&token))
        .await
        .json()
        .await
        .expect("JSON");
    let third_url = text(&second, "nextRecordsUrl").to_owned();
    let expired = harness.get(&third_url, Some(&token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.expect("JSON");
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    let (status, refreshed) = harness
        .refresh(text(&tokens, "refresh_token"), Some(SECRET))
        .await;
    assert_eq!(status, StatusCode::OK);
    let fresh = text(&refreshed, "access_token");
    let third = harness.get(&third_url, Some(fresh)).await;
    assert_eq!(third.status(), StatusCode::OK);
    let third: Value = third.json().await.expect("JSON");
    assert_eq!(third["records"].as_array().map(Vec::len), Some(100));
    assert_eq!(third["done"], true);

    // Latency stays until changed.
    once(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let started = Instant::now();
    assert_eq!(
        harness.get(&limits, Some(fresh)).await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(control.faults().latency_ms, 150);
    once(Faults::default());

    // Over HTTP.
    let armed = harness
        .http
        .post(harness.url("/__sim/faults"))
        .json(&serde_json::json!({"unavailable_once": true}))
        .send()
        .await
        .expect("POST faults");
    assert_eq!(armed.status(), StatusCode::OK);
    assert!(control.faults().unavailable_once);
    assert_eq!(
        harness.get(&limits, Some(fresh)).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!control.faults().unavailable_once);
    let truth: Value = harness
        .get("/__sim/ground-truth", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(truth["users"]["total"], 500);
}

#[tokio::test]
async fn gzip_is_honoured() {
    let harness = Harness::start(org_config(300, 2000)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let response = harness
        .http
        .get(harness.url(&format!("{V}/query")))
        .query(&[("q", "SELECT Id, Username FROM User")])
        .header("Accept-Encoding", "gzip, deflate")
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().expect("ascii")),
        Some("gzip")
    );
    let bytes = response.bytes().await.expect("body");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut json)
        .expect("gzip");
    let body: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(body["totalSize"], 300);
    assert!(json.len() > bytes.len() * 2, "compressed");

    let plain = harness.soql(token, "SELECT Id FROM User").await;
    assert!(plain.headers().get("content-encoding").is_none());
    // Only the gzipped answer is counted as one.
    assert_eq!(harness.sim.control().gzip_answers(), 1);
    assert_eq!(harness.sim.control().queries(), 2);
}

#[tokio::test]
async fn without_an_org_queries_find_no_object() {
    let harness = Harness::start(config()).await;
    assert!(harness.sim.ground_truth().is_none());
    let tokens = harness.authorize().await;
    let (status, body) = harness
        .soql_json(text(&tokens, "access_token"), "SELECT Id FROM User")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
}

#[tokio::test]
async fn orgs_differ_in_feature_flags_and_readable_objects() {
    let harness = Harness::start(SimConfig {
        org: Some(OrgSpec {
            users: 400,
            page_size: 300,
            features: Some(vec!["UserPermissionsSupportUser".to_owned()]),
            hidden_objects: vec!["userlogin".to_owned()],
            ..OrgSpec::default()
        }),
        ..config()
    })
    .await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");

    // Describe lists the one flag the org has; selecting another is INVALID_FIELD.
    let describe: Value = harness
        .get(&format!("{V}/sobjects/User/describe"), Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    let flags: Vec<&str> = describe["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| text(f, "name"))
        .filter(|name| name.starts_with("UserPermissions"))
        .collect();
    assert_eq!(flags, ["UserPermissionsSupportUser"]);
    let (status, body) = harness
        .soql_json(token, "SELECT Id, UserPermissionsMarketingUser FROM User")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    let truth = harness.sim.ground_truth().expect("org");
    let features: Vec<&str> = truth
        .licenses
        .iter()
        .filter(|l| l.family == LicenseFamily::Feature)
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(features, ["SupportUser"]);
    let (total, metrics, _) = harness
        .walk(token, "SELECT FeatureType FROM ActiveFeatureLicenseMetric")
        .await;
    assert_eq!(total, 3);
    assert!(metrics.iter().all(|m| m["FeatureType"] == "SupportUser"));

    // A hidden object is INVALID_TYPE, and its describe is not found.
    let (status, body) = harness
        .soql_json(token, "SELECT UserId FROM UserLogin WHERE IsFrozen = true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    let hidden = harness
        .get(&format!("{V}/sobjects/UserLogin/describe"), Some(token))
        .await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);

    // batchSize may ask for smaller pages than the org serves, never larger ones.
    for (asked, served) in [("batchSize=2000", 300), ("batchSize=200", 200)] {
        let page: Value = harness
            .http
            .get(harness.url(&format!("{V}/query")))
            .query(&[("q", "SELECT Id FROM User")])
            .header("Sforce-Query-Options", asked)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            page["records"].as_array().map(Vec::len),
            Some(served),
            "{asked}"
        );
    }
}

#[tokio::test]
async fn lasting_outages_and_session_expiry_on_the_next_long_query() {
    let harness = Harness::start(org_config(700, 300)).await;
    let control = harness.sim.control();
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");

    control.set_faults(Faults {
        unavailable_times: 2,
        ..Faults::default()
    });
    for left in [1, 0] {
        let (status, _) = harness.soql_json(token, "SELECT Id FROM User").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(control.faults().unavailable_times, left);
    }
    let before = control.api_calls();
    let (status, _) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        control.api_calls(),
        before + 1,
        "refused calls were not billed"
    );

    // A one-page query leaves the fault armed for the next query long enough to reach it.
    control.set_faults(Faults {
        expire_session_after_page: Some(1),
        ..Faults::default()
    });
    let (status, _) = harness
        .soql_json(token, "SELECT Id FROM Organization")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(control.faults().expire_session_after_page, Some(1));
    let (_, first) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(control.faults(), Faults::default());
    let second = harness
        .get(text(&first, "nextRecordsUrl"), Some(token))
        .await;
    assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn pages_served_are_logged_and_the_longest_chain_timed_and_one_object_slowed() {
    let harness = Harness::start(org_config(1000, 300)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let control = harness.sim.control();
    control.set_faults(Faults {
        latency_ms: 20,
        slow_object: Some(SlowObject {
            object: "User".into(),
            delay_ms: 30,
        }),
        ..Faults::default()
    });
    let (_, _, pages) = harness.walk(token, "SELECT Id FROM User").await;
    assert_eq!(pages, 4);
    let (_, _, profiles) = harness.walk(token, "SELECT Id FROM Profile").await;
    assert_eq!(
        control.served_pages(),
        [vec!["User"; 4], vec!["Profile"; profiles]].concat()
    );
    assert_eq!(control.longest_chain(), 4);
    // Each page of the chain waited its latency and the slowed object's delay at least.
    let served = control.longest_chain_served();
    assert!(served >= Duration::from_millis(4 * 50), "{served:?}");
    let chains = harness
        .get("/__sim/chains", None)
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(chains["longest_chain"], 4);
    assert!(
        chains["longest_chain_served_ms"]
            .as_f64()
            .expect("a number")
            >= 200.0,
        "{chains}"
    );
}

impl Harness {
    /// GETs `path` asking for gzip: the status, whether the answer is gzipped, its raw body.
    async fn get_gzip(&self, path: &str, token: &str) -> (StatusCode, bool, Vec<u8>) {
        let response = self
            .http
            .get(self.url(path))
            .header("Accept-Encoding", "gzip")
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let gzipped = response
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        let status = response.status();
        (
            status,
            gzipped,
            response.bytes().await.expect("body").to_vec(),
        )
    }
}

/// Inflates a whole gzip body; an error if it is cut or damaged.
fn inflate(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut json)?;
    Ok(json)
}

#[tokio::test]
async fn one_page_of_a_chain_is_cut_once_then_served_whole() {
    // User: 1,000 rows in four pages of 300 (pages 0 to 3).
    let harness = Harness::start(org_config(1000, 300)).await;
    let control = harness.sim.control();
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    let users = format!("{V}/query?q=SELECT+Id,+Username+FROM+User");

    // The JSON of page 2 cut, then gzipped: a chain without a page 2 leaves the fault armed.
    control.set_faults(Faults {
        truncated_json_at_page: Some(2),
        ..Faults::default()
    });
    let (_, records, pages) = harness.walk(token, "SELECT Id FROM User LIMIT 500").await;
    assert_eq!((records.len(), pages), (500, 2));
    assert_eq!(control.faults().truncated_json_at_page, Some(2));
    let (status, _, first) = harness.get_gzip(&users, token).await;
    assert_eq!(status, StatusCode::OK);
    let first: Value = serde_json::from_slice(&inflate(&first).expect("whole")).expect("JSON");
    assert_eq!(control.faults(), Faults::default(), "the chain took it");
    let second: Value = harness
        .get(text(&first, "nextRecordsUrl"), Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    let third_url = text(&second, "nextRecordsUrl").to_owned();
    let (status, gzipped, cut) = harness.get_gzip(&third_url, token).await;
    assert_eq!((status, gzipped), (StatusCode::OK, true));
    let cut = inflate(&cut).expect("the gzip stream is whole");
    assert!(
        serde_json::from_slice::<Value>(&cut).is_err(),
        "the JSON is cut"
    );
    // Asked again, the same page whole: the cut one was its first half.
    let (status, _, whole) = harness.get_gzip(&third_url, token).await;
    assert_eq!(status, StatusCode::OK);
    let whole = inflate(&whole).expect("whole");
    assert_eq!(cut, whole[..whole.len() / 2]);
    let third: Value = serde_json::from_slice(&whole).expect("JSON");
    assert_eq!(third["records"].as_array().map(Vec::len), Some(300));
    assert_eq!(third["done"], false);
    let last: Value = harness
        .get(text(&third, "nextRecordsUrl"), Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(last["done"], true);
    let log: Vec<(u32, bool)> = control
        .served_page_log()
        .into_iter()
        .filter(|page| page.object == "User")
        .map(|ServedPage { page, damaged, .. }| (page, damaged))
        .collect();
    assert_eq!(
        log[2..],
        [(0, false), (1, false), (2, true), (2, false), (3, false)]
    );

    // The gzip stream of page 1 cut: its start inflates, the rest does not; asked again,
    // it is whole.
    control.set_faults(Faults {
        damaged_gzip_at_page: Some(1),
        ..Faults::default()
    });
    let (_, _, first) = harness.get_gzip(&users, token).await;
    let first: Value = serde_json::from_slice(&inflate(&first).expect("whole")).expect("JSON");
    let second_url = text(&first, "nextRecordsUrl").to_owned();
    let (status, gzipped, damaged) = harness.get_gzip(&second_url, token).await;
    assert_eq!((status, gzipped), (StatusCode::OK, true));
    assert!(inflate(&damaged).is_err(), "inflating fails");
    let (_, _, whole) = harness.get_gzip(&second_url, token).await;
    assert_eq!(damaged, whole[..whole.len() / 2]);
    let whole = inflate(&whole).expect("whole");
    let second: Value = serde_json::from_slice(&whole).expect("JSON");
    assert_eq!(second["records"].as_array().map(Vec::len), Some(300));
    let mut start = Vec::new();
    let _ = flate2::read::GzDecoder::new(&damaged[..]).read_to_end(&mut start);
    assert!(
        start.len() > 1024 && whole.starts_with(&start),
        "the damaged stream still inflates to the page's start ({} bytes)",
        start.len()
    );
    assert_eq!(control.faults(), Faults::default());

    // Without gzip, page 0 (the query's own answer) is cut plain; the query asked again opens
    // a new chain, whole.
    control.set_faults(Faults {
        damaged_gzip_at_page: Some(0),
        ..Faults::default()
    });
    let cut = harness.soql(token, "SELECT Id FROM User").await;
    assert!(cut.headers().get("content-encoding").is_none());
    assert!(serde_json::from_slice::<Value>(&cut.bytes().await.expect("body")).is_err());
    let (status, again) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["records"].as_array().map(Vec::len), Some(300));
    assert_eq!(control.faults(), Faults::default());

    // Over HTTP, with the other fields left out.
    let armed = harness
        .http
        .post(harness.url("/__sim/faults"))
        .json(&serde_json::json!({"truncated_json_at_page": 3}))
        .send()
        .await
        .expect("POST faults");
    assert_eq!(armed.status(), StatusCode::OK);
    assert_eq!(
        control.faults(),
        Faults {
            truncated_json_at_page: Some(3),
            ..Faults::default()
        }
    );
}

#[tokio::test]
async fn only_answered_requests_count_towards_a_chain() {
    // User's first page opens a chain of two.
    let harness = Harness::start(org_config(600, 300)).await;
    let control = harness.sim.control();
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    control.set_faults(Faults {
        latency_ms: 100,
        ..Faults::default()
    });
    // A job path answered 404: not a request of any chain.
    let unknown = harness
        .get(&format!("{V}/jobs/query/750000000000999AAA"), Some(token))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(control.longest_chain_served(), Duration::ZERO);
    // A page answered counts, its latency included; the job path answered 404 twice more
    // does not (three requests of 100 ms would make it the longest chain).
    let (status, _) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..2 {
        let unknown = harness
            .get(&format!("{V}/jobs/query/750000000000999AAA"), Some(token))
            .await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }
    let served = control.longest_chain_served();
    assert!(
        served >= Duration::from_millis(100) && served < Duration::from_millis(200),
        "one request counted: {served:?}"
    );
}

#[tokio::test]
async fn queries_of_one_object_can_be_refused_while_its_describe_answers() {
    let harness = Harness::start(org_config(30, 10)).await;
    let tokens = harness.authorize().await;
    let token = text(&tokens, "access_token");
    // A chain started before the refusal.
    let (status, first) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::OK);
    let next = text(&first, "nextRecordsUrl").to_owned();
    harness.sim.control().set_faults(Faults {
        refuse_queries_of: Some("User".into()),
        ..Faults::default()
    });

    let (status, body) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_TYPE");
    assert!(text(&body[0], "message").starts_with("sObject type 'User' is not supported"));
    let page = harness.get(&next, Some(token)).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let describe = harness
        .get(&format!("{V}/sobjects/User/describe"), Some(token))
        .await;
    assert_eq!(describe.status(), StatusCode::OK);
    let (status, _) = harness.soql_json(token, "SELECT Id FROM Profile").await;
    assert_eq!(status, StatusCode::OK, "other objects answer");
    // It stays until changed.
    let (status, _) = harness.soql_json(token, "SELECT Id FROM User").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    harness.sim.control().set_faults(Faults::default());
    let page = harness.get(&next, Some(token)).await;
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the chain goes on once allowed again"
    );
}
