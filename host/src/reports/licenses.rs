//! `invhost report licenses`: consumption per connection and license, grouped by family, with
//! reconciliation totals per connection and across connections.
//!
//! Definitions (docs/reports.md, "licenses"):
//! * **assigned**: distinct accounts with an assignment record of the license (any source);
//! * **active**: assigned accounts that are active (not deactivated) and whose last activity
//!   (the latest of last login, usage's last interactive and last API time) is within the
//!   window (`as_of - N days` or later);
//! * **inactive**: assigned accounts that are active but have no activity in the window (never
//!   logged in included);
//! * **deactivated**: assigned accounts that are deactivated;
//! * **deactivated_freed**: of those, the accounts whose seat the deactivation freed: every
//!   assignment of theirs to the license comes from a source deactivation frees
//!   ([`super::FREED_BY_DEACTIVATION`]: the profile, a feature flag);
//! * **holders**: assigned accounts that take a seat: `assigned - deactivated_freed`;
//! * **unassigned**: purchased minus holders, never below 0; none when purchased is unknown
//!   or unlimited;
//! * **utilisation %**: active ÷ purchased × 100 when purchased is known, finite and above 0,
//!   otherwise active ÷ holders × 100 when anyone holds a seat, otherwise none; one decimal;
//! * **counted** (in totals): effective status `active` and unit `seat`. Retired, disabled,
//!   expired, trial, free and metered licenses are listed but left out of the totals.

use comfy_table::Table;
use rusqlite::Transaction;
use serde::Serialize;

use super::{
    Envelope, FREED_BY_DEACTIVATION, RETIRED, ReportError, ReportParams, Scope,
    format::{Report, cell_num, cell_pct, csv_num, csv_pct, new_table, percent},
    last_seen_sql, read_transaction, scope,
};
use crate::store::Store;

use super::Supersession;

/// One license of one connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicenseRow {
    /// The connection.
    pub connection: String,
    /// The connection's source type.
    pub source_type: String,
    /// The family (`user`, `permission_set`, `package`, `feature`, `other`).
    pub family: String,
    /// The application's id.
    pub application_id: String,
    /// The application's name (its id when the import sent no application record).
    pub application: String,
    /// The license's id.
    pub license_id: String,
    /// The license's name.
    pub license: String,
    /// What is counted (`seat`, or a metered unit).
    pub unit: String,
    /// The status reports use: `retired` while superseded, otherwise the imported status.
    pub status: String,
    /// The status as imported.
    pub imported_status: String,
    /// The enabled connections that supersede this one (empty unless retired).
    pub retired_by: Vec<String>,
    /// Units bought; `None` when unknown or unlimited.
    pub purchased: Option<u64>,
    /// Site-wide or unlimited.
    pub unlimited: bool,
    /// Units in use as the source counts them.
    pub consumed: Option<u64>,
    /// Distinct accounts with an assignment.
    pub assigned: u64,
    /// Assigned, active, with activity in the window.
    pub active: u64,
    /// Assigned, active, without activity in the window.
    pub inactive: u64,
    /// Assigned, deactivated.
    pub deactivated: u64,
    /// Of `deactivated`, those whose seat the deactivation freed (held only through the
    /// profile or a feature flag).
    pub deactivated_freed: u64,
    /// Assigned accounts that take a seat: `assigned - deactivated_freed`.
    pub holders: u64,
    /// Purchased minus holders (at least 0); `None` when purchased is unknown or unlimited.
    pub unassigned: Option<u64>,
    /// Utilisation in percent, one decimal.
    pub utilisation_pct: Option<f64>,
    /// What utilisation divides by: `purchased` or `holders`.
    pub utilisation_basis: Option<&'static str>,
    /// Last day of the entitlement.
    pub expires_on: Option<String>,
    /// Whether the row counts in the totals.
    pub counted: bool,
}

