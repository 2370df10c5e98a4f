//! [`RecordBatch`]: records encoded for the host as they are made.

use std::{borrow::Borrow, collections::BTreeMap};

use crate::{error::Error, model::Record};

/// Records on their way to the host, encoded as they are pushed (the JSON lines
/// [`Host::emit_batch`](super::Host::emit_batch) sends), so that a page of a large object never
/// sits in memory twice, once as records and once as text.
///
/// ```
/// use invhost_plugin_api::{model::{Record, Usage}, sdk::RecordBatch};
///
/// let mut batch = RecordBatch::new();
/// batch.push(Record::Usage(Usage {
///     account_id: "005A".into(),
///     application_id: None,
///     window_days: 90,
///     logins: 3,
///     last_interactive_at: None,
///     last_api_at: None,
/// }));
/// assert_eq!(batch.len(), 1);
/// assert_eq!(batch.counts()["usage"], 1);
/// ```
#[derive(Debug, Default)]
pub struct RecordBatch {
    lines: Vec<u8>,
    len: usize,
    counts: BTreeMap<&'static str, u64>,
    /// The first record that could not be encoded (reported by `emit_batch`).
    error: Option<String>,
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> Self {
        RecordBatch::default()
    }

    /// An empty batch with room for about `records` records.
    pub fn with_capacity(records: usize) -> Self {
        RecordBatch {
            lines: Vec::with_capacity(records.saturating_mul(160)),
            ..RecordBatch::default()
        }
    }

    /// Encodes `record` into the batch.
    pub fn push(&mut self, record: impl Borrow<Record>) {
        let record = record.borrow();
        let start = self.lines.len();
        match serde_json::to_writer(&mut self.lines, record) {
            Ok(()) => {
                self.lines.push(b'\n');
                self.len += 1;
                *self.counts.entry(record.kind()).or_default() += 1;
            }
            Err(error) => {
                self.lines.truncate(start);
                self.error
                    .get_or_insert_with(|| format!("could not encode a record: {error}"));
            }
        }
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no record (and no record failed to encode).
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.error.is_none()
    }

    /// Records in the batch per kind (`account`, `usage`...).
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The JSON lines, one record each; or why a record could not be encoded.
    pub(crate) fn text(&self) -> Result<&str, Error> {
        if let Some(error) = &self.error {
            return Err(Error::internal(error.clone()));
        }
        // serde_json writes UTF-8 only.
        std::str::from_utf8(&self.lines)
            .map_err(|e| Error::internal(format!("could not encode a record: {e}")))
    }
}

impl<R: Borrow<Record>> Extend<R> for RecordBatch {
    fn extend<I: IntoIterator<Item = R>>(&mut self, records: I) {
        for record in records {
            self.push(record);
        }
    }
}

impl<R: Borrow<Record>> FromIterator<R> for RecordBatch {
    fn from_iter<I: IntoIterator<Item = R>>(records: I) -> Self {
        let mut batch = RecordBatch::new();
        batch.extend(records);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Assignment, AssignmentSource};

    fn assignment(account: &str) -> Record {
        Record::Assignment(Assignment {
            account_id: account.into(),
            license_id: "L".into(),
            source: AssignmentSource::Profile,
            assigned_at: None,
        })
    }

    #[test]
    fn lines_are_the_records_as_serde_writes_them() {
        let records = [assignment("a"), assignment("b")];
        let batch: RecordBatch = records.iter().collect();
        let expected: String = records
            .iter()
            .map(|r| format!("{}\n", serde_json::to_string(r).expect("encodes")))
            .collect();
        assert_eq!(batch.text().expect("text"), expected);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.counts().get("assignment"), Some(&2));
        assert!(RecordBatch::new().is_empty());
    }
}
