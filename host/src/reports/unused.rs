//! `invhost report unused`: every reclaimable seat, with the one reason that applies.
//!
//! One row per (account, license) that can be reclaimed, with the most specific reason, in this
//! order of precedence (docs/reports.md, "unused"):
//!
//! 1. **deactivated**: the account is deactivated and still holds the license through an
//!    assignment that deactivation does not free (any source but `profile` and `feature_flag`:
//!    a package or permission-set seat, a direct seat; see [`super::FREED_BY_DEACTIVATION`]
//!    for what Salesforce documents). Seats held only through the profile or a feature flag
//!    were freed by the deactivation and are not listed.
//! 2. **frozen**: the account is active but frozen, and licensed.
//! 3. **never_logged_in**: the account is active and has no activity at all (no last login, no
//!    usage times).
//! 4. **no_recent_login**: the account is active, and its last activity is before the window.
//!
//! Plus one row per license with seats bought but held by no one (**unassigned**: the
//! licenses report's spare seats, purchased minus holders, when above 0, the license counted
//! in seats and not unlimited). A seat freed by a deactivation is spare; a seat a deactivated
//! account still holds is its `deactivated` row: each seat is counted once.
//!
//! Totals leave out only the seats of retired (superseded) licenses: an expired, trial or
//! disabled license's seats are still seats to cut at renewal.
//!
//! Order, biggest wins first: rows are grouped by license; groups of counted licenses come
//! before groups of retired licenses; then groups with more
//! reclaimable seats first; then connection, application, license. Within a group: the
//! unassigned row, then by reason (the order above), then the oldest activity first (never
//! logged in before any date), then username.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use comfy_table::Table;
use serde::Serialize;

use super::{
    Envelope, FREED_BY_DEACTIVATION, RETIRED, ReportError, ReportParams, ScopeConnection,
    Supersession, days_since,
    format::{Report, cell_date, new_table},
    last_seen_sql,
    licenses::{LicenseRow, license_rows},
    read_transaction, scope,
};
use crate::store::Store;

/// Why a seat can be reclaimed. The order is the precedence (and the order within a license).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Seats bought but held by no one (one row per license): the licenses report's spare
    /// seats.
    Unassigned,
    /// A deactivated account still holding a seat.
    Deactivated,
    /// A frozen account still holding a seat.
    Frozen,
    /// An active account that never logged in.
    NeverLoggedIn,
    /// An active account with no activity in the window.
    NoRecentLogin,
}

impl Reason {
    /// Every reason, in precedence order.
    pub const ALL: [Reason; 5] = [
        Reason::Unassigned,
        Reason::Deactivated,
        Reason::Frozen,
        Reason::NeverLoggedIn,
        Reason::NoRecentLogin,
    ];

    /// The identifier used in JSON and CSV.
    pub fn id(self) -> &'static str {
        match self {
            Reason::Unassigned => "unassigned",
            Reason::Deactivated => "deactivated",
            Reason::Frozen => "frozen",
            Reason::NeverLoggedIn => "never_logged_in",
            Reason::NoRecentLogin => "no_recent_login",
        }
    }

    /// How the table says it.
    pub fn text(self, days: u32) -> String {
        match self {
            Reason::Unassigned => "bought, unassigned".to_owned(),
            Reason::Deactivated => "deactivated, still assigned".to_owned(),
            Reason::Frozen => "frozen but licensed".to_owned(),
            Reason::NeverLoggedIn => "never logged in".to_owned(),
            Reason::NoRecentLogin => format!("no login in {days} days"),
        }
    }
}

/// One reclaimable seat (or, for `unassigned`, the spare seats of a license).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnusedRow {
    /// The connection.
    pub connection: String,
    /// The application's name.
    pub application: String,
    /// The license's id.
    pub license_id: String,
    /// The license's name.
    pub license: String,
    /// The license's family.
    pub family: String,
    /// The license's status as reports use it (`retired` while superseded).
    pub license_status: String,
    /// Why the seats can be reclaimed.
    pub reason: Reason,
    /// Seats: 1 for an account's seat, purchased minus holders for `unassigned`.
    pub seats: u64,
    /// The account's id (none for `unassigned`).
    pub account_id: Option<String>,
    /// The account's username.
    pub username: Option<String>,
    /// The account's display name.
    pub display_name: Option<String>,
    /// The account's last activity (latest of last login and usage times), if any.
    pub last_activity_at: Option<String>,
    /// Whole days from the last activity to `as_of`.
    pub days_inactive: Option<i64>,
    /// Reclaimable seats of the whole license (its group's size, the sort key).
    pub license_reclaimable: u64,
    /// Whether the seats count in the totals (the license is not retired).
    pub counted: bool,
}