/// Totals of the counted licenses of one connection, or of all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LicenseTotals {
    /// The connection; `None` for the totals across connections.
    pub connection: Option<String>,
    /// Licenses counted.
    pub licenses: u64,
    /// Licenses listed but not counted (retired, not `active`, or not counted in seats).
    pub excluded_licenses: u64,
    /// Of the counted, those that are unlimited (their purchased seats are not added up).
    pub unlimited_licenses: u64,
    /// Sum of purchased (known, finite).
    pub purchased: u64,
    /// Sum of consumed (where known).
    pub consumed: u64,
    /// Sum of assigned.
    pub assigned: u64,
    /// Sum of active.
    pub active: u64,
    /// Sum of inactive.
    pub inactive: u64,
    /// Sum of deactivated.
    pub deactivated: u64,
    /// Sum of deactivated_freed.
    pub deactivated_freed: u64,
    /// Sum of holders.
    pub holders: u64,
    /// Sum of unassigned (where known).
    pub unassigned: u64,
    /// Sum of active ÷ sum of each license's utilisation divisor, in percent, one decimal.
    pub utilisation_pct: Option<f64>,
    #[serde(skip)]
    divisor: u64,
    #[serde(skip)]
    dividend: u64,
}

impl LicenseTotals {
    fn add(&mut self, row: &LicenseRow) {
        if !row.counted {
            self.excluded_licenses += 1;
            return;
        }
        self.licenses += 1;
        self.unlimited_licenses += u64::from(row.unlimited);
        self.purchased += row.purchased.unwrap_or(0);
        self.consumed += row.consumed.unwrap_or(0);
        self.assigned += row.assigned;
        self.active += row.active;
        self.inactive += row.inactive;
        self.deactivated += row.deactivated;
        self.deactivated_freed += row.deactivated_freed;
        self.holders += row.holders;
        self.unassigned += row.unassigned.unwrap_or(0);
        match row.utilisation_basis {
            Some("purchased") => {
                self.dividend += row.active;
                self.divisor += row.purchased.unwrap_or(0);
            }
            Some(_) => {
                self.dividend += row.active;
                self.divisor += row.holders;
            }
            None => {}
        }
        self.utilisation_pct = percent(self.dividend, self.divisor);
    }
}

/// The totals, per connection and across connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// One per connection in the report, in name order.
    pub connections: Vec<LicenseTotals>,
    /// Across the connections in the report.
    pub all: LicenseTotals,
}

/// The licenses report: one row per connection and license (by connection, family,
/// application, license) and the totals of the counted rows.
pub type LicensesReport = Envelope<LicenseRow, Totals>;

/// Makes the licenses report.
pub fn licenses(
    store: &mut Store,
    rules: &Supersession,
    params: &ReportParams,
) -> Result<LicensesReport, ReportError> {
    let tx = read_transaction(store)?;
    let scope = scope(&tx, rules, params.connection.as_deref())?;
    let rows = license_rows(&tx, &scope, params)?;
    let mut totals = Totals::default();
    for connection in &scope.connections {
        let mut sub = LicenseTotals {
            connection: Some(connection.name.clone()),
            ..LicenseTotals::default()
        };
        for row in rows.iter().filter(|r| r.connection == connection.name) {
            sub.add(row);
            totals.all.add(row);
        }
        totals.connections.push(sub);
    }
    Ok(Envelope::new("licenses", params, scope, rows, totals))
}

