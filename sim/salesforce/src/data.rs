//! A deterministic synthetic org: [`OrgSpec`] in, [`SyntheticOrg`] out.
//!
//! Nothing per user is stored. User `i`'s fields (profile, active, frozen, last login,
//! feature flags, permission set and package licenses) are derived on demand from a
//! hash of `(seed, i)`; so are the rows of `PermissionSetLicenseAssign`,
//! `UserPackageLicense`, `UserLogin` and `LoginHistory`. Only the small tables
//! (licenses, profiles, metrics) and the [`GroundTruth`] are materialised, after one
//! counting pass over the users at construction.
//!
//! Every time is relative to [`GroundTruth::as_of`] (the moment the org was built,
//! to the second), so the same seed gives the same org relative to "now".
//!
//! # How the org is consistent
//!
//! - A user's user license is their Profile's `UserLicenseId`;
//!   `UserLicense.UsedLicenses` = active users whose profile has that license.
//! - `PermissionSetLicense.UsedLicenses` = `PermissionSetLicenseAssign` rows whose
//!   assignee is active; deactivated users keep their rows.
//! - `PackageLicense.UsedLicenses` = all `UserPackageLicense` rows, deactivated users'
//!   included (Salesforce does not free package seats on deactivation). The site-wide
//!   package (`dsfs`, `AllowedLicenses = -1`) has no rows and `UsedLicenses = 0`.
//! - The latest `ActiveFeatureLicenseMetric` row of a feature has `AssignedUserCount` =
//!   active users with its `UserPermissions*` flag, `ActiveUserCount` = those who
//!   logged in within 30 days; older rows (8 and 31 days back) have smaller counts.
//! - `LoginHistory` holds rows only for users whose `LastLoginDate` lies within the
//!   window (`login_history_days`); the newest row of such a user is a successful
//!   login at exactly `LastLoginDate`, the others are earlier, within the window.
//! - Users who never logged in have `LastLoginDate = null` and no `LoginHistory`;
//!   deactivated users last logged in more than 90 days ago, or never.

use chrono::{DateTime, Datelike as _, Duration, NaiveTime, SubsecRound, Timelike as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::field::Field;

/// The synthetic org to serve ([`crate::SimConfig::org`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrgSpec {
    /// Seed of every derived value. Default 42.
    pub seed: u64,
    /// Number of users (user 0 is the System Administrator who runs the import).
    /// Default 250.
    pub users: usize,
    /// Records per query page (Salesforce's default batch: 2000). A request header
    /// `Sforce-Query-Options: batchSize=N` (200..=2000) overrides it.
    pub page_size: usize,
    /// How far back `LoginHistory` goes, in days. Default 90.
    pub login_history_days: u32,
    /// The `User.UserPermissions*` feature flags the org has, by field name
    /// (`UserPermissionsSupportUser`). Default `None`: all nine. Orgs differ in which
    /// flags exist; a flag left out is absent from `describe`, selecting it answers 400
    /// `INVALID_FIELD`, no user holds it, and neither the ground truth nor
    /// `ActiveFeatureLicenseMetric` lists it. Unknown names are ignored.
    pub features: Option<Vec<String>>,
    /// Objects the org does not expose to the importing user (`UserLogin`,
    /// `ActiveFeatureLicenseMetric`, ...): a query on one answers 400 `INVALID_TYPE` and its
    /// describe 404, as for an object the org lacks or the user cannot see. Default empty.
    pub hidden_objects: Vec<String>,
    /// The most rows a Bulk API 2.0 result set holds (`maxRecords` asks for fewer).
    /// Default 100,000.
    pub bulk_max_records: usize,
    /// Polls a Bulk API 2.0 query job answers `InProgress` before `JobComplete`. Default 0:
    /// complete at the first poll.
    pub bulk_polls_in_progress: u32,
}

impl Default for OrgSpec {
    fn default() -> Self {
        OrgSpec {
            seed: 42,
            users: 250,
            page_size: 2000,
            login_history_days: 90,
            features: None,
            hidden_objects: Vec::new(),
            bulk_max_records: 100_000,
            bulk_polls_in_progress: 0,
        }
    }
}

/// The sObjects the synthetic org serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Obj {
    Organization,
    UserLicense,
    Profile,
    PermissionSetLicense,
    PermissionSetLicenseAssign,
    PackageLicense,
    UserPackageLicense,
    User,
    UserLogin,
    LoginHistory,
    ActiveFeatureLicenseMetric,
    ActivePermSetLicenseMetric,
}

pub(crate) const ALL_OBJECTS: [Obj; 12] = [
    Obj::Organization,
    Obj::UserLicense,
    Obj::Profile,
    Obj::PermissionSetLicense,
    Obj::PermissionSetLicenseAssign,
    Obj::PackageLicense,
    Obj::UserPackageLicense,
    Obj::User,
    Obj::UserLogin,
    Obj::LoginHistory,
    Obj::ActiveFeatureLicenseMetric,
    Obj::ActivePermSetLicenseMetric,
];

impl Obj {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Obj::Organization => "Organization",
            Obj::UserLicense => "UserLicense",
            Obj::Profile => "Profile",
            Obj::PermissionSetLicense => "PermissionSetLicense",
            Obj::PermissionSetLicenseAssign => "PermissionSetLicenseAssign",
            Obj::PackageLicense => "PackageLicense",
            Obj::UserPackageLicense => "UserPackageLicense",
            Obj::User => "User",
            Obj::UserLogin => "UserLogin",
            Obj::LoginHistory => "LoginHistory",
            Obj::ActiveFeatureLicenseMetric => "ActiveFeatureLicenseMetric",
            Obj::ActivePermSetLicenseMetric => "ActivePermSetLicenseMetric",
        }
    }

    /// Case-insensitive lookup by API name.
    pub(crate) fn from_name(name: &str) -> Option<Obj> {
        ALL_OBJECTS
            .into_iter()
            .find(|obj| obj.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Obj::Organization => "00D",
            Obj::UserLicense => "100",
            Obj::Profile => "00e",
            Obj::PermissionSetLicense => "0PL",
            Obj::PermissionSetLicenseAssign => "2LA",
            Obj::PackageLicense => "050",
            Obj::UserPackageLicense => "051",
            Obj::User => "005",
            Obj::UserLogin => "060",
            Obj::LoginHistory => "0Ya",
            Obj::ActiveFeatureLicenseMetric => "0mU",
            Obj::ActivePermSetLicenseMetric => "0mV",
        }
    }

    pub(crate) fn fields(self) -> &'static [FieldDef] {
        match self {
            Obj::Organization => ORGANIZATION_FIELDS,
            Obj::UserLicense => USER_LICENSE_FIELDS,
            Obj::Profile => PROFILE_FIELDS,
            Obj::PermissionSetLicense => PSL_FIELDS,
            Obj::PermissionSetLicenseAssign => PSLA_FIELDS,
            Obj::PackageLicense => PACKAGE_FIELDS,
            Obj::UserPackageLicense => UPL_FIELDS,
            Obj::User => USER_FIELDS,
            Obj::UserLogin => USER_LOGIN_FIELDS,
            Obj::LoginHistory => LOGIN_HISTORY_FIELDS,
            Obj::ActiveFeatureLicenseMetric => AFLM_FIELDS,
            Obj::ActivePermSetLicenseMetric => APSLM_FIELDS,
        }
    }
}

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Id,
    Str,
    Bool,
    Int,
    DateTime,
    Date,
    /// A lookup: the target object and the relationship name (`ProfileId` → `Profile`).
    Ref(Obj, &'static str),
}

