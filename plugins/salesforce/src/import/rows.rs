//! The rows the import reads, typed per object (serde straight from the page's bytes, no
//! intermediate `serde_json::Value`), and Salesforce's date formats.
//!
//! Field names are Salesforce's (`PascalCase`). Missing or `null` values read as `None`;
//! unknown fields (`attributes`, anything a newer API adds) are skipped.

use std::{borrow::Cow, fmt};

use chrono::{DateTime, NaiveDate, Utc};
use compact_str::CompactString;
use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

/// One page of a `query` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage<R> {
    /// Rows of the whole query, not of this page.
    #[serde(default)]
    pub total_size: u64,
    /// Whether this is the last page.
    #[serde(default = "yes")]
    pub done: bool,
    /// The path of the next page while `done` is false.
    #[serde(default)]
    pub next_records_url: Option<String>,
    /// This page's rows.
    #[serde(default = "Vec::new")]
    pub records: Vec<R>,
}

/// What the start of a query page says about the page after it: enough to ask for that page
/// before this one is read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStart {
    /// `totalSize`.
    pub total_size: u64,
    /// `nextRecordsUrl`.
    pub next_records_url: String,
}

impl PageStart {
    /// Reads the first bytes of a page's JSON when they hold `totalSize`, `"done": false` and
    /// `nextRecordsUrl` before `records`, the order Salesforce writes them in; `None`
    /// otherwise (a last page, another order, an escaped URL), and the page is read whole
    /// before the next one is asked for. What the whole page says is checked against it.
    pub fn read(prefix: &[u8]) -> Option<Self> {
        let text = match std::str::from_utf8(prefix) {
            Ok(text) => text,
            // A prefix may end inside a character.
            Err(error) => std::str::from_utf8(prefix.get(..error.valid_up_to())?).ok()?,
        };
        let head = &text[..text.find(r#""records""#)?];
        let value = |key: &str| -> Option<&str> {
            let at = head.find(key)? + key.len();
            Some(head[at..].trim_start().strip_prefix(':')?.trim_start())
        };
        let total = value(r#""totalSize""#)?;
        let digits = total
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(total.len());
        let total_size = total[..digits].parse().ok()?;
        if !value(r#""done""#)?.starts_with("false") {
            return None;
        }
        let url = value(r#""nextRecordsUrl""#)?.strip_prefix('"')?;
        let url = &url[..url.find('"')?];
        if url.is_empty() || url.contains('\\') {
            return None;
        }
        Some(PageStart {
            total_size,
            next_records_url: url.to_owned(),
        })
    }
}

fn yes() -> bool {
    true
}

/// `Organization` (one row).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OrganizationRow {
    /// The org id (`00D…`).
    pub id: String,
    /// The org's name.
    pub name: Option<String>,
    /// The edition (`Enterprise Edition`).
    pub organization_type: Option<String>,
    /// The instance (`NA139`).
    pub instance_name: Option<String>,
    /// A sandbox (or scratch org).
    pub is_sandbox: Option<bool>,
    /// Set on trial and scratch orgs.
    pub trial_expiration_date: Option<String>,
    /// The org's own namespace, if it has one.
    pub namespace_prefix: Option<String>,
}

/// `UserLicense`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserLicenseRow {
    /// `100…`.
    pub id: String,
    /// The internal name (`Salesforce Platform`).
    pub name: Option<String>,
    /// The label.
    pub master_label: Option<String>,
    /// The stable key (`SFDC`, `AUL`).
    pub license_definition_key: Option<String>,
    /// `Active` or `Disabled`.
    pub status: Option<String>,
    /// Seats bought.
    pub total_licenses: Option<i64>,
    /// Seats held by active users.
    pub used_licenses: Option<i64>,
    /// When `UsedLicenses` was counted.
    pub used_licenses_last_updated: Option<String>,
}

/// `Profile`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProfileRow {
    /// `00e…`.
    pub id: String,
    /// The profile's name.
    pub name: Option<String>,
    /// The user license every user of the profile holds.
    pub user_license_id: Option<String>,
}

/// `PermissionSetLicense`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionSetLicenseRow {
    /// `0PL…`.
    pub id: String,
    /// The API name.
    pub developer_name: Option<String>,
    /// The label.
    pub master_label: Option<String>,
    /// The license key.
    pub permission_set_license_key: Option<String>,
    /// `Active` or `Disabled` (expired).
    pub status: Option<String>,
    /// Seats bought.
    pub total_licenses: Option<i64>,
    /// Seats held by active users.
    pub used_licenses: Option<i64>,
    /// The last day (a date).
    pub expiration_date: Option<String>,
}

