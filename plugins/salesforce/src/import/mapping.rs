//! Salesforce rows as inventory records.
//!
//! | Salesforce | record | id |
//! |---|---|---|
//! | `Organization` | tenant | the org id |
//! | `UserLicense` | application `user_license:<LicenseDefinitionKey>` + license, family `user` | the row id |
//! | `PermissionSetLicense` | application `permission_set_license:<DeveloperName>` + license, family `permission_set` | the row id |
//! | `PackageLicense` | application `package:<NamespacePrefix>` + license, family `package` | the row id |
//! | a `User.UserPermissions*` flag | application `feature:<FeatureType>` + license, family `feature` | the field name |
//! | `User` | account; assignment of the profile's user license (source `profile`) and of each flag set (source `feature_flag`) | the user id |
//! | `PermissionSetLicenseAssign` | assignment, source `permission_set_license` | |
//! | `UserPackageLicense` | assignment, source `package` | |
//! | `LoginHistory` | usage (see `usage.rs`) | |

use std::collections::{HashMap, HashSet};

use invhost_plugin_api::model::{
    Account, Application, Assignment, AssignmentSource, Attributes, License, LicenseFamily,
    LicenseStatus, Record, Tenant,
};
use serde_json::{Value, json};

use crate::import::rows::{
    FLAG_PREFIX, FeatureMetricRow, OrganizationRow, PackageLicenseRow, PermSetMetricRow,
    PermissionSetLicenseAssignRow, PermissionSetLicenseRow, ProfileRow, UserLicenseRow,
    UserPackageLicenseRow, UserRow, parse_date, parse_datetime,
};

/// The vendor of every application this plugin reports except managed packages.
pub const VENDOR: &str = "Salesforce";

/// `User` flags that are preferences rather than feature licenses; never imported.
pub const NOT_LICENSES: [&str; 1] = ["UserPermissionsCallCenterAutoLogin"];

/// The names Salesforce's Setup shows for the feature licenses it documents.
const FEATURE_NAMES: [(&str, &str); 15] = [
    ("UserPermissionsSupportUser", "Service Cloud User"),
    ("UserPermissionsMarketingUser", "Marketing User"),
    ("UserPermissionsKnowledgeUser", "Knowledge User"),
    ("UserPermissionsInteractionUser", "Flow User"),
    ("UserPermissionsLiveAgentUser", "Chat User"),
    ("UserPermissionsOfflineUser", "Offline User"),
    ("UserPermissionsMobileUser", "Mobile User"),
    (
        "UserPermissionsSFContentUser",
        "Salesforce CRM Content User",
    ),
    ("UserPermissionsChatterAnswersUser", "Chatter Answers User"),
    ("UserPermissionsAvantgoUser", "AvantGo User"),
    ("UserPermissionsJigsawProspectingUser", "Data.com User"),
    (
        "UserPermissionsSiteforceContributorUser",
        "Site.com Contributor User",
    ),
    (
        "UserPermissionsSiteforcePublisherUser",
        "Site.com Publisher User",
    ),
    ("UserPermissionsWorkDotComUserFeature", "Work.com User"),
    ("UserPermissionsWirelessUser", "Wireless User"),
];

/// The `FeatureType` of a flag field (`UserPermissionsSupportUser` → `SupportUser`), as
/// `ActiveFeatureLicenseMetric` names it.
pub fn feature_type(field: &str) -> &str {
    field.strip_prefix(FLAG_PREFIX).unwrap_or(field)
}

/// The name people know a feature license by: Setup's name for the documented ones, and
/// the field's words for others (`UserPermissionsNewShinyUser` → `New Shiny User`).
pub fn feature_name(field: &str) -> String {
    if let Some((_, name)) = FEATURE_NAMES.iter().find(|(f, _)| *f == field) {
        return (*name).to_owned();
    }
    let mut name = String::new();
    let chars: Vec<char> = feature_type(field).chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_uppercase()
            && (chars[i - 1].is_lowercase()
                || chars.get(i + 1).is_some_and(|next| next.is_lowercase()));
        if boundary {
            name.push(' ');
        }
        name.push(*c);
    }
    name
}

/// A non-negative count as a number of seats.
fn seats(count: Option<i64>) -> Option<u64> {
    count.and_then(|n| u64::try_from(n).ok())
}

fn status(value: Option<&str>) -> LicenseStatus {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("active") => LicenseStatus::Active,
        Some("disabled") => LicenseStatus::Disabled,
        Some("expired") => LicenseStatus::Expired,
        Some("free") => LicenseStatus::Free,
        Some("trial") => LicenseStatus::Trial,
        _ => LicenseStatus::Other,
    }
}

