//! The SOQL the import runs, and the reads of the small tables (phase 1).

use chrono::{DateTime, Duration, NaiveTime, Utc};
use invhost_plugin_api::Error;
use serde::Deserialize;

use crate::import::{
    api::{SharedApi, error_code},
    limiter::CHAIN,
    mapping::NOT_LICENSES,
    rows::{Dated, FLAG_PREFIX, QueryPage},
};

/// `Organization`: one row.
pub const ORGANIZATION: &str = "SELECT Id, Name, OrganizationType, InstanceName, IsSandbox, \
                                TrialExpirationDate, NamespacePrefix FROM Organization";

/// `UserLicense`: every license, active or disabled.
pub const USER_LICENSES: &str = "SELECT Id, Name, MasterLabel, LicenseDefinitionKey, Status, \
                                 TotalLicenses, UsedLicenses, UsedLicensesLastUpdated FROM \
                                 UserLicense";

/// `Profile`: which user license each profile gives.
pub const PROFILES: &str = "SELECT Id, Name, UserLicenseId FROM Profile";

/// `PermissionSetLicense`.
pub const PERMISSION_SET_LICENSES: &str = "SELECT Id, DeveloperName, MasterLabel, \
                                           PermissionSetLicenseKey, Status, TotalLicenses, \
                                           UsedLicenses, ExpirationDate FROM \
                                           PermissionSetLicense";

/// `PackageLicense`.
pub const PACKAGE_LICENSES: &str = "SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses, \
                                    ExpirationDate, Status FROM PackageLicense";

/// `UserLogin`: the frozen users only.
pub const FROZEN_USERS: &str = "SELECT UserId FROM UserLogin WHERE IsFrozen = true";

/// `ActiveFeatureLicenseMetric`, newest snapshot first.
pub const FEATURE_METRICS: &str = "SELECT FeatureType, TotalLicenseCount, AssignedUserCount, \
                                   ActiveUserCount, MetricsDate FROM \
                                   ActiveFeatureLicenseMetric ORDER BY MetricsDate DESC";

/// `ActivePermSetLicenseMetric`, newest snapshot first.
pub const PERM_SET_METRICS: &str = "SELECT PermissionSetLicenseId, AssignedUserCount, \
                                    ActiveUserCount, MetricsDate FROM \
                                    ActivePermSetLicenseMetric ORDER BY MetricsDate DESC";

/// `PermissionSetLicenseAssign`.
pub const PERMISSION_SET_ASSIGNMENTS: &str =
    "SELECT AssigneeId, PermissionSetLicenseId FROM PermissionSetLicenseAssign";

/// `UserPackageLicense`.
pub const PACKAGE_ASSIGNMENTS: &str = "SELECT UserId, PackageLicenseId FROM UserPackageLicense";

/// `User` fields every org has, in the order selected.
pub const USER_FIELDS: [&str; 9] = [
    "Id",
    "Username",
    "Name",
    "Email",
    "IsActive",
    "UserType",
    "ProfileId",
    "LastLoginDate",
    "CreatedDate",
];

/// `User` fields selected when describe lists them.
pub const OPTIONAL_USER_FIELDS: [&str; 1] = ["Department"];

/// The `User` query: the core fields, the optional ones the org has, and its feature flags.
pub fn users(describe: &UserDescribe) -> String {
    let mut fields: Vec<&str> = USER_FIELDS.to_vec();
    fields.extend(
        OPTIONAL_USER_FIELDS
            .iter()
            .filter(|field| describe.has(field)),
    );
    fields.extend(describe.features.iter().map(String::as_str));
    format!("SELECT {} FROM User", fields.join(", "))
}

/// The `LoginHistory` queries from midnight UTC `days` days before `now`, split into
/// `windows` time windows of equal length (whole seconds) that together cover the whole
/// window once: `LoginTime >= A AND LoginTime < B`, the last one open-ended
/// (`LoginTime >= Z`), so that one window gives the query of an unsplit read. The windows
/// are read at once, each its own page chain: a big org's longest chain is about `windows`
/// times shorter.
pub fn login_history(now: DateTime<Utc>, days: u32, windows: u32) -> Vec<String> {
    let since = (now - Duration::days(i64::from(days)))
        .date_naive()
        .and_time(NaiveTime::MIN)
        .and_utc();
    let windows = windows.max(1);
    let span = (now - since).num_seconds().max(0);
    let bound = |k: u32| since + Duration::seconds(span * i64::from(k) / i64::from(windows));
    let literal = |at: DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (0..windows)
        .map(|k| {
            let mut soql = format!(
                "SELECT UserId, LoginTime, LoginType, Status, ApiType FROM LoginHistory WHERE \
                 LoginTime >= {}",
                literal(bound(k))
            );
            if k + 1 < windows {
                soql.push_str(&format!(" AND LoginTime < {}", literal(bound(k + 1))));
            }
            soql
        })
        .collect()
}

/// How many `LoginHistory` rows the unsplit window of [`login_history`] holds: `SELECT
/// COUNT()` with the same condition, answered with `totalSize` and no rows.
pub fn login_history_count(now: DateTime<Utc>, days: u32) -> String {
    let whole = login_history(now, days, 1)
        .into_iter()
        .next()
        .unwrap_or_default();
    match whole.split_once(" FROM ") {
        Some((_, rest)) => format!("SELECT COUNT() FROM {rest}"),
        None => whole,
    }
}

/// One field of a describe answer.
#[derive(Debug, Deserialize)]
struct Field {
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
}

/// A describe answer (only what the import uses).
#[derive(Debug, Deserialize)]
struct Describe {
    #[serde(default)]
    fields: Vec<Field>,
}