/// `PackageLicense`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageLicenseRow {
    /// `050…`.
    pub id: String,
    /// The managed package's namespace.
    pub namespace_prefix: Option<String>,
    /// Seats bought; -1 for a site-wide license.
    pub allowed_licenses: Option<i64>,
    /// Seats assigned.
    pub used_licenses: Option<i64>,
    /// The expiry (a dateTime), null for none.
    pub expiration_date: Option<String>,
    /// `Active`, `Expired`, `Free` or `Trial`.
    pub status: Option<String>,
}

/// `PermissionSetLicenseAssign`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermissionSetLicenseAssignRow {
    /// The user.
    pub assignee_id: String,
    /// The permission set license.
    pub permission_set_license_id: String,
}

/// `UserPackageLicense`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserPackageLicenseRow {
    /// The user.
    pub user_id: String,
    /// The package license.
    pub package_license_id: String,
}

/// `UserLogin` (only frozen ones are read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserLoginRow {
    /// The user.
    pub user_id: String,
}

/// `ActiveFeatureLicenseMetric`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FeatureMetricRow {
    /// The feature (`SupportUser`): the `User.UserPermissions*` flag without its prefix.
    pub feature_type: String,
    /// Feature licenses bought.
    pub total_license_count: Option<i64>,
    /// Active users with the feature.
    pub assigned_user_count: Option<i64>,
    /// Of those, users who logged in within 30 days.
    pub active_user_count: Option<i64>,
    /// The day the snapshot describes.
    pub metrics_date: Option<String>,
}

/// `ActivePermSetLicenseMetric`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PermSetMetricRow {
    /// The permission set license.
    pub permission_set_license_id: String,
    /// Active users holding it.
    pub assigned_user_count: Option<i64>,
    /// Of those, users who logged in within 30 days.
    pub active_user_count: Option<i64>,
    /// The day the snapshot describes.
    pub metrics_date: Option<String>,
}

/// `LoginHistory`, read without keeping its text: the time parsed, `Status` and the login
/// kind reduced to flags (a page of this object can hold thousands of rows, and only
/// these facts count).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoginRow {
    /// Who logged in (kept inline: an id needs no allocation per row).
    pub user_id: CompactString,
    /// When.
    #[serde(default, deserialize_with = "datetime")]
    pub login_time: Option<DateTime<Utc>>,
    /// Whether `LoginType` names an API (`Other Apex API`).
    #[serde(default, rename = "LoginType", deserialize_with = "names_api")]
    pub login_type_api: bool,
    /// Whether `Status` is `Success`.
    #[serde(default, rename = "Status", deserialize_with = "success")]
    pub success: bool,
    /// Whether `ApiType` names an API (anything but empty and `N/A`).
    #[serde(default, rename = "ApiType", deserialize_with = "api_type")]
    pub api_type_api: bool,
}

/// Reads an optional string and hands it (borrowed when possible) to `f`.
fn with_str<'de, D, T>(deserializer: D, f: impl FnOnce(Option<&str>) -> T) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text: Option<Key<'de>> = Option::deserialize(deserializer)?;
    Ok(f(text.as_ref().map(|Key(text)| text.as_ref())))
}

fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    with_str(d, |text| text.and_then(parse_datetime))
}

fn names_api<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    with_str(d, crate::import::usage::login_type_names_api)
}

fn api_type<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    with_str(d, crate::import::usage::api_type_names_api)
}

fn success<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    with_str(d, |text| {
        text.is_some_and(|s| s.eq_ignore_ascii_case("Success"))
    })
}

/// One row of a metrics object: its snapshot date, for keeping the latest day only.
pub trait Dated {
    /// `MetricsDate`.
    fn metrics_date(&self) -> Option<&str>;
}

impl Dated for FeatureMetricRow {
    fn metrics_date(&self) -> Option<&str> {
        self.metrics_date.as_deref()
    }
}

impl Dated for PermSetMetricRow {
    fn metrics_date(&self) -> Option<&str> {
        self.metrics_date.as_deref()
    }
}

