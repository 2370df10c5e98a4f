//! The generic inventory model: what every plugin imports, whatever the SaaS product.
//!
//! An import is a stream of [`Record`]s, sent to the host in batches of JSON lines. The host
//! keeps one snapshot per connection made of these records, and the reports read only them, so
//! a plugin for another product gets the same reports as Salesforce.
//!
//! Identifiers (`id`, `account_id`, `license_id`, ...) are the source's own identifiers, unique
//! within one connection and one record kind. References are by those identifiers.
//!
//! How other products fit:
//! * a plain seat-based product: one [`Application`], one [`License`] of family
//!   [`LicenseFamily::User`] with `purchased` seats, an [`Assignment`] per user;
//! * a usage-metered product: a [`License`] whose `unit` names what is counted
//!   (`"api_calls"`, `"gb"`) with `purchased` and `consumed` in that unit, and no assignments;
//! * a product with add-ons: one [`License`] per add-on, family [`LicenseFamily::Feature`].
//!
//! Versioning: [`MODEL_VERSION`] is carried in every import request, so a plugin knows which
//! shapes the host reads. New fields are optional and ignored by older hosts; new values of the
//! inner enums (family, status, source) read as `other` on older hosts. A record of a kind an
//! older host does not know does not parse there: the host skips such a line with a warning, so
//! plugins add new kinds only for hosts that announce the matching `MODEL_VERSION`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Version of the record shapes in this module.
pub const MODEL_VERSION: u32 = 1;

/// Free-form extra attributes a plugin wants to keep with a record (shown in exports).
pub type Attributes = BTreeMap<String, serde_json::Value>;

/// One inventory record. In JSON, the kind is the `kind` field:
/// `{"kind":"account","id":"005...","username":"ada@example.com",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The tenant (Salesforce org, workspace, account) the connection points at.
    Tenant(Tenant),
    /// A user or service account of the tenant.
    Account(Account),
    /// Something licensed: a product, an edition, a package, a feature.
    Application(Application),
    /// An entitlement: seats or units bought for an application.
    License(License),
    /// One account holding one license.
    Assignment(Assignment),
    /// What one account did over the usage window.
    Usage(Usage),
}

impl Record {
    /// The kind as it appears in JSON and in run counts (`account`, `license`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Tenant(_) => "tenant",
            Record::Account(_) => "account",
            Record::Application(_) => "application",
            Record::License(_) => "license",
            Record::Assignment(_) => "assignment",
            Record::Usage(_) => "usage",
        }
    }
}

/// The tenant a connection imports from. One per import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    /// The source's id of the tenant (Salesforce organization id).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Edition or plan (`Enterprise Edition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Instance, region or pod (`NA123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Whether this is a test or sandbox tenant.
    #[serde(default)]
    pub sandbox: bool,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

/// A user (or integration) account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The source's id of the account.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the account can sign in (not deactivated).
    pub active: bool,
    /// Whether the account is frozen or suspended; `None` when the source does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
    /// The source's account type (`Standard`, `PowerPartner`, `AutomatedProcess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<String>,
    /// When the account was created.
    #[serde(
        default,
        with = "crate::time::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<DateTime<Utc>>,
    /// The last successful sign-in the source knows of; `None` means never.
    #[serde(
        default,
        with = "crate::time::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

/// Something that is licensed: reports say "application X: N bought, M used".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    /// The plugin's id for it (stable across imports: `salesforce_platform`, `pkg_SBQQ`).
    pub id: String,
    /// Display name (`Salesforce Platform`, `SBQQ`).
    pub name: String,
    /// Publisher (`Salesforce`, a managed package's publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

/// How a license is granted, for grouping in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseFamily {
    /// The base license every user holds one of (Salesforce user license, a product seat).
    User,
    /// A license added through permission sets (Salesforce permission set license).
    PermissionSet,
    /// A license for an installed package or add-on product (Salesforce managed package).
    Package,
    /// A feature switched on per user (Salesforce feature license, such as Marketing User).
    Feature,
    /// Anything else; also what an older host reads for a family it does not know.
    #[serde(other)]
    Other,
}

/// The state of a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseStatus {
    /// In use and paid for.
    Active,
    /// Switched off by the vendor or an administrator.
    Disabled,
    /// Past its expiry date.
    Expired,
    /// A trial.
    Trial,
    /// Free of charge (not counted as spend).
    Free,
    /// Superseded by another connection's import; kept visible but out of totals (set by the host).
    Retired,
    /// Anything else; also what an older host reads for a status it does not know.
    #[serde(other)]
    Other,
}