/// Seats and accounts of one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReasonTotal {
    /// Reclaimable seats.
    pub seats: u64,
    /// Distinct accounts (0 for `unassigned`).
    pub accounts: u64,
}

/// Totals of the counted rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnusedTotals {
    /// Reclaimable seats.
    pub seats: u64,
    /// Distinct accounts with at least one reclaimable seat.
    pub accounts: u64,
    /// Per reason (every reason present, zeros included).
    pub by_reason: BTreeMap<&'static str, ReasonTotal>,
    /// Per connection: reclaimable seats.
    pub by_connection: BTreeMap<String, u64>,
    /// Seats listed but left out (of retired licenses).
    pub excluded_seats: u64,
}

/// The unused report: the reclaimable seats, biggest wins first, and their totals.
pub type UnusedReport = Envelope<UnusedRow, UnusedTotals>;

/// Classifies one account's hold on one license; `None` when nothing is to be reclaimed.
/// `freed_by_deactivation`: every assignment's source is one that deactivation frees.
pub fn classify(
    active: bool,
    frozen: bool,
    last_activity: Option<&str>,
    cutoff: &str,
    freed_by_deactivation: bool,
) -> Option<Reason> {
    if !active {
        return (!freed_by_deactivation).then_some(Reason::Deactivated);
    }
    if frozen {
        return Some(Reason::Frozen);
    }
    match last_activity {
        None => Some(Reason::NeverLoggedIn),
        Some(at) if at < cutoff => Some(Reason::NoRecentLogin),
        Some(_) => None,
    }
}

/// Makes the unused report.
pub fn unused(
    store: &mut Store,
    rules: &Supersession,
    params: &ReportParams,
) -> Result<UnusedReport, ReportError> {
    let tx = read_transaction(store)?;
    let scope = scope(&tx, rules, params.connection.as_deref())?;
    let licenses = license_rows(&tx, &scope, params)?;
    let cutoff = params.cutoff();
    let by_key: HashMap<(&str, &str), &LicenseRow> = licenses
        .iter()
        .map(|l| ((l.connection.as_str(), l.license_id.as_str()), l))
        .collect();
    let mut rows = Vec::new();
    for license in &licenses {
        if let Some(seats) = license.unassigned.filter(|n| *n > 0)
            && license.unit == "seat"
        {
            rows.push(seat_row(license, Reason::Unassigned, seats));
        }
    }
    let list = scope.snapshot_list();
    let sql = format!(
        "WITH last_seen AS ({last_seen})
         SELECT h.snapshot_id, h.license_id, h.account_id, a.username, a.display_name, a.active,
                a.frozen, ls.at,
                MAX(CASE WHEN h.source IN ({freed}) THEN 0 ELSE 1 END)
         FROM assignments h
         JOIN accounts a ON a.snapshot_id = h.snapshot_id AND a.id = h.account_id
         LEFT JOIN last_seen ls ON ls.snapshot_id = h.snapshot_id AND ls.account_id = h.account_id
         WHERE h.snapshot_id IN ({list})
           AND (a.active = 0 OR a.frozen = 1 OR ls.at IS NULL OR ls.at < ?1)
         GROUP BY h.snapshot_id, h.license_id, h.account_id, a.username, a.display_name,
                  a.active, a.frozen, ls.at",
        last_seen = last_seen_sql(&list),
        freed = FREED_BY_DEACTIVATION,
    );
    let mut statement = tx.prepare(&sql)?;
    let mut query = statement.query([&cutoff])?;
    while let Some(r) = query.next()? {
        let Some(connection) = scope.by_snapshot(r.get(0)?) else {
            continue;
        };
        let license_id: String = r.get(1)?;
        let Some(license) = by_key.get(&(connection.name.as_str(), license_id.as_str())) else {
            continue;
        };
        let last: Option<String> = r.get(7)?;
        let held_beyond: i64 = r.get(8)?;
        let Some(reason) = classify(
            r.get(5)?,
            r.get::<_, Option<bool>>(6)?.unwrap_or(false),
            last.as_deref(),
            &cutoff,
            held_beyond == 0,
        ) else {
            continue;
        };
        let mut row = seat_row(license, reason, 1);
        row.account_id = Some(r.get(2)?);
        row.username = Some(r.get(3)?);
        row.display_name = r.get(4)?;
        row.days_inactive = last.as_deref().and_then(|at| days_since(at, &params.as_of));
        row.last_activity_at = last;
        rows.push(row);
    }
    sort(&mut rows, &scope.connections);
    let totals = totals(&rows, &scope.connections);
    Ok(Envelope::new("unused", params, scope, rows, totals))
}

