//! `invhost report users`: each account with its licenses, its last login, interactive and API
//! activity, and flags.
//!
//! Flags (docs/reports.md, "users"):
//! * **deactivated**: the account is not active;
//! * **frozen**: the source says the account is frozen;
//! * **never_logged_in**: no activity at all (no last login, no usage times);
//! * **inactive**: the account is active and has no activity in the window (never logged in
//!   included), the same test as the licenses report's "inactive".

use comfy_table::Table;
use serde::Serialize;

use super::{
    Envelope, RETIRED, ReportError, ReportParams, Supersession,
    format::{Report, cell_date, new_table},
    later, read_transaction, scope,
};
use crate::store::Store;

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

/// The users report: one row per account, by connection and username, and the counts.
pub type UsersReport = Envelope<UserRow, UserTotals>;

/// What the usage records say of one account.
#[derive(Debug, Clone, Default)]
struct Used {
    logins: i64,
    last_interactive_at: Option<String>,
    last_api_at: Option<String>,
}

/// The rows of a query ordered by account id, handed out as the accounts (read in the same
/// order) ask for them: a merge, so that no more than one row is held at a time.
struct ByAccount<'s, T> {
    rows: rusqlite::Rows<'s>,
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<(String, T)>,
    next: Option<(String, T)>,
}

impl<'s, T> ByAccount<'s, T> {
    fn new(
        mut rows: rusqlite::Rows<'s>,
        read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<(String, T)>,
    ) -> rusqlite::Result<Self> {
        let next = rows.next()?.map(read).transpose()?;
        Ok(ByAccount { rows, read, next })
    }

    /// The rows of `account`; rows of accounts before it (ids with no account record) are
    /// skipped.
    fn take(&mut self, account: &str) -> rusqlite::Result<Vec<T>> {
        let mut found = Vec::new();
        while let Some((owner, _)) = &self.next {
            let order = owner.as_str().cmp(account);
            if order == std::cmp::Ordering::Greater {
                break;
            }
            if let Some((_, value)) = self.next.take()
                && order == std::cmp::Ordering::Equal
            {
                found.push(value);
            }
            self.next = self.rows.next()?.map(self.read).transpose()?;
        }
        Ok(found)
    }
}

