//! Usage from `LoginHistory`: successful logins aggregated per user, page by page.
//!
//! Only rows whose `Status` is `Success` count. A login is an **API** login when its
//! `ApiType` names an API (anything but empty or `N/A`), or when its `LoginType` does
//! (`Other Apex API`, `Partner Product`... any type containing the word `API`); every other
//! login is **interactive** (browser, mobile app, SSO).
//!
//! [`UsageAggregator`] never holds every user: within a page it sums the rows of each user
//! (at most a page's worth of entries), and at the end of the page emits them all except the
//! user of the page's last row, whose partial sum carries over to the next page (Salesforce
//! tends to return one user's rows together, and a user's rows often straddle a page
//! boundary). The host merges `usage` records with the same account and application within
//! one run (logins add up, the latest times win), so an org whose `LoginHistory` is not
//! grouped by user still ends up with exactly one correct total per user.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use invhost_plugin_api::model::{Record, Usage};

use crate::import::rows::LoginRow;

/// Whether a successful login was an API login rather than an interactive one.
pub fn is_api_login(login_type: Option<&str>, api_type: Option<&str>) -> bool {
    api_type_names_api(api_type) || login_type_names_api(login_type)
}

/// Whether an `ApiType` names an API: anything but empty or `N/A`.
pub fn api_type_names_api(api_type: Option<&str>) -> bool {
    api_type
        .map(str::trim)
        .is_some_and(|api| !api.is_empty() && !api.eq_ignore_ascii_case("N/A"))
}

/// Whether a `LoginType` names an API (`Other Apex API`): it has the word `API`.
pub fn login_type_names_api(login_type: Option<&str>) -> bool {
    login_type.is_some_and(|kind| {
        kind.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word.eq_ignore_ascii_case("API"))
    })
}

/// One user's logins so far.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tally {
    logins: u64,
    last_interactive: Option<DateTime<Utc>>,
    last_api: Option<DateTime<Utc>>,
}

impl Tally {
    fn add(&mut self, at: Option<DateTime<Utc>>, api: bool) {
        self.logins += 1;
        let last = if api {
            &mut self.last_api
        } else {
            &mut self.last_interactive
        };
        if at > *last {
            *last = at;
        }
    }
}

/// Sums `LoginHistory` pages into `usage` records; see the module documentation.
#[derive(Debug)]
pub struct UsageAggregator {
    window_days: u32,
    /// This page's users, in order of first appearance, with their tallies.
    order: Vec<String>,
    tallies: HashMap<String, Tally>,
    /// Successful rows seen.
    logins: u64,
}

impl UsageAggregator {
    /// An aggregator for a window of `window_days` days.
    pub fn new(window_days: u32) -> Self {
        UsageAggregator {
            window_days,
            order: Vec::new(),
            tallies: HashMap::new(),
            logins: 0,
        }
    }

    /// Successful logins seen so far.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Adds one page; pushes a `usage` record for every user of the page but the last one.
    pub fn page(&mut self, rows: Vec<LoginRow>, out: &mut Vec<Record>) {
        let mut last_user: Option<String> = None;
        for row in rows {
            let carried = last_user.as_deref() == Some(row.user_id.as_str());
            if !carried {
                last_user = Some(row.user_id.clone());
            }
            if !row.success {
                continue;
            }
            let api = row.login_type_api || row.api_type_api;
            let at = row.login_time;
            self.logins += 1;
            match self.tallies.get_mut(&row.user_id) {
                Some(tally) => tally.add(at, api),
                None => {
                    let mut tally = Tally {
                        logins: 0,
                        last_interactive: None,
                        last_api: None,
                    };
                    tally.add(at, api);
                    self.order.push(row.user_id.clone());
                    self.tallies.insert(row.user_id, tally);
                }
            }
        }
        // Everyone but the page's last user is done (as far as this page can tell).
        let keep = last_user.and_then(|user| self.tallies.remove_entry(&user));
        self.flush(out);
        if let Some((user, tally)) = keep {
            self.order.push(user.clone());
            self.tallies.insert(user, tally);
        }
    }