impl Kind {
    pub(crate) fn soap_type(self) -> &'static str {
        match self {
            Kind::Id => "id",
            Kind::Str => "string",
            Kind::Bool => "boolean",
            Kind::Int => "int",
            Kind::DateTime => "datetime",
            Kind::Date => "date",
            Kind::Ref(..) => "reference",
        }
    }
}

/// One field of an sObject.
#[derive(Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

const fn f(name: &'static str, kind: Kind) -> FieldDef {
    FieldDef { name, kind }
}

const ORGANIZATION_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("Name", Kind::Str),
    f("OrganizationType", Kind::Str),
    f("InstanceName", Kind::Str),
    f("IsSandbox", Kind::Bool),
    f("TrialExpirationDate", Kind::DateTime),
    f("NamespacePrefix", Kind::Str),
    f("CreatedDate", Kind::DateTime),
];
const USER_LICENSE_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("Name", Kind::Str),
    f("MasterLabel", Kind::Str),
    f("LicenseDefinitionKey", Kind::Str),
    f("Status", Kind::Str),
    f("TotalLicenses", Kind::Int),
    f("UsedLicenses", Kind::Int),
    f("UsedLicensesLastUpdated", Kind::DateTime),
    f("MonthlyLoginsEntitlement", Kind::Int),
    f("MonthlyLoginsUsed", Kind::Int),
    f("CreatedDate", Kind::DateTime),
];
const PROFILE_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("Name", Kind::Str),
    f("UserLicenseId", Kind::Ref(Obj::UserLicense, "UserLicense")),
    f("UserType", Kind::Str),
    f("CreatedDate", Kind::DateTime),
];
const PSL_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("DeveloperName", Kind::Str),
    f("MasterLabel", Kind::Str),
    f("PermissionSetLicenseKey", Kind::Str),
    f("Status", Kind::Str),
    f("TotalLicenses", Kind::Int),
    f("UsedLicenses", Kind::Int),
    f("ExpirationDate", Kind::Date),
    f("IsAvailableForIntegrations", Kind::Bool),
];
const PSLA_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("AssigneeId", Kind::Ref(Obj::User, "Assignee")),
    f(
        "PermissionSetLicenseId",
        Kind::Ref(Obj::PermissionSetLicense, "PermissionSetLicense"),
    ),
    f("IsRevoked", Kind::Bool),
];
const PACKAGE_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("NamespacePrefix", Kind::Str),
    f("AllowedLicenses", Kind::Int),
    f("UsedLicenses", Kind::Int),
    f("ExpirationDate", Kind::DateTime),
    f("Status", Kind::Str),
    f("IsProvisioned", Kind::Bool),
];
const UPL_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f(
        "PackageLicenseId",
        Kind::Ref(Obj::PackageLicense, "PackageLicense"),
    ),
    f("UserId", Kind::Ref(Obj::User, "User")),
    f("IsRevoked", Kind::Bool),
];
const USER_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("Username", Kind::Str),
    f("Name", Kind::Str),
    f("FirstName", Kind::Str),
    f("LastName", Kind::Str),
    f("Email", Kind::Str),
    f("Alias", Kind::Str),
    f("IsActive", Kind::Bool),
    f("UserType", Kind::Str),
    f("ProfileId", Kind::Ref(Obj::Profile, "Profile")),
    f("LastLoginDate", Kind::DateTime),
    f("CreatedDate", Kind::DateTime),
    f("Department", Kind::Str),
    f("UserPermissionsMarketingUser", Kind::Bool),
    f("UserPermissionsOfflineUser", Kind::Bool),
    f("UserPermissionsMobileUser", Kind::Bool),
    f("UserPermissionsSFContentUser", Kind::Bool),
    f("UserPermissionsKnowledgeUser", Kind::Bool),
    f("UserPermissionsInteractionUser", Kind::Bool),
    f("UserPermissionsSupportUser", Kind::Bool),
    f("UserPermissionsLiveAgentUser", Kind::Bool),
    f("UserPermissionsChatterAnswersUser", Kind::Bool),
];
const USER_LOGIN_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("UserId", Kind::Ref(Obj::User, "User")),
    f("IsFrozen", Kind::Bool),
    f("IsPasswordLocked", Kind::Bool),
    f("LastModifiedDate", Kind::DateTime),
];
const LOGIN_HISTORY_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("UserId", Kind::Id),
    f("LoginTime", Kind::DateTime),
    f("LoginType", Kind::Str),
    f("Status", Kind::Str),
    f("Application", Kind::Str),
    f("SourceIp", Kind::Str),
    f("Browser", Kind::Str),
    f("Platform", Kind::Str),
    f("ApiType", Kind::Str),
    f("LoginUrl", Kind::Str),
];
const AFLM_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f("FeatureType", Kind::Str),
    f("TotalLicenseCount", Kind::Int),
    f("AssignedUserCount", Kind::Int),
    f("ActiveUserCount", Kind::Int),
    f("MetricsDate", Kind::Date),
];
const APSLM_FIELDS: &[FieldDef] = &[
    f("Id", Kind::Id),
    f(
        "PermissionSetLicenseId",
        Kind::Ref(Obj::PermissionSetLicense, "PermissionSetLicense"),
    ),
    f("DeveloperName", Kind::Str),
    f("MasterLabel", Kind::Str),
    f("TotalLicenses", Kind::Int),
    f("AssignedUserCount", Kind::Int),
    f("ActiveUserCount", Kind::Int),
    f("MetricsDate", Kind::Date),
];