/// Makes the users report.
///
/// Per connection, the accounts, their usage and their assignments are read in account id
/// order (each query walks its table's primary key) and merged, so memory holds the report's
/// rows, never a map of every assignment.
pub fn users(
    store: &mut Store,
    rules: &Supersession,
    params: &ReportParams,
) -> Result<UsersReport, ReportError> {
    let tx = read_transaction(store)?;
    let scope = scope(&tx, rules, params.connection.as_deref())?;
    let cutoff = params.cutoff();

    let mut accounts = tx.prepare(
        "SELECT id, username, display_name, email, account_type, active, frozen, last_login_at
         FROM accounts WHERE snapshot_id = ?1 ORDER BY id",
    )?;
    let mut usage = tx.prepare(
        "SELECT account_id, SUM(logins), MAX(last_interactive_at), MAX(last_api_at)
         FROM usage WHERE snapshot_id = ?1 GROUP BY account_id ORDER BY account_id",
    )?;
    // One entry per license, however many sources.
    let mut held = tx.prepare(
        "SELECT h.account_id, h.license_id, MIN(l.name), MIN(l.family), MIN(l.status)
         FROM assignments h
         LEFT JOIN licenses l ON l.snapshot_id = h.snapshot_id AND l.id = h.license_id
         WHERE h.snapshot_id = ?1
         GROUP BY h.account_id, h.license_id
         ORDER BY h.account_id, h.license_id",
    )?;
    let mut rows = Vec::new();
    for connection in &scope.connections {
        let snapshot = connection.snapshot_id;
        let mut usage = ByAccount::new(usage.query([snapshot])?, |r| {
            Ok((
                r.get(0)?,
                Used {
                    logins: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    last_interactive_at: r.get(2)?,
                    last_api_at: r.get(3)?,
                },
            ))
        })?;
        let mut held = ByAccount::new(held.query([snapshot])?, |r| {
            let license_id: String = r.get(1)?;
            Ok((
                r.get(0)?,
                HeldLicense {
                    name: r
                        .get::<_, Option<String>>(2)?
                        .unwrap_or_else(|| license_id.clone()),
                    license_id,
                    family: r
                        .get::<_, Option<String>>(3)?
                        .unwrap_or_else(|| "other".into()),
                    status: r
                        .get::<_, Option<String>>(4)?
                        .unwrap_or_else(|| "other".into()),
                },
            ))
        })?;
        let mut query = accounts.query([snapshot])?;
        while let Some(r) = query.next()? {
            let account_id: String = r.get(0)?;
            let used = usage.take(&account_id)?.pop().unwrap_or_default();
            let mut licenses = held.take(&account_id)?;
            if connection.retired() {
                for license in &mut licenses {
                    license.status = RETIRED.to_owned();
                }
            }
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
            let active: bool = r.get(5)?;
            let frozen: Option<bool> = r.get(6)?;
            let last_login_at: Option<String> = r.get(7)?;
            let Used {
                logins,
                last_interactive_at,
                last_api_at,
            } = used;
            let last_activity_at = later(
                later(last_login_at.clone(), last_interactive_at.clone()),
                last_api_at.clone(),
            );
            rows.push(UserRow {
                connection: connection.name.clone(),
                account_id,
                username: r.get(1)?,
                display_name: r.get(2)?,
                email: r.get(3)?,
                account_type: r.get(4)?,
                active,
                frozen,
                logins: logins.max(0) as u64,
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
    Ok(Envelope::new("users", params, scope, rows, totals))
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

    /// Each connection's accounts get their own licenses and usage (the merge starts again
    /// per snapshot), a retired connection's licenses read retired, and rows come by
    /// connection, then username regardless of case.
    #[test]
    fn accounts_of_several_connections_keep_their_own_licenses() {
        let (dir, mut store) = store();
        for (name, source_type, seats) in [("beta", "direct", 2), ("alpha", "old", 1)] {
            let mut records = vec![
                application("crm", "CRM"),
                license("seat", "crm", "user", Some(seats)),
            ];
            for who in ["b", "A", "c"] {
                records.push(account(who, true, None, Some(1)));
            }
            records.push(assign("b", "seat", "direct"));
            if name == "alpha" {
                records.push(assign("c", "seat", "direct"));
                records.push(usage("c", 3, Some(1), None));
            }
            import(&mut store, dir.path(), name, source_type, &records);
        }
        store
            .add_connection("mgr", "new", &serde_json::json!({}))
            .expect("added");
        let mut rules = Supersession::new();
        rules.declare("old", &[] as &[&str]);
        rules.declare("direct", &[] as &[&str]);
        rules.declare("new", &["old"]);
        let report = users(&mut store, &rules, &params(90)).expect("report");
        let got: Vec<(&str, &str, Vec<&str>, u64)> = report
            .rows
            .iter()
            .map(|r| {
                (
                    r.connection.as_str(),
                    r.account_id.as_str(),
                    r.licenses.iter().map(|l| l.status.as_str()).collect(),
                    r.logins,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("alpha", "A", vec![], 0),
                ("alpha", "b", vec!["retired"], 0),
                ("alpha", "c", vec!["retired"], 3),
                ("beta", "A", vec![], 0),
                ("beta", "b", vec!["active"], 0),
                ("beta", "c", vec![], 0),
            ]
        );
    }

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
                // Records of accounts the import did not send, before, between and after
                // the accounts in id order: they belong to no row.
                assign("abe", "user", "profile"),
                usage("abe", 7, Some(1), None),
                assign("aaa", "pkg", "package"),
                assign("zed", "pkg", "package"),
                usage("zed", 7, Some(1), None),
            ],
        );
        let report = users(&mut store, &Supersession::new(), &params(90)).expect("report");
        let names: Vec<&str> = report.rows.iter().map(|r| r.account_id.as_str()).collect();
        assert_eq!(names, ["amy", "bob", "cid", "dan"], "by username");
        let held: Vec<usize> = report.rows.iter().map(|r| r.licenses.len()).collect();
        assert_eq!(held, [0, 2, 1, 0]);
        let logins: Vec<u64> = report.rows.iter().map(|r| r.logins).collect();
        assert_eq!(logins, [2, 0, 0, 1]);
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