/// Adds `key` to `attributes` when `value` is not null.
fn put(attributes: &mut Attributes, key: &str, value: impl Into<Value>) {
    let value = value.into();
    if !value.is_null() {
        attributes.insert(key.to_owned(), value);
    }
}

fn application(id: String, name: String, vendor: Option<&str>) -> Record {
    Record::Application(Application {
        id,
        name,
        vendor: vendor.map(str::to_owned),
        attributes: Attributes::new(),
    })
}

/// The tenant.
pub fn tenant(org: &OrganizationRow, api_version: &str) -> Record {
    let mut attributes = Attributes::new();
    put(&mut attributes, "api_version", api_version);
    put(
        &mut attributes,
        "trial_expiration_date",
        org.trial_expiration_date.clone(),
    );
    put(
        &mut attributes,
        "namespace_prefix",
        org.namespace_prefix.clone(),
    );
    Record::Tenant(Tenant {
        id: org.id.clone(),
        name: org.name.clone().unwrap_or_else(|| org.id.clone()),
        edition: org.organization_type.clone(),
        instance: org.instance_name.clone(),
        sandbox: org.is_sandbox.unwrap_or(false),
        attributes,
    })
}

/// A user license: its application and its license.
pub fn user_license(row: &UserLicenseRow) -> [Record; 2] {
    let label = row
        .master_label
        .clone()
        .or_else(|| row.name.clone())
        .unwrap_or_else(|| row.id.clone());
    let key = row
        .license_definition_key
        .clone()
        .unwrap_or_else(|| row.id.clone());
    let application_id = format!("user_license:{key}");
    let mut attributes = Attributes::new();
    put(
        &mut attributes,
        "license_definition_key",
        row.license_definition_key.clone(),
    );
    put(&mut attributes, "name", row.name.clone());
    put(&mut attributes, "master_label", row.master_label.clone());
    put(
        &mut attributes,
        "used_licenses_last_updated",
        row.used_licenses_last_updated.clone(),
    );
    [
        application(application_id.clone(), label.clone(), Some(VENDOR)),
        Record::License(License {
            id: row.id.clone(),
            application_id,
            name: label,
            family: LicenseFamily::User,
            unit: "seat".to_owned(),
            purchased: seats(row.total_licenses),
            consumed: seats(row.used_licenses),
            unlimited: false,
            expires_on: None,
            status: status(row.status.as_deref()),
            attributes,
        }),
    ]
}

/// A permission set license, with its latest `ActivePermSetLicenseMetric` row when the org
/// has one.
pub fn permission_set_license(
    row: &PermissionSetLicenseRow,
    metric: Option<&PermSetMetricRow>,
) -> [Record; 2] {
    let label = row
        .master_label
        .clone()
        .or_else(|| row.developer_name.clone())
        .unwrap_or_else(|| row.id.clone());
    let name = row.developer_name.clone().unwrap_or_else(|| row.id.clone());
    let application_id = format!("permission_set_license:{name}");
    let mut attributes = Attributes::new();
    put(
        &mut attributes,
        "developer_name",
        row.developer_name.clone(),
    );
    put(&mut attributes, "master_label", row.master_label.clone());
    put(
        &mut attributes,
        "permission_set_license_key",
        row.permission_set_license_key.clone(),
    );
    if let Some(metric) = metric {
        put(
            &mut attributes,
            "active_user_count",
            metric.active_user_count,
        );
        put(
            &mut attributes,
            "assigned_user_count",
            metric.assigned_user_count,
        );
        put(&mut attributes, "metrics_date", metric.metrics_date.clone());
    }
    [
        application(application_id.clone(), label.clone(), Some(VENDOR)),
        Record::License(License {
            id: row.id.clone(),
            application_id,
            name: label,
            family: LicenseFamily::PermissionSet,
            unit: "seat".to_owned(),
            purchased: seats(row.total_licenses),
            consumed: seats(row.used_licenses),
            unlimited: false,
            expires_on: row.expiration_date.as_deref().and_then(parse_date),
            status: status(row.status.as_deref()),
            attributes,
        }),
    ]
}