/// User licenses: name, `LicenseDefinitionKey`, status.
const USER_LICENSES: [(&str, &str, &str); 6] = [
    ("Salesforce", "SFDC", "Active"),
    ("Salesforce Platform", "AUL", "Active"),
    ("Chatter Free", "PID_Chatter", "Active"),
    ("Customer Community", "PID_Customer_Community", "Active"),
    ("Identity", "PID_Identity", "Active"),
    ("Partner Community", "PID_Partner_Community", "Disabled"),
];
const LIC_SALESFORCE: usize = 0;
const LIC_PLATFORM: usize = 1;
const LIC_COMMUNITY: usize = 3;

/// Profiles: name, user license index, `UserType`, share of users in percent.
const PROFILES: [(&str, usize, &str, u64); 7] = [
    ("System Administrator", 0, "Standard", 2),
    ("Standard User", 0, "Standard", 38),
    ("Custom: Sales Rep", 0, "Standard", 20),
    ("Standard Platform User", 1, "Standard", 15),
    ("Chatter Free User", 2, "CsnOnly", 13),
    ("Customer Community User", 3, "CspLitePortal", 12),
    ("Identity User", 4, "Standard", 0),
];

/// Feature licenses: `User` flag, `FeatureType`, per mille of Salesforce users and of
/// Salesforce Platform users holding it.
const FEATURES: [(&str, &str, u64, u64); 9] = [
    ("UserPermissionsMarketingUser", "MarketingUser", 100, 0),
    ("UserPermissionsOfflineUser", "OfflineUser", 30, 0),
    ("UserPermissionsMobileUser", "MobileUser", 200, 0),
    ("UserPermissionsSFContentUser", "SFContentUser", 400, 300),
    ("UserPermissionsKnowledgeUser", "KnowledgeUser", 150, 50),
    (
        "UserPermissionsInteractionUser",
        "InteractionUser",
        250,
        100,
    ),
    ("UserPermissionsSupportUser", "SupportUser", 200, 0),
    ("UserPermissionsLiveAgentUser", "LiveAgentUser", 50, 0),
    (
        "UserPermissionsChatterAnswersUser",
        "ChatterAnswersUser",
        20,
        0,
    ),
];

/// Permission set licenses: developer name, label, status, expiry (days from now),
/// per mille of Salesforce and of Salesforce Platform users holding it.
/// A permission set license definition (see [`PSLS`]).
type PslDef = (
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
    u64,
    u64,
);

const PSLS: [PslDef; 4] = [
    (
        "SalesforceCPQ_CPQStandardPerm",
        "Salesforce CPQ License",
        "Active",
        Some(200),
        200,
        0,
    ),
    (
        "LightningConsoleUser",
        "Lightning Console User",
        "Active",
        None,
        150,
        100,
    ),
    (
        "EinsteinAnalyticsPlusPsl",
        "CRM Analytics Plus",
        "Disabled",
        Some(-10),
        50,
        0,
    ),
    (
        "IdentityConnect",
        "Identity Connect",
        "Active",
        None,
        100,
        100,
    ),
];

/// Managed packages: namespace, status, site-wide, expiry (days from now).
/// `SBQQ` seats go with the CPQ permission set license; `et4ae5` to 8% of Salesforce
/// users; `dsfs` is site-wide.
const PACKAGES: [(&str, &str, bool, Option<i64>); 3] = [
    ("SBQQ", "Active", false, Some(200)),
    ("dsfs", "Active", true, None),
    ("et4ae5", "Expired", false, Some(-30)),
];

/// `LoginHistory` slots per user (a user has 1..=16 rows in the window).
const LOGIN_SLOTS: u64 = 16;
/// Days back of the metric snapshots; the first is the latest.
const METRIC_DAYS: [i64; 3] = [1, 8, 31];
/// "Inactive" in the ground truth: no login within this many days.
pub const INACTIVE_DAYS: i64 = 90;
const DAY: i64 = 86_400;

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pavel",
];
const LAST_NAMES: [&str; 16] = [
    "Anders", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova",
    "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "Olsen", "Petrov",
];
const DEPARTMENTS: [&str; 5] = ["Sales", "Service", "Marketing", "Finance", "IT"];

/// Which family a license belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseFamily {
    /// A `UserLicense`, assigned through the user's Profile.
    User,
    /// A `PermissionSetLicense`, assigned by `PermissionSetLicenseAssign` rows.
    PermissionSet,
    /// A managed package's `PackageLicense`, assigned by `UserPackageLicense` rows.
    Package,
    /// A feature license, assigned by a `User.UserPermissions*` flag.
    Feature,
}

/// The expected inventory of one license. See [`GroundTruth`] for the definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenseTruth {
    /// The row id (`100…`, `0PL…`, `050…`); for a feature, its `User` flag field name.
    pub id: String,
    /// `UserLicense.Name`, `PermissionSetLicense.DeveloperName`,
    /// `PackageLicense.NamespacePrefix`, or the feature's `FeatureType`.
    pub name: String,
    /// The family.
    pub family: LicenseFamily,
    /// Seats bought: `TotalLicenses`, `AllowedLicenses` (None when -1, site-wide), or
    /// the latest `ActiveFeatureLicenseMetric.TotalLicenseCount`.
    pub purchased: Option<i64>,
    /// What Salesforce reports as used: `UsedLicenses`, or the latest metric's
    /// `AssignedUserCount`.
    pub used: i64,
    /// Assignments: users whose profile has the license, assignment rows, or users
    /// with the flag set, deactivated users included.
    pub assigned: u64,
    /// Of `assigned`, those whose user is active.
    pub active_assigned: u64,
    /// Of `active_assigned`, those whose user has not logged in within
    /// [`INACTIVE_DAYS`] (90) days of `as_of` (never logged in included).
    pub inactive_90_assigned: u64,
    /// Assignments that take a seat: a deactivation frees a user license (the profile's)
    /// and a feature license (the flag), so only active users hold those; permission set
    /// and package rows are held whatever the user's state (the reports' rule, see
    /// docs/reports.md).
    pub holders: u64,
    /// Seats bought that no one holds: `purchased - holders`, at least 0; None when
    /// `purchased` is (site-wide).
    pub spare: Option<i64>,
}