/// The license rows of the scope, sorted.
pub(crate) fn license_rows(
    tx: &Transaction<'_>,
    scope: &Scope,
    params: &ReportParams,
) -> Result<Vec<LicenseRow>, ReportError> {
    let list = scope.snapshot_list();
    let sql = format!(
        "WITH last_seen AS ({last_seen}),
         held AS (SELECT snapshot_id, license_id, account_id,
                         MAX(CASE WHEN source IN ({freed}) THEN 0 ELSE 1 END) AS kept
                  FROM assignments WHERE snapshot_id IN ({list})
                  GROUP BY snapshot_id, license_id, account_id)
         SELECT l.snapshot_id, l.id, l.name, l.family, l.unit, l.purchased, l.consumed,
                l.unlimited, l.expires_on, l.status, l.application_id, app.name,
                COUNT(h.account_id),
                SUM(CASE WHEN a.active = 1 AND ls.at >= ?1 THEN 1 ELSE 0 END),
                SUM(CASE WHEN a.active = 1 AND (ls.at IS NULL OR ls.at < ?1) THEN 1 ELSE 0 END),
                SUM(CASE WHEN a.active = 0 THEN 1 ELSE 0 END),
                SUM(CASE WHEN a.active = 0 AND h.kept = 0 THEN 1 ELSE 0 END)
         FROM licenses l
         LEFT JOIN applications app ON app.snapshot_id = l.snapshot_id AND app.id = l.application_id
         LEFT JOIN held h ON h.snapshot_id = l.snapshot_id AND h.license_id = l.id
         LEFT JOIN accounts a ON a.snapshot_id = h.snapshot_id AND a.id = h.account_id
         LEFT JOIN last_seen ls ON ls.snapshot_id = h.snapshot_id AND ls.account_id = h.account_id
         WHERE l.snapshot_id IN ({list})
         GROUP BY l.snapshot_id, l.id, l.name, l.family, l.unit, l.purchased, l.consumed,
                  l.unlimited, l.expires_on, l.status, l.application_id, app.name",
        last_seen = last_seen_sql(&list),
        freed = FREED_BY_DEACTIVATION,
    );
    let mut statement = tx.prepare(&sql)?;
    let count = |n: Option<i64>| n.unwrap_or(0).max(0) as u64;
    let mut rows = Vec::new();
    let mut query = statement.query([params.cutoff()])?;
    while let Some(r) = query.next()? {
        let snapshot: i64 = r.get(0)?;
        let Some(connection) = scope.by_snapshot(snapshot) else {
            continue;
        };
        let unlimited: bool = r.get(7)?;
        let purchased = if unlimited {
            None
        } else {
            r.get::<_, Option<i64>>(5)?.map(|n| n.max(0) as u64)
        };
        let assigned = count(r.get(12)?);
        let active = count(r.get(13)?);
        let deactivated_freed = count(r.get(16)?);
        let holders = assigned.saturating_sub(deactivated_freed);
        let imported_status: String = r.get(9)?;
        let status = if connection.retired() {
            RETIRED.to_owned()
        } else {
            imported_status.clone()
        };
        let unit: String = r.get(4)?;
        let (utilisation_pct, utilisation_basis) = match purchased {
            Some(p) if p > 0 => (percent(active, p), Some("purchased")),
            _ if holders > 0 => (percent(active, holders), Some("holders")),
            _ => (None, None),
        };
        let application_id: String = r.get(10)?;
        rows.push(LicenseRow {
            connection: connection.name.clone(),
            source_type: connection.source_type.clone(),
            family: r.get(3)?,
            application: r
                .get::<_, Option<String>>(11)?
                .unwrap_or_else(|| application_id.clone()),
            application_id,
            license_id: r.get(1)?,
            license: r.get(2)?,
            counted: status == "active" && unit == "seat",
            unit,
            status,
            imported_status,
            retired_by: connection.retired_by.clone(),
            purchased,
            unlimited,
            consumed: r.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u64),
            assigned,
            active,
            inactive: count(r.get(14)?),
            deactivated: count(r.get(15)?),
            deactivated_freed,
            holders,
            unassigned: purchased.map(|p| p.saturating_sub(holders)),
            utilisation_pct,
            utilisation_basis,
            expires_on: r.get(8)?,
        });
    }
    let order: Vec<&str> = scope.connections.iter().map(|c| c.name.as_str()).collect();
    rows.sort_by(|a, b| {
        let position = |name: &str| order.iter().position(|n| *n == name);
        (
            position(&a.connection),
            super::family_rank(&a.family),
            a.application.to_lowercase(),
            a.license.to_lowercase(),
            &a.license_id,
        )
            .cmp(&(
                position(&b.connection),
                super::family_rank(&b.family),
                b.application.to_lowercase(),
                b.license.to_lowercase(),
                &b.license_id,
            ))
    });
    Ok(rows)
}

/// The family as the table shows it (short, so that it wraps less).
fn family_cell(family: &str) -> &str {
    match family {
        "permission_set" => "perm set",
        other => other,
    }
}

const CSV_HEADER: [&str; 26] = [
    "kind",
    "connection",
    "source_type",
    "family",
    "application_id",
    "application",
    "license_id",
    "license",
    "unit",
    "status",
    "imported_status",
    "retired_by",
    "purchased",
    "unlimited",
    "consumed",
    "assigned",
    "active",
    "inactive",
    "deactivated",
    "deactivated_freed",
    "holders",
    "unassigned",
    "utilisation_pct",
    "utilisation_basis",
    "expires_on",
    "counted",
];

