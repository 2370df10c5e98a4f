//! Times as records carry them: RFC 3339 text in UTC, written and read without chrono's
//! general format machinery for the common shape.
//!
//! Record batches hold hundreds of thousands of times, and chrono formats them through
//! `core::fmt` and parses them with its general-purpose parser, which made times a visible share
//! of an import's CPU. [`write_utc`] writes exactly what chrono's `Serialize` writes
//! (`2024-05-01T08:15:00Z`, with 3, 6 or 9 fraction digits when there is a fraction);
//! [`parse_utc`] reads that shape directly and leaves everything else to chrono, so it accepts
//! exactly what chrono's `Deserialize` accepts.

use chrono::{
    DateTime, Datelike as _, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike as _, Utc,
};

/// Enough for any time [`write_utc`] writes itself (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`).
const MAX_LEN: usize = 30;

/// Appends `time` as chrono's `Serialize` writes it (RFC 3339, `Z`, a fraction of 3, 6 or 9
/// digits only when there is one).
pub fn write_utc(time: &DateTime<Utc>, out: &mut String) {
    with_text(time, |text| out.push_str(text));
}

/// Calls `f` with `time` as [`write_utc`] writes it, without allocating in the common case.
fn with_text<R>(time: &DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
    let mut buffer = [0u8; MAX_LEN];
    match format_fast(time, &mut buffer) {
        // Only ASCII digits and separators were written.
        Some(len) => f(std::str::from_utf8(&buffer[..len]).unwrap_or_default()),
        // Years outside 0..=9999 and leap seconds: chrono's own text.
        None => f(serde_json::to_value(time)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| time.to_rfc3339())
            .as_str()),
    }
}

/// `time` in `buffer`; its length, or `None` for what only chrono writes.
fn format_fast(time: &DateTime<Utc>, buffer: &mut [u8; MAX_LEN]) -> Option<usize> {
    /// Writes `value` as `width` digits at `at`; the position after them.
    fn put(buffer: &mut [u8; MAX_LEN], at: usize, value: u32, width: u32) -> usize {
        for (i, power) in (0..width).rev().enumerate() {
            buffer[at + i] = b'0' + ((value / 10u32.pow(power)) % 10) as u8;
        }
        at + width as usize
    }
    // The UTC fields read once (each accessor of a `DateTime` converts to local time again).
    let (date, clock) = (time.date_naive(), time.time());
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = clock.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut at = put(buffer, 0, year, 4);
    for (separator, value) in [
        (b'-', date.month()),
        (b'-', date.day()),
        (b'T', clock.hour()),
        (b':', clock.minute()),
        (b':', clock.second()),
    ] {
        buffer[at] = separator;
        at = put(buffer, at + 1, value, 2);
    }
    if nanos > 0 {
        buffer[at] = b'.';
        at = if nanos.is_multiple_of(1_000_000) {
            put(buffer, at + 1, nanos / 1_000_000, 3)
        } else if nanos.is_multiple_of(1_000) {
            put(buffer, at + 1, nanos / 1_000, 6)
        } else {
            put(buffer, at + 1, nanos, 9)
        };
    }
    buffer[at] = b'Z';
    Some(at + 1)
}