/// Counts over all users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserTruth {
    /// `User` rows.
    pub total: u64,
    /// `IsActive = true`.
    pub active: u64,
    /// `LastLoginDate = null` (active or not).
    pub never_logged_in: u64,
    /// `UserLogin.IsFrozen = true` (only active users are frozen).
    pub frozen: u64,
    /// `IsActive = false` with at least one `PermissionSetLicenseAssign` or
    /// `UserPackageLicense` row.
    pub deactivated_with_seats: u64,
    /// Active users with `LastLoginDate` null or older than 90 days before `as_of`.
    pub active_inactive_90: u64,
}

/// One user's last login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserLastLogin {
    /// `User.Id`.
    pub id: String,
    /// `User.Username`.
    pub username: String,
    /// `User.LastLoginDate` as Salesforce formats it, or None.
    pub last_login: Option<String>,
}

/// What an import of the synthetic org should find.
///
/// Definitions, per [`LicenseFamily`]:
///
/// | family | purchased | used | assigned | holders |
/// |---|---|---|---|---|
/// | user | `TotalLicenses` | `UsedLicenses` = active users with the license | all users with the license | active users with the license |
/// | permission_set | `TotalLicenses` | `UsedLicenses` = rows of active users | `PermissionSetLicenseAssign` rows | all rows |
/// | package | `AllowedLicenses`, None if -1 | `UsedLicenses` = all rows | `UserPackageLicense` rows | all rows |
/// | feature | latest `TotalLicenseCount` | latest `AssignedUserCount` = active users with the flag | users with the flag | active users with the flag |
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroundTruth {
    /// The org's "now", formatted as Salesforce does (`2026-01-01T00:00:00.000+0000`).
    pub as_of: String,
    /// Every license, in the order user, permission set, package, feature.
    pub licenses: Vec<LicenseTruth>,
    /// User counts.
    pub users: UserTruth,
    /// `LoginHistory` rows (all within the window).
    pub login_history_rows: u64,
    /// Of `login_history_rows`, those with `Status = 'Success'`: the logins an import's
    /// usage records should add up to.
    pub login_history_successful_rows: u64,
    /// The first (up to) 20 users' last logins; [`SyntheticOrg::user_last_login`]
    /// answers for any user.
    pub last_login_sample: Vec<UserLastLogin>,
}

impl GroundTruth {
    /// The license named `name` in `family`.
    pub fn license(&self, family: LicenseFamily, name: &str) -> Option<&LicenseTruth> {
        self.licenses
            .iter()
            .find(|license| license.family == family && license.name == name)
    }
}

/// One user's derived fields.
#[derive(Debug, Clone, Copy)]
struct UserRow {
    profile: usize,
    active: bool,
    frozen: bool,
    created_ago: i64,
    last_login_ago: Option<i64>,
    flags: u32,
    psls: u32,
    packages: u32,
    first: usize,
    last: usize,
    logins: u64,
}

impl UserRow {
    fn license(&self) -> usize {
        PROFILES[self.profile].1
    }
    fn inactive_90(&self) -> bool {
        self.last_login_ago
            .is_none_or(|ago| ago > INACTIVE_DAYS * DAY)
    }
}

/// Tallies of one license during the counting pass.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    assigned: u64,
    active: u64,
    inactive_90: u64,
    /// Active, logged in within 30 days.
    recent_30: u64,
}

impl Tally {
    fn add(&mut self, user: &UserRow) {
        self.assigned += 1;
        if user.active {
            self.active += 1;
            if user.inactive_90() {
                self.inactive_90 += 1;
            }
            if user.last_login_ago.is_some_and(|ago| ago <= 30 * DAY) {
                self.recent_30 += 1;
            }
        }
    }
}

/// A generated org. Immutable; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SyntheticOrg {
    spec: OrgSpec,
    as_of: DateTime<Utc>,
    user_licenses: [(i64, i64); 6],
    psls: [(i64, i64, Tally); 4],
    packages: [(i64, i64); 3],
    features: [(i64, Tally); 9],
    /// Which of [`FEATURES`] the org has ([`OrgSpec::features`]).
    feature_on: [bool; 9],
    truth: GroundTruth,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An 18-character id: prefix, 12 digits of `pos + 1`, `AAA`.