/// A managed package's license. `AllowedLicenses = -1` is a site-wide license: unlimited,
/// nothing "purchased".
pub fn package_license(row: &PackageLicenseRow) -> [Record; 2] {
    let namespace = row
        .namespace_prefix
        .clone()
        .unwrap_or_else(|| row.id.clone());
    let application_id = format!("package:{namespace}");
    let site_wide = row.allowed_licenses == Some(-1);
    let mut attributes = Attributes::new();
    put(
        &mut attributes,
        "namespace_prefix",
        row.namespace_prefix.clone(),
    );
    put(&mut attributes, "allowed_licenses", row.allowed_licenses);
    put(
        &mut attributes,
        "expiration_date",
        row.expiration_date.clone(),
    );
    [
        application(application_id.clone(), namespace.clone(), None),
        Record::License(License {
            id: row.id.clone(),
            application_id,
            name: namespace,
            family: LicenseFamily::Package,
            unit: "seat".to_owned(),
            purchased: if site_wide {
                None
            } else {
                seats(row.allowed_licenses)
            },
            consumed: seats(row.used_licenses),
            unlimited: site_wide,
            expires_on: row.expiration_date.as_deref().and_then(parse_date),
            status: status(row.status.as_deref()),
            attributes,
        }),
    ]
}

/// A feature license's application.
pub fn feature_application(field: &str) -> Record {
    application(
        format!("feature:{}", feature_type(field)),
        feature_name(field),
        Some(VENDOR),
    )
}

/// A feature license: bought and used from its latest `ActiveFeatureLicenseMetric` row, or,
/// for an org without one, nothing bought and `active_holders` (active users with the flag,
/// counted while reading `User`) used.
pub fn feature_license(
    field: &str,
    metric: Option<&FeatureMetricRow>,
    active_holders: u64,
) -> Record {
    let mut attributes = Attributes::new();
    put(&mut attributes, "feature_type", feature_type(field));
    put(&mut attributes, "field", field);
    let (purchased, consumed) = match metric {
        Some(metric) => {
            put(
                &mut attributes,
                "active_user_count",
                metric.active_user_count,
            );
            put(&mut attributes, "metrics_date", metric.metrics_date.clone());
            (
                seats(metric.total_license_count),
                seats(metric.assigned_user_count),
            )
        }
        None => {
            put(
                &mut attributes,
                "consumed_from",
                "active users with the flag",
            );
            (None, Some(active_holders))
        }
    };
    Record::License(License {
        id: field.to_owned(),
        application_id: format!("feature:{}", feature_type(field)),
        name: feature_name(field),
        family: LicenseFamily::Feature,
        unit: "seat".to_owned(),
        purchased,
        consumed,
        unlimited: false,
        expires_on: None,
        status: LicenseStatus::Active,
        attributes,
    })
}

/// What mapping a `User` row needs from the small tables.
#[derive(Debug, Default)]
pub struct UserContext {
    /// Profile id → (name, user license id).
    pub profiles: HashMap<String, (Option<String>, Option<String>)>,
    /// Frozen user ids; `None` when `UserLogin` could not be read.
    pub frozen: Option<HashSet<String>>,
    /// The feature flag fields selected, in order.
    pub features: Vec<String>,
}

/// Maps one user: the account, the assignment of the profile's user license, and one
/// assignment per feature flag set. `holders[k]` counts active users with `features[k]`.
pub fn user(
    row: UserRow,
    context: &UserContext,
    holders: &mut [u64],
    out: &mut impl Extend<Record>,
) {
    let profile = row
        .profile_id
        .as_deref()
        .and_then(|id| context.profiles.get(id));
    let mut attributes = Attributes::new();
    if let Some(id) = &row.profile_id {
        attributes.insert("profile_id".to_owned(), json!(id));
    }
    if let Some(name) = profile.and_then(|(name, _)| name.as_deref()) {
        attributes.insert("profile_name".to_owned(), json!(name));
    }
    if let Some(department) = row.department {
        attributes.insert("department".to_owned(), json!(department));
    }
    if let Some(license) = profile.and_then(|(_, license)| license.as_ref()) {
        out.extend([Record::Assignment(Assignment {
            account_id: row.id.clone(),
            license_id: license.clone(),
            source: AssignmentSource::Profile,
            assigned_at: None,
        })]);
    }
    for flag in row.flags {
        if let Some(k) = context.features.iter().position(|f| *f == flag) {
            if row.is_active {
                holders[k] += 1;
            }
            out.extend([Record::Assignment(Assignment {
                account_id: row.id.clone(),
                license_id: flag,
                source: AssignmentSource::FeatureFlag,
                assigned_at: None,
            })]);
        }
    }
    let frozen = context.frozen.as_ref().map(|set| set.contains(&row.id));
    out.extend([Record::Account(Account {
        id: row.id,
        username: row.username,
        display_name: row.name,
        email: row.email,
        active: row.is_active,
        frozen,
        account_type: row.user_type,
        created_at: row.created_date.as_deref().and_then(parse_datetime),
        last_login_at: row.last_login_date.as_deref().and_then(parse_datetime),
        attributes,
    })]);
}