/// What the org's `User` object has.
#[derive(Debug, Clone, Default)]
pub struct UserDescribe {
    /// Every field name.
    pub fields: Vec<String>,
    /// The boolean `UserPermissions*` fields that are feature licenses, in describe's order.
    pub features: Vec<String>,
}

impl UserDescribe {
    /// Whether `User` has `field`.
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f == field)
    }
}

/// Describes `User`: its fields and the feature flags the org actually has. `User`'s page
/// chain waits on it, so it goes before any other request ([`CHAIN`]).
pub async fn describe_user(api: &SharedApi) -> Result<UserDescribe, Error> {
    let describe: Describe = api
        .get_with_priority("User", &api.describe_url("User")?, CHAIN)
        .await?;
    Ok(UserDescribe::from(describe))
}

impl From<Describe> for UserDescribe {
    fn from(describe: Describe) -> Self {
        let features = describe
            .fields
            .iter()
            .filter(|f| f.kind == "boolean" && f.name.starts_with(FLAG_PREFIX))
            .filter(|f| !NOT_LICENSES.contains(&f.name.as_str()))
            .map(|f| f.name.clone())
            .collect();
        UserDescribe {
            fields: describe.fields.into_iter().map(|f| f.name).collect(),
            features,
        }
    }
}

/// Error codes that mean "the org has no such object, or this user may not read it".
const NOT_READABLE: [&str; 5] = [
    "INVALID_TYPE",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "NOT_FOUND",
    "API_DISABLED_FOR_ORG",
];

/// An optional object's rows, or `None` (with the reason) when the org does not let the
/// import read it; any other failure is an error.
pub fn optional<T>(result: Result<T, Error>) -> Result<Result<T, String>, Error> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error_code(&error).is_some_and(|code| NOT_READABLE.contains(&code)) => {
            Ok(Err(error.message))
        }
        Err(error) => Err(error),
    }
}

/// The rows of the latest `MetricsDate` of a metrics query sorted newest first. Stops
/// paging at the first older row, so a year of daily snapshots costs one call.
pub async fn latest<R>(api: &SharedApi, object: &'static str, soql: &str) -> Result<Vec<R>, Error>
where
    R: Dated + for<'de> Deserialize<'de> + Send + 'static,
{
    let mut url = api.query_url(soql)?;
    let mut rows: Vec<R> = Vec::new();
    let mut newest: Option<String> = None;
    loop {
        let page: QueryPage<R> = api.get(object, &url).await?;
        for row in page.records {
            let date = row.metrics_date().map(str::to_owned);
            if newest.is_none() {
                newest.clone_from(&date);
            }
            if date != newest {
                return Ok(rows);
            }
            rows.push(row);
        }
        match (page.done, page.next_records_url) {
            (false, Some(next)) => url = api.url(&next)?,
            _ => return Ok(rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn login_history_starts_at_midnight_days_ago_and_splits_into_windows() {
        let now = Utc
            .with_ymd_and_hms(2024, 6, 30, 15, 42, 7)
            .single()
            .expect("valid");
        let select = "SELECT UserId, LoginTime, LoginType, Status, ApiType FROM LoginHistory \
                      WHERE LoginTime >= ";
        assert_eq!(
            login_history(now, 90, 1),
            [format!("{select}2024-04-01T00:00:00Z")]
        );
        // 90 days, 15:42:07 = 7,832,527 s; four windows of 1,958,131.75 s (whole seconds,
        // rounded down), back to back, the last one open-ended.
        assert_eq!(
            login_history(now, 90, 4),
            [
                format!("{select}2024-04-01T00:00:00Z AND LoginTime < 2024-04-23T15:55:31Z"),
                format!("{select}2024-04-23T15:55:31Z AND LoginTime < 2024-05-16T07:51:03Z"),
                format!("{select}2024-05-16T07:51:03Z AND LoginTime < 2024-06-07T23:46:35Z"),
                format!("{select}2024-06-07T23:46:35Z"),
            ]
        );
        assert_eq!(login_history(now, 90, 0).len(), 1, "at least one window");
        assert_eq!(
            login_history_count(now, 90),
            "SELECT COUNT() FROM LoginHistory WHERE LoginTime >= 2024-04-01T00:00:00Z"
        );
    }

    #[test]
    fn the_user_query_selects_what_describe_lists() {
        let describe = UserDescribe {
            fields: vec!["Id".into(), "UserPermissionsSupportUser".into()],
            features: vec!["UserPermissionsSupportUser".into()],
        };
        assert_eq!(
            users(&describe),
            "SELECT Id, Username, Name, Email, IsActive, UserType, ProfileId, LastLoginDate, \
             CreatedDate, UserPermissionsSupportUser FROM User"
        );
        let with_department = UserDescribe {
            fields: vec!["Department".into()],
            features: vec![],
        };
        assert!(users(&with_department).ends_with("CreatedDate, Department FROM User"));
    }

    #[test]
    fn describe_keeps_boolean_feature_flags_only() {
        let describe: Describe = serde_json::from_str(
            r#"{"name": "User", "fields": [
                {"name": "Id", "type": "id"},
                {"name": "UserPermissionsMarketingUser", "type": "boolean"},
                {"name": "UserPermissionsCallCenterAutoLogin", "type": "boolean"},
                {"name": "UserPermissionsOdd", "type": "string"}
            ]}"#,
        )
        .expect("parses");
        let user = UserDescribe::from(describe);
        assert_eq!(user.features, ["UserPermissionsMarketingUser"]);
        assert!(user.has("UserPermissionsOdd"));
    }
}
