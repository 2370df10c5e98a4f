//! The API budget of one import: how many calls it made, how many the org allows per day,
//! and the refusal to make the call that would take the run over its share.
//!
//! Every REST answer Salesforce bills carries `Sforce-Limit-Info: api-usage=USED/MAX`
//! (rolling 24 hours, the whole org); newer orgs append `; api-bursts=N/M`. The import counts
//! an answer as one call when it carries that header: also when its body then fails to arrive
//! whole (Salesforce served it), and also a `REQUEST_LIMIT_EXCEEDED` refusal (whether
//! Salesforce bills a refused call is not documented; counting it errs towards the budget).
//! Answers without the header (a 401 for an expired session, a 503 from an overloaded pod, an
//! HTML maintenance page, a connection that failed before any answer) are not counted. The
//! versions list (`/services/data/`) is never billed and never goes through the budget.
//!
//! Before each request, [`Budget::reserve_owned`] refuses when this run's calls, those in flight
//! included, plus the next one would exceed `api_budget_percent` % of the org's `MAX`. The
//! first requests of a run are made at once before `MAX` is known (`Organization`, describe
//! `User`, and with `import.login_history_api = "auto"` the count of `LoginHistory`: two or
//! three), so the rule applies from the request after them on: a budget smaller than those
//! first requests can be crossed by them.

use std::sync::{Arc, Mutex};

use invhost_plugin_api::{Error, ErrorKind};

/// The org's daily API usage as one `Sforce-Limit-Info` header reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitInfo {
    /// Calls the org made in the last 24 hours, this one included.
    pub used: u64,
    /// The org's daily allowance.
    pub max: u64,
}