/// An entitlement: what was bought and what is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    /// The source's id of the license.
    pub id: String,
    /// The [`Application`] it licenses.
    pub application_id: String,
    /// Display name (`Salesforce`, `Sales Cloud Einstein`).
    pub name: String,
    /// How it is granted.
    pub family: LicenseFamily,
    /// What is counted: `seat` (the default) or a unit of a metered product.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Units bought; `None` when the source does not say. Ignored when `unlimited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased: Option<u64>,
    /// Units in use as the source counts them (Salesforce's UsedLicenses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed: Option<u64>,
    /// Site-wide or unlimited (Salesforce package with AllowedLicenses = -1).
    #[serde(default)]
    pub unlimited: bool,
    /// Last day of the entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<NaiveDate>,
    /// State.
    pub status: LicenseStatus,
    /// Extra attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: Attributes,
}

fn default_unit() -> String {
    "seat".to_owned()
}

/// Why an account holds a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentSource {
    /// Assigned to the account directly.
    Direct,
    /// Through the account's profile or role (Salesforce user license).
    Profile,
    /// Through a permission-set license assignment.
    PermissionSetLicense,
    /// Through a package license assignment.
    Package,
    /// Through a per-user feature flag.
    FeatureFlag,
    /// Through group membership.
    Group,
    /// Anything else; also what an older host reads for a source it does not know.
    #[serde(other)]
    Other,
}

impl AssignmentSource {
    /// Every source, in declaration order.
    pub const ALL: [AssignmentSource; 7] = [
        AssignmentSource::Direct,
        AssignmentSource::Profile,
        AssignmentSource::PermissionSetLicense,
        AssignmentSource::Package,
        AssignmentSource::FeatureFlag,
        AssignmentSource::Group,
        AssignmentSource::Other,
    ];

    /// The name as in JSON (`permission_set_license`).
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentSource::Direct => "direct",
            AssignmentSource::Profile => "profile",
            AssignmentSource::PermissionSetLicense => "permission_set_license",
            AssignmentSource::Package => "package",
            AssignmentSource::FeatureFlag => "feature_flag",
            AssignmentSource::Group => "group",
            AssignmentSource::Other => "other",
        }
    }
}

/// One account holding one license.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The [`Account`].
    pub account_id: String,
    /// The [`License`].
    pub license_id: String,
    /// Why the account holds it.
    pub source: AssignmentSource,
    /// When it was assigned, if known.
    #[serde(
        default,
        with = "crate::time::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_at: Option<DateTime<Utc>>,
}

/// What one account did over the usage window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The [`Account`].
    pub account_id: String,
    /// The [`Application`] used, or `None` for the tenant as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// Length of the window the counts cover, in days, ending at the import.
    pub window_days: u32,
    /// Successful sign-ins in the window.
    pub logins: u64,
    /// The last interactive (browser, app) use in the window.
    #[serde(
        default,
        with = "crate::time::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_interactive_at: Option<DateTime<Utc>>,
    /// The last API use in the window.
    #[serde(
        default,
        with = "crate::time::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_api_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assignment_source_names_are_the_json_names() {
        for source in AssignmentSource::ALL {
            assert_eq!(json!(source), json!(source.as_str()));
        }
    }

    #[test]
    fn records_are_tagged_by_kind() {
        let record = Record::License(License {
            id: "100x".into(),
            application_id: "salesforce".into(),
            name: "Salesforce".into(),
            family: LicenseFamily::User,
            unit: "seat".into(),
            purchased: Some(10),
            consumed: Some(7),
            unlimited: false,
            expires_on: None,
            status: LicenseStatus::Active,
            attributes: Attributes::new(),
        });
        let value = serde_json::to_value(&record).expect("serialises");
        assert_eq!(
            value,
            json!({"kind": "license", "id": "100x", "application_id": "salesforce",
                   "name": "Salesforce", "family": "user", "unit": "seat", "purchased": 10,
                   "consumed": 7, "unlimited": false, "status": "active"})
        );
        assert_eq!(record.kind(), "license");
        let back: Record = serde_json::from_value(value).expect("parses");
        assert_eq!(back, record);
    }

    #[test]
    fn unknown_enum_values_from_newer_plugins_read_as_other() {
        let license: License = serde_json::from_value(json!({
            "id": "1", "application_id": "a", "name": "n", "family": "quantum",
            "status": "hibernating", "future_field": true
        }))
        .expect("tolerant reader");
        assert_eq!(license.family, LicenseFamily::Other);
        assert_eq!(license.status, LicenseStatus::Other);
        assert_eq!(license.unit, "seat");
    }

    #[test]
    fn a_metered_product_fits() {
        let license: License = serde_json::from_value(json!({
            "id": "storage", "application_id": "files", "name": "File storage",
            "family": "other", "unit": "gb", "purchased": 500, "consumed": 123, "status": "active"
        }))
        .expect("parses");
        assert_eq!((license.unit.as_str(), license.consumed), ("gb", Some(123)));
    }
}