fn total_record(kind: &str, t: &LicenseTotals) -> Vec<String> {
    let mut record = vec![String::new(); CSV_HEADER.len()];
    record[0] = kind.to_owned();
    record[1] = t.connection.clone().unwrap_or_default();
    record[12] = t.purchased.to_string();
    record[14] = t.consumed.to_string();
    record[15] = t.assigned.to_string();
    record[16] = t.active.to_string();
    record[17] = t.inactive.to_string();
    record[18] = t.deactivated.to_string();
    record[19] = t.deactivated_freed.to_string();
    record[20] = t.holders.to_string();
    record[21] = t.unassigned.to_string();
    record[22] = csv_pct(t.utilisation_pct);
    record
}

impl Report for LicensesReport {
    fn csv_header(&self) -> Vec<&'static str> {
        CSV_HEADER.to_vec()
    }

    fn csv_records(&self) -> Vec<Vec<String>> {
        let mut records: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    "license".to_owned(),
                    r.connection.clone(),
                    r.source_type.clone(),
                    r.family.clone(),
                    r.application_id.clone(),
                    r.application.clone(),
                    r.license_id.clone(),
                    r.license.clone(),
                    r.unit.clone(),
                    r.status.clone(),
                    r.imported_status.clone(),
                    r.retired_by.join("; "),
                    csv_num(r.purchased),
                    r.unlimited.to_string(),
                    csv_num(r.consumed),
                    r.assigned.to_string(),
                    r.active.to_string(),
                    r.inactive.to_string(),
                    r.deactivated.to_string(),
                    r.deactivated_freed.to_string(),
                    r.holders.to_string(),
                    csv_num(r.unassigned),
                    csv_pct(r.utilisation_pct),
                    r.utilisation_basis.unwrap_or_default().to_owned(),
                    r.expires_on.clone().unwrap_or_default(),
                    r.counted.to_string(),
                ]
            })
            .collect();
        for t in &self.totals.connections {
            records.push(total_record("connection_total", t));
        }
        records.push(total_record("total", &self.totals.all));
        records
    }

    fn table(&self) -> Table {
        let active = format!("Active\n{}d", self.parameters.days);
        // Expiry dates only when a license has one.
        let with_expiry = self.rows.iter().any(|r| r.expires_on.is_some());
        let mut header = vec![
            "Connection",
            "Family",
            "Application",
            "License",
            "Bought",
            "Used",
            "Assigned",
            &active,
            "Inactive",
            "Deact.",
            "Held",
            "Spare",
            "Util %",
        ];
        if with_expiry {
            header.push("Expires");
        }
        let mut table = new_table(&header, &[4, 5, 6, 7, 8, 9, 10, 11, 12], &[13]);
        let columns = header.len();
        let total_row = |label: String, t: &LicenseTotals| {
            vec![
                label,
                String::new(),
                String::new(),
                "Total".to_owned(),
                t.purchased.to_string(),
                t.consumed.to_string(),
                t.assigned.to_string(),
                t.active.to_string(),
                t.inactive.to_string(),
                t.deactivated.to_string(),
                t.holders.to_string(),
                t.unassigned.to_string(),
                cell_pct(t.utilisation_pct),
                String::new(),
            ]
            .into_iter()
            .take(columns)
            .collect::<Vec<_>>()
        };
        // Each connection's rows, then its total.
        for t in &self.totals.connections {
            let name = t.connection.clone().unwrap_or_default();
            for r in self.rows.iter().filter(|r| r.connection == name) {
                let (purchased, unassigned) = if r.unlimited {
                    ("unlimited".to_owned(), "unlimited".to_owned())
                } else {
                    (cell_num(r.purchased), cell_num(r.unassigned))
                };
                let license = if r.status == "active" {
                    r.license.clone()
                } else {
                    format!("{} ({})", r.license, r.status)
                };
                table.add_row(
                    vec![
                        r.connection.clone(),
                        family_cell(&r.family).to_owned(),
                        r.application.clone(),
                        license,
                        purchased,
                        cell_num(r.consumed),
                        r.assigned.to_string(),
                        r.active.to_string(),
                        r.inactive.to_string(),
                        r.deactivated.to_string(),
                        r.holders.to_string(),
                        unassigned,
                        cell_pct(r.utilisation_pct),
                        r.expires_on.clone().unwrap_or_else(|| "-".to_owned()),
                    ]
                    .into_iter()
                    .take(columns)
                    .collect::<Vec<_>>(),
                );
            }
            table.add_row(total_row(name, t));
        }
        table.add_row(total_row("All connections".to_owned(), &self.totals.all));
        table
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "Bought: purchased. Used: consumed, as the source counts it. Active: assigned, seen since {}. Inactive: assigned, active, not seen since. Deact.: assigned, deactivated. Held: assigned accounts taking a seat (a deactivated account held only through its profile or a feature flag takes none). Spare: bought, not held. Util %: active / bought (/ held when bought is unknown, 0 or unlimited). Totals: active licenses counted in seats.",
            super::format::cell_date(Some(&self.parameters.since))
        )];
        for connection in self.connections.iter().filter(|c| c.retired()) {
            notes.push(format!(
                "Retired: the licenses of `{}` are superseded by {} and left out of the totals.",
                connection.name,
                connection
                    .retired_by
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
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

    /// Connection `acme` (type `direct`): a user license of 10 seats held by five accounts
    /// (recent, stale, never logged in, deactivated, seen only through API usage), a package
    /// held by two through two sources each, an unlimited package, a metered license, an
    /// expired license.
    fn acme() -> Vec<Value> {
        let mut expired = license("old", "app", "feature", Some(4));
        expired["status"] = "expired".into();
        let mut metered = license("storage", "app", "other", Some(500));
        metered["unit"] = "gb".into();
        let mut unlimited = license("site", "pkg", "package", None);
        unlimited["unlimited"] = true.into();
        unlimited["purchased"] = 7.into();
        vec![
            application("app", "Acme CRM"),
            application("pkg", "Acme Package"),
            license("crm", "app", "user", Some(10)),
            license("pkg", "pkg", "package", Some(3)),
            unlimited,
            metered,
            expired,
            account("recent", true, Some(false), Some(5)),
            account("stale", true, None, Some(120)),
            account("never", true, None, None),
            account("gone", false, None, Some(400)),
            account("api", true, None, None),
            usage("api", 4, Some(200), Some(10)),
            usage("stale", 1, Some(95), None),
            assign("recent", "crm", "profile"),
            assign("stale", "crm", "profile"),
            assign("never", "crm", "profile"),
            assign("gone", "crm", "profile"),
            assign("api", "crm", "profile"),
            assign("recent", "pkg", "package"),
            assign("recent", "pkg", "direct"),
            assign("gone", "pkg", "package"),
            assign("gone", "pkg", "direct"),
            assign("stale", "site", "package"),
        ]
    }

    fn row<'a>(report: &'a LicensesReport, connection: &str, id: &str) -> &'a LicenseRow {
        report
            .rows
            .iter()
            .find(|r| r.connection == connection && r.license_id == id)
            .unwrap_or_else(|| panic!("no row {connection}/{id}"))
    }

    /// Per license: the figures of one row, in the order of the JSON keys.
    #[derive(Debug, PartialEq)]
    struct Figures {
        purchased: Option<u64>,
        assigned: u64,
        active: u64,
        inactive: u64,
        deactivated: u64,
        deactivated_freed: u64,
        holders: u64,
        unassigned: Option<u64>,
        utilisation_pct: Option<f64>,
        utilisation_basis: Option<&'static str>,
        counted: bool,
    }

    fn figures(row: &LicenseRow) -> Figures {
        Figures {
            purchased: row.purchased,
            assigned: row.assigned,
            active: row.active,
            inactive: row.inactive,
            deactivated: row.deactivated,
            deactivated_freed: row.deactivated_freed,
            holders: row.holders,
            unassigned: row.unassigned,
            utilisation_pct: row.utilisation_pct,
            utilisation_basis: row.utilisation_basis,
            counted: row.counted,
        }
    }

    /// `(purchased, assigned, active, inactive, deactivated, freed, holders, unassigned,
    /// utilisation, basis, counted)` as [`Figures`].
    #[allow(clippy::type_complexity)]
    fn expect(
        f: (
            Option<u64>,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            Option<u64>,
            Option<f64>,
            Option<&'static str>,
            bool,
        ),
    ) -> Figures {
        Figures {
            purchased: f.0,
            assigned: f.1,
            active: f.2,
            inactive: f.3,
            deactivated: f.4,
            deactivated_freed: f.5,
            holders: f.6,
            unassigned: f.7,
            utilisation_pct: f.8,
            utilisation_basis: f.9,
            counted: f.10,
        }
    }

    #[test]
    fn figures_per_license_follow_the_definitions() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &acme());
        let report = licenses(&mut store, &Supersession::new(), &params(90)).expect("report");
        let p = Some("purchased");
        let cases = [
            // recent and api (API use 10 days ago) are active; stale (last use 95 days ago)
            // and never are inactive; gone is deactivated, and its profile seat was freed:
            // 4 holders, 6 spare.
            (
                "crm",
                (Some(10), 5, 2, 2, 1, 1, 4, Some(6), Some(20.0), p, true),
            ),
            // Two sources, one account each: assigned counts accounts. gone still holds its
            // package seat.
            (
                "pkg",
                (Some(3), 2, 1, 0, 1, 0, 2, Some(1), Some(33.3), p, true),
            ),
            // Unlimited: purchased is ignored, utilisation falls back to the holders.
            (
                "site",
                (
                    None,
                    1,
                    0,
                    1,
                    0,
                    0,
                    1,
                    None,
                    Some(0.0),
                    Some("holders"),
                    true,
                ),
            ),
            (
                "storage",
                (Some(500), 0, 0, 0, 0, 0, 0, Some(500), Some(0.0), p, false),
            ),
            (
                "old",
                (Some(4), 0, 0, 0, 0, 0, 0, Some(4), Some(0.0), p, false),
            ),
        ];
        for (id, expected) in cases {
            assert_eq!(figures(row(&report, "acme", id)), expect(expected), "{id}");
        }
        assert_eq!(row(&report, "acme", "crm").application, "Acme CRM");
        assert_eq!(row(&report, "acme", "crm").consumed, Some(5));
        // Grouped by family: user, package, package, feature, other.
        let order: Vec<&str> = report.rows.iter().map(|r| r.license_id.as_str()).collect();
        assert_eq!(order, ["crm", "pkg", "site", "old", "storage"]);
        let all = &report.totals.all;
        assert_eq!(
            (
                all.licenses,
                all.excluded_licenses,
                all.unlimited_licenses,
                all.purchased,
                all.assigned,
                all.active,
                all.inactive,
                all.deactivated,
                all.deactivated_freed,
                all.holders,
                all.unassigned
            ),
            (3, 2, 1, 13, 8, 3, 3, 2, 1, 7, 7)
        );
        // (2 + 1 + 0) / (10 + 3 + 1)
        assert_eq!(all.utilisation_pct, Some(21.4));
        assert_eq!(report.totals.connections.len(), 1);
        assert_eq!(report.totals.connections[0].active, 3);
    }

    /// A deactivated account's seat is freed when it holds the license only through its
    /// profile or a feature flag; through a permission-set license, a package or any other
    /// source it still takes one.
    #[test]
    fn deactivation_frees_profile_and_feature_seats_only() {
        let (dir, mut store) = store();
        let mut records = vec![application("app", "App")];
        for (id, family) in [
            ("user", "user"),
            ("feat", "feature"),
            ("psl", "permission_set"),
            ("pkg", "package"),
            ("both", "user"),
        ] {
            records.push(license(id, "app", family, Some(10)));
        }
        // `on` is active, `off` is deactivated; both hold every license the same way.
        for who in ["on", "off"] {
            records.push(account(who, who == "on", None, Some(1)));
            records.push(assign(who, "user", "profile"));
            records.push(assign(who, "feat", "feature_flag"));
            records.push(assign(who, "psl", "permission_set_license"));
            records.push(assign(who, "pkg", "package"));
            // Profile and a direct seat: the direct seat is not freed.
            records.push(assign(who, "both", "profile"));
            records.push(assign(who, "both", "direct"));
        }
        // An assignment whose account the import did not send: taken as holding its seat.
        records.push(assign("ghost", "user", "profile"));
        import(&mut store, dir.path(), "acme", "direct", &records);
        let report = licenses(&mut store, &Supersession::new(), &params(90)).expect("report");
        // (license, assigned, deactivated, freed, holders, spare, utilisation)
        let cases = [
            ("user", 3, 1, 1, 2, 8, 10.0),
            ("feat", 2, 1, 1, 1, 9, 10.0),
            ("psl", 2, 1, 0, 2, 8, 10.0),
            ("pkg", 2, 1, 0, 2, 8, 10.0),
            ("both", 2, 1, 0, 2, 8, 10.0),
        ];
        for (id, assigned, deactivated, freed, holders, spare, util) in cases {
            let r = row(&report, "acme", id);
            assert_eq!(
                (
                    r.assigned,
                    r.deactivated,
                    r.deactivated_freed,
                    r.holders,
                    r.unassigned,
                    r.utilisation_pct
                ),
                (
                    assigned,
                    deactivated,
                    freed,
                    holders,
                    Some(spare),
                    Some(util)
                ),
                "{id}"
            );
        }
        let all = &report.totals.all;
        assert_eq!(
            (
                all.assigned,
                all.deactivated_freed,
                all.holders,
                all.unassigned
            ),
            (11, 2, 9, 41)
        );

        // Without purchased seats, utilisation divides by the holders: 1 active of 1 holder.
        let (dir, mut store) = super::super::testing::store();
        import(
            &mut store,
            dir.path(),
            "acme",
            "direct",
            &[
                application("app", "App"),
                license("user", "app", "user", None),
                account("on", true, None, Some(1)),
                account("off", false, None, Some(1)),
                assign("on", "user", "profile"),
                assign("off", "user", "profile"),
            ],
        );
        let report = licenses(&mut store, &Supersession::new(), &params(90)).expect("report");
        let user = row(&report, "acme", "user");
        assert_eq!(
            (user.holders, user.utilisation_pct, user.utilisation_basis),
            (1, Some(100.0), Some("holders"))
        );
        assert_eq!(report.totals.all.utilisation_pct, Some(100.0));
    }

    #[test]
    fn a_shorter_window_moves_accounts_from_active_to_inactive() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &acme());
        let report = licenses(&mut store, &Supersession::new(), &params(7)).expect("report");
        let crm = row(&report, "acme", "crm");
        // Only `recent` (5 days) is within 7 days; `api` (10 days) is not.
        assert_eq!((crm.active, crm.inactive, crm.deactivated), (1, 3, 1));
    }

    #[test]
    fn supersession_retires_and_restores_without_rewriting() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &acme());
        import(
            &mut store,
            dir.path(),
            "mgmt",
            "manager",
            &[
                application("m", "Managed"),
                license("seat", "m", "user", Some(2)),
                account("x", true, None, Some(1)),
                assign("x", "seat", "direct"),
            ],
        );
        let mut rules = Supersession::new();
        rules.declare("direct", &[] as &[&str]);
        rules.declare("manager", &["direct"]);
        let report = licenses(&mut store, &rules, &params(90)).expect("report");
        for r in report.rows.iter().filter(|r| r.connection == "acme") {
            assert_eq!(r.status, "retired", "{}", r.license_id);
            assert_eq!(r.retired_by, ["mgmt"]);
            assert!(!r.counted);
        }
        assert_eq!(row(&report, "acme", "crm").imported_status, "active");
        assert_eq!(row(&report, "mgmt", "seat").status, "active");
        let acme_totals = &report.totals.connections[0];
        assert_eq!(
            (
                acme_totals.licenses,
                acme_totals.excluded_licenses,
                acme_totals.purchased
            ),
            (0, 5, 0)
        );
        assert_eq!(
            (report.totals.all.licenses, report.totals.all.purchased),
            (1, 2)
        );
        let mut table = Vec::new();
        write_report(&report, Format::Table, Some(200), &mut table).expect("table");
        let table = String::from_utf8(table).expect("utf-8");
        assert!(
            table.contains("Retired: the licenses of `acme` are superseded by `mgmt`"),
            "{table}"
        );

        // Disabled: restored.
        store
            .db()
            .execute("UPDATE connections SET enabled = 0 WHERE name = 'mgmt'", [])
            .expect("disabled");
        let report = licenses(&mut store, &rules, &params(90)).expect("report");
        assert_eq!(row(&report, "acme", "crm").status, "active");
        assert_eq!(report.totals.all.licenses, 4);

        // Enabled again, then removed: retired, then restored.
        store
            .db()
            .execute("UPDATE connections SET enabled = 1 WHERE name = 'mgmt'", [])
            .expect("enabled");
        let report = licenses(&mut store, &rules, &params(90)).expect("report");
        assert_eq!(row(&report, "acme", "crm").status, "retired");
        store.remove_connection("mgmt").expect("removed");
        let report = licenses(&mut store, &rules, &params(90)).expect("report");
        assert_eq!(row(&report, "acme", "crm").status, "active");
        // The snapshot itself was never rewritten.
        let stored: String = store
            .db()
            .query_row("SELECT status FROM licenses WHERE id = 'crm'", [], |r| {
                r.get(0)
            })
            .expect("stored");
        assert_eq!(stored, "active");
    }

    #[test]
    fn json_csv_and_table_carry_the_same_figures() {
        let (dir, mut store) = store();
        import(&mut store, dir.path(), "acme", "direct", &acme());
        let report = licenses(&mut store, &Supersession::new(), &params(90)).expect("report");
        let render = |format| {
            let mut out = Vec::new();
            write_report(&report, format, Some(250), &mut out).expect("written");
            String::from_utf8(out).expect("utf-8")
        };
        let json: Value = serde_json::from_str(&render(Format::Json)).expect("json");
        for key in [
            "report",
            "generated_at",
            "parameters",
            "connections",
            "rows",
            "totals",
            "warnings",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
        assert_eq!(json["parameters"]["days"], 90);
        assert_eq!(json["parameters"]["as_of"], "2026-03-01T00:00:00Z");
        assert_eq!(json["parameters"]["since"], "2025-12-01T00:00:00Z");
        let csv_text = render(Format::Csv);
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, CSV_HEADER);
        let records: Vec<csv::StringRecord> =
            reader.records().collect::<Result<_, _>>().expect("records");
        assert_eq!(
            records.len(),
            report.rows.len() + 2,
            "rows, one connection total, the total"
        );
        let table = render(Format::Table);
        let json_rows = json["rows"].as_array().expect("rows");
        for (record, json_row) in records.iter().zip(json_rows) {
            assert_eq!(&record[0], "license");
            for (column, key) in [
                (15, "assigned"),
                (16, "active"),
                (17, "inactive"),
                (18, "deactivated"),
            ] {
                assert_eq!(record[column], json_row[key].to_string(), "{key}");
            }
            for (column, key) in [(19, "deactivated_freed"), (20, "holders")] {
                assert_eq!(record[column], json_row[key].to_string(), "{key}");
            }
            assert_eq!(
                record[21],
                csv_num(json_row["unassigned"].as_u64()),
                "spare"
            );
            assert_eq!(
                record[22].parse::<f64>().ok(),
                json_row["utilisation_pct"].as_f64(),
                "utilisation"
            );
            // The table has a line with the license's figures in order.
            let line = table
                .lines()
                .find(|l| l.contains(json_row["license"].as_str().expect("name")))
                .expect("table line");
            let cells: Vec<&str> = line.split(['│', '┆']).map(str::trim).collect();
            assert_eq!(cells[7], &record[15], "assigned in {line}");
            assert_eq!(cells[8], &record[16], "active in {line}");
            assert_eq!(cells[11], &record[20], "held in {line}");
            if !json_row["unlimited"].as_bool().expect("unlimited") {
                let spare = if record[21].is_empty() {
                    "-"
                } else {
                    &record[21]
                };
                assert_eq!(cells[12], spare, "spare in {line}");
            }
            assert_eq!(
                cells[13],
                if record[22].is_empty() {
                    "-"
                } else {
                    &record[22]
                }
            );
        }
        let total = records.last().expect("total");
        assert_eq!(&total[0], "total");
        assert_eq!(total[12], json["totals"]["all"]["purchased"].to_string());
        assert_eq!(total[16], json["totals"]["all"]["active"].to_string());
        assert_eq!(total[20], json["totals"]["all"]["holders"].to_string());
        assert_eq!(total[21], json["totals"]["all"]["unassigned"].to_string());
        let all_line = table
            .lines()
            .find(|l| l.contains("All connections"))
            .expect("total line");
        let cells: Vec<&str> = all_line.split(['│', '┆']).map(str::trim).collect();
        assert_eq!(cells[5], total[12].to_string());
        assert_eq!(cells[11], total[20].to_string());
        assert_eq!(cells[12], total[21].to_string());
        assert_eq!(cells[13], total[22].to_string());
        // A license that is not active says so next to its name.
        assert!(table.contains("old license (expired)"), "{table}");
        // The unlimited package reads "unlimited" in the table.
        let site = table
            .lines()
            .find(|l| l.contains("site license"))
            .expect("site");
        assert!(site.contains("unlimited"), "{site}");
    }
}