/// Reads `api-usage=USED/MAX` from a `Sforce-Limit-Info` value, leniently: other entries
/// (`api-bursts=1/750`), spaces, upper case and separators `;` or `,` are fine; a value
/// without a readable `api-usage` gives `None`.
pub fn parse_limit_info(value: &str) -> Option<LimitInfo> {
    value.split([';', ',']).find_map(|entry| {
        let (key, usage) = entry.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("api-usage") {
            return None;
        }
        let (used, max) = usage.split_once('/')?;
        Some(LimitInfo {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

#[derive(Debug, Default)]
struct State {
    /// Billed calls this run made.
    calls: u64,
    /// Requests sent and not answered yet.
    in_flight: u64,
    /// The highest usage any answer reported (answers to concurrent requests may arrive out
    /// of order).
    latest: Option<LimitInfo>,
}

/// The run's API budget and its call counter; shared by every request of one import.
#[derive(Debug)]
pub struct Budget {
    percent: u32,
    state: Mutex<State>,
}

impl Budget {
    /// A budget of `percent` % of the org's daily allowance.
    pub fn new(percent: u32) -> Self {
        Budget {
            percent,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent numbers behind; keep using them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Billed calls this run made so far.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> u64 {
        self.state().in_flight
    }

    /// The latest usage Salesforce reported, if any answer carried it.
    pub fn latest(&self) -> Option<LimitInfo> {
        self.state().latest
    }

    /// The calls this run may make: `percent` % of `max`, rounded down.
    pub fn allowance(&self, max: u64) -> u64 {
        max.saturating_mul(u64::from(self.percent)) / 100
    }

    /// Takes a slot for one request about to be sent to fetch `object`, or refuses (kind
    /// `rate_limited`, not retryable) when it could take the run over its budget, or when
    /// the org's whole allowance is spent. Every `Ok` must be followed by one
    /// [`Budget::settle`] ([`Budget::reserve_owned`] sees to it).
    fn reserve(&self, object: &str) -> Result<(), Error> {
        let mut state = self.state();
        if let Some(LimitInfo { used, max }) = state.latest {
            let allowance = self.allowance(max);
            let committed = state.calls + state.in_flight;
            if committed + 1 > allowance {
                return Err(Error::new(
                    ErrorKind::RATE_LIMITED,
                    format!(
                        "stopped before reading {object}: the next API call would take this \
                         import over its budget of {allowance} calls (import.api_budget_percent \
                         = {percent}% of the org's daily allowance of {max}); it had made \
                         {calls} call(s){in_flight}; raise import.api_budget_percent, or run the \
                         import when the org's allowance is larger",
                        percent = self.percent,
                        calls = state.calls,
                        in_flight = match state.in_flight {
                            0 => String::new(),
                            n => format!(", with {n} more sent and not yet answered"),
                        },
                    ),
                )
                .retryable(false));
            }
            if used.saturating_add(state.in_flight) >= max {
                return Err(Error::new(
                    ErrorKind::RATE_LIMITED,
                    format!(
                        "stopped before reading {object}: the org has spent its daily API \
                         allowance ({used} of {max} calls in the last 24 hours); run the \
                         import tomorrow"
                    ),
                )
                .retryable(false));
            }
        }
        state.in_flight += 1;
        Ok(())
    }

    /// Takes a slot for one request about to be sent to fetch `object`, or refuses (kind
    /// `rate_limited`, not retryable) when it could take the run over its budget, or when
    /// the org's whole allowance is spent. The slot ends itself: [`Reserved::settle`] counts
    /// the answer; dropped unsettled (the request's task panicked or was dropped before an
    /// answer), it gives the slot back without counting. So every reservation ends exactly
    /// once.
    pub fn reserve_owned(self: &Arc<Self>, object: &str) -> Result<Reserved, Error> {
        self.reserve(object)?;
        Ok(Reserved {
            budget: Some(Arc::clone(self)),
        })
    }

    /// Ends a request taken with [`Budget::reserve`], with the usage its answer reported: an
    /// answer that reported usage is one call (see the module docs), none is none.
    fn settle(&self, reported: Option<LimitInfo>) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if reported.is_some() {
            state.calls += 1;
        }
        if let Some(info) = reported {
            let newer = state
                .latest
                .is_none_or(|latest| info.used >= latest.used || info.max != latest.max);
            if newer {
                state.latest = Some(info);
            }
        }
    }
}

/// A slot of the budget taken by [`Budget::reserve_owned`].
#[derive(Debug)]
pub struct Reserved {
    /// `None` once settled.
    budget: Option<Arc<Budget>>,
}

impl Reserved {
    /// Ends the request: one call when its answer carried `reported` usage.
    pub fn settle(mut self, reported: Option<LimitInfo>) {
        if let Some(budget) = self.budget.take() {
            budget.settle(reported);
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.settle(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_leniently() {
        let check = |value: &str, expected: Option<(u64, u64)>| {
            assert_eq!(
                parse_limit_info(value).map(|i| (i.used, i.max)),
                expected,
                "{value:?}"
            );
        };
        check("api-usage=10018/100000", Some((10_018, 100_000)));
        check("api-usage=18/15000; api-bursts=1/750", Some((18, 15_000)));
        check("api-bursts=1/750; api-usage=2/5", Some((2, 5)));
        check(" API-Usage = 7 / 9 ", Some((7, 9)));
        check("per-app-api-usage=1/2, api-usage=3/4", Some((3, 4)));
        check("api-usage=x/5", None);
        check("api-usage=5", None);
        check("", None);
    }

    #[test]
    fn the_run_stops_before_crossing_its_share() {
        let budget = Budget::new(10);
        // Nothing known yet: the first call goes.
        budget.reserve("Organization").expect("first call");
        budget.settle(Some(LimitInfo { used: 1, max: 50 }));
        // 10% of 50 is 5 calls; one made, four may be in flight.
        for _ in 0..4 {
            budget.reserve("User").expect("within budget");
        }
        let refused = budget.reserve("User").expect_err("sixth call refused");
        assert_eq!(refused.kind, ErrorKind::RATE_LIMITED);
        assert!(!refused.retryable);
        assert!(
            refused.message.contains(
                "stopped before reading User: the next API call would take this import over \
                 its budget of 5 calls (import.api_budget_percent = 10% of the org's daily \
                 allowance of 50); it had made 1 call(s), with 4 more sent and not yet answered"
            ),
            "{}",
            refused.message
        );
        // An unbilled answer gives its slot back.
        budget.settle(None);
        budget.reserve("User").expect("a slot again");
        assert_eq!(budget.calls(), 1);
    }

    #[test]
    fn a_reservation_ends_once_whether_settled_or_dropped() {
        let budget = Arc::new(Budget::new(100));
        let answered = budget.reserve_owned("User").expect("a slot");
        let lost = budget.reserve_owned("User").expect("a slot");
        assert_eq!(budget.in_flight(), 2);
        answered.settle(Some(LimitInfo { used: 3, max: 100 }));
        // A request whose task panicked: its slot comes back, and nothing is counted.
        drop(lost);
        assert_eq!(budget.in_flight(), 0);
        assert_eq!(budget.calls(), 1);
        // An answer without the header is no call.
        budget.reserve_owned("User").expect("a slot").settle(None);
        assert_eq!((budget.in_flight(), budget.calls()), (0, 1));
    }

    #[test]
    fn a_spent_org_is_refused_and_usage_is_the_highest_reported() {
        let budget = Budget::new(100);
        budget.reserve("Organization").expect("first call");
        budget.reserve("Profile").expect("second call");
        budget.settle(Some(LimitInfo { used: 10, max: 10 }));
        // The answer to the earlier request arrives late: it does not lower the usage.
        budget.settle(Some(LimitInfo { used: 9, max: 10 }));
        assert_eq!(budget.latest(), Some(LimitInfo { used: 10, max: 10 }));
        assert_eq!(budget.calls(), 2);
        let error = budget.reserve("User").expect_err("spent");
        assert_eq!(error.kind, ErrorKind::RATE_LIMITED);
        assert!(
            error
                .message
                .contains("the org has spent its daily API allowance (10 of 10"),
            "{}",
            error.message
        );
    }
}