/// Reads a time the way chrono's `Deserialize` for `DateTime<Utc>` does (any RFC 3339 offset,
/// converted to UTC); `None` when chrono would refuse it. The common shape (fixed digits, an
/// optional fraction, then `Z`, `+0000` or `+00:00`) is read directly.
pub fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    parse_fast(text).or_else(|| {
        text.parse::<DateTime<FixedOffset>>()
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The common case without chrono's format machinery: fixed digits (`T`, `t` or a space
/// between date and time), an optional fraction of 1 to 9 digits, then `Z`, `z`, `+0000` or
/// `+00:00`. `None` for anything else (which may still be a time chrono reads).
pub fn parse_fast(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let (month, day) = (num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut at = 19;
    let mut nanos = 0u32;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        let digits = at - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(start, at)? * 10u32.pow(u32::try_from(9 - digits).ok()?);
    }
    match &text[at..] {
        "Z" | "z" | "+0000" | "+00:00" => {}
        _ => return None,
    }
    // Leap seconds (second 60) are left to chrono.
    if second > 59 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// `#[serde(with = "crate::time::optional")]` for `Option<DateTime<Utc>>` fields: the same
/// JSON as chrono's own implementation, written and read faster.
pub(crate) mod optional {
    use std::fmt;

    use chrono::{DateTime, Utc};
    use serde::{Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(
        time: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => super::with_text(time, |text| serializer.serialize_some(text)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> de::Visitor<'de> for OptionVisitor {
        type Value = Option<DateTime<Utc>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 formatted date and time string, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(TimeVisitor).map(Some)
        }
    }

    struct TimeVisitor;

    impl de::Visitor<'_> for TimeVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // chrono's own words, so that messages read as before.
            f.write_str("an RFC 3339 formatted date and time string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            super::parse_utc(text).ok_or_else(|| {
                // chrono's own message, for the same input.
                match text.parse::<DateTime<chrono::FixedOffset>>() {
                    Err(error) => E::custom(error),
                    Ok(_) => E::custom("not a valid date and time"),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn chrono_text(time: &DateTime<Utc>) -> String {
        serde_json::to_value(time)
            .expect("serializes")
            .as_str()
            .expect("a string")
            .to_owned()
    }

    fn ours(time: &DateTime<Utc>) -> String {
        let mut text = String::new();
        write_utc(time, &mut text);
        text
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc
            .with_ymd_and_hms(2024, 5, 1, 8, 15, 0)
            .single()
            .expect("valid");
        let cases = [
            base,
            base + chrono::Duration::milliseconds(7),
            base + chrono::Duration::microseconds(12),
            base + chrono::Duration::nanoseconds(5),
            base + chrono::Duration::nanoseconds(120_000_000),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0)
                .single()
                .expect("valid"),
        ];
        for time in cases {
            assert_eq!(ours(&time), chrono_text(&time), "{time:?}");
            assert_eq!(parse_utc(&ours(&time)), Some(time), "{time:?}");
        }
        // A leap second (nanoseconds past one second) is chrono's to write.
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .expect("valid")
            .and_utc();
        assert_eq!(ours(&leap), chrono_text(&leap));
        assert!(ours(&leap).contains(":60"), "{}", ours(&leap));
    }

    #[test]
    fn reads_what_chrono_reads_and_refuses_what_it_refuses() {
        let cases = [
            "2024-05-01T08:15:00Z",
            "2024-05-01T08:15:00.5Z",
            "2024-05-01T08:15:00.000+0000",
            "2024-05-01T08:15:00+00:00",
            "2024-05-01t08:15:00z",
            "2024-05-01 08:15:00Z",
            "2024-05-01T10:15:00+02:00",
            "2024-05-01T08:15:00.1234567891Z",
            "2024-05-01 08:15:00+0000",
            "2024-05-01T08:15:00-00:00",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.5Z",
            "2024-02-30T08:15:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T08:15:60Z",
            "2024-05-01T08:15:00",
            "2024-05-01",
            "yesterday",
            "",
        ];
        for text in cases {
            let chrono = text
                .parse::<DateTime<FixedOffset>>()
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(parse_utc(text), chrono, "{text}");
        }
        // The common shapes are read directly, not by chrono.
        for text in [
            "2024-05-01T08:15:00Z",
            "2024-05-01T08:15:00.000+0000",
            "2024-05-01T08:15:00.123456+00:00",
            "2024-05-01t08:15:00z",
        ] {
            assert!(parse_fast(text).is_some(), "{text}");
        }
        assert!(parse_fast("2024-05-01T10:15:00+02:00").is_none());
        assert!(parse_fast("2016-12-31T23:59:60Z").is_none());
    }

    #[test]
    fn optional_fields_read_null_absent_and_bad_values() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Holder {
            #[serde(default, with = "optional", skip_serializing_if = "Option::is_none")]
            at: Option<DateTime<Utc>>,
        }
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 8, 15, 0).single();
        let read = |json: &str| serde_json::from_str::<Holder>(json);
        assert_eq!(
            read(r#"{"at":"2024-05-01T08:15:00Z"}"#).expect("reads").at,
            at
        );
        assert_eq!(read(r#"{"at":null}"#).expect("reads").at, None);
        assert_eq!(read("{}").expect("reads").at, None);
        let error = read(r#"{"at":"soon"}"#).expect_err("not a time");
        assert!(error.is_data(), "{error}");
        assert!(read(r#"{"at":5}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Holder { at }).expect("writes"),
            r#"{"at":"2024-05-01T08:15:00Z"}"#
        );
    }
}
