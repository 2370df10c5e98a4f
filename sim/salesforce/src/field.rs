//! One field of a synthetic row, as the simulator serves it.
//!
//! A page is written field by field straight into its JSON ([`serde::Serialize`]), so the
//! fields that fill big pages (ids, dateTimes, constant strings, numbers) are kept as what
//! they are made of and written from a buffer on the stack, without building a
//! `serde_json::Value` or formatting a `String` first. [`Field::into_value`] gives the same
//! value for everything else (filters, `ORDER BY`, relationship fields); both write the
//! same text.

use std::fmt::{self, Display, Write as _};

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::data::Obj;

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    Text(String),
    /// The id of the row at a position of an object: its key prefix, the position plus one
    /// in 12 digits, then `AAA`.
    Id(Obj, u64),
    /// A dateTime in Unix seconds, written as Salesforce does: `2024-04-01T09:30:00.000+0000`.
    DateTime(i64),
}

impl Field {
    /// The same value as JSON.
    pub(crate) fn into_value(self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Bool(b) => Value::Bool(b),
            Field::Int(n) => Value::from(n),
            Field::Str(s) => Value::from(s),
            Field::Text(s) => Value::String(s),
            id @ Field::Id(..) => Value::String(id.to_string()),
            time @ Field::DateTime(_) => Value::String(time.to_string()),
        }
    }
}

impl From<bool> for Field {
    fn from(b: bool) -> Self {
        Field::Bool(b)
    }
}

impl From<i64> for Field {
    fn from(n: i64) -> Self {
        Field::Int(n)
    }
}

impl From<&'static str> for Field {
    fn from(s: &'static str) -> Self {
        Field::Str(s)
    }
}

impl From<String> for Field {
    fn from(s: String) -> Self {
        Field::Text(s)
    }
}

/// How the REST API ends a dateTime.
const REST_ZONE: &[u8] = b"+0000";
/// How Bulk API 2.0 results end one.
const BULK_ZONE: &[u8] = b"Z";

/// A short text written on the stack.
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn push(&mut self, text: &[u8]) {
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
    }

    /// `n` in exactly `width` digits (the lowest ones).
    fn digits(&mut self, mut n: u64, width: usize) {
        for at in (self.len..self.len + width).rev() {
            self.bytes[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += width;
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Year, month and day of the day `days` after 1970-01-01 (the proleptic Gregorian
/// calendar; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe as i64 + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Field {
    /// The text of an id or a dateTime of a year 0 to 9999, the dateTime ending in `zone`;
    /// `None` for the other kinds.
    fn stack_text(&self, zone: &[u8]) -> Option<StackText> {
        let mut text = StackText::new();
        match *self {
            Field::Id(obj, pos) => {
                debug_assert!(pos < 999_999_999_999, "an id has 12 digits for {pos}");
                text.push(obj.prefix().as_bytes());
                text.digits(pos + 1, 12);
                text.push(b"AAA");
            }
            Field::DateTime(secs) => {
                let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
                debug_assert!((0..=9999).contains(&year), "year {year} has no 4 digits");
                let year = u64::try_from(year).ok().filter(|y| *y <= 9999)?;
                let second = secs.rem_euclid(86_400) as u64;
                text.digits(year, 4);
                text.push(b"-");
                text.digits(month, 2);
                text.push(b"-");
                text.digits(day, 2);
                text.push(b"T");
                text.digits(second / 3600, 2);
                text.push(b":");
                text.digits(second / 60 % 60, 2);
                text.push(b":");
                text.digits(second % 60, 2);
                text.push(b".000");
                text.push(zone);
            }
            _ => return None,
        }
        Some(text)
    }
}

impl Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Null => f.write_str("null"),
            Field::Bool(b) => write!(f, "{b}"),
            Field::Int(n) => write!(f, "{n}"),
            Field::Str(s) => f.write_str(s),
            Field::Text(s) => f.write_str(s),
            Field::Id(..) | Field::DateTime(_) => match self.stack_text(REST_ZONE) {
                Some(text) => f.write_str(text.as_str()),
                // Outside the years Salesforce writes; the simulator never makes one.
                None => f.write_char('?'),
            },
        }
    }
}