    /// Pushes what is left: the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        for user in self.order.drain(..) {
            if let Some(tally) = self.tallies.remove(&user) {
                out.push(Record::Usage(Usage {
                    account_id: user,
                    application_id: None,
                    window_days: self.window_days,
                    logins: tally.logins,
                    last_interactive_at: tally.last_interactive,
                    last_api_at: tally.last_api,
                }));
            }
        }
        self.tallies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, time: &str, status: &str, login_type: &str, api: &str) -> LoginRow {
        LoginRow {
            user_id: user.to_owned(),
            login_time: crate::import::rows::parse_datetime(time),
            login_type_api: login_type_names_api(Some(login_type)),
            success: status == "Success",
            api_type_api: api_type_names_api(Some(api)),
        }
    }

    fn ui(user: &str, time: &str) -> LoginRow {
        row(user, time, "Success", "Application", "N/A")
    }

    fn api(user: &str, time: &str) -> LoginRow {
        row(user, time, "Success", "Remote Access 2.0", "REST API")
    }

    fn usages(out: &[Record]) -> Vec<(String, u64, Option<String>, Option<String>)> {
        out.iter()
            .map(|record| match record {
                Record::Usage(u) => (
                    u.account_id.clone(),
                    u.logins,
                    u.last_interactive_at.map(|t| t.to_rfc3339()),
                    u.last_api_at.map(|t| t.to_rfc3339()),
                ),
                other => panic!("not usage: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn logins_are_classified() {
        let check = |login_type: Option<&str>, api_type: Option<&str>, expected: bool| {
            assert_eq!(
                is_api_login(login_type, api_type),
                expected,
                "{login_type:?} {api_type:?}"
            );
        };
        check(Some("Application"), Some("N/A"), false);
        check(Some("Application"), None, false);
        check(Some("SAML Sfdc Initiated SSO"), Some("n/a"), false);
        check(Some("Remote Access 2.0"), Some("N/A"), false);
        check(Some("Remote Access 2.0"), Some("REST API"), true);
        check(Some("Other Apex API"), Some("N/A"), true);
        check(Some("Other Apex API"), None, true);
        check(None, Some("SOAP Partner"), true);
        check(Some("Rapid"), Some(" "), false);
    }

    #[test]
    fn a_users_rows_across_a_page_boundary_make_one_record() {
        let mut usage = UsageAggregator::new(90);
        let mut out = Vec::new();
        usage.page(
            vec![
                ui("A", "2024-05-01T08:00:00.000+0000"),
                ui("A", "2024-05-03T08:00:00.000+0000"),
                row(
                    "B",
                    "2024-05-04T08:00:00.000+0000",
                    "Invalid Password",
                    "Application",
                    "N/A",
                ),
                api("B", "2024-05-02T08:00:00.000+0000"),
            ],
            &mut out,
        );
        // A is done; B may go on in the next page.
        assert_eq!(
            usages(&out),
            vec![(
                "A".to_owned(),
                2,
                Some("2024-05-03T08:00:00+00:00".to_owned()),
                None
            )]
        );
        usage.page(
            vec![
                ui("B", "2024-05-01T09:00:00.000+0000"),
                api("B", "2024-05-05T08:00:00.000+0000"),
                ui("C", "2024-05-06T08:00:00.000+0000"),
            ],
            &mut out,
        );
        usage.finish(&mut out);
        assert_eq!(
            usages(&out)[1..],
            [
                (
                    "B".to_owned(),
                    3,
                    Some("2024-05-01T09:00:00+00:00".to_owned()),
                    Some("2024-05-05T08:00:00+00:00".to_owned())
                ),
                (
                    "C".to_owned(),
                    1,
                    Some("2024-05-06T08:00:00+00:00".to_owned()),
                    None
                ),
            ]
        );
        assert_eq!(usage.logins(), 6);
    }

    #[test]
    fn a_failed_last_row_still_carries_its_user_and_ungrouped_rows_stay_bounded() {
        let mut usage = UsageAggregator::new(30);
        let mut out = Vec::new();
        usage.page(
            vec![
                ui("A", "2024-05-01T08:00:00Z"),
                ui("B", "2024-05-01T09:00:00Z"),
                ui("A", "2024-05-02T08:00:00Z"),
                row(
                    "B",
                    "2024-05-03T08:00:00Z",
                    "Failed: Computer activation required",
                    "Application",
                    "N/A",
                ),
            ],
            &mut out,
        );
        // Within a page a user's scattered rows add up; B (the last row's user) carries over.
        assert_eq!(
            usages(&out),
            vec![(
                "A".to_owned(),
                2,
                Some("2024-05-02T08:00:00+00:00".to_owned()),
                None
            )]
        );
        usage.page(vec![ui("A", "2024-05-04T08:00:00Z")], &mut out);
        usage.finish(&mut out);
        let all = usages(&out);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[1].0, "B");
        assert_eq!(all[1].1, 1);
        assert_eq!(
            all[2].0, "A",
            "a second partial record for A, which the host merges"
        );
        assert_eq!(usage.logins(), 4);
        assert!(
            out.iter()
                .all(|r| matches!(r, Record::Usage(u) if u.window_days == 30))
        );
    }
}
