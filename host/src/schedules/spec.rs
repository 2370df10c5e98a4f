//! What a schedule says: its definition (a cron expression, a fixed interval, a daily or weekly
//! time), its time zone, and the run times that follow from them.
//!
//! Cron expressions are parsed and evaluated by `croner`; time zones come from `chrono-tz`.
//! `--daily` and `--weekly` are turned into cron expressions with one second, minute and hour,
//! so they follow croner's rules for fixed times across daylight-saving changes:
//!
//! * a time that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) runs at
//!   the first instant after the gap (03:00 local time), once;
//! * a time that exists twice (02:30 when clocks go back from 03:00 to 02:00) runs once, at the
//!   first of the two instants.
//!
//! A cron expression with a wildcard or a step in its hour, minute or second field is an
//! interval: in a repeated hour it runs at every matching instant, in a skipped hour not at all.
//! `--every` intervals are counted in UTC from 1970-01-01T00:00:00Z, so they never meet a
//! daylight-saving change (`--every 15m` runs at :00, :15, :30 and :45 of every hour).

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc, Weekday};
use chrono_tz::Tz;
use croner::{
    Cron,
    parser::{CronParser, Seconds},
};

/// The longest `--every` interval.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

/// Why a schedule definition is not valid. Each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The schedule name breaks the naming rule.
    #[error("{0}")]
    Name(String),
    /// A cron expression croner refused.
    #[error(
        "cron expression `{expression}` is not valid ({reason}); write 5 fields (minute hour day-of-month month day-of-week, e.g. `30 2 * * *`) or 6 with seconds first"
    )]
    Cron {
        /// The expression.
        expression: String,
        /// croner's reason.
        reason: String,
    },
    /// A cron expression that matches no future time (such as 30 February).
    #[error("cron expression `{0}` never matches a future time (check the day and month fields)")]
    CronNeverRuns(String),
    /// A `--every` duration that is not a duration or out of range.
    #[error("{0}")]
    Every(String),
    /// A time of day that is not `HH:MM`.
    #[error("time `{0}` is not HH:MM with HH from 00 to 23 and MM from 00 to 59 (e.g. `02:30`)")]
    Time(String),
    /// A day of the week that is not one.
    #[error("`{0}` is not a day of the week; write mon, tue, wed, thu, fri, sat or sun")]
    Day(String),
    /// An unknown time zone.
    #[error(
        "unknown time zone `{0}`; use an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`"
    )]
    Zone(String),
    /// `--tz` with `--every`.
    #[error(
        "`--every` intervals are counted in UTC and take no time zone; for a time of day in a zone use `--daily HH:MM --tz ZONE`"
    )]
    EveryWithZone,
    /// A stored kind this build does not know.
    #[error(
        "the stored schedule has an unknown kind `{0}`; upgrade invhost, or remove the schedule and add it again"
    )]
    UnknownKind(String),
}

/// When a schedule runs, before its time zone is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// A cron expression (5 fields, or 6 with seconds first; `@daily` and friends too).
    Cron(String),
    /// A fixed interval, counted in UTC from the Unix epoch; whole seconds.
    Every(Duration),
    /// Every day at a time of day.
    Daily(TimeOfDay),
    /// Every week on a day at a time of day.
    Weekly(Weekday, TimeOfDay),
}

/// A time of day, to the minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
}