fn make_id(obj: Obj, pos: u64) -> String {
    format!("{}{:012}AAA", obj.prefix(), pos + 1)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SyntheticOrg {
    /// Builds the org as of `as_of` (one pass over the users, nothing stored per user).
    pub fn new(spec: &OrgSpec, as_of: DateTime<Utc>) -> SyntheticOrg {
        let mut org = SyntheticOrg {
            spec: spec.clone(),
            as_of: as_of.trunc_subsecs(0),
            user_licenses: [(0, 0); 6],
            psls: [(0, 0, Tally::default()); 4],
            packages: [(0, 0); 3],
            features: [(0, Tally::default()); 9],
            feature_on: FEATURES.map(|feature| {
                spec.features
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|name| name == feature.0))
            }),
            truth: GroundTruth {
                as_of: String::new(),
                licenses: Vec::new(),
                users: UserTruth {
                    total: 0,
                    active: 0,
                    never_logged_in: 0,
                    frozen: 0,
                    deactivated_with_seats: 0,
                    active_inactive_90: 0,
                },
                login_history_rows: 0,
                login_history_successful_rows: 0,
                last_login_sample: Vec::new(),
            },
        };
        org.count();
        org
    }

    fn count(&mut self) {
        let mut lic = [Tally::default(); 6];
        let mut psl = [Tally::default(); 4];
        let mut pkg = [Tally::default(); 3];
        let mut feat = [Tally::default(); 9];
        let mut users = UserTruth {
            total: 0,
            active: 0,
            never_logged_in: 0,
            frozen: 0,
            deactivated_with_seats: 0,
            active_inactive_90: 0,
        };
        let mut login_rows = 0;
        let mut successful_rows = 0;
        for i in 0..self.user_count() {
            let user = self.user(i);
            users.total += 1;
            users.active += u64::from(user.active);
            users.never_logged_in += u64::from(user.last_login_ago.is_none());
            users.frozen += u64::from(user.frozen);
            users.deactivated_with_seats +=
                u64::from(!user.active && (user.psls != 0 || user.packages != 0));
            users.active_inactive_90 += u64::from(user.active && user.inactive_90());
            login_rows += user.logins;
            successful_rows += (0..user.logins)
                .filter(|slot| !self.login_failed(i * LOGIN_SLOTS + slot))
                .count() as u64;
            lic[user.license()].add(&user);
            for (k, tally) in psl.iter_mut().enumerate() {
                if user.psls & (1 << k) != 0 {
                    tally.add(&user);
                }
            }
            for (k, tally) in pkg.iter_mut().enumerate() {
                if user.packages & (1 << k) != 0 {
                    tally.add(&user);
                }
            }
            for (k, tally) in feat.iter_mut().enumerate() {
                if user.flags & (1 << k) != 0 {
                    tally.add(&user);
                }
            }
        }
        let mut licenses = Vec::new();
        for (k, tally) in lic.iter().enumerate() {
            let used = to_i64(tally.active);
            let total = match k {
                0 => used + used / 10 + 3,
                1 => used + 5,
                2 => used.max(5000),
                3 => used + used / 4 + 10,
                4 => 100,
                _ => 0,
            };
            self.user_licenses[k] = (total, used);
            licenses.push(truth(
                make_id(Obj::UserLicense, k as u64),
                USER_LICENSES[k].0,
                LicenseFamily::User,
                Some(total),
                used,
                tally,
                true,
            ));
        }
        for (k, tally) in psl.iter().enumerate() {
            let used = to_i64(tally.active);
            let total = used + used / 5 + 5;
            self.psls[k] = (total, used, *tally);
            licenses.push(truth(
                make_id(Obj::PermissionSetLicense, k as u64),
                PSLS[k].0,
                LicenseFamily::PermissionSet,
                Some(total),
                used,
                tally,
                false,
            ));
        }
        for (k, tally) in pkg.iter().enumerate() {
            let used = to_i64(tally.assigned);
            let allowed = if PACKAGES[k].2 {
                -1
            } else {
                used + used / 10 + 2
            };
            self.packages[k] = (allowed, used);
            licenses.push(truth(
                make_id(Obj::PackageLicense, k as u64),
                PACKAGES[k].0,
                LicenseFamily::Package,
                (allowed >= 0).then_some(allowed),
                used,
                tally,
                false,
            ));
        }
        for (k, tally) in feat.iter().enumerate() {
            if !self.feature_on[k] {
                continue;
            }
            let used = to_i64(tally.active);
            let total = used + used / 5 + 2;
            self.features[k] = (total, *tally);
            licenses.push(truth(
                FEATURES[k].0.to_owned(),
                FEATURES[k].1,
                LicenseFamily::Feature,
                Some(total),
                used,
                tally,
                true,
            ));
        }
        let sample = (0..self.user_count().min(20))
            .map(|i| UserLastLogin {
                id: make_id(Obj::User, i),
                username: self.username(i, &self.user(i)),
                last_login: self.user_last_login(i),
            })
            .collect();
        self.truth = GroundTruth {
            as_of: self.datetime(0),
            licenses,
            users,
            login_history_rows: login_rows,
            login_history_successful_rows: successful_rows,
            last_login_sample: sample,
        };
    }

    /// The spec the org was built from.
    pub fn spec(&self) -> &OrgSpec {
        &self.spec
    }

    /// What an import should find.
    pub fn ground_truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Number of users.
    pub fn user_count(&self) -> u64 {
        self.spec.users as u64
    }

    /// User `i`'s `LastLoginDate` (None: never logged in, or no such user).
    pub fn user_last_login(&self, i: u64) -> Option<String> {
        if i >= self.user_count() {
            return None;
        }
        self.user(i).last_login_ago.map(|ago| self.datetime(ago))
    }

    /// User `i`'s `Id`.
    pub fn user_id(&self, i: u64) -> String {
        make_id(Obj::User, i)
    }

    fn roll(&self, i: u64, salt: u64) -> u64 {
        mix(self.spec.seed ^ mix(i.wrapping_mul(0x1_0000_01B3) ^ mix(salt)))
    }

    /// User `i`'s fields. Serving a row asks for its user once per field, and the rows of
    /// `LoginHistory`, `PermissionSetLicenseAssign` and `UserPackageLicense` come in runs of
    /// one user, so the last user derived is kept per thread. The key holds everything the
    /// derivation depends on (seed, login history window, feature flags), so any org may
    /// share the cache.
    fn user(&self, i: u64) -> UserRow {
        type Cached = Option<((u64, u32, u16, u64), UserRow)>;
        thread_local! {
            static LAST: std::cell::Cell<Cached> = const { std::cell::Cell::new(None) };
        }
        let features = self
            .feature_on
            .iter()
            .enumerate()
            .fold(0u16, |mask, (k, on)| mask | (u16::from(*on) << k));
        let key = (self.spec.seed, self.spec.login_history_days, features, i);
        if let Some((cached, row)) = LAST.get()
            && cached == key
        {
            return row;
        }
        let row = self.derive_user(i);
        LAST.set(Some((key, row)));
        row
    }

    fn derive_user(&self, i: u64) -> UserRow {
        let window = i64::from(self.spec.login_history_days) * DAY;
        let profile = if i == 0 {
            0
        } else {
            let mut pick = self.roll(i, 1) % 100;
            let mut chosen = 1;
            for (k, p) in PROFILES.iter().enumerate() {
                if pick < p.3 {
                    chosen = k;
                    break;
                }
                pick -= p.3;
            }
            chosen
        };
        let license = PROFILES[profile].1;
        let active = i == 0 || self.roll(i, 2) % 100 >= 8;
        let class = self.roll(i, 3) % 100;
        let never_share = if license == LIC_COMMUNITY { 40 } else { 6 };
        let secs = |salt: u64, lo: i64, hi: i64| -> i64 {
            lo + (self.roll(i, salt) % (hi - lo).max(1) as u64) as i64
        };
        let last_login_ago = if i == 0 {
            Some(3600)
        } else if !active {
            (class >= 20).then(|| secs(4, 91 * DAY, 400 * DAY))
        } else if class < never_share {
            None
        } else if class < never_share + 12 {
            Some(secs(4, 91 * DAY, 400 * DAY))
        } else {
            Some(secs(4, 60, 89 * DAY))
        };
        let created_ago = last_login_ago.unwrap_or(0) + secs(5, DAY, 1000 * DAY);
        let frozen = i != 0 && active && self.roll(i, 6) % 100 < 3;
        let permille = |salt: u64, sf: u64, platform: u64| -> bool {
            let p = match license {
                LIC_SALESFORCE => sf,
                LIC_PLATFORM => platform,
                _ => 0,
            };
            self.roll(i, salt) % 1000 < p
        };
        let mut flags = 0;
        for (k, feature) in FEATURES.iter().enumerate() {
            if self.feature_on[k] && permille(100 + k as u64, feature.2, feature.3) {
                flags |= 1 << k;
            }
        }
        let mut psls = 0;
        for (k, psl) in PSLS.iter().enumerate() {
            if permille(200 + k as u64, psl.4, psl.5) {
                psls |= 1 << k;
            }
        }
        let mut packages = psls & 1; // SBQQ with the CPQ permission set license
        if permille(300, 80, 0) {
            packages |= 1 << 2;
        }
        let logins = match last_login_ago {
            Some(ago) if ago <= window => 1 + self.roll(i, 7) % LOGIN_SLOTS,
            _ => 0,
        };
        UserRow {
            profile,
            active,
            frozen,
            created_ago,
            last_login_ago,
            flags,
            psls,
            packages,
            first: (self.roll(i, 8) % 16) as usize,
            last: (self.roll(i, 9) % 16) as usize,
            logins,
        }
    }

    fn username(&self, i: u64, user: &UserRow) -> String {
        let last: String = LAST_NAMES[user.last]
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect();
        format!(
            "{}.{}{}@acme-sim.example",
            FIRST_NAMES[user.first].to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            i
        )
    }

    /// The dateTime `ago` seconds before `as_of`.
    fn ago(&self, ago: i64) -> Field {
        Field::DateTime(self.as_of.timestamp() - ago)
    }

    /// Field `name` (canonical) of the row at `pos` (which must exist), as JSON.
    pub(crate) fn value(&self, obj: Obj, pos: u64, name: &str) -> Value {
        self.field(obj, pos, name).into_value()
    }

    /// `as_of - ago` seconds, as Salesforce formats a dateTime.
    fn datetime(&self, ago: i64) -> String {
        // `as_of` has whole seconds, so the milliseconds are always zero. Plain integer
        // formatting: strftime's pattern parsing dominated serving big pages.
        let at = self.as_of - Duration::seconds(ago);
        let (day, time) = (at.date_naive(), at.time());
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000+0000",
            day.year(),
            day.month(),
            day.day(),
            time.hour(),
            time.minute(),
            time.second()
        )
    }

    /// The date `days` days from `as_of` (negative: past).
    fn date(&self, days: i64) -> String {
        (self.as_of + Duration::days(days))
            .format("%Y-%m-%d")
            .to_string()
    }

    /// Midnight UTC `days` days before today, as a dateTime string (`LAST_N_DAYS:n`).
    pub(crate) fn days_ago_midnight(&self, days: u32) -> String {
        let day = (self.as_of - Duration::days(i64::from(days))).date_naive();
        day.and_time(NaiveTime::MIN)
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string()
    }

    /// Positions of `obj`: rows live at some positions in `0..len` (ids encode them).
    pub(crate) fn len(&self, obj: Obj) -> u64 {
        let users = self.user_count();
        match obj {
            Obj::Organization => 1,
            Obj::UserLicense => USER_LICENSES.len() as u64,
            Obj::Profile => PROFILES.len() as u64,
            Obj::PermissionSetLicense => PSLS.len() as u64,
            Obj::PermissionSetLicenseAssign => users * PSLS.len() as u64,
            Obj::PackageLicense => PACKAGES.len() as u64,
            Obj::UserPackageLicense => users * PACKAGES.len() as u64,
            Obj::User | Obj::UserLogin => users,
            Obj::LoginHistory => users * LOGIN_SLOTS,
            Obj::ActiveFeatureLicenseMetric => (FEATURES.len() * METRIC_DAYS.len()) as u64,
            Obj::ActivePermSetLicenseMetric => (PSLS.len() * METRIC_DAYS.len()) as u64,
        }
    }

    /// Whether every position of `obj` holds a row.
    pub(crate) fn dense(obj: Obj) -> bool {
        !matches!(
            obj,
            Obj::PermissionSetLicenseAssign
                | Obj::UserPackageLicense
                | Obj::LoginHistory
                | Obj::ActiveFeatureLicenseMetric
        )
    }

    /// Whether a row lives at `pos`.
    pub(crate) fn exists(&self, obj: Obj, pos: u64) -> bool {
        if pos >= self.len(obj) {
            return false;
        }
        match obj {
            Obj::PermissionSetLicenseAssign => {
                let n = PSLS.len() as u64;
                self.user(pos / n).psls & (1 << (pos % n)) != 0
            }
            Obj::UserPackageLicense => {
                let n = PACKAGES.len() as u64;
                self.user(pos / n).packages & (1 << (pos % n)) != 0
            }
            Obj::LoginHistory => self.user(pos / LOGIN_SLOTS).logins > pos % LOGIN_SLOTS,
            Obj::ActiveFeatureLicenseMetric => self.feature_on[(pos as usize) / METRIC_DAYS.len()],
            _ => true,
        }
    }

    /// The position of the row with `id`, if `id` is one of `obj`'s.
    pub(crate) fn pos_of(&self, obj: Obj, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(obj.prefix())?.get(..12)?;
        let pos = digits.parse::<u64>().ok()?.checked_sub(1)?;
        self.exists(obj, pos).then_some(pos)
    }

    /// Field `name` (canonical) of the row at `pos` (which must exist).
    pub(crate) fn field(&self, obj: Obj, pos: u64, name: &str) -> Field {
        if name == "Id" {
            return Field::Id(obj, pos);
        }
        match obj {
            Obj::Organization => match name {
                "Name" => Field::from("Acme Simulated Inc."),
                "OrganizationType" => Field::from("Enterprise Edition"),
                "InstanceName" => Field::from("NA139"),
                "IsSandbox" => Field::from(false),
                "CreatedDate" => self.ago(2000 * DAY),
                _ => Field::Null,
            },
            Obj::UserLicense => {
                let k = pos as usize;
                let (lic_name, key, status) = USER_LICENSES[k];
                let (total, used) = self.user_licenses[k];
                match name {
                    "Name" | "MasterLabel" => Field::from(lic_name),
                    "LicenseDefinitionKey" => Field::from(key),
                    "Status" => Field::from(status),
                    "TotalLicenses" => Field::from(total),
                    "UsedLicenses" => Field::from(used),
                    "UsedLicensesLastUpdated" => self.ago(1800),
                    "MonthlyLoginsEntitlement" | "MonthlyLoginsUsed" => Field::Null,
                    "CreatedDate" => self.ago(2000 * DAY),
                    _ => Field::Null,
                }
            }
            Obj::Profile => {
                let (profile, license, user_type, _) = PROFILES[pos as usize];
                match name {
                    "Name" => Field::from(profile),
                    "UserLicenseId" => Field::Id(Obj::UserLicense, license as u64),
                    "UserType" => Field::from(user_type),
                    "CreatedDate" => self.ago(2000 * DAY),
                    _ => Field::Null,
                }
            }
            Obj::PermissionSetLicense => {
                let k = pos as usize;
                let (dev, label, status, expiry, _, _) = PSLS[k];
                let (total, used, _) = self.psls[k];
                match name {
                    "DeveloperName" | "PermissionSetLicenseKey" => Field::from(dev),
                    "MasterLabel" => Field::from(label),
                    "Status" => Field::from(status),
                    "TotalLicenses" => Field::from(total),
                    "UsedLicenses" => Field::from(used),
                    "ExpirationDate" => {
                        expiry.map_or(Field::Null, |days| Field::from(self.date(days)))
                    }
                    "IsAvailableForIntegrations" => Field::from(false),
                    _ => Field::Null,
                }
            }
            Obj::PermissionSetLicenseAssign => {
                let n = PSLS.len() as u64;
                match name {
                    "AssigneeId" => Field::Id(Obj::User, pos / n),
                    "PermissionSetLicenseId" => Field::Id(Obj::PermissionSetLicense, pos % n),
                    "IsRevoked" => Field::from(false),
                    _ => Field::Null,
                }
            }
            Obj::PackageLicense => {
                let k = pos as usize;
                let (ns, status, _, expiry) = PACKAGES[k];
                let (allowed, used) = self.packages[k];
                match name {
                    "NamespacePrefix" => Field::from(ns),
                    "AllowedLicenses" => Field::from(allowed),
                    "UsedLicenses" => Field::from(used),
                    "ExpirationDate" => expiry.map_or(Field::Null, |days| {
                        let day = (self.as_of + Duration::days(days)).date_naive();
                        Field::DateTime(day.and_time(NaiveTime::MIN).and_utc().timestamp())
                    }),
                    "Status" => Field::from(status),
                    "IsProvisioned" => Field::from(true),
                    _ => Field::Null,
                }
            }
            Obj::UserPackageLicense => {
                let n = PACKAGES.len() as u64;
                match name {
                    "PackageLicenseId" => Field::Id(Obj::PackageLicense, pos % n),
                    "UserId" => Field::Id(Obj::User, pos / n),
                    "IsRevoked" => Field::from(false),
                    _ => Field::Null,
                }
            }
            Obj::User => self.user_field(pos, name),
            Obj::UserLogin => {
                let user = self.user(pos);
                match name {
                    "UserId" => Field::Id(Obj::User, pos),
                    "IsFrozen" => Field::from(user.frozen),
                    "IsPasswordLocked" => Field::from(false),
                    "LastModifiedDate" => self.ago(user.created_ago / 2),
                    _ => Field::Null,
                }
            }
            Obj::LoginHistory => self.login_field(pos, name),
            Obj::ActiveFeatureLicenseMetric => {
                let k = (pos as usize) / METRIC_DAYS.len();
                let age = (pos as usize) % METRIC_DAYS.len();
                let (total, tally) = self.features[k];
                let shrink = |n: u64| to_i64(n * (100 - 3 * age as u64) / 100);
                match name {
                    "FeatureType" => Field::from(FEATURES[k].1),
                    "TotalLicenseCount" => Field::from(total),
                    "AssignedUserCount" => Field::from(shrink(tally.active)),
                    "ActiveUserCount" => Field::from(shrink(tally.recent_30)),
                    "MetricsDate" => Field::from(self.date(-METRIC_DAYS[age])),
                    _ => Field::Null,
                }
            }
            Obj::ActivePermSetLicenseMetric => {
                let k = (pos as usize) / METRIC_DAYS.len();
                let age = (pos as usize) % METRIC_DAYS.len();
                let (total, _, tally) = self.psls[k];
                let shrink = |n: u64| to_i64(n * (100 - 3 * age as u64) / 100);
                match name {
                    "PermissionSetLicenseId" => Field::Id(Obj::PermissionSetLicense, k as u64),
                    "DeveloperName" => Field::from(PSLS[k].0),
                    "MasterLabel" => Field::from(PSLS[k].1),
                    "TotalLicenses" => Field::from(total),
                    "AssignedUserCount" => Field::from(shrink(tally.active)),
                    "ActiveUserCount" => Field::from(shrink(tally.recent_30)),
                    "MetricsDate" => Field::from(self.date(-METRIC_DAYS[age])),
                    _ => Field::Null,
                }
            }
        }
    }

    fn user_field(&self, i: u64, name: &str) -> Field {
        let user = self.user(i);
        let first = FIRST_NAMES[user.first];
        let last = LAST_NAMES[user.last];
        if let Some(k) = FEATURES.iter().position(|feature| feature.0 == name) {
            return Field::from(user.flags & (1 << k) != 0);
        }
        match name {
            "Username" | "Email" => Field::from(self.username(i, &user)),
            "Name" => Field::from(format!("{first} {last}")),
            "FirstName" => Field::from(first),
            "LastName" => Field::from(last),
            "Alias" => Field::from(format!("{}{}", &first[..1], i % 10_000).to_ascii_lowercase()),
            "IsActive" => Field::from(user.active),
            "UserType" => Field::from(PROFILES[user.profile].2),
            "ProfileId" => Field::Id(Obj::Profile, user.profile as u64),
            "LastLoginDate" => user.last_login_ago.map_or(Field::Null, |ago| self.ago(ago)),
            "CreatedDate" => self.ago(user.created_ago),
            "Department" => Field::from(DEPARTMENTS[(i % 5) as usize]),
            _ => Field::Null,
        }
    }

    /// Whether the `LoginHistory` row at `pos` is a failed login (never a user's newest).
    fn login_failed(&self, pos: u64) -> bool {
        !pos.is_multiple_of(LOGIN_SLOTS) && self.roll(pos, 52).is_multiple_of(20)
    }

    /// Whether the org has field `name` of `obj` (the canonical name): every field but the
    /// feature flags [`OrgSpec::features`] leaves out.
    pub(crate) fn has_field(&self, obj: Obj, name: &str) -> bool {
        obj != Obj::User
            || FEATURES
                .iter()
                .position(|feature| feature.0 == name)
                .is_none_or(|k| self.feature_on[k])
    }

    /// Whether the org hides `obj` from the importing user ([`OrgSpec::hidden_objects`]).
    pub(crate) fn hides(&self, obj: Obj) -> bool {
        self.spec
            .hidden_objects
            .iter()
            .any(|name| name.eq_ignore_ascii_case(obj.name()))
    }

    /// How long before `as_of` the `LoginHistory` row at `pos` logged in, in seconds.
    fn login_ago(&self, pos: u64) -> i64 {
        let user = self.user(pos / LOGIN_SLOTS);
        let last = user.last_login_ago.unwrap_or(0);
        let window = i64::from(self.spec.login_history_days) * DAY;
        if pos.is_multiple_of(LOGIN_SLOTS) {
            last
        } else {
            last + (self.roll(pos, 50) % (window - last).max(1) as u64) as i64
        }
    }

    /// `LoginTime` of the `LoginHistory` row at `pos` as Unix milliseconds (what filtering
    /// compares, without formatting the time).
    pub(crate) fn login_time_millis(&self, pos: u64) -> i64 {
        // Plain integers: chrono's checked date arithmetic showed in the profile of serving
        // `LoginHistory` windows, which test every row's time.
        self.as_of.timestamp_millis() - self.login_ago(pos) * 1000
    }

    fn login_field(&self, pos: u64, name: &str) -> Field {
        // Each field derives only what it needs: a page asks for a row field by field.
        let kind = || match self.roll(pos, 51) % 10 {
            0..=5 => ("Application", "Browser", "N/A"),
            6 => ("SAML Sfdc Initiated SSO", "Browser", "N/A"),
            7 | 8 => ("Remote Access 2.0", "Salesforce for iOS", "N/A"),
            _ => ("Remote Access 2.0", "Data Loader", "REST API"),
        };
        match name {
            "UserId" => Field::Id(Obj::User, pos / LOGIN_SLOTS),
            "LoginTime" => self.ago(self.login_ago(pos)),
            "LoginType" => Field::from(kind().0),
            "Status" => Field::from(if self.login_failed(pos) {
                "Invalid Password"
            } else {
                "Success"
            }),
            "Application" => Field::from(kind().1),
            "SourceIp" => Field::from(format!("198.51.100.{}", self.roll(pos, 53) % 250 + 1)),
            "Browser" => Field::from(if kind().1 == "Browser" {
                "Chrome 131"
            } else {
                "Unknown"
            }),
            "Platform" => Field::from("Windows 10"),
            "ApiType" => Field::from(kind().2),
            "LoginUrl" => Field::from("login.salesforce.com"),
            _ => Field::Null,
        }
    }
}