fn seat_row(license: &LicenseRow, reason: Reason, seats: u64) -> UnusedRow {
    UnusedRow {
        connection: license.connection.clone(),
        application: license.application.clone(),
        license_id: license.license_id.clone(),
        license: license.license.clone(),
        family: license.family.clone(),
        license_status: license.status.clone(),
        reason,
        seats,
        account_id: None,
        username: None,
        display_name: None,
        last_activity_at: None,
        days_inactive: None,
        license_reclaimable: 0,
        counted: license.status != RETIRED,
    }
}

/// Groups by license, biggest groups first (see the module's documentation).
fn sort(rows: &mut [UnusedRow], connections: &[ScopeConnection]) {
    let mut groups: HashMap<(String, String), u64> = HashMap::new();
    for row in rows.iter() {
        *groups
            .entry((row.connection.clone(), row.license_id.clone()))
            .or_default() += row.seats;
    }
    for row in rows.iter_mut() {
        row.license_reclaimable = groups
            .get(&(row.connection.clone(), row.license_id.clone()))
            .copied()
            .unwrap_or(0);
    }
    let position = |name: &str| connections.iter().position(|c| c.name == name);
    rows.sort_by_cached_key(|r| {
        (
            !r.counted,
            std::cmp::Reverse(r.license_reclaimable),
            position(&r.connection),
            r.application.to_lowercase(),
            r.license.to_lowercase(),
            r.license_id.clone(),
            r.reason,
            // Never (None) sorts before any time; older times first.
            r.last_activity_at.clone(),
            r.username.clone(),
        )
    });
}

fn totals(rows: &[UnusedRow], connections: &[ScopeConnection]) -> UnusedTotals {
    let mut totals = UnusedTotals::default();
    for reason in Reason::ALL {
        totals.by_reason.insert(reason.id(), ReasonTotal::default());
    }
    for connection in connections {
        totals.by_connection.insert(connection.name.clone(), 0);
    }
    let mut accounts: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut by_reason: BTreeMap<Reason, BTreeSet<(&str, &str)>> = BTreeMap::new();
    for row in rows {
        if !row.counted {
            totals.excluded_seats += row.seats;
            continue;
        }
        totals.seats += row.seats;
        *totals
            .by_connection
            .entry(row.connection.clone())
            .or_default() += row.seats;
        if let Some(total) = totals.by_reason.get_mut(row.reason.id()) {
            total.seats += row.seats;
        }
        if let Some(account) = &row.account_id {
            accounts.insert((&row.connection, account));
            by_reason
                .entry(row.reason)
                .or_default()
                .insert((&row.connection, account));
        }
    }
    totals.accounts = accounts.len() as u64;
    for (reason, set) in by_reason {
        if let Some(total) = totals.by_reason.get_mut(reason.id()) {
            total.accounts = set.len() as u64;
        }
    }
    totals
}

const CSV_HEADER: [&str; 15] = [
    "connection",
    "application",
    "license_id",
    "license",
    "family",
    "license_status",
    "reason",
    "seats",
    "account_id",
    "username",
    "display_name",
    "last_activity_at",
    "days_inactive",
    "license_reclaimable",
    "counted",
];

