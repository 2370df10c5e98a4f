//! The scheduler's one decision, as a pure function: given what a connection's schedule says,
//! how far its slots are handled, and the time now, is a run due?
//!
//! The remembered state is one instant per connection, "handled through": every slot at or
//! before it is handled (run, skipped, or covered by a run). It is stored in the database, so
//! it survives restarts. When a run is due, the scheduler records *now* as handled through, so
//! however many slots were missed while `serve` was down, they lead to **one** run, and the
//! next run is the first slot after now.

use chrono::{DateTime, Utc};

use super::spec::Spec;

/// Missed slots counted at most (the count is only reported).
pub const MISSED_COUNT_LIMIT: u32 = 1000;

/// What to do about one connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is remembered (the schedule is new to the connection, or was changed): start
    /// counting from now. The first run is the first slot after now; nothing runs at once.
    Start,
    /// A run is due.
    Due {
        /// The earliest slot not handled yet.
        slot: DateTime<Utc>,
        /// How many slots are due (1 when on time; more after downtime), counted up to
        /// [`MISSED_COUNT_LIMIT`]. They lead to one run.
        slots: u32,
    },
    /// Nothing is due; the next slot (if the schedule has one).
    Wait {
        /// The next slot.
        next: Option<DateTime<Utc>>,
    },
}

/// Decides for one connection whose slots are handled through `handled_through` (`None`:
/// nothing remembered).
pub fn decide(spec: &Spec, handled_through: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Decision {
    let Some(handled) = handled_through else {
        return Decision::Start;
    };
    let Some(first) = spec.next_after(handled) else {
        return Decision::Wait { next: None };
    };
    if first > now {
        return Decision::Wait { next: Some(first) };
    }
    let mut slots = 1;
    let mut cursor = first;
    while slots < MISSED_COUNT_LIMIT {
        match spec.next_after(cursor) {
            Some(next) if next <= now => {
                slots += 1;
                cursor = next;
            }
            _ => break,
        }
    }
    Decision::Due { slot: first, slots }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono_tz::Tz;

    use super::*;
    use crate::schedules::spec::{Definition, TimeOfDay};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn every(seconds: u64) -> Spec {
        Spec::new(Definition::Every(Duration::from_secs(seconds)), Tz::UTC).expect("valid")
    }

    fn check(spec: &Spec, handled: Option<&str>, now: &str, expected: Decision) {
        assert_eq!(
            decide(spec, handled.map(at), at(now)),
            expected,
            "handled {handled:?}, now {now}"
        );
    }

    #[test]
    fn nothing_remembered_starts_counting_without_running() {
        check(&every(300), None, "2026-05-04T10:00:00Z", Decision::Start);
    }

    #[test]
    fn on_time_one_slot_is_due() {
        let spec = every(300);
        check(
            &spec,
            Some("2026-05-04T10:00:01Z"),
            "2026-05-04T10:04:59Z",
            Decision::Wait {
                next: Some(at("2026-05-04T10:05:00Z")),
            },
        );
        check(
            &spec,
            Some("2026-05-04T10:00:01Z"),
            "2026-05-04T10:05:00Z",
            Decision::Due {
                slot: at("2026-05-04T10:05:00Z"),
                slots: 1,
            },
        );
    }

    #[test]
    fn after_downtime_many_missed_slots_make_one_run_then_the_schedule_resumes() {
        let spec = every(300);
        // Down from 10:01 to 11:02: 12 slots (10:05 .. 11:00) missed.
        let decision = decide(
            &spec,
            Some(at("2026-05-04T10:01:00Z")),
            at("2026-05-04T11:02:00Z"),
        );
        assert_eq!(
            decision,
            Decision::Due {
                slot: at("2026-05-04T10:05:00Z"),
                slots: 12
            }
        );
        // The scheduler records now as handled: the next decision waits for 11:05 instead of
        // running the other eleven.
        check(
            &spec,
            Some("2026-05-04T11:02:00Z"),
            "2026-05-04T11:02:01Z",
            Decision::Wait {
                next: Some(at("2026-05-04T11:05:00Z")),
            },
        );
    }

    #[test]
    fn a_daily_run_missed_over_a_weekend_runs_once() {
        let spec = Spec::new(
            Definition::Daily(TimeOfDay {
                hour: 2,
                minute: 30,
            }),
            chrono_tz::Europe::Berlin,
        )
        .expect("valid");
        // Handled Friday morning, back on Monday at 09:00: Saturday, Sunday and Monday 02:30
        // were missed; one run.
        check(
            &spec,
            Some("2026-05-08T01:00:00Z"),
            "2026-05-11T07:00:00Z",
            Decision::Due {
                slot: at("2026-05-09T00:30:00Z"),
                slots: 3,
            },
        );
    }

    #[test]
    fn the_missed_count_is_bounded() {
        let spec = every(1);
        let decision = decide(
            &spec,
            Some(at("2026-01-01T00:00:00Z")),
            at("2026-05-01T00:00:00Z"),
        );
        assert_eq!(
            decision,
            Decision::Due {
                slot: at("2026-01-01T00:00:01Z"),
                slots: MISSED_COUNT_LIMIT
            }
        );
    }

    #[test]
    fn a_clock_set_back_waits_instead_of_running() {
        check(
            &every(300),
            Some("2026-05-04T12:00:00Z"),
            "2026-05-04T11:00:00Z",
            Decision::Wait {
                next: Some(at("2026-05-04T12:05:00Z")),
            },
        );
    }
}