/// A `PermissionSetLicenseAssign` row.
pub fn permission_set_assignment(row: PermissionSetLicenseAssignRow) -> Record {
    Record::Assignment(Assignment {
        account_id: row.assignee_id,
        license_id: row.permission_set_license_id,
        source: AssignmentSource::PermissionSetLicense,
        assigned_at: None,
    })
}

/// A `UserPackageLicense` row.
pub fn package_assignment(row: UserPackageLicenseRow) -> Record {
    Record::Assignment(Assignment {
        account_id: row.user_id,
        license_id: row.package_license_id,
        source: AssignmentSource::Package,
        assigned_at: None,
    })
}

/// Profile rows as the profile → (name, user license) table.
pub fn profile_table(rows: Vec<ProfileRow>) -> HashMap<String, (Option<String>, Option<String>)> {
    rows.into_iter()
        .map(|row| (row.id, (row.name, row.user_license_id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn license(record: &Record) -> &License {
        match record {
            Record::License(license) => license,
            other => panic!("not a license: {other:?}"),
        }
    }

    #[test]
    fn feature_names() {
        let check = |field: &str, name: &str, kind: &str| {
            assert_eq!(feature_name(field), name, "{field}");
            assert_eq!(feature_type(field), kind, "{field}");
        };
        check(
            "UserPermissionsSupportUser",
            "Service Cloud User",
            "SupportUser",
        );
        check(
            "UserPermissionsInteractionUser",
            "Flow User",
            "InteractionUser",
        );
        check("UserPermissionsLiveAgentUser", "Chat User", "LiveAgentUser");
        check(
            "UserPermissionsSFContentUser",
            "Salesforce CRM Content User",
            "SFContentUser",
        );
        check(
            "UserPermissionsNewShinyUser",
            "New Shiny User",
            "NewShinyUser",
        );
        check("UserPermissionsCPQUser", "CPQ User", "CPQUser");
    }

    #[test]
    fn user_licenses_map_counts_status_and_keys() {
        let row = UserLicenseRow {
            id: "100A".into(),
            name: Some("Salesforce".into()),
            master_label: Some("Salesforce".into()),
            license_definition_key: Some("SFDC".into()),
            status: Some("Disabled".into()),
            total_licenses: Some(50),
            used_licenses: Some(47),
            used_licenses_last_updated: Some("2024-05-01T08:15:00.000+0000".into()),
        };
        let [app, lic] = user_license(&row);
        assert!(
            matches!(&app, Record::Application(a) if a.id == "user_license:SFDC" && a.name == "Salesforce")
        );
        let lic = license(&lic);
        assert_eq!(lic.application_id, "user_license:SFDC");
        assert_eq!((lic.purchased, lic.consumed), (Some(50), Some(47)));
        assert_eq!(
            (lic.family, lic.status),
            (LicenseFamily::User, LicenseStatus::Disabled)
        );
        assert_eq!(lic.attributes["license_definition_key"], "SFDC");
        assert_eq!(
            lic.attributes["used_licenses_last_updated"],
            "2024-05-01T08:15:00.000+0000"
        );
    }

    #[test]
    fn site_wide_packages_are_unlimited_and_expiry_is_a_date() {
        let mut row = PackageLicenseRow {
            id: "050A".into(),
            namespace_prefix: Some("dsfs".into()),
            allowed_licenses: Some(-1),
            used_licenses: Some(0),
            expiration_date: None,
            status: Some("Free".into()),
        };
        let [_, lic] = package_license(&row);
        let lic = license(&lic);
        assert!(lic.unlimited);
        assert_eq!((lic.purchased, lic.consumed), (None, Some(0)));
        assert_eq!(lic.status, LicenseStatus::Free);
        row.allowed_licenses = Some(25);
        row.status = Some("Expired".into());
        row.expiration_date = Some("2025-12-31T00:00:00.000+0000".into());
        let [app, lic] = package_license(&row);
        assert!(
            matches!(&app, Record::Application(a) if a.id == "package:dsfs" && a.vendor.is_none())
        );
        let lic = license(&lic);
        assert!(!lic.unlimited);
        assert_eq!(lic.purchased, Some(25));
        assert_eq!(lic.expires_on, NaiveDate::from_ymd_opt(2025, 12, 31));
        assert_eq!(lic.status, LicenseStatus::Expired);
    }

    #[test]
    fn permission_set_licenses_carry_their_metric() {
        let row = PermissionSetLicenseRow {
            id: "0PLA".into(),
            developer_name: Some("LightningConsoleUser".into()),
            master_label: Some("Lightning Console User".into()),
            permission_set_license_key: None,
            status: Some("Active".into()),
            total_licenses: Some(10),
            used_licenses: Some(4),
            expiration_date: Some("2026-03-01".into()),
        };
        let metric = PermSetMetricRow {
            permission_set_license_id: "0PLA".into(),
            assigned_user_count: Some(4),
            active_user_count: Some(3),
            metrics_date: Some("2026-01-01".into()),
        };
        let [app, lic] = permission_set_license(&row, Some(&metric));
        assert!(
            matches!(&app, Record::Application(a) if a.id == "permission_set_license:LightningConsoleUser")
        );
        let lic = license(&lic);
        assert_eq!(lic.name, "Lightning Console User");
        assert_eq!(lic.expires_on, NaiveDate::from_ymd_opt(2026, 3, 1));
        assert_eq!(lic.attributes["active_user_count"], 3);
        assert_eq!(lic.attributes["metrics_date"], "2026-01-01");
    }

    #[test]
    fn features_with_and_without_a_metric() {
        let metric = FeatureMetricRow {
            feature_type: "SupportUser".into(),
            total_license_count: Some(12),
            assigned_user_count: Some(9),
            active_user_count: Some(7),
            metrics_date: Some("2026-01-01".into()),
        };
        let with = feature_license("UserPermissionsSupportUser", Some(&metric), 3);
        let with = license(&with);
        assert_eq!((with.purchased, with.consumed), (Some(12), Some(9)));
        assert_eq!(with.application_id, "feature:SupportUser");
        assert_eq!(with.name, "Service Cloud User");
        let without = feature_license("UserPermissionsSupportUser", None, 3);
        assert_eq!(
            (license(&without).purchased, license(&without).consumed),
            (None, Some(3))
        );
    }

    #[test]
    fn a_user_becomes_an_account_and_its_assignments() {
        let context = UserContext {
            profiles: HashMap::from([(
                "00eA".to_owned(),
                (Some("Standard User".to_owned()), Some("100A".to_owned())),
            )]),
            frozen: Some(HashSet::from(["005A".to_owned()])),
            features: vec![
                "UserPermissionsMarketingUser".to_owned(),
                "UserPermissionsSupportUser".to_owned(),
            ],
        };
        let row = UserRow {
            id: "005A".into(),
            username: "ada@x".into(),
            name: Some("Ada".into()),
            email: Some("ada@x".into()),
            is_active: true,
            user_type: Some("Standard".into()),
            profile_id: Some("00eA".into()),
            last_login_date: Some("2024-05-01T08:15:00.000+0000".into()),
            created_date: None,
            department: Some("IT".into()),
            flags: vec![
                "UserPermissionsSupportUser".into(),
                "UserPermissionsOther".into(),
            ],
        };
        let mut holders = vec![0, 0];
        let mut out = Vec::new();
        user(row, &context, &mut holders, &mut out);
        assert_eq!(holders, vec![0, 1]);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(&out[0], Record::Assignment(a)
            if a.license_id == "100A" && a.source == AssignmentSource::Profile));
        assert!(matches!(&out[1], Record::Assignment(a)
            if a.license_id == "UserPermissionsSupportUser" && a.source == AssignmentSource::FeatureFlag));
        let Record::Account(account) = &out[2] else {
            panic!("an account last: {out:?}");
        };
        assert_eq!(account.frozen, Some(true));
        assert_eq!(account.attributes["profile_name"], "Standard User");
        assert_eq!(account.attributes["department"], "IT");
        assert_eq!(
            account.last_login_at.map(|t| t.to_rfc3339()),
            Some("2024-05-01T08:15:00+00:00".to_owned())
        );
        let unknown = UserContext::default();
        let mut out = Vec::new();
        user(
            UserRow {
                id: "005B".into(),
                username: "b@x".into(),
                ..UserRow::default()
            },
            &unknown,
            &mut [],
            &mut out,
        );
        assert!(matches!(&out[..], [Record::Account(a)] if a.frozen.is_none() && !a.active));
    }
}
