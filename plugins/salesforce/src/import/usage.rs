//! Usage from `LoginHistory`: successful logins aggregated per user.
//!
//! Only rows whose `Status` is `Success` count. A login is an **API** login when its
//! `ApiType` names an API (anything but empty or `N/A`), or when its `LoginType` does
//! (`Other Apex API`: any type containing the word `API`); every other login is
//! **interactive** (browser, SSO, and `Remote Access 2.0` without an `ApiType`: OAuth sign-ins
//! of Salesforce's mobile apps and of integrations alike, which the row does not tell apart;
//! see the operator guide).
//!
//! The login history is read as a few time windows at once, and one [`UsageAggregator`]
//! takes the pages of all of them. It holds at most `capacity` users' running totals: when a
//! page brings it above that, the users seen first are emitted (as `usage` records) and
//! forgotten; when the last window has ended, everyone left is emitted. So memory stays
//! bounded whatever the org's size, and a user whose rows arrive close together (Salesforce
//! tends to return one user's rows together, and the windows advance side by side) gets one
//! record. A user whose rows come far apart gets several partial records: the host merges
//! `usage` records with the same account and application within one run (logins add up, the
//! latest times win), so every user still ends up with exactly one correct total.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use invhost_plugin_api::model::{Record, Usage};

use crate::import::rows::LoginRow;

/// The most users whose totals an aggregator holds at once (about 100 bytes each).
pub const CAPACITY: usize = 8192;

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

/// Sums `LoginHistory` pages (of one or several windows) into `usage` records; see the
/// module documentation.
#[derive(Debug)]
pub struct UsageAggregator {
    window_days: u32,
    capacity: usize,
    /// Windows still being read; the last to end emits what is left.
    open: usize,
    /// Users held, in order of first appearance.
    order: VecDeque<CompactString>,
    /// Keyed with foldhash: hashing user ids with std's SipHash was 2 % of an import.
    tallies: HashMap<CompactString, Tally, foldhash::fast::RandomState>,
    /// Successful rows seen.
    logins: u64,
}

impl UsageAggregator {
    /// An aggregator for a window of `window_days` days read as `streams` time windows,
    /// holding at most `capacity` users.
    pub fn new(window_days: u32, streams: usize, capacity: usize) -> Self {
        UsageAggregator {
            window_days,
            capacity: capacity.max(1),
            open: streams,
            order: VecDeque::new(),
            tallies: HashMap::default(),
            logins: 0,
        }
    }

    /// Successful logins seen so far.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Adds one page; pushes a `usage` record for each user it had to let go of to stay
    /// within its capacity (the users seen first).
    pub fn page(&mut self, rows: Vec<LoginRow>, out: &mut impl Extend<Record>) {
        for row in rows {
            if !row.success {
                continue;
            }
            let api = row.login_type_api || row.api_type_api;
            self.logins += 1;
            match self.tallies.get_mut(&row.user_id) {
                Some(tally) => tally.add(row.login_time, api),
                None => {
                    let mut tally = Tally {
                        logins: 0,
                        last_interactive: None,
                        last_api: None,
                    };
                    tally.add(row.login_time, api);
                    self.order.push_back(row.user_id.clone());
                    self.tallies.insert(row.user_id, tally);
                    if self.tallies.len() > self.capacity
                        && let Some(first) = self.order.pop_front()
                    {
                        self.emit(first, out);
                    }
                }
            }
        }
    }

    /// One window has ended; after the last one, pushes everyone left.
    pub fn finish(&mut self, out: &mut impl Extend<Record>) {
        self.open = self.open.saturating_sub(1);
        if self.open == 0 {
            while let Some(user) = self.order.pop_front() {
                self.emit(user, out);
            }
            self.tallies = HashMap::default();
        }
    }

    fn emit(&mut self, user: CompactString, out: &mut impl Extend<Record>) {
        if let Some(tally) = self.tallies.remove(&user) {
            out.extend([Record::Usage(Usage {
                account_id: user.into_string(),
                application_id: None,
                window_days: self.window_days,
                logins: tally.logins,
                last_interactive_at: tally.last_interactive,
                last_api_at: tally.last_api,
            })]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user: &str, time: &str, status: &str, login_type: &str, api: &str) -> LoginRow {
        LoginRow {
            user_id: user.into(),
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
    fn a_users_rows_across_pages_and_windows_make_one_record() {
        let mut usage = UsageAggregator::new(90, 2, 100);
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
        // The other window's page, then the end of the first window: nothing is emitted
        // while a window is still being read and the aggregator has room.
        usage.page(
            vec![
                ui("B", "2024-05-01T09:00:00.000+0000"),
                api("B", "2024-05-05T08:00:00.000+0000"),
                ui("C", "2024-05-06T08:00:00.000+0000"),
                ui("A", "2024-04-20T08:00:00.000+0000"),
            ],
            &mut out,
        );
        usage.finish(&mut out);
        assert!(out.is_empty(), "{out:?}");
        usage.finish(&mut out);
        assert_eq!(
            usages(&out),
            [
                (
                    "A".to_owned(),
                    3,
                    Some("2024-05-03T08:00:00+00:00".to_owned()),
                    None
                ),
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
        assert_eq!(usage.logins(), 7);
    }

    #[test]
    fn beyond_its_capacity_the_first_users_go_out_and_come_back_as_partial_records() {
        let mut usage = UsageAggregator::new(30, 1, 2);
        let mut out = Vec::new();
        usage.page(
            vec![
                ui("A", "2024-05-01T08:00:00Z"),
                ui("B", "2024-05-01T09:00:00Z"),
                ui("A", "2024-05-02T08:00:00Z"),
                row(
                    "C",
                    "2024-05-03T08:00:00Z",
                    "Failed: Computer activation required",
                    "Application",
                    "N/A",
                ),
            ],
            &mut out,
        );
        // Two users fit; a failed login holds no place.
        assert!(out.is_empty(), "{out:?}");
        usage.page(
            vec![
                ui("C", "2024-05-04T08:00:00Z"),
                ui("A", "2024-05-05T08:00:00Z"),
            ],
            &mut out,
        );
        // C made three: A (seen first) went out with its two logins; A coming back made
        // three again, and B went out.
        assert_eq!(
            usages(&out),
            [
                (
                    "A".to_owned(),
                    2,
                    Some("2024-05-02T08:00:00+00:00".to_owned()),
                    None
                ),
                (
                    "B".to_owned(),
                    1,
                    Some("2024-05-01T09:00:00+00:00".to_owned()),
                    None
                )
            ]
        );
        usage.finish(&mut out);
        let all = usages(&out);
        assert_eq!(
            all.iter().map(|u| (u.0.as_str(), u.1)).collect::<Vec<_>>(),
            [("A", 2), ("B", 1), ("C", 1), ("A", 1)],
            "a second partial record for A, which the host merges"
        );
        assert_eq!(usage.logins(), 5);
        assert!(
            out.iter()
                .all(|r| matches!(r, Record::Usage(u) if u.window_days == 30))
        );
    }
}