impl Field {
    /// Appends the value as a field of a Bulk API 2.0 result (CSV): always quoted, a quote
    /// doubled, null as an empty field, a dateTime in UTC ending in `Z`
    /// (`2024-04-01T09:30:00.000Z`).
    pub(crate) fn write_csv(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        match self {
            Field::Null => {}
            Field::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Field::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Field::Str(s) => csv_text(s, out),
            Field::Text(s) => csv_text(s, out),
            Field::Id(..) | Field::DateTime(_) => match self.stack_text(BULK_ZONE) {
                Some(text) => out.extend_from_slice(text.as_str().as_bytes()),
                None => out.push(b'?'),
            },
        }
        out.push(b'"');
    }
}

/// `text` as the inside of a quoted CSV field: each `"` doubled.
pub(crate) fn csv_text(text: &str, out: &mut Vec<u8>) {
    for (k, part) in text.split('"').enumerate() {
        if k > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.as_bytes());
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Null => serializer.serialize_unit(),
            Field::Bool(b) => serializer.serialize_bool(*b),
            Field::Int(n) => serializer.serialize_i64(*n),
            Field::Str(s) => serializer.serialize_str(s),
            Field::Text(s) => serializer.serialize_str(s),
            Field::Id(..) | Field::DateTime(_) => match self.stack_text(REST_ZONE) {
                Some(text) => serializer.serialize_str(text.as_str()),
                None => serializer.collect_str(self),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    #[test]
    fn date_times_are_written_as_chrono_writes_them() {
        let mut secs = -62_135_596_800; // 0001-01-01T00:00:00Z
        while secs < 253_402_300_800 {
            let expected = DateTime::from_timestamp(secs, 0)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string();
            let field = Field::DateTime(secs);
            assert_eq!(field.to_string(), expected);
            assert_eq!(
                serde_json::to_string(&field).expect("writes"),
                format!("\"{expected}\"")
            );
            assert_eq!(field.into_value(), Value::String(expected));
            secs += 7_777_777 + secs.rem_euclid(86_399);
        }
        for secs in [0, 951_782_400, 951_868_799, 1_709_164_800, 4_107_542_399] {
            let expected = DateTime::from_timestamp(secs, 0)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string();
            assert_eq!(Field::DateTime(secs).to_string(), expected, "{secs}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_with_bulk_date_times_and_empty_nulls() {
        let csv = |field: Field| {
            let mut out = Vec::new();
            field.write_csv(&mut out);
            String::from_utf8(out).expect("UTF-8")
        };
        assert_eq!(csv(Field::Null), r#""""#);
        assert_eq!(csv(Field::Bool(false)), r#""false""#);
        assert_eq!(csv(Field::Int(-12)), r#""-12""#);
        assert_eq!(
            csv(Field::Str(r#"say "hi", twice"#)),
            r#""say ""hi"", twice""#
        );
        assert_eq!(csv(Field::Text("a\nb".to_owned())), "\"a\nb\"");
        assert_eq!(csv(Field::Id(Obj::User, 0)), r#""005000000000001AAA""#);
        let secs = 1_709_164_800 + 3_723;
        let expected = DateTime::from_timestamp(secs, 0)
            .expect("in range")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        assert_eq!(csv(Field::DateTime(secs)), format!("\"{expected}\""));
    }

    #[test]
    fn ids_and_plain_values_write_the_same_json_as_values() {
        let fields = [
            Field::Id(Obj::User, 0),
            Field::Id(Obj::LoginHistory, 999_999_999_998),
            Field::Null,
            Field::Bool(true),
            Field::Int(-1),
            Field::Str("Chrome \"131\""),
            Field::Text("Zoë\n".to_owned()),
        ];
        let written: Vec<String> = fields
            .iter()
            .map(|f| serde_json::to_string(f).expect("writes"))
            .collect();
        assert_eq!(written[0], "\"005000000000001AAA\"");
        assert_eq!(written[1], "\"0Ya999999999999AAA\"");
        for (field, text) in fields.into_iter().zip(written) {
            assert_eq!(
                serde_json::to_string(&field.into_value()).expect("writes"),
                text
            );
        }
    }
}