/// `freed_by_deactivation`: whether a deactivated user's assignment stops taking a seat.
fn truth(
    id: String,
    name: &str,
    family: LicenseFamily,
    purchased: Option<i64>,
    used: i64,
    tally: &Tally,
    freed_by_deactivation: bool,
) -> LicenseTruth {
    let holders = if freed_by_deactivation {
        tally.active
    } else {
        tally.assigned
    };
    LicenseTruth {
        id,
        name: name.to_owned(),
        family,
        purchased,
        used,
        assigned: tally.assigned,
        active_assigned: tally.active,
        inactive_90_assigned: tally.inactive_90,
        holders,
        spare: purchased.map(|p| (p - to_i64(holders)).max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_org_and_consistent_truth() {
        let now = Utc::now();
        let spec = OrgSpec {
            users: 400,
            ..OrgSpec::default()
        };
        let a = SyntheticOrg::new(&spec, now);
        let b = SyntheticOrg::new(&spec, now);
        assert_eq!(a.ground_truth(), b.ground_truth());
        let c = SyntheticOrg::new(&OrgSpec { seed: 43, ..spec }, now);
        assert_ne!(a.ground_truth().users, c.ground_truth().users);
        let truth = a.ground_truth();
        for license in &truth.licenses {
            assert!(license.active_assigned <= license.assigned, "{license:?}");
            assert!(license.inactive_90_assigned <= license.active_assigned);
            assert!(license.active_assigned <= license.holders, "{license:?}");
            assert!(license.holders <= license.assigned, "{license:?}");
            if let Some(purchased) = license.purchased {
                assert!(purchased >= license.used, "{license:?}");
            }
        }
        let sfdc = truth
            .license(LicenseFamily::User, "Salesforce")
            .expect("Salesforce");
        assert_eq!(sfdc.used, to_i64(sfdc.active_assigned));
        // A deactivated user's user license is spare; their package seat is not.
        assert_eq!(sfdc.holders, sfdc.active_assigned);
        assert!(
            sfdc.assigned > sfdc.holders,
            "some Salesforce users are deactivated"
        );
        assert_eq!(sfdc.spare, sfdc.purchased.map(|p| p - to_i64(sfdc.holders)));
        let sbqq = truth.license(LicenseFamily::Package, "SBQQ").expect("SBQQ");
        assert_eq!(sbqq.used, to_i64(sbqq.assigned));
        assert_eq!(sbqq.holders, sbqq.assigned);
        let dsfs = truth.license(LicenseFamily::Package, "dsfs").expect("dsfs");
        assert_eq!((dsfs.purchased, dsfs.assigned, dsfs.spare), (None, 0, None));
        assert_eq!(a.user_last_login(400), None);
        assert_eq!(a.pos_of(Obj::User, &a.user_id(7)), Some(7));
    }
}