impl Report for UnusedReport {
    fn csv_header(&self) -> Vec<&'static str> {
        CSV_HEADER.to_vec()
    }

    fn csv_records(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                vec![
                    r.connection.clone(),
                    r.application.clone(),
                    r.license_id.clone(),
                    r.license.clone(),
                    r.family.clone(),
                    r.license_status.clone(),
                    r.reason.id().to_owned(),
                    r.seats.to_string(),
                    r.account_id.clone().unwrap_or_default(),
                    r.username.clone().unwrap_or_default(),
                    r.display_name.clone().unwrap_or_default(),
                    r.last_activity_at.clone().unwrap_or_default(),
                    r.days_inactive.map_or_else(String::new, |d| d.to_string()),
                    r.license_reclaimable.to_string(),
                    r.counted.to_string(),
                ]
            })
            .collect()
    }

    fn table(&self) -> Table {
        let mut table = new_table(
            &[
                "Connection",
                "Application",
                "License",
                "Status",
                "Reason",
                "Seats",
                "Account",
                "Last activity",
            ],
            &[5],
            &[7],
        );
        for r in &self.rows {
            table.add_row(vec![
                r.connection.clone(),
                r.application.clone(),
                r.license.clone(),
                r.license_status.clone(),
                r.reason.text(self.parameters.days),
                r.seats.to_string(),
                r.username.clone().unwrap_or_else(|| "-".to_owned()),
                cell_date(r.last_activity_at.as_deref()),
            ]);
        }
        table
    }

    fn notes(&self) -> Vec<String> {
        let t = &self.totals;
        let parts: Vec<String> = Reason::ALL
            .iter()
            .map(|reason| {
                let total = t.by_reason.get(reason.id()).copied().unwrap_or_default();
                format!("{} {}", total.seats, reason.text(self.parameters.days))
            })
            .collect();
        let mut notes = vec![format!(
            "Reclaimable: {} seats of {} accounts ({}).",
            t.seats,
            t.accounts,
            parts.join(", ")
        )];
        if t.excluded_seats > 0 {
            notes.push(format!(
                "Left out of the totals: {} seats of retired licenses.",
                t.excluded_seats
            ));
        }
        notes
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
    fn classification_follows_the_precedence() {
        let cutoff = "2025-12-01T00:00:00Z";
        let old = Some("2025-01-01T00:00:00Z");
        let recent = Some("2026-02-01T00:00:00Z");
        // (active, frozen, last activity, freed by deactivation, expected)
        let cases = [
            (false, true, None, false, Some(Reason::Deactivated)),
            (false, false, recent, false, Some(Reason::Deactivated)),
            (false, false, None, true, None),
            (true, true, None, false, Some(Reason::Frozen)),
            (true, true, recent, true, Some(Reason::Frozen)),
            (true, false, None, true, Some(Reason::NeverLoggedIn)),
            (true, false, old, false, Some(Reason::NoRecentLogin)),
            (true, false, Some(cutoff), false, None),
            (true, false, recent, false, None),
        ];
        for (active, frozen, last, freed, expected) in cases {
            assert_eq!(
                classify(active, frozen, last, cutoff, freed),
                expected,
                "{active} {frozen} {last:?} {freed}"
            );
        }
    }

    fn org() -> Vec<Value> {
        let mut records = vec![
            application("crm", "CRM"),
            application("pkg", "Package"),
            license("user", "crm", "user", Some(6)),
            license("psl", "crm", "permission_set", Some(2)),
            license("pkg", "pkg", "package", Some(20)),
            account("ok", true, Some(false), Some(3)),
            account("frozen", true, Some(true), Some(3)),
            account("never", true, None, None),
            account("stale", true, None, Some(200)),
            account("gone", false, None, None),
            account("gone_profile_only", false, None, Some(500)),
        ];
        for who in [
            "ok",
            "frozen",
            "never",
            "stale",
            "gone",
            "gone_profile_only",
        ] {
            records.push(assign(who, "user", "profile"));
        }
        records.push(assign("gone", "psl", "permission_set_license"));
        records.push(assign("gone_profile_only", "psl", "feature_flag"));
        records.push(assign("never", "pkg", "package"));
        records.push(assign("frozen", "pkg", "package"));
        records.push(assign("ok", "pkg", "package"));
        records
    }

    #[test]
    fn rows_reasons_sorting_and_totals() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &org());
        let report = unused(&mut store, &Supersession::new(), &params(90)).expect("report");
        let got: Vec<(&str, &str, u64, Option<&str>)> = report
            .rows
            .iter()
            .map(|r| {
                (
                    r.license_id.as_str(),
                    r.reason.id(),
                    r.seats,
                    r.account_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // Package: 20 - 3 assigned = 17 never assigned, + frozen + never = 19.
                ("pkg", "unassigned", 17, None),
                ("pkg", "frozen", 1, Some("frozen")),
                ("pkg", "never_logged_in", 1, Some("never")),
                // User license: 6 bought, 6 assigned, but the profile seats of the two
                // deactivated accounts were freed: 4 holders, 2 spare.
                ("user", "unassigned", 2, None),
                ("user", "frozen", 1, Some("frozen")),
                ("user", "never_logged_in", 1, Some("never")),
                ("user", "no_recent_login", 1, Some("stale")),
                // Permission set: 2 bought, 2 assigned; gone_profile_only's feature-flag seat
                // was freed (1 spare), gone's permission-set license seat was not.
                ("psl", "unassigned", 1, None),
                ("psl", "deactivated", 1, Some("gone")),
            ]
        );
        assert_eq!(report.rows[0].license_reclaimable, 19);
        let stale = &report.rows[6];
        assert_eq!(stale.days_inactive, Some(200));
        assert_eq!(
            stale.last_activity_at.as_deref(),
            Some(days_ago(200).as_str())
        );
        let t = &report.totals;
        assert_eq!((t.seats, t.accounts, t.excluded_seats), (26, 4, 0));
        let reason = |id: &str| t.by_reason[id];
        assert_eq!(
            reason("unassigned"),
            ReasonTotal {
                seats: 20,
                accounts: 0
            }
        );
        assert_eq!(
            reason("frozen"),
            ReasonTotal {
                seats: 2,
                accounts: 1
            }
        );
        assert_eq!(
            reason("never_logged_in"),
            ReasonTotal {
                seats: 2,
                accounts: 1
            }
        );
        assert_eq!(
            reason("no_recent_login"),
            ReasonTotal {
                seats: 1,
                accounts: 1
            }
        );
        assert_eq!(
            reason("deactivated"),
            ReasonTotal {
                seats: 1,
                accounts: 1
            }
        );
        assert_eq!(t.by_connection["acme"], 26);
    }

    #[test]
    fn seats_of_an_expired_license_still_count() {
        let (dir, mut store) = store();
        let mut expired = license("old", "crm", "package", Some(1));
        expired["status"] = "expired".into();
        import(
            &mut store,
            dir.path(),
            "acme",
            "direct",
            &[
                application("crm", "CRM"),
                expired,
                account("gone", false, None, None),
                assign("gone", "old", "package"),
            ],
        );
        let report = unused(&mut store, &Supersession::new(), &params(90)).expect("report");
        assert_eq!(report.rows.len(), 1);
        assert_eq!(
            (
                report.rows[0].reason,
                report.rows[0].license_status.as_str(),
                report.rows[0].counted
            ),
            (Reason::Deactivated, "expired", true)
        );
        assert_eq!((report.totals.seats, report.totals.excluded_seats), (1, 0));
        assert_eq!(report.totals.by_reason["deactivated"].accounts, 1);
    }

    #[test]
    fn retired_licenses_are_listed_last_and_left_out_of_totals() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &org());
        import(
            &mut store,
            dir.path(),
            "small",
            "other",
            &[
                application("x", "X"),
                license("x", "x", "user", Some(3)),
                account("a", true, None, None),
                assign("a", "x", "direct"),
            ],
        );
        let mut rules = Supersession::new();
        rules.declare("direct", &[] as &[&str]);
        rules.declare("other", &[] as &[&str]);
        rules.declare("mgr", &["direct"]);
        store
            .add_connection("mgmt", "mgr", &serde_json::json!({}))
            .expect("added");
        let report = unused(&mut store, &rules, &params(90)).expect("report");
        // `small` (3 seats: 2 unassigned + 1 never) comes first though `acme` has bigger groups.
        assert_eq!(report.rows[0].connection, "small");
        assert_eq!(report.rows[1].connection, "small");
        assert!(
            report.rows[2..]
                .iter()
                .all(|r| r.connection == "acme" && r.license_status == "retired" && !r.counted)
        );
        assert_eq!((report.totals.seats, report.totals.excluded_seats), (3, 26));
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("`mgmt` has no imported snapshot"));
    }

    #[test]
    fn formats_agree() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &org());
        let report = unused(&mut store, &Supersession::new(), &params(90)).expect("report");
        let render = |format| {
            let mut out = Vec::new();
            write_report(&report, format, Some(200), &mut out).expect("written");
            String::from_utf8(out).expect("utf-8")
        };
        let json: Value = serde_json::from_str(&render(Format::Json)).expect("json");
        assert_eq!(json["totals"]["by_reason"]["frozen"]["seats"], 2);
        assert_eq!(json["rows"][0]["reason"], "unassigned");
        assert_eq!(json["rows"][0]["account_id"], Value::Null);
        let csv_text = render(Format::Csv);
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(reader.headers().expect("header").len(), CSV_HEADER.len());
        let records: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(records.len(), json["rows"].as_array().expect("rows").len());
        for (record, row) in records.iter().zip(json["rows"].as_array().expect("rows")) {
            assert_eq!(&record[6], row["reason"].as_str().expect("reason"));
            assert_eq!(record[7], row["seats"].to_string());
        }
        let table = render(Format::Table);
        assert!(table.contains("bought, unassigned"), "{table}");
        assert!(
            table.contains("Reclaimable: 26 seats of 4 accounts (20 bought, unassigned, 1 deactivated, still assigned, 2 frozen but licensed, 2 never logged in, 1 no login in 90 days)."),
            "{table}"
        );
    }
}