impl TimeOfDay {
    /// Parses `HH:MM` (`2:30` is accepted too).
    pub fn parse(text: &str) -> Result<TimeOfDay, SpecError> {
        let bad = || SpecError::Time(text.to_owned());
        let (hour, minute) = text.trim().split_once(':').ok_or_else(bad)?;
        // Hours with one or two digits, minutes with exactly two.
        let number = |part: &str, digits: std::ops::RangeInclusive<usize>, max: u32| {
            if !digits.contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok().filter(|n| *n <= max)
        };
        match (number(hour, 1..=2, 23), number(minute, 2..=2, 59)) {
            (Some(hour), Some(minute)) => Ok(TimeOfDay { hour, minute }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// Parses a day of the week (`mon`, `Monday`, ...).
pub fn parse_day(text: &str) -> Result<Weekday, SpecError> {
    text.trim()
        .parse::<Weekday>()
        .map_err(|_| SpecError::Day(text.to_owned()))
}

/// Parses a `--every` duration (`5s`, `15m`, `2h`, `1d`, `1h 30m`): whole seconds, from one
/// second to 366 days.
pub fn parse_every(text: &str) -> Result<Duration, SpecError> {
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        SpecError::Every(format!(
            "`{text}` is not a duration ({error}); write a number and a unit, such as 30s, 15m, 2h or 1d"
        ))
    })?;
    if duration.subsec_nanos() != 0 || duration.is_zero() {
        return Err(SpecError::Every(format!(
            "`{text}` is not a whole number of seconds of at least 1s; write e.g. 30s, 15m, 2h or 1d"
        )));
    }
    if duration > MAX_EVERY {
        return Err(SpecError::Every(format!(
            "`{text}` is longer than 366 days; use `--cron` for yearly schedules"
        )));
    }
    Ok(duration)
}

/// Parses a time zone: an IANA name, in any letter case (`Europe/Berlin`, `utc`).
pub fn parse_zone(text: &str) -> Result<Tz, SpecError> {
    let text = text.trim();
    if let Ok(zone) = text.parse::<Tz>() {
        return Ok(zone);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|zone| zone.name().eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| SpecError::Zone(text.to_owned()))
}

fn cron_parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

impl Definition {
    /// The stored kind: `cron`, `every`, `daily` or `weekly`.
    pub fn kind(&self) -> &'static str {
        match self {
            Definition::Cron(_) => "cron",
            Definition::Every(_) => "every",
            Definition::Daily(_) => "daily",
            Definition::Weekly(..) => "weekly",
        }
    }

    /// The stored expression: the cron text, `15m`, `02:30`, `mon 02:30`.
    pub fn expression(&self) -> String {
        match self {
            Definition::Cron(expression) => expression.clone(),
            Definition::Every(duration) => humantime::format_duration(*duration).to_string(),
            Definition::Daily(time) => time.to_string(),
            Definition::Weekly(day, time) => {
                format!("{} {time}", day.to_string().to_lowercase())
            }
        }
    }

    /// Rebuilds a definition from its stored kind and expression.
    pub fn from_stored(kind: &str, expression: &str) -> Result<Definition, SpecError> {
        Ok(match kind {
            "cron" => Definition::Cron(expression.to_owned()),
            "every" => Definition::Every(parse_every(expression)?),
            "daily" => Definition::Daily(TimeOfDay::parse(expression)?),
            "weekly" => {
                let (day, time) = expression
                    .split_once(' ')
                    .ok_or_else(|| SpecError::Time(expression.to_owned()))?;
                Definition::Weekly(parse_day(day)?, TimeOfDay::parse(time)?)
            }
            other => return Err(SpecError::UnknownKind(other.to_owned())),
        })
    }

    /// The cron expression croner evaluates, when the definition has one.
    pub fn cron_expression(&self) -> Option<String> {
        match self {
            Definition::Cron(expression) => Some(expression.clone()),
            Definition::Every(_) => None,
            Definition::Daily(time) => Some(format!("{} {} * * *", time.minute, time.hour)),
            Definition::Weekly(day, time) => Some(format!(
                "{} {} * * {}",
                time.minute,
                time.hour,
                day.num_days_from_sunday()
            )),
        }
    }
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Definition::Cron(expression) => write!(f, "cron `{expression}`"),
            Definition::Every(duration) => {
                write!(f, "every {}", humantime::format_duration(*duration))
            }
            Definition::Daily(time) => write!(f, "daily at {time}"),
            Definition::Weekly(day, time) => {
                let day = match day {
                    Weekday::Mon => "Monday",
                    Weekday::Tue => "Tuesday",
                    Weekday::Wed => "Wednesday",
                    Weekday::Thu => "Thursday",
                    Weekday::Fri => "Friday",
                    Weekday::Sat => "Saturday",
                    Weekday::Sun => "Sunday",
                };
                write!(f, "weekly on {day} at {time}")
            }
        }
    }
}

/// A definition in a time zone, ready to say when it runs.
#[derive(Debug, Clone)]
pub struct Spec {
    definition: Definition,
    zone: Tz,
    cron: Option<Cron>,
}

impl Spec {
    /// Checks a definition in a zone: a cron expression must parse and match a future time.
    pub fn new(definition: Definition, zone: Tz) -> Result<Spec, SpecError> {
        if matches!(definition, Definition::Every(_)) && zone != Tz::UTC {
            return Err(SpecError::EveryWithZone);
        }
        let cron = match definition.cron_expression() {
            Some(expression) => {
                let cron =
                    cron_parser()
                        .parse(expression.trim())
                        .map_err(|error| SpecError::Cron {
                            expression: expression.clone(),
                            reason: error.to_string().trim_end_matches('.').to_owned(),
                        })?;
                Some(cron)
            }
            None => None,
        };
        let spec = Spec {
            definition,
            zone,
            cron,
        };
        if let Definition::Cron(expression) = &spec.definition
            && spec.next_after(Utc::now()).is_none()
        {
            return Err(SpecError::CronNeverRuns(expression.clone()));
        }
        Ok(spec)
    }

