//! `invhost report users`: each account with its licenses, its last login, interactive and API
//! activity, and flags.
//!
//! Flags (docs/reports.md, "users"):
//! * **deactivated**: the account is not active;
//! * **frozen**: the source says the account is frozen;
//! * **never_logged_in**: no activity at all (no last login, no usage times);
//! * **inactive**: the account is active and has no activity in the window (never logged in
//!   included), the same test as the licenses report's "inactive".

use std::collections::HashMap;

use comfy_table::Table;
use serde::Serialize;

use super::{
    RETIRED, ReportError, ReportParams, ScopeConnection, ShownParams, Supersession,
    format::{Report, cell_date, new_table},
    later, read_transaction, scope,
};
use crate::store::{Store, snapshots::time_text};

/// A license an account holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldLicense {
    /// The license's id.
    pub license_id: String,
    /// The license's name (its id when the import sent no license record).
    pub name: String,
    /// The family.
    pub family: String,
    /// The status as reports use it (`retired` while superseded).
    pub status: String,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRow {
    /// The connection.
    pub connection: String,
    /// The account's id.
    pub account_id: String,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// The source's account type.
    pub account_type: Option<String>,
    /// Whether the account can sign in.
    pub active: bool,
    /// Whether it is frozen; `None` when the source does not say.
    pub frozen: Option<bool>,
    /// The last login the source knows of.
    pub last_login_at: Option<String>,
    /// The last interactive use (usage).
    pub last_interactive_at: Option<String>,
    /// The last API use (usage).
    pub last_api_at: Option<String>,
    /// The latest of the three.
    pub last_activity_at: Option<String>,
    /// Sign-ins in the usage window (summed over the account's usage records).
    pub logins: u64,
    /// The licenses held, by family and name.
    pub licenses: Vec<HeldLicense>,
    /// Flag: deactivated.
    pub deactivated: bool,
    /// Flag: frozen.
    pub is_frozen: bool,
    /// Flag: never logged in.
    pub never_logged_in: bool,
    /// Flag: active without activity in the window.
    pub inactive: bool,
}

/// Counts over the accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserTotals {
    /// Accounts.
    pub accounts: u64,
    /// Active accounts.
    pub active: u64,
    /// Accounts holding at least one license.
    pub licensed: u64,
    /// Flagged deactivated.
    pub deactivated: u64,
    /// Flagged frozen.
    pub frozen: u64,
    /// Flagged never logged in (active or not).
    pub never_logged_in: u64,
    /// Flagged inactive.
    pub inactive: u64,
}

/// The users report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsersReport {
    /// `users`.
    pub report: &'static str,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// What was asked.
    pub parameters: ShownParams,
    /// The connections read.
    pub connections: Vec<ScopeConnection>,
    /// One per account, by connection and username.
    pub rows: Vec<UserRow>,
    /// Counts.
    pub totals: UserTotals,
    /// Things the operator should know.
    pub warnings: Vec<String>,
}