/// `User`, with the `UserPermissions*` flags that are true.
///
/// The flags selected differ per org (they come from describe), so this type reads them by
/// name prefix instead of as fields: every key starting with `UserPermissions` whose value
/// is `true` lands in `flags`; false and null flags cost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRow {
    /// `005…`.
    pub id: String,
    /// The login name.
    pub username: String,
    /// The full name.
    pub name: Option<String>,
    /// The e-mail address.
    pub email: Option<String>,
    /// False once deactivated.
    pub is_active: bool,
    /// `Standard`, `PowerPartner`, `CsnOnly`, ...
    pub user_type: Option<String>,
    /// The profile, which decides the user license.
    pub profile_id: Option<String>,
    /// The last successful login; null for never.
    pub last_login_date: Option<String>,
    /// When the user was created.
    pub created_date: Option<String>,
    /// The department.
    pub department: Option<String>,
    /// The `UserPermissions*` fields that are true.
    pub flags: Vec<String>,
}

impl<'de> Deserialize<'de> for UserRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UserVisitor)
    }
}

struct UserVisitor;

impl<'de> Visitor<'de> for UserVisitor {
    type Value = UserRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a User record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserRow, A::Error> {
        let mut row = UserRow::default();
        let (mut id, mut username) = (false, false);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "Id" => {
                    row.id = map.next_value()?;
                    id = true;
                }
                "Username" => {
                    row.username = map.next_value()?;
                    username = true;
                }
                "Name" => row.name = map.next_value()?,
                "Email" => row.email = map.next_value()?,
                "IsActive" => row.is_active = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "UserType" => row.user_type = map.next_value()?,
                "ProfileId" => row.profile_id = map.next_value()?,
                "LastLoginDate" => row.last_login_date = map.next_value()?,
                "CreatedDate" => row.created_date = map.next_value()?,
                "Department" => row.department = map.next_value()?,
                flag if flag.starts_with(FLAG_PREFIX) => {
                    if map.next_value::<Option<bool>>()? == Some(true) {
                        row.flags.push(flag.to_owned());
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !id {
            return Err(serde::de::Error::missing_field("Id"));
        }
        if !username {
            return Err(serde::de::Error::missing_field("Username"));
        }
        Ok(row)
    }
}

/// A string (a map key, a value read only to be looked at) borrowed from the page's bytes
/// when it can be (serde's own `Cow<str>` always allocates), owned when it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The prefix of the `User` fields that switch a feature license on.
pub const FLAG_PREFIX: &str = "UserPermissions";

/// A Salesforce dateTime (`2024-05-01T08:15:00.000+0000`) in UTC. Also takes `Z`,
/// `+00:00`, other offsets, any number of fraction digits (or none), and what
/// [`invhost_plugin_api::time::parse_fast`] reads (a lowercase `t` or `z`, a space for the
/// `T`); `None` for anything else.
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    invhost_plugin_api::time::parse_fast(text).or_else(|| {
        DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(text))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// A Salesforce date (`2024-05-01`), or the date part of a dateTime (`PackageLicense`'s
/// `ExpirationDate` is one: `2025-12-31T00:00:00.000+0000`).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_page_start_names_the_next_page_only_when_it_comes_before_the_records() {
        let url = "/services/data/v62.0/query/01gD0000002HU6KIAW-2000";
        let page = format!(
            r#"{{"totalSize":5000,"done":false,"nextRecordsUrl":"{url}","records":[{{"Id":"x"}}]}}"#
        );
        let expected = PageStart {
            total_size: 5000,
            next_records_url: url.to_owned(),
        };
        assert_eq!(PageStart::read(page.as_bytes()), Some(expected.clone()));
        // Spaces and line breaks between the parts, and a prefix that ends in the records.
        let spaced = format!(
            "{{\n  \"totalSize\" : 5000,\n  \"done\" : false,\n  \"nextRecordsUrl\" : \"{url}\",\n  \"records\" : [ {{\"Name\":\"Ré"
        );
        let cut = &spaced.as_bytes()[..spaced.len() - 1];
        assert_eq!(PageStart::read(cut), Some(expected));
        for other in [
            // The last page, a prefix without the records' key yet, records first, an escaped
            // URL, no total.
            r#"{"totalSize":5000,"done":true,"records":[]}"#.to_owned(),
            format!(r#"{{"totalSize":5000,"done":false,"nextRecordsUrl":"{url}""#),
            format!(r#"{{"records":[],"totalSize":5000,"done":false,"nextRecordsUrl":"{url}"}}"#),
            r#"{"totalSize":5000,"done":false,"nextRecordsUrl":"\/services\/data","records":[]}"#
                .to_owned(),
            format!(r#"{{"done":false,"nextRecordsUrl":"{url}","records":[]}}"#),
        ] {
            assert_eq!(PageStart::read(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn datetimes_in_every_form_salesforce_and_others_write() {
        let expected = Utc
            .with_ymd_and_hms(2024, 5, 1, 8, 15, 0)
            .single()
            .expect("valid");
        for text in [
            "2024-05-01T08:15:00.000+0000",
            "2024-05-01T08:15:00Z",
            "2024-05-01T08:15:00.000Z",
            "2024-05-01T08:15:00+00:00",
            "2024-05-01T10:15:00.000+0200",
            "2024-05-01T10:15:00+02:00",
            "2024-05-01T03:15:00.000-0500",
        ] {
            assert_eq!(parse_datetime(text), Some(expected), "{text}");
        }
        let fraction = parse_datetime("2024-05-01T08:15:00.5+0000").expect("parses");
        assert_eq!(fraction.timestamp_subsec_millis(), 500);
        let nanos = parse_datetime("2024-05-01T08:15:00.123456789Z").expect("parses");
        assert_eq!(nanos.timestamp_subsec_nanos(), 123_456_789);
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00.000+0000",
            "2024-02-30T00:00:00Z",
            "2024-05-01T08:15:00.+0000",
            "2024-05-01 08:15:00",
            "yesterday",
            "2024-05-01T08:15:00.000+00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn login_rows_keep_facts_not_text() {
        let rows: Vec<LoginRow> = serde_json::from_str(
            r#"[{"attributes": {"type": "LoginHistory"}, "UserId": "005A",
                 "LoginTime": "2024-05-01T08:15:00.000+0000", "LoginType": "Other Apex API",
                 "Status": "Success", "ApiType": "N/A", "Application": "Browser"},
                {"UserId": "005B", "LoginTime": null, "LoginType": "Application",
                 "Status": "Invalid Password", "ApiType": "REST API"},
                {"UserId": "005C"}]"#,
        )
        .expect("parses");
        assert_eq!(rows[0].login_time, parse_datetime("2024-05-01T08:15:00Z"));
        assert!(rows[0].success && rows[0].login_type_api && !rows[0].api_type_api);
        assert!(!rows[1].success && !rows[1].login_type_api && rows[1].api_type_api);
        assert_eq!(rows[1].login_time, None);
        assert!(!rows[2].success && rows[2].login_time.is_none());
    }

    #[test]
    fn dates_and_date_parts() {
        let day = NaiveDate::from_ymd_opt(2025, 12, 31);
        assert_eq!(parse_date("2025-12-31"), day);
        assert_eq!(parse_date("2025-12-31T00:00:00.000+0000"), day);
        assert_eq!(parse_date("2025-12"), None);
        assert_eq!(parse_date("31/12/2025"), None);
    }

    #[test]
    fn user_rows_keep_true_flags_only() {
        let page: QueryPage<UserRow> = serde_json::from_str(
            r#"{"totalSize": 2, "done": true, "records": [
                {"attributes": {"type": "User", "url": "/x"}, "Id": "005A", "Username": "a@x",
                 "Name": "Ada", "Email": null, "IsActive": true, "UserType": "Standard",
                 "ProfileId": "00eA", "LastLoginDate": null, "CreatedDate": "2024-01-01T00:00:00.000+0000",
                 "UserPermissionsSupportUser": true, "UserPermissionsMarketingUser": false,
                 "UserPermissionsNewThing": null, "Profile": {"Name": "ignored"}},
                {"Id": "005B", "Username": "b@x", "IsActive": false}
            ]}"#,
        )
        .expect("parses");
        assert_eq!((page.total_size, page.done), (2, true));
        let ada = &page.records[0];
        assert_eq!(ada.flags, vec!["UserPermissionsSupportUser".to_owned()]);
        assert_eq!(ada.name.as_deref(), Some("Ada"));
        assert_eq!(ada.email, None);
        assert!(ada.is_active);
        assert!(!page.records[1].is_active);
        let escaped: UserRow = serde_json::from_str(
            r#"{"Id": "005D", "Username": "d@x", "UserPermissions\u0053upportUser": true}"#,
        )
        .expect("an escaped key is read too");
        assert_eq!(escaped.flags, ["UserPermissionsSupportUser"]);
        let missing =
            serde_json::from_str::<UserRow>(r#"{"Id": "005C"}"#).expect_err("no Username");
        assert!(missing.to_string().contains("Username"), "{missing}");
    }
}