    /// Rebuilds a stored schedule.
    pub fn from_stored(kind: &str, expression: &str, zone: &str) -> Result<Spec, SpecError> {
        Spec::new(
            Definition::from_stored(kind, expression)?,
            parse_zone(zone)?,
        )
    }

    /// The definition.
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The time zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// What decides whether a connection's remembered progress still applies: a changed
    /// definition or zone starts afresh.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            self.definition.kind(),
            self.definition.expression(),
            self.zone.name()
        )
    }

    /// The first run time strictly after `after`, or `None` when there is none (a cron
    /// expression limited to past years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (&self.definition, &self.cron) {
            (Definition::Every(interval), _) => {
                let step = i64::try_from(interval.as_secs()).ok()?.max(1);
                let next = (after.timestamp().div_euclid(step) + 1).checked_mul(step)?;
                DateTime::from_timestamp(next, 0)
            }
            (_, Some(cron)) => cron
                .find_next_occurrence(&after.with_timezone(&self.zone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
            (_, None) => None,
        }
    }

    /// The next `count` run times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = after;
        while times.len() < count {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            times.push(next);
            cursor = next;
        }
        times
    }
}

/// Checks a schedule name: the connection-name rule (letters, digits, underscores and spaces,
/// starting with a letter or digit, at most 100 characters).
pub fn check_schedule_name(name: &str) -> Result<(), SpecError> {
    crate::names::check_connection_name(name)
        .map_err(|message| SpecError::Name(message.replacen("connection name", "schedule name", 1)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn spec(definition: Definition, zone: &str) -> Spec {
        Spec::new(definition, parse_zone(zone).expect("zone")).expect("valid")
    }

    fn daily(time: &str) -> Definition {
        Definition::Daily(TimeOfDay::parse(time).expect("time"))
    }

    /// The next `n` run times after `after`, as RFC 3339 in UTC.
    fn check(spec: &Spec, after: &str, expected: &[&str]) {
        let got: Vec<String> = spec
            .upcoming(utc(after), expected.len())
            .iter()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .collect();
        assert_eq!(got, expected, "{:?} after {after}", spec.definition());
    }

    #[test]
    fn cron_in_utc_and_with_seconds() {
        let every_ten = spec(Definition::Cron("*/10 * * * *".into()), "UTC");
        check(
            &every_ten,
            "2026-05-04T10:05:00Z",
            &[
                "2026-05-04T10:10:00Z",
                "2026-05-04T10:20:00Z",
                "2026-05-04T10:30:00Z",
            ],
        );
        // Strictly after: a slot at `after` itself is not the next one.
        check(
            &every_ten,
            "2026-05-04T10:10:00Z",
            &["2026-05-04T10:20:00Z"],
        );
        let seconds = spec(Definition::Cron("15 * * * * *".into()), "UTC");
        check(
            &seconds,
            "2026-05-04T10:05:20Z",
            &["2026-05-04T10:06:15Z", "2026-05-04T10:07:15Z"],
        );
        let weekdays = spec(Definition::Cron("0 6 * * mon-fri".into()), "UTC");
        // 2026-05-08 is a Friday.
        check(
            &weekdays,
            "2026-05-08T07:00:00Z",
            &["2026-05-11T06:00:00Z", "2026-05-12T06:00:00Z"],
        );
        let nickname = spec(Definition::Cron("@daily".into()), "UTC");
        check(&nickname, "2026-05-04T10:00:00Z", &["2026-05-05T00:00:00Z"]);
    }

    #[test]
    fn cron_in_a_time_zone() {
        // 06:00 in New York is 10:00 UTC in summer (EDT) and 11:00 in winter (EST).
        let morning = spec(Definition::Cron("0 6 * * *".into()), "America/New_York");
        check(&morning, "2026-07-01T12:00:00Z", &["2026-07-02T10:00:00Z"]);
        check(&morning, "2026-12-01T12:00:00Z", &["2026-12-02T11:00:00Z"]);
    }

    #[test]
    fn every_is_counted_in_utc_from_the_epoch() {
        let five = spec(Definition::Every(parse_every("5s").expect("5s")), "UTC");
        check(
            &five,
            "2026-05-04T10:00:03Z",
            &["2026-05-04T10:00:05Z", "2026-05-04T10:00:10Z"],
        );
        check(&five, "2026-05-04T10:00:05Z", &["2026-05-04T10:00:10Z"]);
        // Sub-second times: the slot at :05 is after :04.9.
        let almost = Utc
            .with_ymd_and_hms(2026, 5, 4, 10, 0, 4)
            .single()
            .expect("time")
            + chrono::Duration::milliseconds(900);
        assert_eq!(five.next_after(almost), Some(utc("2026-05-04T10:00:05Z")));
        let quarter = spec(Definition::Every(parse_every("15m").expect("15m")), "UTC");
        check(
            &quarter,
            "2026-05-04T10:07:00Z",
            &["2026-05-04T10:15:00Z", "2026-05-04T10:30:00Z"],
        );
        let day = spec(Definition::Every(parse_every("1d").expect("1d")), "UTC");
        check(&day, "2026-05-04T10:07:00Z", &["2026-05-05T00:00:00Z"]);
        // A DST change in some zone changes nothing: UTC has none.
        let two_hours = spec(Definition::Every(parse_every("2h").expect("2h")), "UTC");
        check(
            &two_hours,
            "2026-03-29T00:30:00Z",
            &["2026-03-29T02:00:00Z", "2026-03-29T04:00:00Z"],
        );
    }

    #[test]
    fn daily_and_weekly_in_a_zone() {
        let berlin = spec(daily("06:15"), "Europe/Berlin");
        // Summer: CEST is UTC+2.
        check(
            &berlin,
            "2026-06-01T05:00:00Z",
            &["2026-06-02T04:15:00Z", "2026-06-03T04:15:00Z"],
        );
        // Not yet run today: later the same day.
        check(&berlin, "2026-06-01T03:00:00Z", &["2026-06-01T04:15:00Z"]);
        let monday = spec(
            Definition::Weekly(
                parse_day("mon").expect("mon"),
                TimeOfDay { hour: 7, minute: 0 },
            ),
            "UTC",
        );
        // 2026-05-06 is a Wednesday; the next Mondays are 11 and 18 May.
        check(
            &monday,
            "2026-05-06T12:00:00Z",
            &["2026-05-11T07:00:00Z", "2026-05-18T07:00:00Z"],
        );
        let sunday = spec(
            Definition::Weekly(
                parse_day("Sunday").expect("sunday"),
                TimeOfDay {
                    hour: 23,
                    minute: 30,
                },
            ),
            "Asia/Tokyo",
        );
        // Sunday 23:30 in Tokyo is Sunday 14:30 UTC.
        check(&sunday, "2026-05-06T00:00:00Z", &["2026-05-10T14:30:00Z"]);
    }

    #[test]
    fn a_daily_time_in_the_spring_forward_gap_runs_at_the_end_of_the_gap() {
        // Europe/Berlin, 29 March 2026: clocks jump from 02:00 to 03:00 (CET to CEST).
        // 02:30 does not exist that day: the run moves to 03:00 CEST (01:00 UTC), once; the
        // days around it run at 02:30 local time.
        let nightly = spec(daily("02:30"), "Europe/Berlin");
        check(
            &nightly,
            "2026-03-27T12:00:00Z",
            &[
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST: the end of the gap
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ],
        );
        // The same in America/New_York, 8 March 2026 (02:00 EST -> 03:00 EDT).
        let new_york = spec(daily("02:30"), "America/New_York");
        check(
            &new_york,
            "2026-03-07T12:00:00Z",
            &[
                "2026-03-08T07:00:00Z", // 03:00 EDT
                "2026-03-09T06:30:00Z", // 02:30 EDT
            ],
        );
    }

    #[test]
    fn a_daily_time_in_the_fall_back_overlap_runs_once() {
        // Europe/Berlin, 25 October 2026: clocks go back from 03:00 CEST to 02:00 CET, so
        // 02:30 happens twice. The run happens once, at the first (CEST, 00:30 UTC).
        let nightly = spec(daily("02:30"), "Europe/Berlin");
        check(
            &nightly,
            "2026-10-24T12:00:00Z",
            &[
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-26T01:30:00Z", // 02:30 CET, the next day
            ],
        );
        // Asked between the two 02:30s, the next run is the next day's.
        check(&nightly, "2026-10-25T01:00:00Z", &["2026-10-26T01:30:00Z"]);
        // A weekly schedule on that Sunday behaves the same.
        let weekly = spec(
            Definition::Weekly(
                Weekday::Sun,
                TimeOfDay {
                    hour: 2,
                    minute: 30,
                },
            ),
            "Europe/Berlin",
        );
        check(
            &weekly,
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-11-01T01:30:00Z"],
        );
    }

    #[test]
    fn an_interval_cron_runs_at_every_real_instant_of_a_repeated_hour() {
        let half_hourly = spec(Definition::Cron("*/30 * * * *".into()), "Europe/Berlin");
        check(
            &half_hourly,
            "2026-10-24T23:50:00Z",
            &[
                "2026-10-25T00:00:00Z", // 02:00 CEST
                "2026-10-25T00:30:00Z", // 02:30 CEST
                "2026-10-25T01:00:00Z", // 02:00 CET
                "2026-10-25T01:30:00Z", // 02:30 CET
                "2026-10-25T02:00:00Z", // 03:00 CET
            ],
        );
    }

    #[test]
    fn parsing_definitions_and_their_errors() {
        assert_eq!(parse_every("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_every("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_every("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_every("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_every("1h 30m"), Ok(Duration::from_secs(5400)));
        for (text, fragment) in [
            ("5", "is not a duration"),
            ("soon", "is not a duration"),
            ("500ms", "whole number of seconds"),
            ("0s", "at least 1s"),
            ("400d", "longer than 366 days"),
        ] {
            let error = parse_every(text).expect_err(text).to_string();
            assert!(error.contains(fragment), "{text}: {error}");
        }
        assert_eq!(
            TimeOfDay::parse("02:30"),
            Ok(TimeOfDay {
                hour: 2,
                minute: 30
            })
        );
        assert_eq!(
            TimeOfDay::parse("2:05"),
            Ok(TimeOfDay { hour: 2, minute: 5 })
        );
        for bad in [
            "24:00", "12:60", "12", "1230", "ab:cd", "12:5x", "-1:30", "123:00", "2:5",
        ] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_day("MON"), Ok(Weekday::Mon));
        assert_eq!(parse_day("friday"), Ok(Weekday::Fri));
        assert!(parse_day("someday").is_err());
        assert_eq!(parse_zone("europe/berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
        assert!(
            parse_zone("Mars/Olympus")
                .expect_err("unknown")
                .to_string()
                .contains("unknown time zone `Mars/Olympus`")
        );
        let cron = |text: &str| Spec::new(Definition::Cron(text.into()), Tz::UTC);
        let error = cron("61 * * * *").expect_err("minute 61").to_string();
        assert!(
            error.contains("cron expression `61 * * * *` is not valid")
                && error.contains("5 fields"),
            "{error}"
        );
        assert!(cron("* * *").is_err());
        assert!(matches!(
            cron("0 0 30 2 *"),
            Err(SpecError::CronNeverRuns(_))
        ));
        assert_eq!(
            Spec::new(
                Definition::Every(Duration::from_secs(60)),
                chrono_tz::Europe::Paris
            )
            .expect_err("zone with every"),
            SpecError::EveryWithZone
        );
    }

    #[test]
    fn stored_form_round_trips() {
        for (definition, kind, expression, shown) in [
            (
                Definition::Cron("0 3 * * *".into()),
                "cron",
                "0 3 * * *",
                "cron `0 3 * * *`",
            ),
            (
                Definition::Every(Duration::from_secs(5400)),
                "every",
                "1h 30m",
                "every 1h 30m",
            ),
            (daily("02:30"), "daily", "02:30", "daily at 02:30"),
            (
                Definition::Weekly(Weekday::Mon, TimeOfDay { hour: 7, minute: 5 }),
                "weekly",
                "mon 07:05",
                "weekly on Monday at 07:05",
            ),
        ] {
            assert_eq!(definition.kind(), kind);
            assert_eq!(definition.expression(), expression);
            assert_eq!(definition.to_string(), shown);
            assert_eq!(
                Definition::from_stored(kind, expression),
                Ok(definition.clone())
            );
        }
        assert!(matches!(
            Definition::from_stored("hourly", "x"),
            Err(SpecError::UnknownKind(_))
        ));
        let stored = Spec::from_stored("daily", "02:30", "Europe/Berlin").expect("stored");
        assert_eq!(stored.fingerprint(), "daily|02:30|Europe/Berlin");
    }

    #[test]
    fn schedule_names_follow_the_connection_name_rule() {
        assert!(check_schedule_name("nightly").is_ok());
        assert!(check_schedule_name("every 5 min").is_ok());
        let error = check_schedule_name("night-ly")
            .expect_err("dash")
            .to_string();
        assert!(
            error.contains("schedule name `night-ly` contains `-`"),
            "{error}"
        );
        let error = check_schedule_name("").expect_err("empty").to_string();
        assert!(error.contains("the schedule name is empty"), "{error}");
    }
}