/// Makes the users report.
pub fn users(
    store: &mut Store,
    rules: &Supersession,
    params: &ReportParams,
) -> Result<UsersReport, ReportError> {
    let tx = read_transaction(store)?;
    let scope = scope(&tx, rules, params.connection.as_deref())?;
    let list = scope.snapshot_list();
    let cutoff = params.cutoff();

    // Licenses held, per (snapshot, account).
    let mut held: HashMap<(i64, String), Vec<HeldLicense>> = HashMap::new();
    {
        let mut statement = tx.prepare(&format!(
            "SELECT DISTINCT h.snapshot_id, h.account_id, h.license_id, l.name, l.family, l.status
             FROM assignments h
             LEFT JOIN licenses l ON l.snapshot_id = h.snapshot_id AND l.id = h.license_id
             WHERE h.snapshot_id IN ({list})"
        ))?;
        let mut query = statement.query([])?;
        while let Some(r) = query.next()? {
            let snapshot: i64 = r.get(0)?;
            let retired = scope
                .by_snapshot(snapshot)
                .is_some_and(ScopeConnection::retired);
            let license_id: String = r.get(2)?;
            let status: Option<String> = r.get(5)?;
            held.entry((snapshot, r.get(1)?))
                .or_default()
                .push(HeldLicense {
                    name: r
                        .get::<_, Option<String>>(3)?
                        .unwrap_or_else(|| license_id.clone()),
                    license_id,
                    family: r
                        .get::<_, Option<String>>(4)?
                        .unwrap_or_else(|| "other".into()),
                    status: if retired {
                        RETIRED.to_owned()
                    } else {
                        status.unwrap_or_else(|| "other".into())
                    },
                });
        }
    }

    let mut statement = tx.prepare(&format!(
        "SELECT a.snapshot_id, a.id, a.username, a.display_name, a.email, a.account_type,
                a.active, a.frozen, a.last_login_at, u.logins, u.ui, u.api
         FROM accounts a
         LEFT JOIN (SELECT snapshot_id, account_id, SUM(logins) AS logins,
                           MAX(last_interactive_at) AS ui, MAX(last_api_at) AS api
                    FROM usage WHERE snapshot_id IN ({list})
                    GROUP BY snapshot_id, account_id) u
           ON u.snapshot_id = a.snapshot_id AND u.account_id = a.id
         WHERE a.snapshot_id IN ({list})"
    ))?;
    let mut rows = Vec::new();
    let mut query = statement.query([])?;
    while let Some(r) = query.next()? {
        let snapshot: i64 = r.get(0)?;
        let Some(connection) = scope.by_snapshot(snapshot) else {
            continue;
        };
        let account_id: String = r.get(1)?;
        let active: bool = r.get(6)?;
        let frozen: Option<bool> = r.get(7)?;
        let last_login_at: Option<String> = r.get(8)?;
        let last_interactive_at: Option<String> = r.get(10)?;
        let last_api_at: Option<String> = r.get(11)?;
        let last_activity_at = later(
            later(last_login_at.clone(), last_interactive_at.clone()),
            last_api_at.clone(),
        );
        let mut licenses = held
            .remove(&(snapshot, account_id.clone()))
            .unwrap_or_default();
        licenses.sort_by(|a, b| {
            (
                super::family_rank(&a.family),
                a.name.to_lowercase(),
                &a.license_id,
            )
                .cmp(&(
                    super::family_rank(&b.family),
                    b.name.to_lowercase(),
                    &b.license_id,
                ))
        });
        rows.push(UserRow {
            connection: connection.name.clone(),
            account_id,
            username: r.get(2)?,
            display_name: r.get(3)?,
            email: r.get(4)?,
            account_type: r.get(5)?,
            active,
            frozen,
            logins: r.get::<_, Option<i64>>(9)?.unwrap_or(0).max(0) as u64,
            licenses,
            deactivated: !active,
            is_frozen: frozen == Some(true),
            never_logged_in: last_activity_at.is_none(),
            inactive: active
                && last_activity_at
                    .as_deref()
                    .is_none_or(|at| at < cutoff.as_str()),
            last_login_at,
            last_interactive_at,
            last_api_at,
            last_activity_at,
        });
    }
    let position = |name: &str| scope.connections.iter().position(|c| c.name == name);
    rows.sort_by_cached_key(|r| {
        (
            position(&r.connection),
            r.username.to_lowercase(),
            r.account_id.clone(),
        )
    });
    let mut totals = UserTotals::default();
    for row in &rows {
        totals.accounts += 1;
        totals.active += u64::from(row.active);
        totals.licensed += u64::from(!row.licenses.is_empty());
        totals.deactivated += u64::from(row.deactivated);
        totals.frozen += u64::from(row.is_frozen);
        totals.never_logged_in += u64::from(row.never_logged_in);
        totals.inactive += u64::from(row.inactive);
    }
    Ok(UsersReport {
        report: "users",
        generated_at: time_text(&chrono::Utc::now()),
        parameters: params.into(),
        connections: scope.connections,
        rows,
        totals,
        warnings: scope.warnings,
    })
}

/// The flags that are set, as the table and CSV show them (`inactive; frozen`).
fn flags_text(row: &UserRow) -> String {
    let mut flags = Vec::new();
    for (set, name) in [
        (row.deactivated, "deactivated"),
        (row.is_frozen, "frozen"),
        (row.never_logged_in, "never logged in"),
        (row.inactive, "inactive"),
    ] {
        if set {
            flags.push(name);
        }
    }
    flags.join(", ")
}

/// A license as the table and CSV show it (`Name`, `Name (retired)`).
fn license_text(license: &HeldLicense) -> String {
    if license.status == "active" {
        license.name.clone()
    } else {
        format!("{} ({})", license.name, license.status)
    }
}

const CSV_HEADER: [&str; 18] = [
    "connection",
    "account_id",
    "username",
    "display_name",
    "email",
    "account_type",
    "active",
    "frozen",
    "last_login_at",
    "last_interactive_at",
    "last_api_at",
    "last_activity_at",
    "logins",
    "licenses",
    "deactivated",
    "is_frozen",
    "never_logged_in",
    "inactive",
];

impl Report for UsersReport {
    fn csv_header(&self) -> Vec<&'static str> {
        CSV_HEADER.to_vec()
    }

    fn csv_records(&self) -> Vec<Vec<String>> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        self.rows
            .iter()
            .map(|r| {
                vec![
                    r.connection.clone(),
                    r.account_id.clone(),
                    r.username.clone(),
                    opt(&r.display_name),
                    opt(&r.email),
                    opt(&r.account_type),
                    r.active.to_string(),
                    r.frozen.map_or_else(String::new, |f| f.to_string()),
                    opt(&r.last_login_at),
                    opt(&r.last_interactive_at),
                    opt(&r.last_api_at),
                    opt(&r.last_activity_at),
                    r.logins.to_string(),
                    r.licenses
                        .iter()
                        .map(license_text)
                        .collect::<Vec<_>>()
                        .join("; "),
                    r.deactivated.to_string(),
                    r.is_frozen.to_string(),
                    r.never_logged_in.to_string(),
                    r.inactive.to_string(),
                ]
            })
            .collect()
    }

    fn table(&self) -> Table {
        let mut table = new_table(
            &[
                "Connection",
                "Username",
                "Name",
                "Licenses",
                "Last login",
                "Last interactive",
                "Last API",
                "Logins",
                "Flags",
            ],
            &[7],
            &[4, 5, 6],
        );
        for r in &self.rows {
            table.add_row(vec![
                r.connection.clone(),
                r.username.clone(),
                r.display_name.clone().unwrap_or_else(|| "-".to_owned()),
                r.licenses
                    .iter()
                    .map(license_text)
                    .collect::<Vec<_>>()
                    .join(", "),
                cell_date(r.last_login_at.as_deref()),
                cell_date(r.last_interactive_at.as_deref()),
                cell_date(r.last_api_at.as_deref()),
                r.logins.to_string(),
                flags_text(r),
            ]);
        }
        table
    }

    fn notes(&self) -> Vec<String> {
        let t = &self.totals;
        vec![format!(
            "{} accounts: {} active, {} licensed, {} deactivated, {} frozen, {} never logged in, {} inactive (no activity since {}).",
            t.accounts,
            t.active,
            t.licensed,
            t.deactivated,
            t.frozen,
            t.never_logged_in,
            t.inactive,
            cell_date(Some(&self.parameters.since)),
        )]
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{super::testing::*, *};
    use crate::reports::format::{Format, write_report};

    #[test]
    fn accounts_with_licenses_activity_and_flags() {
        let (dir, mut store) = store();
        import(
            &mut store,
            dir.path(),
            "acme",
            "direct",
            &[
                application("crm", "CRM"),
                license("user", "crm", "user", Some(5)),
                license("pkg", "crm", "package", Some(5)),
                account("bob", true, Some(true), Some(10)),
                account("amy", true, None, None),
                account("cid", false, Some(false), Some(300)),
                account("dan", true, None, Some(100)),
                usage("amy", 2, None, Some(3)),
                usage("dan", 1, Some(95), None),
                assign("bob", "user", "profile"),
                assign("bob", "pkg", "package"),
                assign("bob", "pkg", "direct"),
                assign("cid", "ghost", "direct"),
            ],
        );
        let report = users(&mut store, &Supersession::new(), &params(90)).expect("report");
        let names: Vec<&str> = report.rows.iter().map(|r| r.account_id.as_str()).collect();
        assert_eq!(names, ["amy", "bob", "cid", "dan"], "by username");
        let amy = &report.rows[0];
        assert_eq!(amy.last_api_at.as_deref(), Some(days_ago(3).as_str()));
        assert_eq!(amy.last_activity_at, amy.last_api_at);
        assert_eq!(amy.logins, 2);
        assert!(!amy.never_logged_in && !amy.inactive && amy.licenses.is_empty());
        let bob = &report.rows[1];
        let held: Vec<&str> = bob.licenses.iter().map(|l| l.license_id.as_str()).collect();
        assert_eq!(
            held,
            ["user", "pkg"],
            "one entry per license, user family first"
        );
        assert!(bob.is_frozen && !bob.inactive);
        let cid = &report.rows[2];
        assert!(cid.deactivated && !cid.inactive && !cid.is_frozen);
        assert_eq!(
            cid.licenses[0].name, "ghost",
            "an unknown license shows its id"
        );
        let dan = &report.rows[3];
        assert_eq!(dan.last_activity_at.as_deref(), Some(days_ago(95).as_str()));
        assert!(dan.inactive && !dan.never_logged_in);
        assert_eq!(
            report.totals,
            UserTotals {
                accounts: 4,
                active: 3,
                licensed: 2,
                deactivated: 1,
                frozen: 1,
                never_logged_in: 0,
                inactive: 1,
            }
        );
        let render = |format| {
            let mut out = Vec::new();
            write_report(&report, format, Some(220), &mut out).expect("written");
            String::from_utf8(out).expect("utf-8")
        };
        let json: Value = serde_json::from_str(&render(Format::Json)).expect("json");
        assert_eq!(json["rows"][1]["licenses"][1]["family"], "package");
        assert_eq!(json["totals"]["inactive"], 1);
        let csv_text = render(Format::Csv);
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let records: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(&records[1][13], "user license; pkg license");
        assert_eq!(&records[3][17], "true");
        let table = render(Format::Table);
        let line = table.lines().find(|l| l.contains("dan@")).expect("dan");
        assert!(line.contains("inactive"), "{line}");
    }
}
